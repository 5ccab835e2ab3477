/* Owns the unit tests of the wire protocol codec (src/proto): the exact wire
 * form and round trip of every message, every refusal of the decoder and the
 * encoder, the frame reader, and the replay of the fuzz seed corpus. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testrun.h"

/* The fuzz target's oracle, with its checks as cmocka assertions. */
#define FUZZ_CHECK(cond) assert_true(cond)
#include "../fuzz/fuzz_proto.c"

#include "testutil.h"

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PEER_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define PEER_B "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define HASH_1 "42c3257e73566a238e506222250a432496a0bf49dcb7467a29b362353e2ccc54"
#define HASH_2 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

/* One valid message of each type, in the exact form the encoder writes. */
typedef struct sample {
  enum ls_msg_type type;
  enum ls_msg_dir dir;
  const char *json;
} sample;

static const sample SAMPLES[] = {
  {LS_MSG_HELLO, LS_DIR_REQUEST,
   "{\"type\":\"Hello\",\"protocol_version\":1,\"peer_id\":\"" PEER_A "\",\"name\":\"alice-pc\"}"},
  {LS_MSG_PING, LS_DIR_REQUEST, "{\"type\":\"Ping\"}"},
  {LS_MSG_LIST_GAMES, LS_DIR_REQUEST, "{\"type\":\"ListGames\"}"},
  {LS_MSG_GET_GAME, LS_DIR_REQUEST, "{\"type\":\"GetGame\",\"id\":\"quake3\"}"},
  {LS_MSG_GET_GAME_FILE_DATA, LS_DIR_REQUEST,
   "{\"type\":\"GetGameFileData\",\"id\":\"quake3\",\"path\":\"version.ini\"}"},
  {LS_MSG_GET_GAME_FILE_CHUNK, LS_DIR_REQUEST,
   "{\"type\":\"GetGameFileChunk\",\"id\":\"quake3\",\"path\":\"data/q3.eti\","
   "\"offset\":1048576,\"length\":1048576}"},
  {LS_MSG_HELLO_ACK, LS_DIR_RESPONSE,
   "{\"type\":\"HelloAck\",\"protocol_version\":1,\"peer_id\":\"" PEER_B "\",\"name\":\"bob\"}"},
  {LS_MSG_PONG, LS_DIR_RESPONSE, "{\"type\":\"Pong\"}"},
  {LS_MSG_GAME_LIST, LS_DIR_RESPONSE,
   "{\"type\":\"GameList\",\"games\":[{\"id\":\"quake3\",\"name\":\"Quake III Arena\","
   "\"version\":\"20240115\",\"size\":2097161},{\"id\":\"ut2004\",\"name\":\"Unreal "
   "Tournament 2004\",\"version\":\"3369.3\",\"size\":0}]}"},
  {LS_MSG_GAME_FILES, LS_DIR_RESPONSE,
   "{\"type\":\"GameFiles\",\"id\":\"quake3\",\"version\":\"20240115\",\"chunk_size\":1048576,"
   "\"files\":[{\"path\":\"data/q3.eti\",\"size\":2097152,\"sha256\":[\"" HASH_2 "\",\"" HASH_2
   "\"]},{\"path\":\"version.ini\",\"size\":9,\"sha256\":[\"" HASH_1 "\"]},"
   "{\"path\":\"empty.txt\",\"size\":0,\"sha256\":[]}]}"},
  {LS_MSG_GAME_NOT_FOUND, LS_DIR_RESPONSE, "{\"type\":\"GameNotFound\",\"id\":\"quake3\"}"},
  {LS_MSG_INVALID_REQUEST, LS_DIR_RESPONSE,
   "{\"type\":\"InvalidRequest\",\"reason\":\"length: must be 1 to 16777216\"}"},
  {LS_MSG_FILE_DATA, LS_DIR_RESPONSE,
   "{\"type\":\"FileData\",\"id\":\"quake3\",\"path\":\"version.ini\",\"offset\":0,"
   "\"length\":9}"},
};
#define SAMPLE_COUNT (sizeof SAMPLES / sizeof SAMPLES[0])

static enum ls_msg_dir other_dir(enum ls_msg_dir dir)
{
  return dir == LS_DIR_REQUEST ? LS_DIR_RESPONSE : LS_DIR_REQUEST;
}

static int decode_len(const char *json, size_t len, enum ls_msg_dir dir, ls_msg *msg,
                      ls_diag *diag)
{
  return ls_msg_decode(json, len, dir, msg, diag);
}

/* Decodes and checks the code; prints the reason for the record. */
static void expect_refused_len(enum ls_msg_dir dir, const char *json, size_t len, int code)
{
  ls_msg msg;
  ls_diag diag = {{0}};
  int rc = decode_len(json, len, dir, &msg, &diag);
  if (rc != code)
    fail_msg("expected %d, got %d (%s) for: %.200s", code, rc, diag.text, json);
  assert_int_equal(msg.type, LS_MSG_NONE);
  check_reason(rc, &diag);
}

static void expect_refused(enum ls_msg_dir dir, const char *json, int code)
{
  expect_refused_len(dir, json, strlen(json), code);
}

static void expect_reason(enum ls_msg_dir dir, const char *json, int code, const char *reason)
{
  ls_msg msg;
  ls_diag diag = {{0}};
  assert_int_equal(ls_msg_decode(json, strlen(json), dir, &msg, &diag), code);
  assert_string_equal(diag.text, reason);
}

static void expect_reason_has(enum ls_msg_dir dir, const char *json, const char *part)
{
  ls_msg msg;
  ls_diag diag = {{0}};
  assert_int_equal(ls_msg_decode(json, strlen(json), dir, &msg, &diag), LS_EFORMAT);
  if (!strstr(diag.text, part))
    fail_msg("reason \"%s\" lacks \"%s\"", diag.text, part);
}

static void expect_accepted(enum ls_msg_dir dir, const char *json, ls_msg *msg)
{
  ls_diag diag = {{0}};
  int rc = ls_msg_decode(json, strlen(json), dir, msg, &diag);
  if (rc != LS_OK)
    fail_msg("refused (%d: %s): %.300s", rc, diag.text, json);
}

static void expect_ok(enum ls_msg_dir dir, const char *json)
{
  ls_msg msg;
  expect_accepted(dir, json, &msg);
  check_round_trip(&msg);
  ls_msg_clear(&msg);
}

static void expect_encode_fails(const ls_msg *msg, int code)
{
  char *json = (char *)"untouched";
  size_t len = 1;
  ls_diag diag = {{0}};
  int rc = ls_msg_encode(msg, &json, &len, &diag);
  if (rc != code)
    fail_msg("encode: expected %d, got %d (%s)", code, rc, diag.text);
  assert_null(json);
  assert_true(diag.text[0] != '\0');
}

/* "{...}" with `fields` spliced in after the type. */
static const char *msg_json(const char *type, const char *fields)
{
  return t_path("{\"type\":\"%s\"%s%s}", type, *fields ? "," : "", fields);
}

static const char *game_files_with(const char *file)
{
  return t_path("{\"type\":\"GameFiles\",\"id\":\"g\",\"version\":\"1\",\"chunk_size\":1048576,"
                "\"files\":[%s]}", file);
}

/* -------------------------------------------------------------------------- */
/* Round trips                                                               */

static void test_samples_round_trip(void **state)
{
  (void)state;
  for (size_t i = 0; i < SAMPLE_COUNT; i++) {
    const sample *s = &SAMPLES[i];
    ls_msg msg;
    expect_accepted(s->dir, s->json, &msg);
    assert_int_equal(msg.type, s->type);
    assert_int_equal(ls_msg_type_dir(msg.type), s->dir);
    char *json;
    size_t len;
    ls_diag diag;
    assert_int_equal(ls_msg_encode(&msg, &json, &len, &diag), LS_OK);
    assert_string_equal(json, s->json);
    assert_int_equal(len, strlen(s->json));
    free(json);
    check_round_trip(&msg);
    ls_msg_clear(&msg);
    assert_int_equal(msg.type, LS_MSG_NONE);
  }
}

/* Copies share nothing with their source: they stay whole after it is
 * freed and its memory reused (ASan builds would also see any sharing). */
static void test_copy_is_deep(void **state)
{
  (void)state;
  for (size_t i = 0; i < SAMPLE_COUNT; i++) {
    const sample *s = &SAMPLES[i];
    ls_msg orig, copy;
    expect_accepted(s->dir, s->json, &orig);
    assert_int_equal(ls_msg_copy(&copy, &orig), LS_OK);
    assert_true(ls_msg_equal(&copy, &orig));
    if (orig.type == LS_MSG_GAME_FILES) {
      assert_ptr_not_equal(copy.game_files.files, orig.game_files.files);
      assert_ptr_not_equal(copy.game_files.files[0].path, orig.game_files.files[0].path);
      assert_ptr_not_equal(copy.game_files.files[0].sha256, orig.game_files.files[0].sha256);
      assert_null(copy.game_files.files[2].sha256); /* an empty file has no hashes */
    }
    ls_msg_clear(&orig);
    char *scribble[16];
    for (size_t k = 0; k < 16; k++)
      memset(scribble[k] = malloc(64), 'X', 64);
    char *json;
    size_t len;
    assert_int_equal(ls_msg_encode(&copy, &json, &len, NULL), LS_OK);
    assert_string_equal(json, s->json);
    free(json);
    for (size_t k = 0; k < 16; k++)
      free(scribble[k]);
    ls_msg_clear(&copy);
  }
}

