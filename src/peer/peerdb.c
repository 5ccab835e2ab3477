/* Owns PeerGameDB (peer/peerdb.h): the table of remote peers, their
 * advertised games, the file lists they sent and the refused versions (the
 * one rule of what counts as an offer: ls_peerdb_offer_of). */
#include "peer/peerdb.h"

#include <lanspread/version.h>
#include <stdlib.h>
#include <string.h>

typedef struct files_entry {
  char peer_id[LS_PROTO_PEER_ID_LEN + 1];
  ls_msg msg; /* LS_MSG_GAME_FILES */
} files_entry;

struct ls_peerdb {
  size_t count;
  ls_peerdb_peer *peers;
  size_t files_count;
  files_entry *files;
  size_t refusals_count; /* oldest first */
  ls_peerdb_refusal refusals[LS_PEERDB_MAX_REFUSALS];
};

ls_peerdb *ls_peerdb_new(void)
{
  return calloc(1, sizeof(ls_peerdb));
}

static void free_game_list(ls_msg_game_list *list)
{
  for (size_t i = 0; i < list->count; i++) {
    free(list->games[i].id);
    free(list->games[i].name);
    free(list->games[i].version);
  }
  free(list->games);
  memset(list, 0, sizeof *list);
}

static void clear_peer(ls_peerdb_peer *p)
{
  free(p->name);
  free(p->addr);
  free_game_list(&p->games);
}

static void drop_files_of(ls_peerdb *db, const char *peer_id)
{
  size_t k = 0;
  for (size_t i = 0; i < db->files_count; i++) {
    if (strcmp(db->files[i].peer_id, peer_id) == 0)
      ls_msg_clear(&db->files[i].msg);
    else
      db->files[k++] = db->files[i];
  }
  db->files_count = k;
}

static void clear_refusal(ls_peerdb_refusal *r)
{
  free(r->game_id);
  free(r->version);
  free(r->error);
}

/* Keeps the refusals keep() says yes to, in their order. */
static void filter_refusals(ls_peerdb *db, bool (*keep)(const ls_peerdb *, const ls_peerdb_refusal *,
                                                         const char *),
                            const char *peer_id)
{
  size_t k = 0;
  for (size_t i = 0; i < db->refusals_count; i++) {
    if (keep(db, &db->refusals[i], peer_id))
      db->refusals[k++] = db->refusals[i];
    else
      clear_refusal(&db->refusals[i]);
  }
  db->refusals_count = k;
}

void ls_peerdb_free(ls_peerdb *db)
{
  if (!db)
    return;
  for (size_t i = 0; i < db->refusals_count; i++)
    clear_refusal(&db->refusals[i]);
  for (size_t i = 0; i < db->count; i++)
    clear_peer(&db->peers[i]);
  for (size_t i = 0; i < db->files_count; i++)
    ls_msg_clear(&db->files[i].msg);
  free(db->peers);
  free(db->files);
  free(db);
}

static ls_peerdb_peer *find(const ls_peerdb *db, const char *peer_id)
{
  for (size_t i = 0; i < db->count; i++)
    if (strcmp(db->peers[i].peer_id, peer_id) == 0)
      return &db->peers[i];
  return NULL;
}

const ls_peerdb_peer *ls_peerdb_find(const ls_peerdb *db, const char *peer_id)
{
  return find(db, peer_id);
}

static int replace_str(char **slot, const char *value)
{
  char *copy = strdup(value ? value : "");
  if (!copy)
    return LS_ENOMEM;
  free(*slot);
  *slot = copy;
  return LS_OK;
}

int ls_peerdb_put_peer(ls_peerdb *db, const char *peer_id, const char *name, const char *addr)
{
  ls_peerdb_peer *p = find(db, peer_id);
  if (!p) {
    ls_peerdb_peer *peers = realloc(db->peers, (db->count + 1) * sizeof *peers);
    if (!peers)
      return LS_ENOMEM;
    db->peers = peers;
    p = &peers[db->count++];
    memset(p, 0, sizeof *p);
    memcpy(p->peer_id, peer_id, LS_PROTO_PEER_ID_LEN);
  }
  if (replace_str(&p->name, name) != LS_OK || replace_str(&p->addr, addr) != LS_OK)
    return LS_ENOMEM;
  return LS_OK;
}

