/* Owns file listings and the GetGame / FetchLatestFromPeers commands. A
 * listing asks every connected peer that offers a game's latest version
 * for its file list (with chunk hashes), keeps each peer's list in
 * PeerGameDB, and reports the first list that arrived as the game-files
 * event; peers whose list differs keep it in PeerGameDB but do not count as
 * agreeing. A list that is not the one the catalog pins for its version
 * (download/pin.h) is refused before anything keeps it: not stored, never
 * a source, a game-manifest-refused event says so, and PeerGameDB records
 * the refusal, so that peer no longer offers the version (peerdb.h says
 * for how long) and the games view is sent again. Downloads start with a
 * listing too (downloads.c). */
#include "peer/runtime.h"

#include "download/pin.h"
#include "node/request.h"

#include <stdlib.h>
#include <string.h>

#define MAX_ASKED 64

struct ls_listing {
  ls_listing *next;
  ls_peer *peer;
  char *id, *version;
  unsigned pending, agreeing;
  ls_msg manifest;        /* the first GameFiles of the version */
  unsigned refused;       /* lists refused by the catalog's pin */
  char refusal[LS_DIAG_MAX]; /* the last refusal's sentence */
  bool abandoned;         /* nothing more to report; freed by the last request */
  ls_listing_done done;
  void *user;
};

typedef struct list_req {
  ls_listing *l;
  char peer_id[LS_PROTO_PEER_ID_LEN + 1];
} list_req;

static void unlink_listing(ls_listing *l)
{
  for (ls_listing **q = &l->peer->listings; *q; q = &(*q)->next)
    if (*q == l) {
      *q = l->next;
      return;
    }
}

static void free_listing(ls_listing *l)
{
  ls_msg_clear(&l->manifest);
  free(l->id);
  free(l->version);
  free(l);
}

static json_t *files_json(const ls_msg_game_files *gf)
{
  json_t *files = json_array();
  for (size_t i = 0; i < gf->file_count; i++)
    json_array_append_new(files, json_pack("{s:s, s:I}", "path", gf->files[i].path, "size",
                                           (json_int_t)gf->files[i].size));
  return files;
}

static void finish(ls_listing *l)
{
  if (l->abandoned) {
    free_listing(l);
    return;
  }
  unlink_listing(l);
  bool have = l->manifest.type == LS_MSG_GAME_FILES;
  if (have) {
    const ls_msg_game_files *gf = &l->manifest.game_files;
    ls_rt_emit_game(l->peer, LS_EVENT_GAME_FILES, l->id,
                    json_pack("{s:s, s:o}", "version", gf->version, "files", files_json(gf)));
  }
  l->done(l->user, l->version, have ? &l->manifest : NULL, l->agreeing,
          l->refused ? l->refusal : NULL);
  free_listing(l);
}

/* False (said in an event) when the catalog pins the version and this
 * peer's list is another one. */
static bool pin_allows(ls_listing *l, const char *peer_id, const ls_msg_game_files *gf)
{
  const ls_peerdb_peer *peer = ls_peerdb_find(l->peer->peerdb, peer_id);
  ls_diag diag;
  int rc = ls_pin_check(ls_catalog_find(l->peer->catalog, l->id), gf, peer_id,
                        peer ? peer->name : NULL, &diag);
  if (rc == LS_OK)
    return true;
  l->refused++;
  snprintf(l->refusal, sizeof l->refusal, "%s", diag.text);
  ls_rt_log("%s", diag.text);
  json_t *fields = json_pack("{s:s, s:s, s:s?, s:s}", "version", gf->version, "peer_id",
                             peer_id, "peer_name", peer ? peer->name : NULL, "error", diag.text);
  ls_rt_emit_game_code(l->peer, LS_EVENT_MANIFEST_REFUSED, l->id, rc, fields);
  if (rc != LS_ENOMEM &&
      ls_peerdb_refuse(l->peer->peerdb, peer_id, l->id, gf->version, rc, diag.text) == LS_OK)
    ls_rt_emit_games(l->peer, json_pack("[s]", l->id)); /* it offers that version no more */
  return false;
}

static void on_files(ls_request *req, const ls_msg *msg, void *user)
{
  list_req *r = user;
  ls_listing *l = r->l;
  (void)req;
  if (l->abandoned || msg->type != LS_MSG_GAME_FILES ||
      strcmp(msg->game_files.version, l->version) != 0 ||
      !pin_allows(l, r->peer_id, &msg->game_files))
    return;
  ls_peerdb_set_files(l->peer->peerdb, r->peer_id, &msg->game_files);
  if (l->manifest.type == LS_MSG_NONE && ls_msg_copy(&l->manifest, msg) != LS_OK)
    return;
  if (ls_msg_equal(&l->manifest, msg))
    l->agreeing++;
  else
    ls_rt_log("peer %.16s lists %s %s differently from the others", r->peer_id, l->id,
              l->version);
}