/* A message built for encoding borrows its strings; its copy owns its own. */
static void test_copy_of_borrowed_strings(void **state)
{
  (void)state;
  char id[] = "quake3", path[] = "data/a.eti";
  uint8_t hash[LS_SHA256_LEN] = {1, 2, 3};
  ls_msg_file_entry file = {.path = path, .size = 5, .chunk_count = 1, .sha256 = hash};
  ls_msg src = {.type = LS_MSG_GAME_FILES,
                .game_files = {.id = id, .version = "1", .chunk_size = LS_CHUNK_SIZE,
                               .file_count = 1, .files = &file}};
  ls_msg copy;
  assert_int_equal(ls_msg_copy(&copy, &src), LS_OK);
  assert_true(ls_msg_equal(&copy, &src));
  id[0] = 'Q';
  path[0] = 'D';
  hash[0] = 0xff;
  assert_false(ls_msg_equal(&copy, &src));
  assert_string_equal(copy.game_files.id, "quake3");
  assert_string_equal(copy.game_files.files[0].path, "data/a.eti");
  assert_int_equal(copy.game_files.files[0].sha256[0], 1);
  ls_msg_clear(&copy);
  ls_msg none = {.type = LS_MSG_PING};
  assert_int_equal(ls_msg_copy(&copy, &none), LS_OK);
  assert_int_equal(copy.type, LS_MSG_PING);
}

static void test_every_type_has_a_sample(void **state)
{
  (void)state;
  for (int t = LS_MSG_NONE + 1; t < LS_MSG_TYPE_COUNT; t++) {
    bool found = false;
    for (size_t i = 0; i < SAMPLE_COUNT; i++)
      found = found || SAMPLES[i].type == (enum ls_msg_type)t;
    assert_true(found);
    assert_non_null(ls_msg_type_name((enum ls_msg_type)t));
  }
  assert_null(ls_msg_type_name(LS_MSG_NONE));
  assert_null(ls_msg_type_name(LS_MSG_TYPE_COUNT));
  assert_string_equal(ls_msg_type_name(LS_MSG_GET_GAME_FILE_CHUNK), "GetGameFileChunk");
}

static void test_decoded_fields(void **state)
{
  (void)state;
  ls_msg msg;
  expect_accepted(LS_DIR_REQUEST, SAMPLES[0].json, &msg);
  assert_int_equal(msg.hello.protocol_version, 1);
  assert_string_equal(msg.hello.peer_id, PEER_A);
  assert_string_equal(msg.hello.name, "alice-pc");
  ls_msg_clear(&msg);

  expect_accepted(LS_DIR_REQUEST, SAMPLES[5].json, &msg);
  assert_string_equal(msg.range.id, "quake3");
  assert_string_equal(msg.range.path, "data/q3.eti");
  assert_int_equal(msg.range.offset, 1048576);
  assert_int_equal(msg.range.length, 1048576);
  ls_msg_clear(&msg);

  expect_accepted(LS_DIR_RESPONSE, SAMPLES[9].json, &msg);
  const ls_msg_game_files *gf = &msg.game_files;
  assert_string_equal(gf->id, "quake3");
  assert_string_equal(gf->version, "20240115");
  assert_int_equal(gf->chunk_size, LS_CHUNK_SIZE);
  assert_int_equal(gf->file_count, 3);
  assert_string_equal(gf->files[1].path, "version.ini");
  assert_int_equal(gf->files[1].size, 9);
  assert_int_equal(gf->files[1].chunk_count, 1);
  assert_int_equal(gf->files[1].sha256[0], 0x42);
  assert_int_equal(gf->files[1].sha256[31], 0x54);
  assert_int_equal(gf->files[0].chunk_count, 2);
  assert_int_equal(gf->files[2].chunk_count, 0);
  assert_null(gf->files[2].sha256);
  ls_msg_clear(&msg);

  expect_accepted(LS_DIR_RESPONSE, SAMPLES[8].json, &msg);
  assert_int_equal(msg.game_list.count, 2);
  assert_string_equal(msg.game_list.games[1].name, "Unreal Tournament 2004");
  assert_int_equal(msg.game_list.games[0].size, 2097161);
  ls_msg_clear(&msg);
}

static void test_built_messages_round_trip(void **state)
{
  (void)state;
  uint8_t hashes[3 * LS_SHA256_LEN];
  for (size_t i = 0; i < sizeof hashes; i++)
    hashes[i] = (uint8_t)(i * 7);
  ls_msg_file_entry files[] = {
    {.path = "a/b.eti", .size = 2 * LS_CHUNK_SIZE + 1, .chunk_count = 3, .sha256 = hashes},
    {.path = "a-b", .size = 0, .chunk_count = 0, .sha256 = NULL},
    {.path = "ab/b", .size = 1, .chunk_count = 1, .sha256 = hashes},
  };
  ls_msg gf = {.type = LS_MSG_GAME_FILES,
               .game_files = {.id = "g", .version = "1.0", .chunk_size = LS_CHUNK_SIZE,
                              .file_count = 3, .files = files}};
  check_round_trip(&gf);

  ls_msg_game_info games[] = {{.id = "a", .name = "A", .version = "1", .size = LS_PROTO_MAX_INT},
                              {.id = "b", .name = "\xc3\xa9t\xc3\xa9", .version = "2", .size = 0}};
  ls_msg gl = {.type = LS_MSG_GAME_LIST, .game_list = {.count = 2, .games = games}};
  check_round_trip(&gl);
  ls_msg empty = {.type = LS_MSG_GAME_LIST};
  check_round_trip(&empty);

  ls_msg chunk = {.type = LS_MSG_GET_GAME_FILE_CHUNK,
                  .range = {.id = "g", .path = "x", .offset = LS_PROTO_MAX_INT - LS_CHUNK_SIZE,
                            .length = LS_CHUNK_SIZE}};
  check_round_trip(&chunk);
  ls_msg data = {.type = LS_MSG_FILE_DATA,
                 .range = {.id = "g", .path = "x", .offset = 0, .length = LS_PROTO_MAX_INT}};
  check_round_trip(&data);
  ls_msg hello = {.type = LS_MSG_HELLO,
                  .hello = {.protocol_version = 7, .peer_id = PEER_B, .name = ""}};
  check_round_trip(&hello);
  ls_msg reason = {.type = LS_MSG_INVALID_REQUEST, .invalid = {.reason = "quote \" and \\"}};
  check_round_trip(&reason);
}

static void test_encode_frame_prefix(void **state)
{
  (void)state;
  ls_msg ping = {.type = LS_MSG_PING};
  uint8_t *frame;
  size_t len;
  ls_diag diag;
  assert_int_equal(ls_msg_encode_frame(&ping, &frame, &len, &diag), LS_OK);
  assert_int_equal(len, 4 + strlen("{\"type\":\"Ping\"}"));
  assert_memory_equal(frame, "\0\0\0\x0f{\"type\":\"Ping\"}", len);
  free(frame);
  uint8_t hdr[4];
  ls_frame_put_length(hdr, 0x01020304u);
  assert_memory_equal(hdr, "\x01\x02\x03\x04", 4);
}

/* -------------------------------------------------------------------------- */
/* Every field: missing, wrong type, out of range                              */

static const char *const WRONG_VALUES[] = {"null", "true", "false", "1.5", "1.0", "7",
                                           "\"x\"", "[]", "{}", "[1]"};

static void expect_tree_refused(json_t *root, enum ls_msg_dir dir, const char *what)
{
  char *json = json_dumps(root, JSON_COMPACT);
  assert_non_null(json);
  ls_msg msg;
  ls_diag diag = {{0}};
  int rc = ls_msg_decode(json, strlen(json), dir, &msg, &diag);
  if (rc != LS_EFORMAT)
    fail_msg("%s: expected LS_EFORMAT, got %d (%s): %.300s", what, rc, diag.text, json);
  check_reason(rc, &diag);
  free(json);
}

static json_t *parse_any(const char *text)
{
  json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
  assert_non_null(v);
  return v;
}

static bool same_kind(const json_t *a, const json_t *b)
{
  bool a_bool = json_is_boolean(a), b_bool = json_is_boolean(b);
  return json_typeof(a) == json_typeof(b) || (a_bool && b_bool);
}

/* Values of another JSON type than `orig`, plus bad numbers for integers. */
static void each_wrong_value(const json_t *orig, void (*use)(json_t *wrong, void *ctx),
                             void *ctx)
{
  for (size_t i = 0; i < sizeof WRONG_VALUES / sizeof WRONG_VALUES[0]; i++) {
    json_t *wrong = parse_any(WRONG_VALUES[i]);
    if (same_kind(wrong, orig))
      json_decref(wrong);
    else
      use(wrong, ctx);
  }
  if (json_is_integer(orig)) {
    static const char *const bad_numbers[] = {"-1", "9007199254740992", "9223372036854775807",
                                              "-9223372036854775808", "1e3", "0.5"};
    for (size_t i = 0; i < sizeof bad_numbers / sizeof bad_numbers[0]; i++)
      use(parse_any(bad_numbers[i]), ctx);
  }
}

typedef struct mutation {
  json_t *root;
  enum ls_msg_dir dir;
  json_t *container;
  const char *key; /* NULL for array element 0 */
  char what[160];
} mutation;

static void put_wrong(json_t *wrong, void *ctx)
{
  mutation *m = ctx;
  if (m->key)
    json_object_set_new(m->container, m->key, wrong);
  else
    json_array_set_new(m->container, 0, wrong);
  expect_tree_refused(m->root, m->dir, m->what);
}

static void mutate_tree(json_t *root, enum ls_msg_dir dir, json_t *node, const char *path);

static void mutate_key(json_t *root, enum ls_msg_dir dir, json_t *obj, const char *key,
                       const char *path)
{
  json_t *orig = json_incref(json_object_get(obj, key));
  mutation m = {.root = root, .dir = dir, .container = obj, .key = key};
  snprintf(m.what, sizeof m.what, "%s%s missing", path, key);
  json_object_del(obj, key);
  expect_tree_refused(root, dir, m.what);
  snprintf(m.what, sizeof m.what, "%s%s wrong", path, key);
  each_wrong_value(orig, put_wrong, &m);
  json_object_set(obj, key, orig);
  char sub[160];
  snprintf(sub, sizeof sub, "%s%s.", path, key);
  mutate_tree(root, dir, orig, sub);
  json_decref(orig);
}

