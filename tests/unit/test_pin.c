/* Owns the tests of version pins (download/pin.c): the manifest digest is
 * canonical (the order and JSON encoding of a file list do not change it,
 * every path, size and chunk hash does), and a manifest is checked against
 * the catalog's pin for its version. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testrun.h"

#include "download/pin.h"

#include <lanspread/catalog.h>

#include <stdio.h>
#include <string.h>

#define MIB 1048576u

/* Two chunks of a.bin, one of version.ini, none of empty. */
static uint8_t hashes[3][32];

typedef struct sample {
  ls_msg msg;
  ls_msg_file_entry files[3];
} sample;

static void make_sample(sample *s)
{
  for (int i = 0; i < 3; i++)
    memset(hashes[i], 0x11 * (i + 1), 32);
  static uint8_t two[64];
  memcpy(two, hashes[0], 32);
  memcpy(two + 32, hashes[1], 32);
  s->files[0] = (ls_msg_file_entry){"data/a.bin", MIB + 5, 2, two};
  s->files[1] = (ls_msg_file_entry){"version.ini", 4, 1, hashes[2]};
  s->files[2] = (ls_msg_file_entry){"empty", 0, 0, NULL};
  s->msg = (ls_msg){.type = LS_MSG_GAME_FILES};
  s->msg.game_files = (ls_msg_game_files){"g", "2.0", MIB, 3, s->files};
}

static void digest_of(const ls_msg *m, uint8_t out[32])
{
  assert_int_equal(ls_game_files_pin_digest(&m->game_files, out), LS_OK);
}

/* The digest of the decoded frame text. */
static void digest_of_text(const char *json, uint8_t out[32])
{
  ls_msg m;
  ls_diag d;
  int rc = ls_msg_decode(json, strlen(json), LS_DIR_RESPONSE, &m, &d);
  if (rc != LS_OK)
    fail_msg("decode: %s", d.text);
  digest_of(&m, out);
  ls_msg_clear(&m);
}

#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "2222222222222222222222222222222222222222222222222222222222222222"

static void test_json_order_and_whitespace_do_not_count(void **state)
{
  (void)state;
  uint8_t a[32], b[32], c[32];
  digest_of_text("{\"type\":\"GameFiles\",\"id\":\"g\",\"version\":\"1\",\"chunk_size\":1048576,"
                 "\"files\":[{\"path\":\"x\",\"size\":3,\"sha256\":[\"" H1 "\"]},"
                 "{\"path\":\"version.ini\",\"size\":2,\"sha256\":[\"" H2 "\"]}]}", a);
  digest_of_text("{ \"files\" : [ {\"sha256\":[\"" H2 "\"], \"size\":2, \"path\":\"version.ini\"},\n"
                 "  {\"size\":3,\"path\":\"x\",\"sha256\":[\"" H1 "\"], \"extra\": 1} ],\n"
                 " \"chunk_size\":1048576, \"version\":\"1\", \"id\":\"g\", \"type\":\"GameFiles\"}", b);
  digest_of_text("{\"type\":\"GameFiles\",\"id\":\"g\",\"version\":\"1\",\"chunk_size\":1048576,"
                 "\"files\":[{\"path\":\"\\u0078\",\"size\":3,\"sha256\":[\"" H1 "\"]},"
                 "{\"path\":\"version.ini\",\"size\":2,\"sha256\":[\"" H2 "\"]}]}", c);
  assert_memory_equal(a, b, 32);
  assert_memory_equal(a, c, 32);
}

static void test_file_order_does_not_count(void **state)
{
  (void)state;
  sample s;
  make_sample(&s);
  uint8_t a[32], b[32];
  digest_of(&s.msg, a);
  ls_msg_file_entry t = s.files[0];
  s.files[0] = s.files[2];
  s.files[2] = t;
  digest_of(&s.msg, b);
  assert_memory_equal(a, b, 32);
}

