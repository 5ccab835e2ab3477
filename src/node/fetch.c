/* Owns one chunk request on behalf of the download engine (node/fetch.h):
 * the state that lives until the request ends, which may be after the
 * engine stopped wanting it. */
#include "node/fetch.h"

#include "node/request.h"

#include <stdlib.h>

typedef struct chunk_req {
  ls_fetch *fetch;   /* NULL once the engine stopped it */
  ls_request *req;
  uint64_t length;
  bool is_data;      /* the answer is FileData of that length */
} chunk_req;

static void on_response(ls_request *req, const ls_msg *msg, void *user)
{
  chunk_req *r = user;
  (void)req;
  r->is_data = msg->type == LS_MSG_FILE_DATA && msg->range.length == r->length;
}

static int on_bytes(ls_request *req, const uint8_t *data, size_t len, void *user)
{
  chunk_req *r = user;
  (void)req;
  if (r->fetch && ls_fetch_data(r->fetch, data, len) != LS_OK)
    r->fetch = NULL; /* stopped: ls_chunk_fetch_stop cancelled the request */
  return 0;
}

static void on_done(ls_request *req, int err, const char *diag, void *user)
{
  chunk_req *r = user;
  (void)req;
  ls_fetch *f = r->fetch;
  bool wrong = err == LS_OK && !r->is_data;
  free(r);
  if (f)
    ls_fetch_done(f, wrong ? LS_EPROTO : err, wrong ? "wrong answer to a chunk request" : diag);
}

int ls_chunk_fetch_start(ls_quic_conn *conn, const char *game_id, ls_fetch *fetch,
                         const ls_fetch_request *fr, void **handle, ls_diag *diag)
{
  static const ls_request_callbacks cb = {on_response, on_bytes, on_done};
  chunk_req *r = calloc(1, sizeof *r);
  if (!r)
    return LS_EBUSY; /* out of memory now: try again later */
  r->fetch = fetch;
  r->length = fr->length;
  ls_msg msg = {.type = LS_MSG_GET_GAME_FILE_CHUNK};
  msg.range = (ls_msg_file_range){(char *)game_id, (char *)fr->path, fr->offset, fr->length};
  int rc = ls_request_start(conn, &msg, &cb, r, &r->req, diag);
  if (rc != LS_OK) {
    free(r);
    return rc == LS_EBUSY || rc == LS_ENOMEM ? LS_EBUSY : rc;
  }
  *handle = r;
  return LS_OK;
}

void ls_chunk_fetch_stop(void *handle)
{
  chunk_req *r = handle;
  r->fetch = NULL;
  ls_request_cancel(r->req); /* its end frees r */
}