static void mutate_first_element(json_t *root, enum ls_msg_dir dir, json_t *array,
                                 const char *path)
{
  if (json_array_size(array) == 0)
    return;
  json_t *orig = json_incref(json_array_get(array, 0));
  mutation m = {.root = root, .dir = dir, .container = array};
  snprintf(m.what, sizeof m.what, "%s[0] wrong", path);
  each_wrong_value(orig, put_wrong, &m);
  json_array_set(array, 0, orig);
  char sub[160];
  snprintf(sub, sizeof sub, "%s[0].", path);
  mutate_tree(root, dir, orig, sub);
  json_decref(orig);
}

/* Every field under node: removed, and replaced by each wrong value. */
static void mutate_tree(json_t *root, enum ls_msg_dir dir, json_t *node, const char *path)
{
  if (json_is_array(node)) {
    mutate_first_element(root, dir, node, path);
    return;
  }
  if (!json_is_object(node))
    return;
  /* copies: deleting a key frees jansson's copy of it */
  char keys[16][64];
  size_t n = 0;
  const char *key;
  json_t *value;
  json_object_foreach(node, key, value) {
    assert_true(n < 16 && strlen(key) < sizeof keys[0]);
    if (node != root || strcmp(key, "type") != 0)
      snprintf(keys[n++], sizeof keys[0], "%s", key);
  }
  for (size_t i = 0; i < n; i++)
    mutate_key(root, dir, node, keys[i], path);
}

static void test_every_field_missing_or_mistyped(void **state)
{
  (void)state;
  for (size_t i = 0; i < SAMPLE_COUNT; i++) {
    json_t *root = json_loads(SAMPLES[i].json, 0, NULL);
    assert_non_null(root);
    mutate_tree(root, SAMPLES[i].dir, root, "");
    json_decref(root);
  }
}

static void test_unknown_fields_tolerated(void **state)
{
  (void)state;
  static const char *const extra =
      "{\"future\":{\"nested\":[1,2.5,null,{\"deep\":true}]},\"x\":\"y\"}";
  for (size_t i = 0; i < SAMPLE_COUNT; i++) {
    json_t *root = json_loads(SAMPLES[i].json, 0, NULL);
    json_t *more = json_loads(extra, 0, NULL);
    json_object_update(root, more);
    json_t *list = json_object_get(root, "games");
    if (!list)
      list = json_object_get(root, "files");
    if (list)
      json_object_update(json_array_get(list, 0), more);
    char *json = json_dumps(root, JSON_COMPACT);
    ls_msg with, without;
    expect_accepted(SAMPLES[i].dir, json, &with);
    expect_accepted(SAMPLES[i].dir, SAMPLES[i].json, &without);
    assert_true(ls_msg_equal(&with, &without));
    ls_msg_clear(&with);
    ls_msg_clear(&without);
    free(json);
    json_decref(more);
    json_decref(root);
  }
}

/* -------------------------------------------------------------------------- */
/* Type and direction                                                         */

static void test_type_and_direction(void **state)
{
  (void)state;
  expect_refused(LS_DIR_REQUEST, "{\"type\":\"Nope\"}", LS_EPROTO);
  expect_refused(LS_DIR_REQUEST, "{\"type\":\"ping\"}", LS_EPROTO);
  expect_refused(LS_DIR_REQUEST, "{\"type\":\"\"}", LS_EPROTO);
  expect_refused(LS_DIR_RESPONSE, "{\"type\":\"Pingx\"}", LS_EPROTO);
  expect_refused(LS_DIR_REQUEST, "{\"type\":1}", LS_EFORMAT);
  expect_refused(LS_DIR_REQUEST, "{\"type\":null}", LS_EFORMAT);
  expect_refused(LS_DIR_REQUEST, "{\"id\":\"quake3\"}", LS_EFORMAT);
  expect_refused(LS_DIR_REQUEST, "{\"type\":\"Ping\\u0000\"}", LS_EFORMAT);
  expect_reason(LS_DIR_REQUEST, "{\"type\":\"Nope\"}", LS_EPROTO, "unknown message type");
  for (size_t i = 0; i < SAMPLE_COUNT; i++)
    expect_refused(other_dir(SAMPLES[i].dir), SAMPLES[i].json, LS_EPROTO);
  expect_reason(LS_DIR_REQUEST, "{\"type\":\"Pong\"}", LS_EPROTO,
                "Pong is a response, a request was expected");
  expect_reason(LS_DIR_RESPONSE, "{\"type\":\"Ping\"}", LS_EPROTO,
                "Ping is a request, a response was expected");
  for (int t = LS_MSG_HELLO; t <= LS_MSG_GET_GAME_FILE_CHUNK; t++)
    assert_int_equal(ls_msg_type_dir((enum ls_msg_type)t), LS_DIR_REQUEST);
  for (int t = LS_MSG_HELLO_ACK; t < LS_MSG_TYPE_COUNT; t++)
    assert_int_equal(ls_msg_type_dir((enum ls_msg_type)t), LS_DIR_RESPONSE);
}

/* -------------------------------------------------------------------------- */
/* JSON level: syntax, top level, duplicates, trailing bytes, NUL, UTF-8      */

static void test_json_level_refusals(void **state)
{
  (void)state;
  static const char *const bad[] = {
    "[]", "[{\"type\":\"Ping\"}]", "\"Ping\"", "1", "null", "true", "",
    " ", "{", "{\"type\":\"Ping\"", "{\"type\":\"Ping\",}", "{'type':'Ping'}",
    "{\"type\":\"Ping\"} x", "{\"type\":\"Ping\"}{}", "{\"type\":\"Ping\"}}",
    "{\"type\":\"Ping\",\"type\":\"Ping\"}", "{\"type\":\"Ping\",\"x\":1,\"x\":2}",
    "{\"type\":\"GetGame\",\"id\":\"a\",\"n\":{\"k\":1,\"k\":1}}",
    "{\"type\":\"GetGame\",\"id\":\"a\",\"id\":\"b\"}",
    "\xef\xbb\xbf{\"type\":\"Ping\"}", /* BOM */
    "{\"type\":\"Ping\"} /* comment */", "{\"type\":\"GetGame\",\"id\":\"a\\x41\"}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    expect_refused(LS_DIR_REQUEST, bad[i], LS_EFORMAT);
  expect_refused(LS_DIR_RESPONSE, "{\"type\":\"GameList\",\"games\":[{\"id\":\"a\",\"name\":\"A\","
                                  "\"version\":\"1\",\"size\":1,\"size\":1}]}", LS_EFORMAT);
  expect_reason_has(LS_DIR_REQUEST, "{\"type\":\"Ping\",\"x\":1,\"x\":2}", "duplicate key");
  expect_reason_has(LS_DIR_REQUEST, "{\"type\":\"Ping\"} x", "data after the JSON object");
  expect_reason_has(LS_DIR_REQUEST, "{\"type\":\"P\xffing\"}", "invalid UTF-8");
  expect_reason_has(LS_DIR_REQUEST, "{\"type\":\"P\\u0000\"}", "must not contain NUL");
  /* whitespace around the object is JSON, not garbage */
  expect_ok(LS_DIR_REQUEST, " \n{\"type\":\"Ping\"}\r\n\t ");
  /* a NUL byte after the object, inside the given length */
  expect_refused_len(LS_DIR_REQUEST, "{\"type\":\"Ping\"}\0", 16, LS_EFORMAT);
  /* only `len` bytes are read: no NUL terminator needed or trusted */
  expect_refused_len(LS_DIR_REQUEST, "{\"type\":\"Ping\"}", 14, LS_EFORMAT);
  ls_msg msg;
  ls_diag diag;
  assert_int_equal(ls_msg_decode("{\"type\":\"Ping\"}garbage", 15, LS_DIR_REQUEST, &msg, &diag),
                   LS_OK);
  assert_int_equal(msg.type, LS_MSG_PING);
}

static void test_embedded_nul_refused(void **state)
{
  (void)state;
  expect_refused(LS_DIR_REQUEST, "{\"type\":\"GetGame\",\"id\":\"quake3\\u0000\"}", LS_EFORMAT);
  expect_refused(LS_DIR_REQUEST,
                 "{\"type\":\"GetGameFileData\",\"id\":\"quake3\",\"path\":\"a\\u0000/b\"}",
                 LS_EFORMAT);
  expect_refused(LS_DIR_REQUEST,
                 "{\"type\":\"Hello\",\"protocol_version\":1,\"peer_id\":\"" PEER_A
                 "\",\"name\":\"a\\u0000b\"}",
                 LS_EFORMAT);
  expect_refused(LS_DIR_REQUEST, "{\"type\":\"Ping\",\"k\\u0000\":1}", LS_EFORMAT);
  static const char raw[] = "{\"type\":\"GetGame\",\"id\":\"ab\0cd\"}";
  expect_refused_len(LS_DIR_REQUEST, raw, sizeof raw - 1, LS_EFORMAT);
}

static void test_invalid_utf8_refused(void **state)
{
  (void)state;
  static const char *const bad_names[] = {
    "\xff", "\xc0\x80", "\xc1\xbf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
    "\xe2\x82", "\x80", "\xf8\x88\x80\x80\x80", "\\ud800", "\\udc00x", "\\ud800\\u0041",
  };
  for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
    const char *json = t_path("{\"type\":\"Hello\",\"protocol_version\":1,\"peer_id\":\"" PEER_A
                              "\",\"name\":\"%s\"}", bad_names[i]);
    expect_refused(LS_DIR_REQUEST, json, LS_EFORMAT);
  }
  /* valid multi-byte text: raw and escaped, including a surrogate pair */
  ls_msg msg;
  expect_accepted(LS_DIR_REQUEST,
                  "{\"type\":\"Hello\",\"protocol_version\":1,\"peer_id\":\"" PEER_A
                  "\",\"name\":\"\xc3\xa9\\u00e9\xf0\x9f\x98\x80\\ud83d\\ude00\"}", &msg);
  assert_string_equal(msg.hello.name, "\xc3\xa9\xc3\xa9\xf0\x9f\x98\x80\xf0\x9f\x98\x80");
  check_round_trip(&msg);
  ls_msg_clear(&msg);
}