static bool same_games(const ls_msg_game_list *a, const ls_msg_game_list *b)
{
  if (a->count != b->count)
    return false;
  for (size_t i = 0; i < a->count; i++) {
    const ls_msg_game_info *x = &a->games[i], *y = &b->games[i];
    if (strcmp(x->id, y->id) || strcmp(x->name, y->name) || strcmp(x->version, y->version) ||
        x->size != y->size)
      return false;
  }
  return true;
}

/* True for a refusal of another peer, or of a version peer_id still
 * advertises. */
static bool still_advertised(const ls_peerdb *db, const ls_peerdb_refusal *r,
                             const char *peer_id)
{
  if (strcmp(r->peer_id, peer_id) != 0)
    return true;
  const ls_peerdb_peer *p = find(db, peer_id);
  const ls_msg_game_info *g = p ? ls_peerdb_game_of(p, r->game_id) : NULL;
  return g && strcmp(g->version, r->version) == 0;
}

bool ls_peerdb_set_games(ls_peerdb *db, const char *peer_id, const ls_msg_game_list *list)
{
  ls_peerdb_peer *p = find(db, peer_id);
  if (!p || same_games(&p->games, list))
    return false;
  ls_msg msg = {.type = LS_MSG_GAME_LIST, .game_list = *list}, copy;
  if (ls_msg_copy(&copy, &msg) != LS_OK)
    return false;
  free_game_list(&p->games);
  p->games = copy.game_list;
  filter_refusals(db, still_advertised, peer_id);
  return true;
}

static bool not_of_peer(const ls_peerdb *db, const ls_peerdb_refusal *r, const char *peer_id)
{
  (void)db;
  return strcmp(r->peer_id, peer_id) != 0;
}

void ls_peerdb_remove_peer(ls_peerdb *db, const char *peer_id)
{
  ls_peerdb_peer *p = find(db, peer_id);
  if (!p)
    return;
  drop_files_of(db, peer_id);
  filter_refusals(db, not_of_peer, peer_id);
  clear_peer(p);
  size_t i = (size_t)(p - db->peers);
  memmove(p, p + 1, (db->count - i - 1) * sizeof *p);
  db->count--;
}

size_t ls_peerdb_count(const ls_peerdb *db)
{
  return db->count;
}

const ls_peerdb_peer *ls_peerdb_at(const ls_peerdb *db, size_t i)
{
  return i < db->count ? &db->peers[i] : NULL;
}

const ls_msg_game_info *ls_peerdb_game_of(const ls_peerdb_peer *peer, const char *game_id)
{
  for (size_t i = 0; i < peer->games.count; i++)
    if (strcmp(peer->games.games[i].id, game_id) == 0)
      return &peer->games.games[i];
  return NULL;
}

/* ---- refusals ------------------------------------------------------------ */

static ls_peerdb_refusal *find_refusal(const ls_peerdb *db, const char *peer_id,
                                       const char *game_id, const char *version)
{
  for (size_t i = 0; i < db->refusals_count; i++) {
    const ls_peerdb_refusal *r = &db->refusals[i];
    if (strcmp(r->peer_id, peer_id) == 0 && strcmp(r->game_id, game_id) == 0 &&
        strcmp(r->version, version) == 0)
      return (ls_peerdb_refusal *)r;
  }
  return NULL;
}

int ls_peerdb_refuse(ls_peerdb *db, const char *peer_id, const char *game_id,
                     const char *version, int code, const char *error)
{
  const ls_peerdb_peer *p = find(db, peer_id);
  const ls_msg_game_info *g = p ? ls_peerdb_game_of(p, game_id) : NULL;
  if (!g || strcmp(g->version, version) != 0)
    return LS_ENOENT;
  ls_peerdb_refusal r = {.code = code, .game_id = strdup(game_id), .version = strdup(version),
                         .error = strdup(error ? error : "")};
  if (!r.game_id || !r.version || !r.error) {
    clear_refusal(&r);
    return LS_ENOMEM;
  }
  memcpy(r.peer_id, peer_id, sizeof r.peer_id);
  ls_peerdb_refusal *old = find_refusal(db, peer_id, game_id, version);
  if (old) {
    clear_refusal(old);
    *old = r;
    return LS_OK;
  }
  if (db->refusals_count == LS_PEERDB_MAX_REFUSALS) { /* the oldest goes */
    clear_refusal(&db->refusals[0]);
    memmove(db->refusals, db->refusals + 1, (--db->refusals_count) * sizeof db->refusals[0]);
  }
  db->refusals[db->refusals_count++] = r;
  return LS_OK;
}

