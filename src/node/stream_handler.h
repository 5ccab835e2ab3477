/* Who handles a QUIC stream: the request server (a peer opened the stream)
 * or a request client (we opened it). Each stream's user data points at an
 * ls_stream_handler, the first member of that side's per-stream state, so
 * one set of endpoint callbacks can route every stream to its owner. */
#ifndef LS_NODE_STREAM_HANDLER_H
#define LS_NODE_STREAM_HANDLER_H

#include "net/quic.h"

typedef struct ls_stream_handler ls_stream_handler;
struct ls_stream_handler {
  void (*on_data)(ls_stream_handler *h, ls_quic_stream *s, const uint8_t *data, size_t len,
                  int fin);
  /* Last call for this stream: the handler may free itself. */
  void (*on_closed)(ls_stream_handler *h, ls_quic_stream *s, int err);
};

#endif