/* Names a user reads carry no character that hides or reorders text: C0 and
 * C1 controls, DEL, line separators, bidi marks, embeddings, overrides and
 * isolates (raw or escaped), in a peer name and in a game name. */
static void test_hidden_controls_refused(void **state)
{
  (void)state;
  static const char *const hidden[] = {
    "evil\\u202etxt.exe", "evil\xe2\x80\xaetxt.exe", "a\\u0085", "a\xc2\x85", "a\\u200f",
    "a\\u2066b", "a\\u2069", "a\\u061c", "a\\u2028", "a\\n", "a\\t", "a\\u007f", "a\\u001b[31m",
  };
  for (size_t i = 0; i < sizeof hidden / sizeof hidden[0]; i++) {
    const char *hello = t_path("{\"type\":\"Hello\",\"protocol_version\":1,\"peer_id\":\"" PEER_A
                               "\",\"name\":\"%s\"}", hidden[i]);
    expect_reason_has(LS_DIR_REQUEST, hello, "control character U+");
    const char *list = t_path("{\"type\":\"GameList\",\"games\":[{\"id\":\"a\",\"name\":\"%s\","
                              "\"version\":\"1\",\"size\":0}]}", hidden[i]);
    expect_reason_has(LS_DIR_RESPONSE, list, "games[0].name: control character U+");
  }
  /* The same characters are fine where they are not control characters. */
  expect_ok(LS_DIR_RESPONSE, "{\"type\":\"GameList\",\"games\":[{\"id\":\"a\",\"name\":"
                             "\"\\u05e9\\u05dc\\u05d5\\u05dd \\u2026\",\"version\":\"1\",\"size\":0}]}");
}

/* -------------------------------------------------------------------------- */
/* Sizes and numbers                                                          */

static char *padded(const char *json, size_t total)
{
  size_t n = strlen(json);
  assert_true(total >= n);
  char *buf = malloc(total);
  assert_non_null(buf);
  memset(buf, ' ', total);
  memcpy(buf, json, n);
  return buf;
}

static void test_message_size_limits(void **state)
{
  (void)state;
  ls_msg msg;
  ls_diag diag;
  char *buf = padded("{\"type\":\"Ping\"}", LS_PROTO_MAX_REQUEST_FRAME + 1);
  assert_int_equal(ls_msg_decode(buf, LS_PROTO_MAX_REQUEST_FRAME, LS_DIR_REQUEST, &msg, &diag),
                   LS_OK);
  assert_int_equal(
      ls_msg_decode(buf, LS_PROTO_MAX_REQUEST_FRAME + 1, LS_DIR_REQUEST, &msg, &diag),
      LS_ETOOBIG);
  free(buf);
  buf = padded("{\"type\":\"Pong\"}", LS_PROTO_MAX_RESPONSE_FRAME + 1);
  assert_int_equal(
      ls_msg_decode(buf, LS_PROTO_MAX_RESPONSE_FRAME, LS_DIR_RESPONSE, &msg, &diag), LS_OK);
  assert_int_equal(
      ls_msg_decode(buf, LS_PROTO_MAX_RESPONSE_FRAME + 1, LS_DIR_RESPONSE, &msg, &diag),
      LS_ETOOBIG);
  assert_int_equal(msg.type, LS_MSG_NONE);
  free(buf);
  assert_int_equal(ls_msg_decode("", 0, LS_DIR_REQUEST, &msg, &diag), LS_EFORMAT);
  assert_string_equal(diag.text, "empty message");
  assert_int_equal(ls_proto_frame_limit(LS_DIR_REQUEST), 65536);
  assert_int_equal(ls_proto_frame_limit(LS_DIR_RESPONSE), 16777216);
}

static const char *chunk_json(const char *offset, const char *length)
{
  return msg_json("GetGameFileChunk",
                  t_path("\"id\":\"g\",\"path\":\"f\",\"offset\":%s,\"length\":%s", offset, length));
}

static const char *data_json(const char *offset, const char *length)
{
  return msg_json("FileData",
                  t_path("\"id\":\"g\",\"path\":\"f\",\"offset\":%s,\"length\":%s", offset, length));
}

static void test_ranges(void **state)
{
  (void)state;
  expect_ok(LS_DIR_REQUEST, chunk_json("0", "1"));
  expect_ok(LS_DIR_REQUEST, chunk_json("0", "16777216"));
  expect_ok(LS_DIR_REQUEST, chunk_json("9007199254740990", "1"));
  expect_ok(LS_DIR_REQUEST, chunk_json("-0", "1"));
  expect_refused(LS_DIR_REQUEST, chunk_json("0", "0"), LS_EFORMAT);
  expect_refused(LS_DIR_REQUEST, chunk_json("0", "16777217"), LS_EFORMAT);
  expect_refused(LS_DIR_REQUEST, chunk_json("-1", "1"), LS_EFORMAT);
  expect_refused(LS_DIR_REQUEST, chunk_json("0", "-1"), LS_EFORMAT);
  expect_refused(LS_DIR_REQUEST, chunk_json("9007199254740991", "1"), LS_EFORMAT);
  expect_refused(LS_DIR_REQUEST, chunk_json("9007199254740992", "1"), LS_EFORMAT);
  expect_refused(LS_DIR_REQUEST, chunk_json("18446744073709551615", "1"), LS_EFORMAT);
  expect_refused(LS_DIR_REQUEST, chunk_json("99999999999999999999999", "1"), LS_EFORMAT);
  expect_refused(LS_DIR_REQUEST, chunk_json("0", "1.0"), LS_EFORMAT);
  expect_refused(LS_DIR_REQUEST, chunk_json("0", "1e3"), LS_EFORMAT);
  expect_refused(LS_DIR_REQUEST, chunk_json("0", "1e400"), LS_EFORMAT);
  expect_refused(LS_DIR_REQUEST, chunk_json("0", "\"1\""), LS_EFORMAT);
  expect_refused(LS_DIR_REQUEST, chunk_json("0x10", "1"), LS_EFORMAT);
  expect_refused(LS_DIR_REQUEST, chunk_json("01", "1"), LS_EFORMAT);
  expect_reason(LS_DIR_REQUEST, chunk_json("-5", "1"), LS_EFORMAT,
                "offset: must not be negative");
  expect_reason(LS_DIR_REQUEST, chunk_json("0", "0"), LS_EFORMAT,
                "length: must be 1 to 16777216");
  expect_reason(LS_DIR_REQUEST, chunk_json("9007199254740991", "1"), LS_EFORMAT,
                "offset + length: must be at most 9007199254740991");
  expect_reason(LS_DIR_REQUEST, chunk_json("0", "2.5"), LS_EFORMAT,
                "length: must be an integer");
  /* FileData: a whole file, possibly empty */
  expect_ok(LS_DIR_RESPONSE, data_json("0", "0"));
  expect_ok(LS_DIR_RESPONSE, data_json("0", "9007199254740991"));
  expect_ok(LS_DIR_RESPONSE, data_json("5", "9007199254740986"));
  expect_refused(LS_DIR_RESPONSE, data_json("5", "9007199254740987"), LS_EFORMAT);
  expect_refused(LS_DIR_RESPONSE, data_json("0", "9007199254740992"), LS_EFORMAT);
  expect_refused(LS_DIR_RESPONSE, data_json("0", "-1"), LS_EFORMAT);
}

static const char *hello_json(const char *version, const char *peer_id, const char *name)
{
  return t_path("{\"type\":\"Hello\",\"protocol_version\":%s,\"peer_id\":\"%s\",\"name\":\"%s\"}",
                version, peer_id, name);
}

