/* The request client: one request on a new stream of a ready connection,
 * its response frame, and for FileData the raw bytes that follow
 * (docs/PROTOCOL.md). Loop thread only. */
#ifndef LS_NODE_REQUEST_H
#define LS_NODE_REQUEST_H

#include "net/quic.h"
#include "proto/proto.h"

typedef struct ls_request ls_request;

typedef struct ls_request_callbacks {
  /* The response frame, decoded (valid during the call). */
  void (*on_response)(ls_request *req, const ls_msg *msg, void *user);
  /* FileData only: the raw bytes after the header, in order. Return
   * non-zero to pause reading (backpressure); ls_request_resume restarts. */
  int (*on_bytes)(ls_request *req, const uint8_t *data, size_t len, void *user);
  /* Last call. err 0: the response, and for FileData exactly `length`
   * bytes, arrived. Else LS_EPROTO (malformed, early end, extra bytes),
   * LS_ECANCELED (ls_request_cancel or reset by the peer), LS_EIO
   * (connection lost); diag says what in one sentence. */
  void (*on_done)(ls_request *req, int err, const char *diag, void *user);
} ls_request_callbacks;

/* Opens a stream, sends msg (a request) and FIN. LS_EBUSY when the peer's
 * stream budget is spent (retry after on_streams_available), LS_ESTATE when
 * the connection is not ready, LS_EINVAL when msg is not a valid request. */
int ls_request_start(ls_quic_conn *conn, const ls_msg *msg, const ls_request_callbacks *cb,
                     void *user, ls_request **out, ls_diag *diag);
/* Resets the stream; on_done(LS_ECANCELED) follows unless done already. */
void ls_request_cancel(ls_request *req);
void ls_request_pause(ls_request *req);
void ls_request_resume(ls_request *req);

#endif