size_t ls_peerdb_refusal_count(const ls_peerdb *db)
{
  return db->refusals_count;
}

const ls_peerdb_refusal *ls_peerdb_refusal_at(const ls_peerdb *db, size_t i)
{
  return i < db->refusals_count ? &db->refusals[i] : NULL;
}

const ls_msg_game_info *ls_peerdb_offer_of(const ls_peerdb *db, const ls_peerdb_peer *peer,
                                           const char *game_id)
{
  const ls_msg_game_info *g = ls_peerdb_game_of(peer, game_id);
  return g && !find_refusal(db, peer->peer_id, game_id, g->version) ? g : NULL;
}

ls_peerdb_game_view ls_peerdb_view(const ls_peerdb *db, const char *game_id)
{
  ls_peerdb_game_view v = {0};
  for (size_t i = 0; i < db->count; i++) {
    const ls_msg_game_info *g = ls_peerdb_offer_of(db, &db->peers[i], game_id);
    if (!g) {
      v.refused += ls_peerdb_game_of(&db->peers[i], game_id) != NULL;
      continue;
    }
    v.peers++;
    if (!v.latest_version || ls_version_cmp(g->version, v.latest_version) > 0) {
      v.latest_version = g->version;
      v.latest_size = g->size;
    }
  }
  return v;
}

size_t ls_peerdb_peers_with(const ls_peerdb *db, const char *game_id, const char *version,
                            const char **out, size_t max)
{
  size_t n = 0;
  for (size_t i = 0; i < db->count && n < max; i++) {
    const ls_msg_game_info *g = ls_peerdb_offer_of(db, &db->peers[i], game_id);
    if (g && strcmp(g->version, version) == 0)
      out[n++] = db->peers[i].peer_id;
  }
  return n;
}

static int compare_strs(const void *a, const void *b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int ls_peerdb_game_ids(const ls_peerdb *db, const char ***ids, size_t *count)
{
  size_t total = 0;
  for (size_t i = 0; i < db->count; i++)
    total += db->peers[i].games.count;
  const char **all = malloc((total ? total : 1) * sizeof *all);
  if (!all)
    return LS_ENOMEM;
  size_t n = 0;
  for (size_t i = 0; i < db->count; i++)
    for (size_t j = 0; j < db->peers[i].games.count; j++)
      all[n++] = db->peers[i].games.games[j].id;
  if (n > 1)
    qsort(all, n, sizeof *all, compare_strs);
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (k == 0 || strcmp(all[k - 1], all[i]) != 0)
      all[k++] = all[i];
  *ids = all;
  *count = k;
  return LS_OK;
}

static files_entry *find_files(const ls_peerdb *db, const char *peer_id, const char *game_id)
{
  for (size_t i = 0; i < db->files_count; i++)
    if (strcmp(db->files[i].peer_id, peer_id) == 0 &&
        strcmp(db->files[i].msg.game_files.id, game_id) == 0)
      return &db->files[i];
  return NULL;
}

int ls_peerdb_set_files(ls_peerdb *db, const char *peer_id, const ls_msg_game_files *files)
{
  if (!find(db, peer_id))
    return LS_ENOENT;
  ls_msg msg = {.type = LS_MSG_GAME_FILES, .game_files = *files}, copy;
  int rc = ls_msg_copy(&copy, &msg);
  if (rc != LS_OK)
    return rc;
  files_entry *e = find_files(db, peer_id, files->id);
  if (!e) {
    files_entry *all = realloc(db->files, (db->files_count + 1) * sizeof *all);
    if (!all) {
      ls_msg_clear(&copy);
      return LS_ENOMEM;
    }
    db->files = all;
    e = &all[db->files_count++];
    memcpy(e->peer_id, peer_id, sizeof e->peer_id);
  } else {
    ls_msg_clear(&e->msg);
  }
  e->msg = copy;
  return LS_OK;
}

const ls_msg_game_files *ls_peerdb_files(const ls_peerdb *db, const char *peer_id,
                                         const char *game_id)
{
  const files_entry *e = find_files(db, peer_id, game_id);
  return e ? &e->msg.game_files : NULL;
}
