/* Owns one client request's stream state (node/request.h). The struct
 * lives until its stream closes, which may be after on_done. */
#include "node/request.h"

#include "core/error.h"
#include "node/stream_handler.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define APP_ERR_CANCEL 0x20

struct ls_request {
  ls_stream_handler handler; /* first: the stream's user data */
  ls_quic_stream *stream;
  ls_request_callbacks cb;
  void *user;
  ls_frame_reader reader;
  bool have_header, file_data, done;
  uint64_t expect, got; /* FileData bytes announced and received */
};

static void finish(ls_request *r, int err, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));

static void finish(ls_request *r, int err, const char *fmt, ...)
{
  if (r->done)
    return;
  r->done = true;
  char text[LS_DIAG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  ls_quic_stream *stream = r->stream;
  r->cb.on_done(r, err, text, r->user);
  if (err != LS_OK && stream)
    ls_quic_stream_reset(stream, APP_ERR_CANCEL); /* last: may free r */
}

/* Raw bytes after a FileData header. */
static void take_bytes(ls_request *r, const uint8_t *data, size_t len)
{
  if (len > r->expect - r->got) {
    finish(r, LS_EPROTO, "more file bytes than the %llu announced",
           (unsigned long long)r->expect);
    return;
  }
  r->got += len;
  if (len && r->cb.on_bytes && r->cb.on_bytes(r, data, len, r->user) && r->stream)
    ls_quic_stream_read_stop(r->stream);
}

/* The response frame is complete: decode and deliver it. */
static bool take_header(ls_request *r)
{
  ls_msg msg;
  ls_diag diag;
  if (ls_frame_reader_decode(&r->reader, &msg, &diag) != LS_OK) {
    finish(r, LS_EPROTO, "malformed response: %s", diag.text);
    return false;
  }
  r->have_header = true;
  r->file_data = msg.type == LS_MSG_FILE_DATA;
  r->expect = r->file_data ? msg.range.length : 0;
  r->cb.on_response(r, &msg, r->user);
  ls_msg_clear(&msg);
  return !r->done;
}

static void on_data(ls_stream_handler *h, ls_quic_stream *s, const uint8_t *data, size_t len,
                    int fin)
{
  ls_request *r = (ls_request *)h;
  (void)s;
  if (r->done)
    return;
  if (!r->have_header) {
    size_t used = 0;
    ls_diag diag;
    int rc = ls_frame_reader_feed(&r->reader, data, len, &used, &diag);
    if (rc < 0) {
      finish(r, LS_EPROTO, "malformed response: %s", diag.text);
      return;
    }
    if (rc == 1 && !take_header(r))
      return;
    data += used;
    len -= used;
  }
  if (r->have_header && r->file_data)
    take_bytes(r, data, len);
  else if (r->have_header && len > 0)
    finish(r, LS_EPROTO, "bytes after the response frame");
  if (r->done || !fin)
    return;
  if (!r->have_header)
    finish(r, LS_EPROTO, "stream ended before the response frame");
  else if (r->got != r->expect)
    finish(r, LS_EPROTO, "stream ended after %llu of %llu file bytes",
           (unsigned long long)r->got, (unsigned long long)r->expect);
  else
    finish(r, LS_OK, "ok");
}

static void on_closed(ls_stream_handler *h, ls_quic_stream *s, int err)
{
  ls_request *r = (ls_request *)h;
  (void)s;
  r->stream = NULL;
  if (err == LS_ECANCELED)
    finish(r, LS_ECANCELED, "request cancelled or refused by the peer");
  else
    finish(r, err ? err : LS_EPROTO, "stream closed before the response was complete");
  ls_frame_reader_free(&r->reader);
  free(r);
}

static void release_frame(void *frame)
{
  free(frame);
}

int ls_request_start(ls_quic_conn *conn, const ls_msg *msg, const ls_request_callbacks *cb,
                     void *user, ls_request **out, ls_diag *diag)
{
  if (ls_msg_type_dir(msg->type) != LS_DIR_REQUEST)
    return ls_diag_set(diag, LS_EINVAL, "%s is not a request", ls_msg_type_name(msg->type));
  uint8_t *frame;
  size_t len;
  int rc = ls_msg_encode_frame(msg, &frame, &len, diag);
  if (rc != LS_OK)
    return rc == LS_ENOMEM ? rc : LS_EINVAL;
  ls_request *r = calloc(1, sizeof *r);
  if (!r) {
    free(frame);
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  }
  rc = ls_quic_open_stream(conn, &r->stream);
  if (rc != LS_OK) {
    free(frame);
    free(r);
    return ls_diag_set(diag, rc, "cannot open a stream: %s", ls_strerror(rc));
  }
  r->handler.on_data = on_data;
  r->handler.on_closed = on_closed;
  r->cb = *cb;
  r->user = user;
  ls_frame_reader_init(&r->reader, LS_DIR_RESPONSE);
  ls_frame_reader_set_limit(&r->reader, ls_proto_response_limit(msg->type));
  ls_quic_stream_set_user(r->stream, &r->handler);
  ls_quic_stream_write(r->stream, frame, len, 1, release_frame, frame);
  *out = r;
  return LS_OK;
}

void ls_request_cancel(ls_request *r)
{
  if (!r->done && r->stream)
    ls_quic_stream_reset(r->stream, APP_ERR_CANCEL);
}

void ls_request_pause(ls_request *r)
{
  if (r->stream)
    ls_quic_stream_read_stop(r->stream);
}

void ls_request_resume(ls_request *r)
{
  if (r->stream)
    ls_quic_stream_read_start(r->stream);
}