/* Every change of a path, a size or a chunk hash changes the digest. */
static void test_every_field_counts(void **state)
{
  (void)state;
  sample s;
  make_sample(&s);
  uint8_t base[32], d[32];
  digest_of(&s.msg, base);

  s.files[2].path = "empty2";
  digest_of(&s.msg, d);
  assert_memory_not_equal(base, d, 32);
  make_sample(&s);

  s.files[0].size = MIB + 6; /* same chunk count */
  digest_of(&s.msg, d);
  assert_memory_not_equal(base, d, 32);
  make_sample(&s);

  uint8_t other[64];
  memcpy(other, s.files[0].sha256, 64);
  other[63] ^= 1;
  s.files[0].sha256 = other;
  digest_of(&s.msg, d);
  assert_memory_not_equal(base, d, 32);
  make_sample(&s);

  s.msg.game_files.file_count = 2; /* a file left out */
  digest_of(&s.msg, d);
  assert_memory_not_equal(base, d, 32);
  make_sample(&s);

  digest_of(&s.msg, d); /* and back: the same again */
  assert_memory_equal(base, d, 32);
}

static void test_duplicate_paths_are_refused(void **state)
{
  (void)state;
  ls_storage_file f[2] = {{"a", 0, NULL}, {"a", 0, NULL}};
  uint8_t d[32];
  assert_int_equal(ls_manifest_pin_digest(MIB, f, 2, d), LS_EINVAL);
}

static void test_text_form(void **state)
{
  (void)state;
  uint8_t d[32];
  for (int i = 0; i < 32; i++)
    d[i] = (uint8_t)(i * 8 + 1);
  char text[LS_PIN_TEXT_LEN + 1];
  ls_pin_text(d, text);
  assert_int_equal(strlen(text), 71);
  assert_string_equal(text, "sha256:0109111921293139414951596169717981899199a1a9b1b9c1c9d1d9e1e9f1f9");
}

/* A catalog pinning the sample's digest for 2.0 and another for 3.0. */
static ls_catalog *pinned_catalog(const uint8_t digest[32])
{
  char text[LS_PIN_TEXT_LEN + 1], json[512];
  ls_pin_text(digest, text);
  snprintf(json, sizeof json,
           "{\"games\":[{\"id\":\"g\",\"name\":\"G\",\"versions\":{\"2.0\":\"%s\",\"3.0\":"
           "\"sha256:" H1 "\"}}]}", text);
  ls_catalog *c = NULL;
  ls_diag diag;
  assert_int_equal(ls_catalog_load_buffer(json, strlen(json), "t", &c, &diag), LS_OK);
  return c;
}

static void test_check_against_the_catalog(void **state)
{
  (void)state;
  sample s;
  make_sample(&s);
  uint8_t d[32];
  digest_of(&s.msg, d);
  ls_catalog *c = pinned_catalog(d);
  const ls_catalog_game *g = ls_catalog_find(c, "g");
  ls_diag diag = {{0}};
  assert_int_equal(ls_pin_check(g, &s.msg.game_files, "ab", "seeder", &diag), LS_OK);

  s.files[1].size = 5; /* another version.ini */
  assert_int_equal(ls_pin_check(g, &s.msg.game_files, "abcdef", "evil", &diag), LS_EPIN);
  assert_non_null(strstr(diag.text, "g 2.0"));
  assert_non_null(strstr(diag.text, "evil"));
  assert_non_null(strstr(diag.text, "abcdef"));
  assert_non_null(strstr(diag.text, "not the one the catalog pins"));

  s.msg.game_files.version = "3.0"; /* pinned to another digest */
  assert_int_equal(ls_pin_check(g, &s.msg.game_files, "ab", NULL, &diag), LS_EPIN);
  s.msg.game_files.version = "2.1"; /* not pinned */
  assert_int_equal(ls_pin_check(g, &s.msg.game_files, "ab", NULL, &diag), LS_OK);
  ls_catalog_free(c);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_json_order_and_whitespace_do_not_count),
    cmocka_unit_test(test_file_order_does_not_count),
    cmocka_unit_test(test_every_field_counts),
    cmocka_unit_test(test_duplicate_paths_are_refused),
    cmocka_unit_test(test_text_form),
    cmocka_unit_test(test_check_against_the_catalog),
  };
  return ls_run_tests(tests, NULL, NULL);
}
