/* Owns the libFuzzer target of the wire protocol codec (src/proto).
 *
 * The input is a byte stream. It is decoded as one frame body in both
 * directions, and read as a stream of frames by ls_frame_reader in both
 * directions, fed all at once, one byte at a time and in odd-sized pieces
 * (the three readings must agree). Every message that decodes is encoded
 * again and must decode to an equal message with byte-identical encoding.
 * Every refusal must carry a reason that is encodable as InvalidRequest.
 *
 * tests/unit/test_proto.c includes this file (with FUZZ_CHECK mapped to a
 * cmocka assertion) to replay the seed corpus in ordinary builds. */
#include "fuzz_util.h"

#include "proto/proto.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A refusal's reason goes back to the peer: printable ASCII, encodable. */
static void check_reason(int rc, const ls_diag *diag)
{
  FUZZ_CHECK(rc == LS_EFORMAT || rc == LS_ETOOBIG || rc == LS_EPROTO || rc == LS_ENOMEM);
  FUZZ_CHECK(diag->text[0] != '\0');
  for (const char *p = diag->text; *p; p++)
    FUZZ_CHECK(*p >= 0x20 && *p < 0x7f);
  ls_msg reply = {.type = LS_MSG_INVALID_REQUEST, .invalid = {.reason = (char *)diag->text}};
  char *json;
  size_t len;
  ls_diag ignored;
  FUZZ_CHECK(ls_msg_encode(&reply, &json, &len, &ignored) == LS_OK);
  free(json);
}

/* The framed encoding read back through a frame reader. */
static void check_frame_round_trip(const ls_msg *msg, const char *json, size_t json_len)
{
  uint8_t *frame;
  size_t len, used;
  ls_diag diag;
  FUZZ_CHECK(ls_msg_encode_frame(msg, &frame, &len, &diag) == LS_OK);
  FUZZ_CHECK(len == json_len + LS_FRAME_HEADER_LEN);
  FUZZ_CHECK(memcmp(frame + LS_FRAME_HEADER_LEN, json, json_len) == 0);
  ls_frame_reader reader;
  ls_frame_reader_init(&reader, ls_msg_type_dir(msg->type));
  FUZZ_CHECK(ls_frame_reader_feed(&reader, frame, len, &used, &diag) == 1);
  FUZZ_CHECK(used == len);
  ls_msg again;
  FUZZ_CHECK(ls_frame_reader_decode(&reader, &again, &diag) == LS_OK);
  FUZZ_CHECK(ls_msg_equal(msg, &again));
  ls_msg_clear(&again);
  ls_frame_reader_free(&reader);
  free(frame);
}

/* Encode, decode: an equal message whose encoding is the same bytes. */
static void check_round_trip(const ls_msg *msg)
{
  char *json, *json2;
  size_t len, len2;
  ls_diag diag;
  FUZZ_CHECK(ls_msg_encode(msg, &json, &len, &diag) == LS_OK);
  FUZZ_CHECK(strlen(json) == len);
  ls_msg again;
  FUZZ_CHECK(ls_msg_decode(json, len, ls_msg_type_dir(msg->type), &again, &diag) == LS_OK);
  FUZZ_CHECK(ls_msg_equal(msg, &again));
  FUZZ_CHECK(ls_msg_encode(&again, &json2, &len2, &diag) == LS_OK);
  FUZZ_CHECK(len2 == len && memcmp(json, json2, len) == 0);
  check_frame_round_trip(&again, json, len);
  ls_msg_clear(&again);
  free(json);
  free(json2);
}

static void decode_body(const uint8_t *body, size_t len, enum ls_msg_dir dir)
{
  ls_msg msg;
  ls_diag diag = {{0}};
  int rc = ls_msg_decode(body, len, dir, &msg, &diag);
  if (rc == LS_OK) {
    FUZZ_CHECK(ls_msg_type_dir(msg.type) == dir);
    FUZZ_CHECK(ls_msg_type_name(msg.type) != NULL);
    check_round_trip(&msg);
  } else {
    FUZZ_CHECK(msg.type == LS_MSG_NONE);
    check_reason(rc, &diag);
  }
  ls_msg_clear(&msg);
}

/* What reading a stream produced, to compare readings with different piece
 * sizes. */
typedef struct transcript {
  size_t frames;
  uint64_t ends_hash; /* of the stream offsets where frames ended */
  int error;          /* the reader's error, 0 if none */
  size_t stop;        /* bytes consumed in all */
  int finish;         /* ls_frame_reader_finish at the end */
} transcript;

static void on_frame(const ls_frame_reader *reader, const uint8_t *stream, size_t end,
                     bool decode, transcript *t)
{
  size_t len;
  const uint8_t *body = ls_frame_reader_body(reader, &len);
  FUZZ_CHECK(body && len >= 1 && len <= ls_proto_frame_limit(reader->dir));
  FUZZ_CHECK(end >= len + LS_FRAME_HEADER_LEN);
  FUZZ_CHECK(memcmp(body, stream + end - len, len) == 0);
  t->frames++;
  t->ends_hash = t->ends_hash * 1000003u + end;
  if (decode)
    decode_body(body, len, reader->dir);
}

/* Feeds the stream in pieces of `step` bytes (0: all at once). */
static void read_stream(const uint8_t *data, size_t size, enum ls_msg_dir dir, size_t step,
                        bool decode, transcript *t)
{
  ls_frame_reader reader;
  ls_frame_reader_init(&reader, dir);
  memset(t, 0, sizeof *t);
  size_t pos = 0;
  ls_diag diag;
  while (pos < size) {
    size_t n = step && step < size - pos ? step : size - pos;
    size_t used;
    int rc = ls_frame_reader_feed(&reader, data + pos, n, &used, &diag);
    FUZZ_CHECK(used <= n);
    pos += used;
    if (rc < 0) {
      FUZZ_CHECK(rc == LS_EFORMAT || rc == LS_ETOOBIG);
      check_reason(rc, &diag);
      t->error = rc;
      break;
    }
    FUZZ_CHECK(rc == 1 || used == n);
    if (rc == 1)
      on_frame(&reader, data, pos, decode, t);
  }
  t->stop = pos;
  t->finish = ls_frame_reader_finish(&reader, &diag);
  ls_frame_reader_free(&reader);
}

static bool transcript_equal(const transcript *a, const transcript *b)
{
  return a->frames == b->frames && a->ends_hash == b->ends_hash && a->error == b->error &&
         a->stop == b->stop && a->finish == b->finish;
}

static void check_streams(const uint8_t *data, size_t size, enum ls_msg_dir dir)
{
  transcript whole, bytewise, pieces;
  read_stream(data, size, dir, 0, true, &whole);
  read_stream(data, size, dir, 1, false, &bytewise);
  read_stream(data, size, dir, size % 13 + 2, false, &pieces);
  FUZZ_CHECK(transcript_equal(&whole, &bytewise));
  FUZZ_CHECK(transcript_equal(&whole, &pieces));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  decode_body(data, size, LS_DIR_REQUEST);
  decode_body(data, size, LS_DIR_RESPONSE);
  check_streams(data, size, LS_DIR_REQUEST);
  check_streams(data, size, LS_DIR_RESPONSE);
  return 0;
}