static void on_files_done(ls_request *req, int err, const char *diag, void *user)
{
  list_req *r = user;
  ls_listing *l = r->l;
  (void)req;
  if (err != LS_OK && !l->abandoned)
    ls_rt_log("file list of %s from peer %.16s failed: %s", l->id, r->peer_id, diag);
  free(r);
  if (--l->pending == 0)
    finish(l);
}

static unsigned ask_peers(ls_listing *l)
{
  const char *ids[MAX_ASKED];
  size_t n = ls_peerdb_peers_with(l->peer->peerdb, l->id, l->version, ids, MAX_ASKED);
  static const ls_request_callbacks cb = {on_files, NULL, on_files_done};
  ls_msg msg = {.type = LS_MSG_GET_GAME};
  msg.game.id = l->id;
  unsigned asked = 0;
  for (size_t i = 0; i < n; i++) {
    ls_quic_conn *conn = ls_links_conn_of(l->peer, ids[i]);
    list_req *r = conn ? calloc(1, sizeof *r) : NULL;
    ls_request *req;
    if (!r)
      continue;
    r->l = l;
    memcpy(r->peer_id, ids[i], sizeof r->peer_id);
    if (ls_request_start(conn, &msg, &cb, r, &req, NULL) == LS_OK)
      asked++;
    else
      free(r);
  }
  return asked;
}

int ls_listing_start(ls_peer *p, const char *id, const char *version, ls_listing_done done,
                     void *user, ls_listing **out)
{
  ls_listing *l = calloc(1, sizeof *l);
  if (!l || !(l->id = strdup(id)) || !(l->version = strdup(version))) {
    if (l)
      free_listing(l);
    return LS_ENOMEM;
  }
  l->peer = p;
  l->done = done;
  l->user = user;
  l->next = p->listings;
  p->listings = l;
  if (out)
    *out = l;
  l->pending = 1; /* held while asking, so no early finish */
  l->pending += ask_peers(l);
  if (--l->pending == 0)
    finish(l);
  return LS_OK;
}

void ls_listing_abandon(ls_listing *l)
{
  unlink_listing(l);
  l->abandoned = true; /* freed by its last request's end */
}

void ls_gets_close_all(ls_peer *p)
{
  while (p->listings)
    ls_listing_abandon(p->listings);
  for (ls_op *op = p->ops, *next; op; op = next) {
    next = op->next;
    if (op->kind == LS_OP_GET)
      ls_ops_end(p, op); /* its listing will not answer */
  }
}

/* ---- the get and fetch-latest commands ---------------------------------- */

static void get_done(void *user, const char *version, const ls_msg *manifest,
                     unsigned agreeing, const char *refusal)
{
  ls_op *op = user;
  ls_peer *p = op->peer;
  if (manifest) {
    const ls_msg_game_files *gf = &manifest->game_files;
    ls_rt_reply_ok(p, op->tag, op->cmd,
                   json_pack("{s:s, s:s, s:I, s:I}", "id", op->id, "version", gf->version,
                             "files", (json_int_t)gf->file_count, "peers",
                             (json_int_t)agreeing));
  } else if (refusal) {
    ls_rt_reply_error(p, op->tag, op->cmd, LS_EPIN, "%s", refusal);
  } else {
    ls_rt_reply_error(p, op->tag, op->cmd, LS_ENOPEER, "no peer sent the file list of %s %s",
                      op->id, version);
  }
  ls_ops_end(p, op);
}

const char *ls_gets_latest_or_reply(ls_peer *p, uint64_t tag, const char *cmd, const char *id)
{
  ls_peerdb_game_view view = ls_peerdb_view(p->peerdb, id);
  if (view.latest_version)
    return view.latest_version;
  for (size_t i = 0; view.refused && i < ls_peerdb_refusal_count(p->peerdb); i++) {
    const ls_peerdb_refusal *r = ls_peerdb_refusal_at(p->peerdb, i);
    if (strcmp(r->game_id, id) == 0) {
      ls_rt_reply_error(p, tag, cmd, r->code, "%s", r->error);
      return NULL;
    }
  }
  ls_rt_reply_error(p, tag, cmd, LS_ENOPEER, "no connected peer has %s", id);
  return NULL;
}

void ls_gets_run(ls_peer *p, const ls_command *cmd)
{
  const char *name = cmd->type == LS_CMD_FETCH_LATEST ? "fetch-latest" : "get";
  if (ls_ops_admit(p, LS_OP_GET, name, cmd->id, cmd->tag, true) != LS_OK)
    return;
  const char *latest = ls_gets_latest_or_reply(p, cmd->tag, name, cmd->id);
  if (!latest)
    return;
  ls_op *op = ls_ops_begin(p, LS_OP_GET, name, cmd->id, cmd->tag);
  if (!op || ls_listing_start(p, cmd->id, latest, get_done, op, NULL) != LS_OK) {
    if (op)
      ls_ops_end(p, op);
    ls_rt_reply_error(p, cmd->tag, name, LS_ENOMEM, "out of memory");
  }
}
