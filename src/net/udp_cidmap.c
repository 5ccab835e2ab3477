/* Owns the connection-ID hash table (see udp_cidmap.h): chained buckets,
 * FNV-1a hashing, doubled when the load factor passes 1. */
#include "net/udp_cidmap.h"

#include <stdlib.h>
#include <string.h>

struct ls_cidmap_entry {
  ls_cidmap_entry *next;
  void *owner;
  size_t len;
  uint8_t cid[LS_CIDMAP_MAX_CIDLEN];
};

static size_t hash_cid(const uint8_t *cid, size_t len)
{
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < len; i++) {
    h ^= cid[i];
    h *= 1099511628211ULL;
  }
  return (size_t)(h ^ (h >> 29));
}

void ls_cidmap_init(ls_cidmap *m)
{
  memset(m, 0, sizeof *m);
}

void ls_cidmap_free(ls_cidmap *m)
{
  for (size_t i = 0; i < m->nbuckets; i++) {
    ls_cidmap_entry *e = m->buckets[i];
    while (e) {
      ls_cidmap_entry *next = e->next;
      free(e);
      e = next;
    }
  }
  free(m->buckets);
  memset(m, 0, sizeof *m);
}

static ls_cidmap_entry **find_slot(const ls_cidmap *m, const uint8_t *cid, size_t len)
{
  ls_cidmap_entry **pp = &m->buckets[hash_cid(cid, len) & (m->nbuckets - 1)];
  while (*pp && ((*pp)->len != len || memcmp((*pp)->cid, cid, len) != 0))
    pp = &(*pp)->next;
  return pp;
}

static int grow(ls_cidmap *m)
{
  size_t n = m->nbuckets ? m->nbuckets * 2 : 64;
  ls_cidmap_entry **b = calloc(n, sizeof *b);
  if (!b)
    return LS_ENOMEM;
  for (size_t i = 0; i < m->nbuckets; i++) {
    ls_cidmap_entry *e = m->buckets[i];
    while (e) {
      ls_cidmap_entry *next = e->next;
      size_t h = hash_cid(e->cid, e->len) & (n - 1);
      e->next = b[h];
      b[h] = e;
      e = next;
    }
  }
  free(m->buckets);
  m->buckets = b;
  m->nbuckets = n;
  return LS_OK;
}

int ls_cidmap_put(ls_cidmap *m, const uint8_t *cid, size_t len, void *owner)
{
  if (len == 0 || len > LS_CIDMAP_MAX_CIDLEN)
    return LS_EINVAL;
  if (m->count >= m->nbuckets && grow(m) != LS_OK)
    return LS_ENOMEM;
  ls_cidmap_entry **pp = find_slot(m, cid, len);
  if (*pp) {
    (*pp)->owner = owner;
    return LS_OK;
  }
  ls_cidmap_entry *e = calloc(1, sizeof *e);
  if (!e)
    return LS_ENOMEM;
  e->owner = owner;
  e->len = len;
  memcpy(e->cid, cid, len);
  *pp = e;
  m->count++;
  return LS_OK;
}

void *ls_cidmap_get(const ls_cidmap *m, const uint8_t *cid, size_t len)
{
  if (m->nbuckets == 0 || len == 0 || len > LS_CIDMAP_MAX_CIDLEN)
    return NULL;
  ls_cidmap_entry *e = *find_slot(m, cid, len);
  return e ? e->owner : NULL;
}

void ls_cidmap_del(ls_cidmap *m, const uint8_t *cid, size_t len, const void *owner)
{
  if (m->nbuckets == 0 || len == 0 || len > LS_CIDMAP_MAX_CIDLEN)
    return;
  ls_cidmap_entry **pp = find_slot(m, cid, len);
  ls_cidmap_entry *e = *pp;
  if (!e || (owner && e->owner != owner))
    return;
  *pp = e->next;
  free(e);
  m->count--;
}

void ls_cidmap_del_owner(ls_cidmap *m, const void *owner)
{
  for (size_t i = 0; i < m->nbuckets; i++) {
    ls_cidmap_entry **pp = &m->buckets[i];
    while (*pp) {
      ls_cidmap_entry *e = *pp;
      if (e->owner == owner) {
        *pp = e->next;
        free(e);
        m->count--;
      } else {
        pp = &e->next;
      }
    }
  }
}
