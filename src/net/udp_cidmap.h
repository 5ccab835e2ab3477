/* Connection-ID table of the QUIC endpoint: maps a QUIC connection ID (up to
 * 20 bytes) to the connection that owns it, so that every datagram arriving
 * on the shared UDP socket is routed by its destination connection ID. */
#ifndef LS_NET_UDP_CIDMAP_H
#define LS_NET_UDP_CIDMAP_H

#include <lanspread/error.h>

#include <stddef.h>
#include <stdint.h>

#define LS_CIDMAP_MAX_CIDLEN 20

typedef struct ls_cidmap_entry ls_cidmap_entry;

typedef struct ls_cidmap {
  ls_cidmap_entry **buckets;
  size_t nbuckets; /* power of two */
  size_t count;
} ls_cidmap;

void ls_cidmap_init(ls_cidmap *m);
void ls_cidmap_free(ls_cidmap *m);

/* Adds or replaces the owner of a CID. LS_EINVAL for a bad length. */
int ls_cidmap_put(ls_cidmap *m, const uint8_t *cid, size_t len, void *owner);
/* The owner of a CID, or NULL. */
void *ls_cidmap_get(const ls_cidmap *m, const uint8_t *cid, size_t len);
/* Removes the CID if `owner` owns it (NULL: whoever owns it). */
void ls_cidmap_del(ls_cidmap *m, const uint8_t *cid, size_t len, const void *owner);
/* Removes every CID owned by `owner`. */
void ls_cidmap_del_owner(ls_cidmap *m, const void *owner);

#endif
