/* Owns GetGame / FetchLatestFromPeers: asking every connected peer that
 * advertises a game's latest version for its file list (with chunk hashes),
 * keeping each peer's list in PeerGameDB, and reporting one merged list as
 * the game-files event. Peers whose list differs from the first one that
 * arrived keep their list in PeerGameDB but are not counted as sources. */
#include "peer/runtime.h"

#include "node/request.h"

#include <stdlib.h>
#include <string.h>

#define MAX_SOURCES 64

typedef struct get_op get_op;
struct get_op {
  get_op *next;
  ls_peer *peer;
  uint64_t tag;
  const char *cmd;        /* "get" or "fetch-latest" */
  char *id, *version;
  unsigned pending, agreeing;
  ls_msg manifest;        /* the first GameFiles of the latest version */
  bool closed;            /* the runtime is closing: nothing more to report */
  bool then_download;     /* a download waits for this list */
};

typedef struct get_req {
  get_op *op;
  char peer_id[LS_PROTO_PEER_ID_LEN + 1];
} get_req;

static void finish(get_op *op);

static void unlink_op(get_op *op)
{
  for (get_op **q = &op->peer->gets; *q; q = &(*q)->next)
    if (*q == op) {
      *q = op->next;
      return;
    }
}

static void free_op(get_op *op)
{
  ls_msg_clear(&op->manifest);
  free(op->id);
  free(op->version);
  free(op);
}

static void copy_manifest(get_op *op, const ls_msg *msg)
{
  char *json;
  size_t len;
  if (ls_msg_encode(msg, &json, &len, NULL) == LS_OK) {
    ls_msg_decode(json, len, LS_DIR_RESPONSE, &op->manifest, NULL);
    free(json);
  }
}

static void on_files(ls_request *req, const ls_msg *msg, void *user)
{
  get_req *r = user;
  get_op *op = r->op;
  (void)req;
  if (op->closed || msg->type != LS_MSG_GAME_FILES ||
      strcmp(msg->game_files.version, op->version) != 0)
    return;
  ls_peerdb_set_files(op->peer->peerdb, r->peer_id, &msg->game_files);
  if (op->manifest.type == LS_MSG_NONE)
    copy_manifest(op, msg);
  if (op->manifest.type != LS_MSG_NONE && ls_msg_equal(&op->manifest, msg))
    op->agreeing++;
  else
    ls_rt_log("peer %.16s lists %s %s differently from the others", r->peer_id, op->id,
              op->version);
}

static void on_files_done(ls_request *req, int err, const char *diag, void *user)
{
  get_req *r = user;
  get_op *op = r->op;
  (void)req;
  if (err != LS_OK && !op->closed)
    ls_rt_log("file list of %s from peer %.16s failed: %s", op->id, r->peer_id, diag);
  free(r);
  if (--op->pending == 0)
    finish(op);
}

static json_t *files_json(const ls_msg_game_files *gf)
{
  json_t *files = json_array();
  for (size_t i = 0; i < gf->file_count; i++)
    json_array_append_new(files, json_pack("{s:s, s:I}", "path", gf->files[i].path, "size",
                                           (json_int_t)gf->files[i].size));
  return files;
}

static void finish(get_op *op)
{
  ls_peer *p = op->peer;
  if (op->closed) {
    free_op(op);
    return;
  }
  unlink_op(op);
  if (op->manifest.type == LS_MSG_GAME_FILES) {
    const ls_msg_game_files *gf = &op->manifest.game_files;
    ls_rt_emit(p, json_pack("{s:s, s:s, s:s, s:o}", "type", "game-files", "id", op->id,
                            "version", gf->version, "files", files_json(gf)));
  }
  if (op->then_download && op->manifest.type == LS_MSG_GAME_FILES) {
    ls_command cmd = {.type = LS_CMD_DOWNLOAD_GAME_FILES, .id = op->id, .tag = op->tag};
    ls_downloads_start(p, &cmd);
  } else if (op->manifest.type == LS_MSG_GAME_FILES) {
    const ls_msg_game_files *gf = &op->manifest.game_files;
    ls_rt_reply_ok(p, op->tag, op->cmd,
                   json_pack("{s:s, s:s, s:I, s:I}", "id", op->id, "version", gf->version,
                             "files", (json_int_t)gf->file_count, "peers",
                             (json_int_t)op->agreeing));
  } else {
    ls_rt_reply_error(p, op->tag, op->cmd, "no peer sent the file list of %s %s", op->id,
                      op->version);
  }
  free_op(op);
}

static unsigned ask_sources(get_op *op)
{
  const char *ids[MAX_SOURCES];
  size_t n = ls_peerdb_peers_with(op->peer->peerdb, op->id, op->version, ids, MAX_SOURCES);
  static const ls_request_callbacks cb = {on_files, NULL, on_files_done};
  ls_msg msg = {.type = LS_MSG_GET_GAME};
  msg.game.id = op->id;
  unsigned asked = 0;
  for (size_t i = 0; i < n; i++) {
    ls_quic_conn *conn = ls_links_conn_of(op->peer, ids[i]);
    get_req *r = conn ? calloc(1, sizeof *r) : NULL;
    ls_request *req;
    if (!r)
      continue;
    r->op = op;
    memcpy(r->peer_id, ids[i], sizeof r->peer_id);
    if (ls_request_start(conn, &msg, &cb, r, &req, NULL) == LS_OK)
      asked++;
    else
      free(r);
  }
  return asked;
}

static void start_get(ls_peer *p, const ls_command *cmd, bool then_download);

void ls_gets_start(ls_peer *p, const ls_command *cmd)
{
  start_get(p, cmd, false);
}

void ls_gets_then_download(ls_peer *p, const ls_command *cmd)
{
  start_get(p, cmd, true);
}

static void start_get(ls_peer *p, const ls_command *cmd, bool then_download)
{
  const char *name = then_download ? "download"
                     : cmd->type == LS_CMD_FETCH_LATEST ? "fetch-latest" : "get";
  if (!cmd->id || !ls_catalog_find(p->catalog, cmd->id)) {
    ls_rt_reply_error(p, cmd->tag, name, "'%s' is not a game of the catalog",
                      cmd->id ? cmd->id : "");
    return;
  }
  ls_peerdb_game_view view = ls_peerdb_view(p->peerdb, cmd->id);
  if (!view.latest_version) {
    ls_rt_reply_error(p, cmd->tag, name, "no connected peer has %s", cmd->id);
    return;
  }
  get_op *op = calloc(1, sizeof *op);
  if (!op || !(op->id = strdup(cmd->id)) || !(op->version = strdup(view.latest_version))) {
    if (op)
      free_op(op);
    ls_rt_reply_error(p, cmd->tag, name, "out of memory");
    return;
  }
  op->peer = p;
  op->tag = cmd->tag;
  op->cmd = name;
  op->then_download = then_download;
  op->next = p->gets;
  p->gets = op;
  op->pending = 1; /* held while asking, so no early finish */
  op->pending += ask_sources(op);
  if (--op->pending == 0)
    finish(op);
}

void ls_gets_close_all(ls_peer *p)
{
  while (p->gets) {
    get_op *op = p->gets;
    p->gets = op->next;
    op->closed = true; /* freed by its last request's end */
  }
}
