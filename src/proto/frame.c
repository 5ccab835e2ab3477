/* Owns the framing of the wire protocol: frame limits, the length prefix and
 * the incremental frame reader (docs/PROTOCOL.md, "Frames"). */
#include "proto/proto.h"

#include "core/error.h"

#include <stdlib.h>
#include <string.h>

enum reader_state {
  READ_HEADER,
  READ_BODY,
  FRAME_COMPLETE,
  READER_FAILED,
};

/* The first allocation for a body; it then doubles up to the frame length. */
#define BODY_MIN_CAPACITY 4096u

size_t ls_proto_frame_limit(enum ls_msg_dir dir)
{
  return dir == LS_DIR_REQUEST ? LS_PROTO_MAX_REQUEST_FRAME : LS_PROTO_MAX_RESPONSE_FRAME;
}

size_t ls_proto_response_limit(enum ls_msg_type request)
{
  switch (request) {
  case LS_MSG_LIST_GAMES: return LS_PROTO_MAX_GAME_LIST_FRAME;
  case LS_MSG_HELLO:
  case LS_MSG_PING:
  case LS_MSG_GET_GAME_FILE_CHUNK:
  case LS_MSG_GET_GAME_FILE_DATA: return LS_PROTO_MAX_SMALL_FRAME;
  default: return LS_PROTO_MAX_RESPONSE_FRAME;
  }
}

void ls_frame_put_length(uint8_t out[LS_FRAME_HEADER_LEN], uint32_t len)
{
  out[0] = (uint8_t)(len >> 24);
  out[1] = (uint8_t)(len >> 16);
  out[2] = (uint8_t)(len >> 8);
  out[3] = (uint8_t)len;
}

static uint32_t get_length(const uint8_t in[LS_FRAME_HEADER_LEN])
{
  return (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 | in[3];
}

void ls_frame_reader_init(ls_frame_reader *reader, enum ls_msg_dir dir)
{
  memset(reader, 0, sizeof *reader);
  reader->dir = dir;
  reader->limit = ls_proto_frame_limit(dir);
  reader->state = READ_HEADER;
}

void ls_frame_reader_set_limit(ls_frame_reader *reader, size_t limit)
{
  if (limit < reader->limit)
    reader->limit = limit;
}

void ls_frame_reader_free(ls_frame_reader *reader)
{
  if (!reader)
    return;
  free(reader->body);
  size_t limit = reader->limit;
  ls_frame_reader_init(reader, reader->dir);
  reader->limit = limit;
}

static int fail(ls_frame_reader *reader, int err)
{
  reader->state = READER_FAILED;
  reader->error = err;
  return err;
}

static void start_frame(ls_frame_reader *reader)
{
  reader->state = READ_HEADER;
  reader->header_have = 0;
  reader->body_len = 0;
  reader->body_have = 0;
}

/* Checks the length once its 4 bytes are in. */
static int accept_length(ls_frame_reader *reader, ls_diag *diag)
{
  uint32_t len = get_length(reader->header);
  size_t limit = reader->limit;
  if (len == 0)
    return fail(reader, ls_diag_set(diag, LS_EFORMAT, "empty frame"));
  if (len > limit)
    return fail(reader, ls_diag_set(diag, LS_ETOOBIG,
                                    "frame of %lu bytes exceeds the limit of %zu",
                                    (unsigned long)len, limit));
  reader->body_len = len;
  reader->state = READ_BODY;
  return LS_OK;
}

/* Makes room for `need` body bytes: doubling, never beyond the frame. */
static int reserve_body(ls_frame_reader *reader, size_t need, ls_diag *diag)
{
  if (need <= reader->body_cap)
    return LS_OK;
  size_t cap = reader->body_cap ? reader->body_cap * 2 : BODY_MIN_CAPACITY;
  if (cap < need)
    cap = need;
  if (cap > reader->body_len)
    cap = reader->body_len;
  uint8_t *body = realloc(reader->body, cap);
  if (!body)
    return fail(reader, ls_diag_set(diag, LS_ENOMEM, "out of memory"));
  reader->body = body;
  reader->body_cap = cap;
  return LS_OK;
}

static size_t read_header(ls_frame_reader *reader, const uint8_t *data, size_t len)
{
  size_t take = LS_FRAME_HEADER_LEN - reader->header_have;
  if (take > len)
    take = len;
  if (take)
    memcpy(reader->header + reader->header_have, data, take);
  reader->header_have += take;
  return take;
}

static int read_body(ls_frame_reader *reader, const uint8_t *data, size_t len, size_t *used,
                     ls_diag *diag)
{
  size_t take = reader->body_len - reader->body_have;
  if (take > len)
    take = len;
  int rc = reserve_body(reader, reader->body_have + take, diag);
  if (rc)
    return rc;
  if (take)
    memcpy(reader->body + reader->body_have, data, take);
  reader->body_have += take;
  *used = take;
  if (reader->body_have == reader->body_len)
    reader->state = FRAME_COMPLETE;
  return LS_OK;
}

int ls_frame_reader_feed(ls_frame_reader *reader, const void *data, size_t len,
                         size_t *consumed, ls_diag *diag)
{
  const uint8_t *bytes = data;
  size_t used = 0;
  *consumed = 0;
  if (reader->state == READER_FAILED)
    return ls_diag_set(diag, reader->error, "stream already failed");
  if (!bytes && len)
    return ls_diag_set(diag, LS_EINVAL, "no data");
  if (reader->state == FRAME_COMPLETE)
    start_frame(reader);
  if (reader->state == READ_HEADER) {
    used += read_header(reader, bytes, len);
    *consumed = used;
    if (reader->header_have < LS_FRAME_HEADER_LEN)
      return 0;
    int rc = accept_length(reader, diag);
    if (rc)
      return rc;
  }
  size_t body_used = 0;
  int rc = read_body(reader, bytes + used, len - used, &body_used, diag);
  *consumed = used + body_used;
  if (rc)
    return rc;
  return reader->state == FRAME_COMPLETE ? 1 : 0;
}

size_t ls_frame_reader_held(const ls_frame_reader *reader)
{
  return reader->header_have + reader->body_cap;
}

const uint8_t *ls_frame_reader_body(const ls_frame_reader *reader, size_t *len)
{
  if (reader->state != FRAME_COMPLETE) {
    if (len)
      *len = 0;
    return NULL;
  }
  if (len)
    *len = reader->body_len;
  return reader->body;
}

int ls_frame_reader_decode(const ls_frame_reader *reader, ls_msg *out, ls_diag *diag)
{
  size_t len;
  const uint8_t *body = ls_frame_reader_body(reader, &len);
  if (!body) {
    memset(out, 0, sizeof *out);
    return ls_diag_set(diag, LS_ESTATE, "no complete frame");
  }
  return ls_msg_decode(body, len, reader->dir, out, diag);
}

int ls_frame_reader_finish(const ls_frame_reader *reader, ls_diag *diag)
{
  switch (reader->state) {
  case READER_FAILED:
    return ls_diag_set(diag, reader->error, "stream already failed");
  case FRAME_COMPLETE:
    return LS_OK;
  case READ_HEADER:
    if (reader->header_have == 0)
      return LS_OK;
    break;
  default:
    break;
  }
  return ls_diag_set(diag, LS_EPROTO, "truncated frame");
}