static void test_hello_fields(void **state)
{
  (void)state;
  char name64[65], name65[66];
  memset(name64, 'n', 64), name64[64] = '\0';
  memset(name65, 'n', 65), name65[65] = '\0';
  expect_ok(LS_DIR_REQUEST, hello_json("1", PEER_A, name64));
  expect_ok(LS_DIR_REQUEST, hello_json("1", PEER_A, ""));
  expect_ok(LS_DIR_REQUEST, hello_json("2", PEER_A, "x")); /* the receiver decides */
  expect_ok(LS_DIR_REQUEST, hello_json("4294967295", PEER_A, "x"));
  expect_refused(LS_DIR_REQUEST, hello_json("4294967296", PEER_A, "x"), LS_EFORMAT);
  expect_refused(LS_DIR_REQUEST, hello_json("0", PEER_A, "x"), LS_EFORMAT);
  expect_refused(LS_DIR_REQUEST, hello_json("1", PEER_A, name65), LS_EFORMAT);
  expect_refused(LS_DIR_REQUEST, hello_json("1", PEER_A "0", "x"), LS_EFORMAT);
  expect_refused(LS_DIR_REQUEST, hello_json("1", &PEER_A[1], "x"), LS_EFORMAT);
  expect_refused(LS_DIR_REQUEST, hello_json("1", "", "x"), LS_EFORMAT);
  expect_refused(LS_DIR_REQUEST,
                 hello_json("1", "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
                            "x"), LS_EFORMAT);
  expect_refused(LS_DIR_REQUEST,
                 hello_json("1", "g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                            "x"), LS_EFORMAT);
  expect_refused(LS_DIR_RESPONSE,
                 t_path("{\"type\":\"HelloAck\",\"protocol_version\":1,\"peer_id\":\"%s\","
                        "\"name\":\"%s\"}", PEER_B, name65), LS_EFORMAT);
  /* 16 four-byte characters are 64 bytes; 17 are too many */
  char emoji[17 * 4 + 1] = "";
  for (int i = 0; i < 16; i++)
    strcat(emoji, "\xf0\x9f\x98\x80");
  expect_ok(LS_DIR_REQUEST, hello_json("1", PEER_A, emoji));
  strcat(emoji, "\xf0\x9f\x98\x80");
  expect_refused(LS_DIR_REQUEST, hello_json("1", PEER_A, emoji), LS_EFORMAT);
  /* the party proof: absent, or exactly 64 lowercase hex digits */
  const char *base = "{\"type\":\"Hello\",\"protocol_version\":1,\"peer_id\":\"" PEER_A "\","
                     "\"name\":\"x\",\"party\":";
  expect_ok(LS_DIR_REQUEST, t_path("%s\"%s\"}", base, PEER_B));
  expect_refused(LS_DIR_REQUEST, t_path("%s\"%s\"}", base, &PEER_B[1]), LS_EFORMAT);
  expect_refused(LS_DIR_REQUEST, t_path("%s\"%s0\"}", base, PEER_B), LS_EFORMAT);
  expect_refused(LS_DIR_REQUEST,
                 t_path("%s\"0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\"}",
                        base), LS_EFORMAT);
  expect_refused(LS_DIR_REQUEST, t_path("%s7}", base), LS_EFORMAT);
  expect_refused(LS_DIR_REQUEST, t_path("%s\"\"}", base), LS_EFORMAT);
  assert_true(ls_proto_peer_id_is_valid(PEER_A));
  assert_false(ls_proto_peer_id_is_valid(NULL));
  assert_false(ls_proto_peer_id_is_valid(PEER_A "a"));
}

static void test_unsafe_ids(void **state)
{
  (void)state;
  static const char *const bad[] = {
    "", ".", "..", "../x", "a/b", "a\\\\b", ".hidden", "-x", "_x", "a b", "a:b",
    "\xc3\xa9", "0123456789012345678901234567890123456789012345678901234567890123x",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const char *id = bad[i];
    expect_refused(LS_DIR_REQUEST, msg_json("GetGame", t_path("\"id\":\"%s\"", id)), LS_EFORMAT);
    expect_refused(LS_DIR_RESPONSE, msg_json("GameNotFound", t_path("\"id\":\"%s\"", id)),
                   LS_EFORMAT);
    expect_refused(LS_DIR_REQUEST,
                   msg_json("GetGameFileData", t_path("\"id\":\"%s\",\"path\":\"f\"", id)),
                   LS_EFORMAT);
    expect_refused(LS_DIR_REQUEST,
                   msg_json("GetGameFileChunk",
                            t_path("\"id\":\"%s\",\"path\":\"f\",\"offset\":0,\"length\":1", id)),
                   LS_EFORMAT);
    expect_refused(LS_DIR_RESPONSE,
                   msg_json("FileData",
                            t_path("\"id\":\"%s\",\"path\":\"f\",\"offset\":0,\"length\":1", id)),
                   LS_EFORMAT);
    expect_refused(LS_DIR_RESPONSE,
                   msg_json("GameList", t_path("\"games\":[{\"id\":\"%s\",\"name\":\"n\","
                                               "\"version\":\"1\",\"size\":1}]", id)),
                   LS_EFORMAT);
    expect_refused(LS_DIR_RESPONSE,
                   t_path("{\"type\":\"GameFiles\",\"id\":\"%s\",\"version\":\"1\","
                          "\"chunk_size\":1048576,\"files\":[]}", id),
                   LS_EFORMAT);
  }
  expect_ok(LS_DIR_REQUEST, msg_json("GetGame", "\"id\":\"a..b\""));
  expect_ok(LS_DIR_REQUEST, msg_json("GetGame", "\"id\":\"Quake-3_Arena.v1\""));
  expect_reason(LS_DIR_REQUEST, msg_json("GetGame", "\"id\":\"../etc\""), LS_EFORMAT,
                "id: not a safe game id");
}

/* The path rule itself is tested in test_relpath.c; here, that the decoder
 * applies it to every path field. */
static void test_paths(void **state)
{
  (void)state;
  char long_ok[LS_PROTO_MAX_PATH + 1], long_bad[LS_PROTO_MAX_PATH + 2];
  memset(long_ok, 'p', LS_PROTO_MAX_PATH), long_ok[LS_PROTO_MAX_PATH] = '\0';
  memset(long_bad, 'p', LS_PROTO_MAX_PATH + 1), long_bad[LS_PROTO_MAX_PATH + 1] = '\0';
  for (size_t i = 200; i < LS_PROTO_MAX_PATH; i += 200) /* components within NAME_MAX */
    long_ok[i] = long_bad[i] = '/';

  static const char *const bad_json[] = {"", "/abs", "a//b", "a/", "./a", "a/./b", "..",
                                         "../a", "a/..", "a\\\\b", "\\\\server\\\\x"};
  for (size_t i = 0; i < sizeof bad_json / sizeof bad_json[0]; i++) {
    const char *p = bad_json[i];
    expect_refused(LS_DIR_REQUEST,
                   msg_json("GetGameFileData", t_path("\"id\":\"g\",\"path\":\"%s\"", p)),
                   LS_EFORMAT);
    expect_refused(LS_DIR_REQUEST,
                   msg_json("GetGameFileChunk",
                            t_path("\"id\":\"g\",\"path\":\"%s\",\"offset\":0,\"length\":1", p)),
                   LS_EFORMAT);
    expect_refused(LS_DIR_RESPONSE,
                   msg_json("FileData",
                            t_path("\"id\":\"g\",\"path\":\"%s\",\"offset\":0,\"length\":1", p)),
                   LS_EFORMAT);
    expect_refused(LS_DIR_RESPONSE,
                   game_files_with(t_path("{\"path\":\"%s\",\"size\":0,\"sha256\":[]}", p)),
                   LS_EFORMAT);
  }
  expect_refused(LS_DIR_REQUEST,
                 msg_json("GetGameFileData", "\"id\":\"g\",\"path\":\"\\u002fetc\""), LS_EFORMAT);
  char *json = malloc(LS_PROTO_MAX_PATH + 200);
  snprintf(json, LS_PROTO_MAX_PATH + 200,
           "{\"type\":\"GetGameFileData\",\"id\":\"g\",\"path\":\"%s\"}", long_ok);
  expect_ok(LS_DIR_REQUEST, json);
  snprintf(json, LS_PROTO_MAX_PATH + 200,
           "{\"type\":\"GetGameFileData\",\"id\":\"g\",\"path\":\"%s\"}", long_bad);
  expect_refused(LS_DIR_REQUEST, json, LS_EFORMAT);
  free(json);
}

/* A GameFiles whose only path is "a/a/.../a", `levels` deep (malloc'ed). */
static char *deep_game_files(size_t levels)
{
  size_t path_len = 2 * levels - 1;
  char *json = malloc(path_len + 256);
  int n = snprintf(json, 256, "{\"type\":\"GameFiles\",\"id\":\"g\",\"version\":\"1\","
                   "\"chunk_size\":1048576,\"files\":[{\"path\":\"");
  for (size_t i = 0; i < levels; i++)
    n += sprintf(json + n, i ? "/a" : "a");
  sprintf(json + n, "\",\"size\":0,\"sha256\":[]}]}");
  return json;
}

/* The review's attack: a manifest path 2000 directories deep (legal under
 * the 4096-byte limit) used to reach the downloading peer's install, whose
 * recursive tree walk crashed. The decoder refuses it, and says why. */
static void test_deep_manifest_path_refused(void **state)
{
  (void)state;
  char *attack = deep_game_files(2000);
  assert_true(strlen(attack) < LS_PROTO_MAX_RESPONSE_FRAME);
  expect_reason(LS_DIR_RESPONSE, attack, LS_EFORMAT, "files[0].path: deeper than 64 levels");
  free(attack);
  char *edge = deep_game_files(LS_RELPATH_MAX_DEPTH + 1);
  expect_reason(LS_DIR_RESPONSE, edge, LS_EFORMAT, "files[0].path: deeper than 64 levels");
  free(edge);
  ls_msg msg;
  char *fits = deep_game_files(LS_RELPATH_MAX_DEPTH);
  expect_accepted(LS_DIR_RESPONSE, fits, &msg);
  ls_msg_clear(&msg);
  free(fits);
}

static const char *file_json(const char *path, const char *size, const char *hashes)
{
  return t_path("{\"path\":\"%s\",\"size\":%s,\"sha256\":[%s]}", path, size, hashes);
}

#define H1 "\"" HASH_1 "\""
#define H2 "\"" HASH_2 "\""

static void test_game_files_rules(void **state)
{
  (void)state;
  /* hash count == ceil(size / chunk_size) */
  expect_ok(LS_DIR_RESPONSE, game_files_with(file_json("f", "0", "")));
  expect_ok(LS_DIR_RESPONSE, game_files_with(file_json("f", "1", H1)));
  expect_ok(LS_DIR_RESPONSE, game_files_with(file_json("f", "1048576", H1)));
  expect_ok(LS_DIR_RESPONSE, game_files_with(file_json("f", "1048577", H1 "," H2)));
  expect_refused(LS_DIR_RESPONSE, game_files_with(file_json("f", "0", H1)), LS_EFORMAT);
  expect_refused(LS_DIR_RESPONSE, game_files_with(file_json("f", "1", "")), LS_EFORMAT);
  expect_refused(LS_DIR_RESPONSE, game_files_with(file_json("f", "1048576", H1 "," H2)),
                 LS_EFORMAT);
  expect_refused(LS_DIR_RESPONSE, game_files_with(file_json("f", "1048577", H1)), LS_EFORMAT);
  expect_refused(LS_DIR_RESPONSE, game_files_with(file_json("f", "9007199254740991", H1)),
                 LS_EFORMAT);
  expect_reason(LS_DIR_RESPONSE, game_files_with(file_json("f", "1048577", H1)), LS_EFORMAT,
                "files[0].sha256: must hold one hash per chunk (2)");
  /* each hash: 64 lowercase hex digits */
  static const char *const bad_hashes[] = {
    "\"" HASH_1 "0\"", "\"2c3257e73566a238e506222250a432496a0bf49dcb7467a29b362353e2ccc54\"",
    "\"42C3257E73566A238E506222250A432496A0BF49DCB7467A29B362353E2CCC54\"",
    "\"g2c3257e73566a238e506222250a432496a0bf49dcb7467a29b362353e2ccc54\"",
    "\" 2c3257e73566a238e506222250a432496a0bf49dcb7467a29b362353e2ccc54\"",
    "\"\"", "42", "null", "[]",
    "\"42c3257e73566a238e506222250a432496a0bf49dcb7467a29b362353e2ccc5\\u0000\"",
  };
  for (size_t i = 0; i < sizeof bad_hashes / sizeof bad_hashes[0]; i++)
    expect_refused(LS_DIR_RESPONSE, game_files_with(file_json("f", "1", bad_hashes[i])),
                   LS_EFORMAT);
  /* chunk size is fixed in protocol version 1 */
  expect_refused(LS_DIR_RESPONSE,
                 "{\"type\":\"GameFiles\",\"id\":\"g\",\"version\":\"1\",\"chunk_size\":4096,"
                 "\"files\":[]}", LS_EFORMAT);
  expect_refused(LS_DIR_RESPONSE,
                 "{\"type\":\"GameFiles\",\"id\":\"g\",\"version\":\"1\",\"chunk_size\":0,"
                 "\"files\":[]}", LS_EFORMAT);
  /* unique paths, and no file inside another "file" */
  char f_a[64], f_ab[64], f_adash[64], f_b[64], f_xy[64], f_xyzw[64], f_ab2[64];
  snprintf(f_a, sizeof f_a, "%s", file_json("a", "0", ""));
  snprintf(f_ab, sizeof f_ab, "%s", file_json("a/b", "0", ""));
  snprintf(f_adash, sizeof f_adash, "%s", file_json("a-b", "0", ""));
  snprintf(f_b, sizeof f_b, "%s", file_json("b", "0", ""));
  snprintf(f_xy, sizeof f_xy, "%s", file_json("x/y", "0", ""));
  snprintf(f_xyzw, sizeof f_xyzw, "%s", file_json("x/y/z/w", "0", ""));
  snprintf(f_ab2, sizeof f_ab2, "%s", file_json("ab", "0", ""));
  expect_refused(LS_DIR_RESPONSE, game_files_with(t_path("%s,%s", f_b, f_b)), LS_EFORMAT);
  expect_refused(LS_DIR_RESPONSE, game_files_with(t_path("%s,%s,%s", f_a, f_adash, f_ab)),
                 LS_EFORMAT);
  expect_refused(LS_DIR_RESPONSE, game_files_with(t_path("%s,%s", f_ab, f_a)), LS_EFORMAT);
  expect_refused(LS_DIR_RESPONSE, game_files_with(t_path("%s,%s", f_xy, f_xyzw)), LS_EFORMAT);
  expect_reason(LS_DIR_RESPONSE, game_files_with(t_path("%s,%s", f_xyzw, f_xy)), LS_EFORMAT,
                "files: duplicate or overlapping entries");
  expect_ok(LS_DIR_RESPONSE, game_files_with(t_path("%s,%s,%s", f_adash, f_ab, f_b)));
  expect_ok(LS_DIR_RESPONSE, game_files_with(t_path("%s,%s", f_ab2, f_ab)));
  /* versions */
  char v128[129], v129[130];
  memset(v128, 'v', 128), v128[128] = '\0';
  memset(v129, 'v', 129), v129[129] = '\0';
  const char *fmt = "{\"type\":\"GameFiles\",\"id\":\"g\",\"version\":\"%s\","
                    "\"chunk_size\":1048576,\"files\":[]}";
  expect_ok(LS_DIR_RESPONSE, t_path(fmt, v128));
  expect_refused(LS_DIR_RESPONSE, t_path(fmt, v129), LS_EFORMAT);
  expect_refused(LS_DIR_RESPONSE, t_path(fmt, ""), LS_EFORMAT);
  assert_int_equal(ls_proto_chunk_count(0, LS_CHUNK_SIZE), 0);
  assert_int_equal(ls_proto_chunk_count(1, LS_CHUNK_SIZE), 1);
  assert_int_equal(ls_proto_chunk_count(LS_CHUNK_SIZE, LS_CHUNK_SIZE), 1);
  assert_int_equal(ls_proto_chunk_count(LS_CHUNK_SIZE + 1ull, LS_CHUNK_SIZE), 2);
  assert_int_equal(ls_proto_chunk_count(LS_PROTO_MAX_INT, LS_CHUNK_SIZE), 8589934592ull);
}

static const char *game_json(const char *id, const char *name, const char *version,
                             const char *size)
{
  return t_path("{\"id\":\"%s\",\"name\":\"%s\",\"version\":\"%s\",\"size\":%s}", id, name,
                version, size);
}

static void test_game_list_rules(void **state)
{
  (void)state;
  char n256[257], n257[258], v129[130];
  memset(n256, 'n', 256), n256[256] = '\0';
  memset(n257, 'n', 257), n257[257] = '\0';
  memset(v129, 'v', 129), v129[129] = '\0';
  const char *fmt = "{\"type\":\"GameList\",\"games\":[%s]}";
  expect_ok(LS_DIR_RESPONSE, "{\"type\":\"GameList\",\"games\":[]}");
  expect_ok(LS_DIR_RESPONSE, t_path(fmt, game_json("a", n256, "1", "9007199254740991")));
  expect_refused(LS_DIR_RESPONSE, t_path(fmt, game_json("a", n257, "1", "0")), LS_EFORMAT);
  expect_refused(LS_DIR_RESPONSE, t_path(fmt, game_json("a", "", "1", "0")), LS_EFORMAT);
  expect_refused(LS_DIR_RESPONSE, t_path(fmt, game_json("a", "A", v129, "0")), LS_EFORMAT);
  expect_refused(LS_DIR_RESPONSE, t_path(fmt, game_json("a", "A", "", "0")), LS_EFORMAT);
  expect_refused(LS_DIR_RESPONSE, t_path(fmt, game_json("a", "A", "1", "9007199254740992")),
                 LS_EFORMAT);
  char a[96], b[96];
  snprintf(a, sizeof a, "%s", game_json("a", "A", "1", "0"));
  snprintf(b, sizeof b, "%s", game_json("b", "B", "1", "0"));
  expect_ok(LS_DIR_RESPONSE, t_path(fmt, t_path("%s,%s", a, b)));
  expect_refused(LS_DIR_RESPONSE, t_path(fmt, t_path("%s,%s,%s", a, b, a)), LS_EFORMAT);
  expect_reason(LS_DIR_RESPONSE, t_path(fmt, t_path("%s,%s,%s", a, b, a)), LS_EFORMAT,
                "games: duplicate or overlapping entries");
  expect_reason(LS_DIR_RESPONSE, t_path(fmt, t_path("%s,%s", b, "{\"id\":\"c\"}")), LS_EFORMAT,
                "games[1].name: missing");
  /* At most LS_PROTO_MAX_GAMES entries: one more is refused before any is
   * decoded, and the encoder refuses to build one. */
  for (unsigned extra = 0; extra <= 1; extra++) {
    size_t n = LS_PROTO_MAX_GAMES + extra, cap = n * 64 + 64, len = 0;
    char *json = malloc(cap);
    assert_non_null(json);
    len += (size_t)snprintf(json, cap, "{\"type\":\"GameList\",\"games\":[");
    for (size_t i = 0; i < n; i++)
      len += (size_t)snprintf(json + len, cap - len, "%s{\"id\":\"g%zu\",\"name\":\"G\","
                              "\"version\":\"1\",\"size\":0}", i ? "," : "", i);
    len += (size_t)snprintf(json + len, cap - len, "]}");
    ls_msg msg;
    ls_diag diag = {{0}};
    int rc = ls_msg_decode(json, len, LS_DIR_RESPONSE, &msg, &diag);
    if (extra) {
      assert_int_equal(rc, LS_ETOOBIG);
      assert_non_null(strstr(diag.text, "at most 4096"));
    } else {
      assert_int_equal(rc, LS_OK);
      assert_int_equal(msg.game_list.count, LS_PROTO_MAX_GAMES);
      ls_msg_game_info one = msg.game_list.games[0];
      ls_msg more = {.type = LS_MSG_GAME_LIST};
      more.game_list.count = LS_PROTO_MAX_GAMES + 1;
      more.game_list.games = calloc(more.game_list.count, sizeof one);
      assert_non_null(more.game_list.games);
      for (size_t i = 0; i < more.game_list.count; i++)
        more.game_list.games[i] = one;
      char *out;
      size_t out_len;
      assert_int_equal(ls_msg_encode(&more, &out, &out_len, &diag), LS_EINVAL);
      free(more.game_list.games);
      ls_msg_clear(&msg);
    }
    free(json);
  }
}

static void test_reason_rules(void **state)
{
  (void)state;
  char r1024[1025], r1025[1026];
  memset(r1024, 'r', 1024), r1024[1024] = '\0';
  memset(r1025, 'r', 1025), r1025[1025] = '\0';
  char *json = malloc(1200);
  snprintf(json, 1200, "{\"type\":\"InvalidRequest\",\"reason\":\"%s\"}", r1024);
  expect_ok(LS_DIR_RESPONSE, json);
  snprintf(json, 1200, "{\"type\":\"InvalidRequest\",\"reason\":\"%s\"}", r1025);
  expect_refused(LS_DIR_RESPONSE, json, LS_EFORMAT);
  free(json);
  expect_ok(LS_DIR_RESPONSE, "{\"type\":\"InvalidRequest\",\"reason\":\"\"}");
  /* a syntax error quoting raw bytes still gives a sendable reason */
  expect_refused(LS_DIR_REQUEST, "{\"type\":\"\xff\xfe\"}", LS_EFORMAT);
  expect_refused(LS_DIR_REQUEST, "{\"type\" \x01\x7f\xc3\xa9}", LS_EFORMAT);
}

/* -------------------------------------------------------------------------- */
/* Encoder refusals                                                           */

static void test_encoder_refuses_invalid(void **state)
{
  (void)state;
  ls_msg m = {.type = LS_MSG_NONE};
  expect_encode_fails(&m, LS_EINVAL);
  m.type = (enum ls_msg_type)99;
  expect_encode_fails(&m, LS_EINVAL);
  m = (ls_msg){.type = LS_MSG_GET_GAME};
  expect_encode_fails(&m, LS_EINVAL); /* NULL id */
  m.game.id = "../x";
  expect_encode_fails(&m, LS_EINVAL);
  m = (ls_msg){.type = LS_MSG_HELLO, .hello = {.protocol_version = 1, .peer_id = "abc",
                                               .name = "x"}};
  expect_encode_fails(&m, LS_EINVAL);
  m = (ls_msg){.type = LS_MSG_HELLO, .hello = {.protocol_version = 1, .peer_id = PEER_A,
                                               .name = "\xff"}};
  expect_encode_fails(&m, LS_EINVAL);
  static const char *const bad_utf8[] = {"\xed\xa0\x80", "\xc0\x80", "\xe2\x82",
                                         "\xf4\x90\x80\x80", "a\x80", "\xe0\x80\xaf"};
  for (size_t i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++) {
    m.hello.name = (char *)bad_utf8[i];
    expect_encode_fails(&m, LS_EINVAL);
  }
  m.hello.name = NULL;
  expect_encode_fails(&m, LS_EINVAL);
  m.hello.name = "x";
  m.hello.protocol_version = 0;
  expect_encode_fails(&m, LS_EINVAL);
  m = (ls_msg){.type = LS_MSG_GET_GAME_FILE_CHUNK,
               .range = {.id = "g", .path = "f", .offset = 0, .length = 0}};
  expect_encode_fails(&m, LS_EINVAL);
  m.range.length = 1;
  m.range.offset = LS_PROTO_MAX_INT;
  expect_encode_fails(&m, LS_EINVAL);
  m.range.offset = UINT64_MAX;
  expect_encode_fails(&m, LS_EINVAL);
  m.range.offset = 0;
  m.range.path = "../f";
  expect_encode_fails(&m, LS_EINVAL);
  m = (ls_msg){.type = LS_MSG_FILE_DATA,
               .range = {.id = "g", .path = "f", .offset = 1, .length = LS_PROTO_MAX_INT}};
  expect_encode_fails(&m, LS_EINVAL);

  uint8_t hash[LS_SHA256_LEN] = {0};
  ls_msg_file_entry files[2] = {{.path = "f", .size = 2, .chunk_count = 1, .sha256 = hash},
                                {.path = "f", .size = 1, .chunk_count = 1, .sha256 = hash}};
  m = (ls_msg){.type = LS_MSG_GAME_FILES,
               .game_files = {.id = "g", .version = "1", .chunk_size = LS_CHUNK_SIZE,
                              .file_count = 2, .files = files}};
  expect_encode_fails(&m, LS_EINVAL); /* duplicate path */
  files[1].path = "f/g";
  expect_encode_fails(&m, LS_EINVAL); /* f is a file and a directory */
  files[1].path = "g";
  files[1].chunk_count = 2;
  expect_encode_fails(&m, LS_EINVAL); /* hash count */
  files[1].chunk_count = 1;
  files[1].sha256 = NULL;
  expect_encode_fails(&m, LS_EINVAL);
  files[1].sha256 = hash;
  m.game_files.chunk_size = 4096;
  expect_encode_fails(&m, LS_EINVAL);
  m.game_files.chunk_size = LS_CHUNK_SIZE;
  m.game_files.files = NULL;
  expect_encode_fails(&m, LS_EINVAL);
  m.game_files.files = files;
  char *json;
  size_t len;
  ls_diag diag;
  assert_int_equal(ls_msg_encode(&m, &json, &len, &diag), LS_OK);
  free(json);

  ls_msg_game_info games[2] = {{.id = "a", .name = "A", .version = "1"},
                               {.id = "a", .name = "B", .version = "1"}};
  m = (ls_msg){.type = LS_MSG_GAME_LIST, .game_list = {.count = 2, .games = games}};
  expect_encode_fails(&m, LS_EINVAL);
  games[1].id = "b";
  games[1].version = "";
  expect_encode_fails(&m, LS_EINVAL);
  m = (ls_msg){.type = LS_MSG_INVALID_REQUEST, .invalid = {.reason = NULL}};
  expect_encode_fails(&m, LS_EINVAL);
  /* two files of 2^53 - 1 bytes: over the total (refused before hashes are read) */
  uint64_t max_chunks = ls_proto_chunk_count(LS_PROTO_MAX_INT, LS_CHUNK_SIZE);
  ls_msg_file_entry whoppers[2] = {
    {.path = "a", .size = LS_PROTO_MAX_INT, .chunk_count = max_chunks, .sha256 = hash},
    {.path = "b", .size = LS_PROTO_MAX_INT, .chunk_count = max_chunks, .sha256 = hash}};
  m = (ls_msg){.type = LS_MSG_GAME_FILES,
               .game_files = {.id = "g", .version = "1", .chunk_size = LS_CHUNK_SIZE,
                              .file_count = 2, .files = whoppers}};
  expect_encode_fails(&m, LS_EINVAL);
}

static void test_encoder_refuses_oversized(void **state)
{
  (void)state;
  /* 256 GiB: 262144 hashes of 67 bytes each make a body over 16 MiB */
  size_t count = 262144;
  uint8_t *hashes = calloc(count, LS_SHA256_LEN);
  assert_non_null(hashes);
  ls_msg_file_entry file = {.path = "huge.eti", .size = (uint64_t)count * LS_CHUNK_SIZE,
                            .chunk_count = count, .sha256 = hashes};
  ls_msg m = {.type = LS_MSG_GAME_FILES,
              .game_files = {.id = "g", .version = "1", .chunk_size = LS_CHUNK_SIZE,
                             .file_count = 1, .files = &file}};
  uint8_t *frame = (uint8_t *)"x";
  size_t len = 1;
  ls_diag diag;
  assert_int_equal(ls_msg_encode_frame(&m, &frame, &len, &diag), LS_ETOOBIG);
  assert_null(frame);
  assert_int_equal(len, 0);
  /* just under the limit still works */
  file.chunk_count = count = 250000;
  file.size = (uint64_t)count * LS_CHUNK_SIZE;
  assert_int_equal(ls_msg_encode_frame(&m, &frame, &len, &diag), LS_OK);
  assert_true(len - 4 <= LS_PROTO_MAX_RESPONSE_FRAME);
  ls_msg back;
  assert_int_equal(ls_msg_decode(frame + 4, len - 4, LS_DIR_RESPONSE, &back, &diag), LS_OK);
  assert_true(ls_msg_equal(&m, &back));
  ls_msg_clear(&back);
  free(frame);
  free(hashes);
}

/* -------------------------------------------------------------------------- */
/* Frame reader                                                               */

/* Three frames (requests) followed by raw bytes that are not ours. */
static size_t build_stream(uint8_t *buf, size_t cap, size_t *frame_ends)
{
  size_t pos = 0;
  for (size_t i = 0; i < 3; i++) {
    ls_msg msg;
    ls_diag diag;
    expect_accepted(LS_DIR_REQUEST, SAMPLES[3 + i].json, &msg);
    uint8_t *frame;
    size_t len;
    assert_int_equal(ls_msg_encode_frame(&msg, &frame, &len, &diag), LS_OK);
    assert_true(pos + len <= cap);
    memcpy(buf + pos, frame, len);
    pos += len;
    frame_ends[i] = pos;
    free(frame);
    ls_msg_clear(&msg);
  }
  memcpy(buf + pos, "RAWBYTES", 8);
  return pos + 8;
}

/* Feeds in pieces of `step` bytes; checks each frame decodes as expected. */
static void read_frames(const uint8_t *buf, size_t len, size_t step, const size_t *ends)
{
  ls_frame_reader reader;
  ls_frame_reader_init(&reader, LS_DIR_REQUEST);
  size_t pos = 0, frames = 0;
  ls_diag diag;
  while (frames < 3) {
    size_t n = step < len - pos ? step : len - pos;
    size_t used;
    int rc = ls_frame_reader_feed(&reader, buf + pos, n, &used, &diag);
    assert_true(rc == 0 || rc == 1);
    pos += used;
    if (rc == 0) {
      assert_int_equal(used, n);
      assert_null(ls_frame_reader_body(&reader, NULL));
      continue;
    }
    assert_int_equal(pos, ends[frames]);
    ls_msg msg, want;
    assert_int_equal(ls_frame_reader_decode(&reader, &msg, &diag), LS_OK);
    expect_accepted(LS_DIR_REQUEST, SAMPLES[3 + frames].json, &want);
    assert_true(ls_msg_equal(&msg, &want));
    ls_msg_clear(&msg);
    ls_msg_clear(&want);
    frames++;
  }
  assert_int_equal(ls_frame_reader_finish(&reader, &diag), LS_OK);
  assert_memory_equal(buf + pos, "RAWBYTES", 8); /* left to the caller */
  assert_int_equal(len - pos, 8);
  ls_frame_reader_free(&reader);
}

static void test_reader_pieces(void **state)
{
  (void)state;
  uint8_t buf[1024];
  size_t ends[3];
  size_t len = build_stream(buf, sizeof buf, ends);
  read_frames(buf, len, len, ends); /* all at once */
  read_frames(buf, len, 1, ends);   /* one byte at a time */
  read_frames(buf, len, 3, ends);
  read_frames(buf, len, 7, ends);
}

static void test_reader_file_data(void **state)
{
  (void)state;
  ls_msg hdr = {.type = LS_MSG_FILE_DATA,
                .range = {.id = "g", .path = "f", .offset = 0, .length = 5}};
  uint8_t *frame;
  size_t len, used;
  ls_diag diag;
  assert_int_equal(ls_msg_encode_frame(&hdr, &frame, &len, &diag), LS_OK);
  uint8_t stream[256];
  memcpy(stream, frame, len);
  memcpy(stream + len, "hello", 5);
  ls_frame_reader reader;
  ls_frame_reader_init(&reader, LS_DIR_RESPONSE);
  assert_int_equal(ls_frame_reader_feed(&reader, stream, len + 5, &used, &diag), 1);
  assert_int_equal(used, len);
  ls_msg msg;
  assert_int_equal(ls_frame_reader_decode(&reader, &msg, &diag), LS_OK);
  assert_true(ls_msg_equal(&msg, &hdr));
  assert_memory_equal(stream + used, "hello", msg.range.length);
  ls_msg_clear(&msg);
  ls_frame_reader_free(&reader);
  free(frame);
}

static void test_reader_refuses_bad_lengths(void **state)
{
  (void)state;
  ls_frame_reader reader;
  size_t used;
  ls_diag diag;
  /* a request frame over 64 KiB fails on its 4th length byte */
  ls_frame_reader_init(&reader, LS_DIR_REQUEST);
  assert_int_equal(ls_frame_reader_feed(&reader, "\x00\x01", 2, &used, &diag), 0);
  assert_int_equal(ls_frame_reader_feed(&reader, "\x00\x01{}", 4, &used, &diag), LS_ETOOBIG);
  assert_int_equal(used, 2);
  assert_string_equal(diag.text, "frame of 65537 bytes exceeds the limit of 65536");
  /* the error is final */
  assert_int_equal(ls_frame_reader_feed(&reader, "{}", 2, &used, &diag), LS_ETOOBIG);
  assert_int_equal(used, 0);
  assert_int_equal(ls_frame_reader_finish(&reader, &diag), LS_ETOOBIG);
  ls_frame_reader_free(&reader);
  /* exactly 64 KiB is fine for a request */
  ls_frame_reader_init(&reader, LS_DIR_REQUEST);
  assert_int_equal(ls_frame_reader_feed(&reader, "\x00\x01\x00\x00", 4, &used, &diag), 0);
  ls_frame_reader_free(&reader);
  /* responses may be up to 16 MiB */
  ls_frame_reader_init(&reader, LS_DIR_RESPONSE);
  assert_int_equal(ls_frame_reader_feed(&reader, "\x00\x01\x00\x01", 4, &used, &diag), 0);
  ls_frame_reader_free(&reader);
  ls_frame_reader_init(&reader, LS_DIR_RESPONSE);
  assert_int_equal(ls_frame_reader_feed(&reader, "\x01\x00\x00\x00", 4, &used, &diag), 0);
  ls_frame_reader_free(&reader);
  ls_frame_reader_init(&reader, LS_DIR_RESPONSE);
  assert_int_equal(ls_frame_reader_feed(&reader, "\x01\x00\x00\x01", 4, &used, &diag),
                   LS_ETOOBIG);
  ls_frame_reader_free(&reader);
  ls_frame_reader_init(&reader, LS_DIR_RESPONSE);
  assert_int_equal(ls_frame_reader_feed(&reader, "\xff\xff\xff\xff", 4, &used, &diag),
                   LS_ETOOBIG);
  ls_frame_reader_free(&reader);
  /* a lowered limit: the answer to a Ping or a ListGames is smaller */
  assert_int_equal(ls_proto_response_limit(LS_MSG_PING), LS_PROTO_MAX_SMALL_FRAME);
  assert_int_equal(ls_proto_response_limit(LS_MSG_LIST_GAMES), LS_PROTO_MAX_GAME_LIST_FRAME);
  assert_int_equal(ls_proto_response_limit(LS_MSG_GET_GAME), LS_PROTO_MAX_RESPONSE_FRAME);
  ls_frame_reader_init(&reader, LS_DIR_RESPONSE);
  ls_frame_reader_set_limit(&reader, LS_PROTO_MAX_SMALL_FRAME);
  ls_frame_reader_set_limit(&reader, LS_PROTO_MAX_RESPONSE_FRAME); /* never raised */
  assert_int_equal(ls_frame_reader_feed(&reader, "\x00\x01\x00\x00", 4, &used, &diag), 0);
  ls_frame_reader_free(&reader); /* keeps the limit */
  assert_int_equal(ls_frame_reader_feed(&reader, "\x00\x01\x00\x01", 4, &used, &diag),
                   LS_ETOOBIG);
  ls_frame_reader_free(&reader);
  /* zero length */
  ls_frame_reader_init(&reader, LS_DIR_REQUEST);
  assert_int_equal(ls_frame_reader_feed(&reader, "\0\0\0\0{}", 6, &used, &diag), LS_EFORMAT);
  assert_int_equal(used, 4);
  assert_string_equal(diag.text, "empty frame");
  ls_frame_reader_free(&reader);
}

static void test_reader_buffers_only_what_arrived(void **state)
{
  (void)state;
  ls_frame_reader reader;
  size_t used;
  ls_diag diag;
  ls_frame_reader_init(&reader, LS_DIR_RESPONSE);
  assert_int_equal(ls_frame_reader_feed(&reader, "\x01\x00\x00\x00{\"type\"", 11, &used, &diag),
                   0);
  assert_true(reader.body_cap <= 4096); /* not 16 MiB for 7 bytes */
  static uint8_t junk[100000];
  memset(junk, ' ', sizeof junk);
  assert_int_equal(ls_frame_reader_feed(&reader, junk, sizeof junk, &used, &diag), 0);
  assert_true(reader.body_cap <= 2 * (sizeof junk + 7));
  ls_frame_reader_free(&reader);
  /* a small frame never gets more than its length */
  ls_frame_reader_init(&reader, LS_DIR_REQUEST);
  assert_int_equal(ls_frame_reader_feed(&reader, "\0\0\0\x02{}", 6, &used, &diag), 1);
  assert_int_equal(reader.body_cap, 2);
  ls_frame_reader_free(&reader);
}

static void test_reader_finish_and_state(void **state)
{
  (void)state;
  ls_frame_reader reader;
  size_t used;
  ls_diag diag;
  ls_msg msg;
  ls_frame_reader_init(&reader, LS_DIR_REQUEST);
  assert_int_equal(ls_frame_reader_finish(&reader, &diag), LS_OK); /* nothing read */
  assert_int_equal(ls_frame_reader_decode(&reader, &msg, &diag), LS_ESTATE);
  assert_int_equal(ls_frame_reader_feed(&reader, "\0\0", 2, &used, &diag), 0);
  assert_int_equal(ls_frame_reader_finish(&reader, &diag), LS_EPROTO); /* in the length */
  assert_string_equal(diag.text, "truncated frame");
  assert_int_equal(ls_frame_reader_feed(&reader, "\0\x0f{\"type\"", 9, &used, &diag), 0);
  assert_int_equal(ls_frame_reader_finish(&reader, &diag), LS_EPROTO); /* in the body */
  assert_int_equal(ls_frame_reader_feed(&reader, ":\"Ping\"}", 8, &used, &diag), 1);
  assert_int_equal(ls_frame_reader_finish(&reader, &diag), LS_OK);
  assert_int_equal(ls_frame_reader_decode(&reader, &msg, &diag), LS_OK);
  assert_int_equal(msg.type, LS_MSG_PING);
  /* a frame that is not a valid message: the reader is fine, decode refuses */
  assert_int_equal(ls_frame_reader_feed(&reader, "\0\0\0\x02[]", 6, &used, &diag), 1);
  assert_int_equal(ls_frame_reader_decode(&reader, &msg, &diag), LS_EFORMAT);
  /* a response frame in a request reader */
  assert_int_equal(ls_frame_reader_feed(&reader, "\0\0\0\x0f{\"type\":\"Pong\"}", 19, &used,
                                        &diag), 1);
  assert_int_equal(ls_frame_reader_decode(&reader, &msg, &diag), LS_EPROTO);
  assert_int_equal(ls_frame_reader_feed(&reader, NULL, 0, &used, &diag), 0);
  assert_int_equal(used, 0);
  ls_frame_reader_free(&reader);
  ls_frame_reader_free(&reader); /* twice is fine */
}

/* -------------------------------------------------------------------------- */
/* Seed corpus replay: the fuzz oracle over every seed, no fuzzer runtime     */

static size_t replay_dir(const char *dir)
{
  DIR *d = opendir(dir);
  if (!d)
    fail_msg("cannot open the seed corpus %s", dir);
  size_t count = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    char path[4096 + 256 + 2];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    assert_true(feof(f));
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    count++;
  }
  closedir(d);
  return count;
}

static void test_seed_corpus_replay(void **state)
{
  (void)state;
  const char *src = getenv("LS_SOURCE_DIR");
  if (!src)
    src = ".";
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/proto", src);
  size_t count = replay_dir(dir);
  assert_true(count >= 40);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_samples_round_trip),
    cmocka_unit_test(test_every_type_has_a_sample),
    cmocka_unit_test(test_decoded_fields),
    cmocka_unit_test(test_built_messages_round_trip),
    cmocka_unit_test(test_encode_frame_prefix),
    cmocka_unit_test(test_every_field_missing_or_mistyped),
    cmocka_unit_test(test_unknown_fields_tolerated),
    cmocka_unit_test(test_type_and_direction),
    cmocka_unit_test(test_json_level_refusals),
    cmocka_unit_test(test_embedded_nul_refused),
    cmocka_unit_test(test_invalid_utf8_refused),
    cmocka_unit_test(test_hidden_controls_refused),
    cmocka_unit_test(test_message_size_limits),
    cmocka_unit_test(test_ranges),
    cmocka_unit_test(test_hello_fields),
    cmocka_unit_test(test_unsafe_ids),
    cmocka_unit_test(test_copy_is_deep),
    cmocka_unit_test(test_copy_of_borrowed_strings),
    cmocka_unit_test(test_paths),
    cmocka_unit_test(test_deep_manifest_path_refused),
    cmocka_unit_test(test_game_files_rules),
    cmocka_unit_test(test_game_list_rules),
    cmocka_unit_test(test_reason_rules),
    cmocka_unit_test(test_encoder_refuses_invalid),
    cmocka_unit_test(test_encoder_refuses_oversized),
    cmocka_unit_test(test_reader_pieces),
    cmocka_unit_test(test_reader_file_data),
    cmocka_unit_test(test_reader_refuses_bad_lengths),
    cmocka_unit_test(test_reader_buffers_only_what_arrived),
    cmocka_unit_test(test_reader_finish_and_state),
    cmocka_unit_test(test_seed_corpus_replay),
  };
  return ls_run_tests(tests, NULL, NULL);
}
