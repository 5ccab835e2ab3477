/* Owns the peers seen in earlier sessions: STATE_DIR/known-peers, one peer
 * id a line, oldest first, read at start and written at stop with the
 * peers announced in this session added (at most LS_KNOWN_PEERS_MAX, the
 * oldest dropped). The games view marks a version that only peers first
 * seen in this session offer (views.c): a stranger's "newer version" is
 * shown as such. A session that crashes adds nobody. */
#include "peer/runtime.h"

#include "core/error.h"
#include "core/fs.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KNOWN_FILE "known-peers"
#define ID_LEN LS_PROTO_PEER_ID_LEN

struct ls_known {
  char (*before)[ID_LEN + 1]; /* from the file, in its order */
  size_t nbefore;
  char (*now)[ID_LEN + 1];    /* announced in this session, not in before */
  size_t nnow, cap;
};

static bool has(char (*ids)[ID_LEN + 1], size_t n, const char *id)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(ids[i], id) == 0)
      return true;
  return false;
}

/* The valid ids of the file's text, at most LS_KNOWN_PEERS_MAX. */
static void parse(ls_known *k, const char *text)
{
  k->before = calloc(LS_KNOWN_PEERS_MAX, sizeof *k->before);
  for (const char *line = text; k->before && *line && k->nbefore < LS_KNOWN_PEERS_MAX;) {
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    char id[ID_LEN + 1];
    if (len == ID_LEN) {
      memcpy(id, line, ID_LEN);
      id[ID_LEN] = '\0';
      if (ls_proto_peer_id_is_valid(id) && !has(k->before, k->nbefore, id))
        memcpy(k->before[k->nbefore++], id, sizeof id);
    }
    line += len + (end ? 1 : 0);
  }
}

int ls_known_load(ls_peer *p)
{
  ls_known *k = calloc(1, sizeof *k);
  if (!k)
    return LS_ENOMEM;
  char *text = NULL;
  size_t len;
  ls_diag diag;
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", p->state_dir, KNOWN_FILE);
  if (ls_read_file_at(AT_FDCWD, path, (size_t)LS_KNOWN_PEERS_MAX * (ID_LEN + 1), &text, &len,
                      &diag) == LS_OK)
    parse(k, text); /* a missing or unreadable file: nobody is known */
  free(text);
  p->known = k;
  return LS_OK;
}

void ls_known_saw(ls_peer *p, const char *peer_id)
{
  ls_known *k = p->known;
  if (!k || has(k->before, k->nbefore, peer_id) || has(k->now, k->nnow, peer_id))
    return;
  if (k->nnow == k->cap) {
    size_t cap = k->cap ? 2 * k->cap : 16;
    void *grown = realloc(k->now, cap * sizeof *k->now);
    if (!grown)
      return;
    k->now = grown;
    k->cap = cap;
  }
  snprintf(k->now[k->nnow++], ID_LEN + 1, "%s", peer_id);
}

bool ls_known_before(const ls_peer *p, const char *peer_id)
{
  return p->known && has(p->known->before, p->known->nbefore, peer_id);
}

void ls_known_save_and_free(ls_peer *p)
{
  ls_known *k = p->known;
  if (!k)
    return;
  size_t total = k->nbefore + k->nnow;
  size_t skip = total > LS_KNOWN_PEERS_MAX ? total - LS_KNOWN_PEERS_MAX : 0;
  char *text = malloc(total * (ID_LEN + 1) + 1);
  size_t len = 0;
  for (size_t i = skip; text && i < total; i++) {
    memcpy(text + len, i < k->nbefore ? k->before[i] : k->now[i - k->nbefore], ID_LEN);
    text[len + ID_LEN] = '\n';
    len += ID_LEN + 1;
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", p->state_dir, KNOWN_FILE);
  ls_diag diag;
  if (text && k->nnow && ls_write_file_atomic(path, text, len, 0600, &diag) != LS_OK)
    ls_rt_log("cannot save the known peers: %s", diag.text);
  free(text);
  free(k->before);
  free(k->now);
  free(k);
  p->known = NULL;
}
