/* Owns the tests of the game catalog (catalog/catalog.c) and of the JSON
 * position locator it reports errors with (core/json_locate.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testrun.h"

#include "testutil.h"

#include <lanspread/catalog.h>

#include "core/json_locate.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LIMIT ((size_t)16 << 20)

/* ---- helpers ---------------------------------------------------------- */

static void assert_contains(const char *text, const char *part)
{
  if (!strstr(text, part))
    fail_msg("\"%s\" does not contain \"%s\"", text, part);
}

static ls_catalog *load_ok(const char *json)
{
  ls_catalog *c = NULL;
  ls_diag d = {{0}};
  int rc = ls_catalog_load_buffer(json, strlen(json), "t.json", &c, &d);
  if (rc != LS_OK)
    fail_msg("load failed (%d): %s", rc, d.text);
  assert_non_null(c);
  return c;
}

/* Loads json as "t.json" and expects the refusal code and, in the diag, each
 * of the given fragments (NULL-terminated). */
static void expect_refused(const char *json, int code, ...)
{
  ls_catalog *c = (ls_catalog *)&c; /* anything but NULL: must be reset */
  ls_diag d = {{0}};
  assert_int_equal(ls_catalog_load_buffer(json, strlen(json), "t.json", &c, &d), code);
  assert_null(c);
  va_list ap;
  va_start(ap, code);
  for (const char *part; (part = va_arg(ap, const char *)) != NULL;)
    assert_contains(d.text, part);
  va_end(ap);
}

/* A catalog whose second game carries `field` alone on line 5, from
 * column 7:
 *   1 {
 *   2   "games": [
 *   3     {"id": "ok", "name": "Fine"}, {
 *   4       "id": "x", "name": "X",
 *   5       FIELD
 *   6     }
 *   7   ]
 *   8 }                                                                      */
static const char *doc_with_field(const char *field)
{
  return t_path("{\n  \"games\": [\n    {\"id\": \"ok\", \"name\": \"Fine\"}, {\n"
                "      \"id\": \"x\", \"name\": \"X\",\n      %s\n    }\n  ]\n}\n",
                field);
}

/* A one-game catalog {"games": [{"id": ID, "name": "x"}]}: the id value
 * starts on line 1, column 19. */
static const char *doc_with_id(const char *id_json)
{
  return t_path("{\"games\": [{\"id\": %s, \"name\": \"x\"}]}", id_json);
}

/* ---- ls_catalog_id_is_safe -------------------------------------------- */

static void test_id_is_safe(void **state)
{
  (void)state;
  const char *good[] = {"a", "Z", "0", "aoe2", "cs1.6", "ut_2004", "red-alert-2", "a..b",
                        "a.", "9-._"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    if (!ls_catalog_id_is_safe(good[i]))
      fail_msg("\"%s\" should be safe", good[i]);
  const char *bad[] = {"", ".", "..", ".hidden", "-a", "_a", "a/b", "/a", "a\\b", "a b",
                       " a", "a\n", "é", "a:b", "a*", "a?"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (ls_catalog_id_is_safe(bad[i]))
      fail_msg("\"%s\" should be unsafe", bad[i]);
  assert_false(ls_catalog_id_is_safe(NULL));
  char id[80];
  memset(id, 'a', sizeof id);
  id[64] = '\0';
  assert_true(ls_catalog_id_is_safe(id)); /* 64: the longest */
  id[64] = 'a';
  id[65] = '\0';
  assert_false(ls_catalog_id_is_safe(id));
}

/* ---- the builtin catalog ---------------------------------------------- */

static void test_builtin_loads(void **state)
{
  (void)state;
  ls_catalog *c = NULL;
  ls_diag d = {{0}};
  assert_int_equal(ls_catalog_load_builtin(&c, &d), LS_OK);
  size_t n = ls_catalog_count(c);
  assert_true(n >= 30);
  for (size_t i = 0; i < n; i++) {
    const ls_catalog_game *g = ls_catalog_at(c, i);
    assert_non_null(g);
    assert_true(ls_catalog_id_is_safe(g->id));
    assert_non_null(g->name);
    assert_true(g->name[0] != '\0');
    assert_non_null(g->description);
    assert_non_null(g->genre);
    assert_true(g->max_players >= 1 && g->max_players <= 1024);
    if (i > 0)
      assert_true(strcmp(ls_catalog_at(c, i - 1)->id, g->id) < 0);
    assert_ptr_equal(ls_catalog_find(c, g->id), g);
  }
  assert_null(ls_catalog_at(c, n));
  const ls_catalog_game *aoe2 = ls_catalog_find(c, "aoe2");
  assert_non_null(aoe2);
  assert_string_equal(aoe2->name, "Age of Empires II: The Age of Kings");
  assert_non_null(ls_catalog_find(c, "cs16"));
  assert_non_null(ls_catalog_find(c, "ut2004"));
  assert_null(ls_catalog_find(c, "nope"));
  assert_null(ls_catalog_find(c, ""));
  ls_catalog_free(c);
}

/* The shipped file is the embedded one: both load to the same games. */
static void test_data_file_matches_builtin(void **state)
{
  (void)state;
  const char *src = getenv("LS_SOURCE_DIR");
  if (!src)
    ls_skip("LS_SOURCE_DIR is not set (CTest sets it)");
  ls_catalog *file = NULL, *builtin = NULL;
  ls_diag d = {{0}};
  assert_int_equal(ls_catalog_load_file(t_path("%s/data/catalog.json", src), &file, &d), LS_OK);
  assert_int_equal(ls_catalog_load_builtin(&builtin, &d), LS_OK);
  assert_int_equal(ls_catalog_count(file), ls_catalog_count(builtin));
  for (size_t i = 0; i < ls_catalog_count(file); i++)
    assert_string_equal(ls_catalog_at(file, i)->id, ls_catalog_at(builtin, i)->id);
  ls_catalog_free(file);
  ls_catalog_free(builtin);
}

/* ---- valid catalogs --------------------------------------------------- */

static void test_valid_with_optional_and_unknown_fields(void **state)
{
  (void)state;
  ls_catalog *c = load_ok(
    "{\"version\": 3, \"games\": [\n"
    "  {\"id\": \"zeta\", \"name\": \"Zeta\", \"description\": \"Z game\",\n"
    "   \"genre\": \"RTS\", \"launch\": \"bin/zeta.exe\", \"max_players\": 1024,\n"
    "   \"size\": 5000000000, \"future\": {\"id\": \"nested\", \"list\": [1, {}]},\n"
    "   \"tags\": [\"x\", \"y\"]},\n"
    "  {\"id\": \"Alpha.1\", \"name\": \"Alpha \\u00e9\", \"max_players\": 1, \"size\": 0},\n"
    "  {\"id\": \"mid_dle-2\", \"name\": \"Middle\", \"launch\": \"./run.sh\"}\n"
    "], \"extra\": null}");
  assert_int_equal(ls_catalog_count(c), 3);
  const ls_catalog_game *a = ls_catalog_at(c, 0), *m = ls_catalog_at(c, 1),
                        *z = ls_catalog_at(c, 2);
  assert_string_equal(a->id, "Alpha.1");
  assert_string_equal(a->name, "Alpha \xc3\xa9");
  assert_null(a->description);
  assert_null(a->genre);
  assert_null(a->launch);
  assert_int_equal(a->max_players, 1);
  assert_int_equal(a->size, 0);
  assert_string_equal(m->id, "mid_dle-2");
  assert_string_equal(m->launch, "./run.sh");
  assert_int_equal(m->max_players, 0);
  assert_string_equal(z->id, "zeta");
  assert_string_equal(z->description, "Z game");
  assert_string_equal(z->genre, "RTS");
  assert_string_equal(z->launch, "bin/zeta.exe");
  assert_int_equal(z->max_players, 1024);
  assert_true(z->size == 5000000000ULL); /* not truncated to 32 bits */
  assert_ptr_equal(ls_catalog_find(c, "zeta"), z);
  assert_ptr_equal(ls_catalog_find(c, "Alpha.1"), a);
  assert_null(ls_catalog_find(c, "alpha.1"));
  assert_null(ls_catalog_find(c, NULL));
  ls_catalog_free(c);
}

static void test_empty_games_array(void **state)
{
  (void)state;
  ls_catalog *c = load_ok("{\"games\": []}");
  assert_int_equal(ls_catalog_count(c), 0);
  assert_null(ls_catalog_at(c, 0));
  assert_null(ls_catalog_find(c, "aoe2"));
  ls_catalog_free(c);
  ls_catalog_free(NULL);
  assert_int_equal(ls_catalog_count(NULL), 0);
}

static void test_size_at_int64_max(void **state)
{
  (void)state;
  ls_catalog *c = load_ok("{\"games\": [{\"id\": \"a\", \"name\": \"A\", "
                          "\"size\": 9223372036854775807}]}");
  assert_true(ls_catalog_at(c, 0)->size == 9223372036854775807ULL);
  ls_catalog_free(c);
}

/* Many games in reverse order: sorted on load, every one found. */
static void test_many_games_sorted_and_found(void **state)
{
  (void)state;
  enum { N = 2000 };
  size_t cap = (size_t)N * 48 + 32, o = 0;
  char *json = malloc(cap);
  assert_non_null(json);
  o += (size_t)snprintf(json + o, cap - o, "{\"games\": [");
  for (int i = N - 1; i >= 0; i--)
    o += (size_t)snprintf(json + o, cap - o, "{\"id\": \"g%05d\", \"name\": \"G\"}%s", i,
                          i ? "," : "");
  snprintf(json + o, cap - o, "]}");
  ls_catalog *c = load_ok(json);
  free(json);
  assert_int_equal(ls_catalog_count(c), N);
  for (int i = 0; i < N; i++) {
    char id[16];
    snprintf(id, sizeof id, "g%05d", i);
    const ls_catalog_game *g = ls_catalog_find(c, id);
    assert_non_null(g);
    assert_ptr_equal(g, ls_catalog_at(c, (size_t)i));
  }
  assert_null(ls_catalog_find(c, "g02000"));
  assert_null(ls_catalog_find(c, "a"));
  assert_null(ls_catalog_find(c, "z"));
  ls_catalog_free(c);
}

/* ---- semantic refusals, with positions -------------------------------- */

static void test_duplicate_id(void **state)
{
  (void)state;
  expect_refused("{\"games\": [\n"
                 "    {\"id\": \"aoe2\", \"name\": \"A\"},\n"
                 "    {\"id\": \"cs16\", \"name\": \"B\"},\n"
                 "    {\"id\": \"ut2004\", \"name\": \"C\"},\n"
                 "    {\"id\": \"aoe2\", \"name\": \"D\"}\n"
                 "]}",
                 LS_EFORMAT, "t.json:5:12: duplicate id \"aoe2\"",
                 "games[0] at line 2 column 12", NULL);
}

/* Of several duplicates, the one repeated first in the file is reported,
 * even when its id sorts later. */
static void test_duplicate_id_reports_earliest(void **state)
{
  (void)state;
  expect_refused("{\"games\": [\n"
                 "  {\"id\": \"b\", \"name\": \"1\"},\n"
                 "  {\"id\": \"a\", \"name\": \"2\"},\n"
                 "  {\"id\": \"b\", \"name\": \"3\"},\n"
                 "  {\"id\": \"b\", \"name\": \"4\"},\n"
                 "  {\"id\": \"a\", \"name\": \"5\"}\n"
                 "]}",
                 LS_EFORMAT, "t.json:4:10: duplicate id \"b\" in games[2]",
                 "games[0] at line 2 column 10", NULL);
}

static void test_unsafe_ids(void **state)
{
  (void)state;
  const char *bad[] = {"\".\"", "\"..\"", "\"a/b\"", "\"has space\"", "\"-x\"", "\"a\\\\b\"",
                       "\"\\u00e9\"",
                       "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    expect_refused(doc_with_id(bad[i]), LS_EFORMAT, "t.json:1:19: unsafe id", NULL);
  expect_refused(doc_with_id("\"a/b\""), LS_EFORMAT, "unsafe id \"a/b\"", NULL);
  expect_refused(doc_with_id("\"\""), LS_EFORMAT,
                 "t.json:1:19: games[0].id must not be empty", NULL);
  /* a NUL is refused by jansson itself, at its own position */
  expect_refused(doc_with_id("\"a\\u0000b\""), LS_EFORMAT, "t.json:1:28:", "\\u0000", NULL);
}

static void test_wrong_types(void **state)
{
  (void)state;
  expect_refused(doc_with_id("42"), LS_EFORMAT,
                 "t.json:1:19: games[0].id must be a string, not an integer", NULL);
  expect_refused(doc_with_id("null"), LS_EFORMAT, "t.json:1:19: games[0].id must be a string, not null",
                 NULL);
  expect_refused(doc_with_field("\"description\": 7"), LS_EFORMAT,
                 "t.json:5:22: games[1].description must be a string, not an integer", NULL);
  expect_refused(doc_with_field("\"genre\": [\"RTS\"]"), LS_EFORMAT,
                 "t.json:5:16: games[1].genre must be a string, not an array", NULL);
  expect_refused(doc_with_field("\"launch\": {}"), LS_EFORMAT,
                 "t.json:5:17: games[1].launch must be a string, not an object", NULL);
  expect_refused(doc_with_field("\"max_players\": \"eight\""), LS_EFORMAT,
                 "t.json:5:22: games[1].max_players must be an integer, not a string", NULL);
  expect_refused(doc_with_field("\"max_players\": 8.0"), LS_EFORMAT,
                 "t.json:5:22: games[1].max_players must be an integer, not a real number",
                 NULL);
  expect_refused(doc_with_field("\"size\": true"), LS_EFORMAT,
                 "t.json:5:15: games[1].size must be an integer, not a boolean", NULL);
  expect_refused(doc_with_field("\"size\": 1e3"), LS_EFORMAT,
                 "t.json:5:15: games[1].size must be an integer, not a real number", NULL);
  /* name is on line 4, column 26 */
  expect_refused("{\n  \"games\": [\n    {\"id\": \"ok\", \"name\": \"Fine\"}, {\n"
                 "      \"id\": \"x\", \"name\": false\n    }\n  ]\n}\n",
                 LS_EFORMAT, "t.json:4:26: games[1].name must be a string, not a boolean",
                 NULL);
}

static void test_integer_ranges(void **state)
{
  (void)state;
  expect_refused(doc_with_field("\"max_players\": 0"), LS_EFORMAT,
                 "t.json:5:22: games[1].max_players must be between 1 and 1024, not 0", NULL);
  expect_refused(doc_with_field("\"max_players\": 1025"), LS_EFORMAT,
                 "t.json:5:22: games[1].max_players must be between 1 and 1024, not 1025",
                 NULL);
  expect_refused(doc_with_field("\"max_players\": 4294967297"), LS_EFORMAT,
                 "t.json:5:22:", "not 4294967297", NULL); /* would be 1 if truncated */
  expect_refused(doc_with_field("\"size\": -1"), LS_EFORMAT,
                 "t.json:5:15: games[1].size must be between 0 and", "not -1", NULL);
  /* past int64: jansson refuses the number itself, at its last digit */
  expect_refused(doc_with_field("\"size\": 9223372036854775808"), LS_EFORMAT,
                 "t.json:5:33: too big integer", NULL);
}

static void test_missing_fields(void **state)
{
  (void)state;
  /* the position is the game object's '{' on line 3, column 35 */
  expect_refused("{\n  \"games\": [\n    {\"id\": \"ok\", \"name\": \"Fine\"}, {\n"
                 "      \"id\": \"x\"\n    }\n  ]\n}\n",
                 LS_EFORMAT, "t.json:3:35: games[1]: missing required field \"name\"", NULL);
  expect_refused("{\n  \"games\": [\n    {\"id\": \"ok\", \"name\": \"Fine\"}, {\n"
                 "      \"name\": \"x\", \"genre\": \"y\"\n    }\n  ]\n}\n",
                 LS_EFORMAT, "t.json:3:35: games[1]: missing required field \"id\"", NULL);
  expect_refused("{\"games\": [{\"id\": \"a\", \"name\": \"\"}]}", LS_EFORMAT,
                 "t.json:1:32: games[0].name must not be empty", NULL);
  /* a name peers would refuse (core/utf8.h's display rule) */
  expect_refused("{\"games\": [{\"id\": \"a\", \"name\": \"evil\\u202etxt.exe\"}]}", LS_EFORMAT,
                 "games[0].name: control character U+202E at byte 4", NULL);
}

static void test_unsafe_launch(void **state)
{
  (void)state;
  const char *bad[] = {"\"/usr/bin/game\"", "\"../game\"", "\"bin/../../game\"",
                       "\"bin/..\"", "\"bin//game\"", "\"bin/\"", "\"\"",
                       "\"bin\\\\game.exe\"", "\"C:\\\\game.exe\""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    expect_refused(doc_with_field(t_path("\"launch\": %s", bad[i])), LS_EFORMAT,
                   "t.json:5:17: unsafe launch path", NULL);
  expect_refused(doc_with_field("\"launch\": \"bin/\\u0000x\""), LS_EFORMAT, "t.json:5:",
                 "\\u0000", NULL);
  ls_catalog *c = load_ok(doc_with_field("\"launch\": \"bin/..x/game..exe\""));
  assert_string_equal(ls_catalog_find(c, "x")->launch, "bin/..x/game..exe");
  ls_catalog_free(c);
}

static void test_bad_structure(void **state)
{
  (void)state;
  expect_refused("  [1, 2]", LS_EFORMAT,
                 "t.json:1:3: the top level must be an object with a \"games\" array, not an "
                 "array", NULL);
  expect_refused("\n\n  {\"gamez\": []}", LS_EFORMAT,
                 "t.json:3:3: missing required field \"games\"", NULL);
  expect_refused("{\"name\": \"x\",\n \"games\": {\"id\": \"a\"}}", LS_EFORMAT,
                 "t.json:2:11: \"games\" must be an array, not an object", NULL);
  expect_refused("{\"games\": [{\"id\": \"a\", \"name\": \"A\"},\n  \"b\"]}", LS_EFORMAT,
                 "t.json:2:3: games[1] must be an object, not a string", NULL);
  expect_refused("{\"games\": [[]]}", LS_EFORMAT,
                 "t.json:1:12: games[0] must be an object, not an array", NULL);
}

/* Keys written with escapes are the same keys: the position is still found. */
static void test_escaped_keys_located(void **state)
{
  (void)state;
  expect_refused("{\"g\\u0061mes\": [{\"n\\\"x\": \"}]\\\"\", \"\\u0069d\": \"a b\", "
                 "\"name\": \"x\"}]}",
                 LS_EFORMAT, "t.json:1:45: unsafe id \"a b\"", NULL);
}

/* ---- syntax errors: jansson's own position ---------------------------- */

static void test_malformed_json(void **state)
{
  (void)state;
  expect_refused("{\"games\": [\n  {\"id\": \"a\", \"name\": \"A\"}", LS_EFORMAT,
                 "t.json:2:26: ']' expected near end of file", NULL);
  expect_refused("{\"games\": []} x", LS_EFORMAT, "t.json:1:15: end of file expected near 'x'",
                 NULL);
  expect_refused("{\"games\": [],\n \"games\": []}", LS_EFORMAT,
                 "t.json:2:8: duplicate object key near '\"games\"'", NULL);
  expect_refused("{\"games\": [{\"id\": \"a\", \"name\": \"A\", \"id\": \"b\"}]}", LS_EFORMAT,
                 "t.json:1:40: duplicate object key", NULL);
  expect_refused("{\"games\": [{\"id\": \"a\", \"name\": 'A'}]}", LS_EFORMAT,
                 "t.json:1:32: invalid token near '''", NULL);
  expect_refused("", LS_EFORMAT, "t.json:1:1: '[' or '{' expected near end of file", NULL);
  expect_refused("\"games\"", LS_EFORMAT, "t.json:1:7: '[' or '{' expected", NULL);
}

/* ---- files -------------------------------------------------------------- */

static void test_load_file_and_positions_name_it(void **state)
{
  (void)state;
  char *dir = t_tempdir();
  t_write(dir, "ok.json", "{\"games\": [{\"id\": \"b\", \"name\": \"B\"}, "
                          "{\"id\": \"a\", \"name\": \"A\"}]}");
  ls_catalog *c = NULL;
  ls_diag d = {{0}};
  assert_int_equal(ls_catalog_load_file(t_path("%s/ok.json", dir), &c, &d), LS_OK);
  assert_int_equal(ls_catalog_count(c), 2);
  assert_string_equal(ls_catalog_at(c, 0)->id, "a");
  ls_catalog_free(c);

  t_write(dir, "bad.json", "{\"games\": [\n  {\"id\": \"..\", \"name\": \"x\"}]}");
  c = (ls_catalog *)&c;
  assert_int_equal(ls_catalog_load_file(t_path("%s/bad.json", dir), &c, &d), LS_EFORMAT);
  assert_null(c);
  assert_contains(d.text, t_path("%s/bad.json:2:10: unsafe id \"..\"", dir));
}

static void test_symlinked_file_is_followed(void **state)
{
  (void)state;
  char *dir = t_tempdir();
  t_write(dir, "real.json", "{\"games\": [{\"id\": \"a\", \"name\": \"A\"}]}");
  t_symlink("real.json", dir, "link.json");
  ls_catalog *c = NULL;
  ls_diag d = {{0}};
  assert_int_equal(ls_catalog_load_file(t_path("%s/link.json", dir), &c, &d), LS_OK);
  assert_int_equal(ls_catalog_count(c), 1);
  ls_catalog_free(c);
}

static void test_missing_file(void **state)
{
  (void)state;
  char *dir = t_tempdir();
  const char *path = t_path("%s/nope.json", dir);
  ls_catalog *c = (ls_catalog *)&c;
  ls_diag d = {{0}};
  assert_int_equal(ls_catalog_load_file(path, &c, &d), LS_ENOENT);
  assert_null(c);
  assert_contains(d.text, path);
  assert_contains(d.text, "No such file or directory");
  /* a dangling symlink: the same, naming the path given */
  t_symlink("gone.json", dir, "dangling.json");
  const char *link = t_path("%s/dangling.json", dir);
  assert_int_equal(ls_catalog_load_file(link, &c, &d), LS_ENOENT);
  assert_contains(d.text, link);
}

static void test_directory_is_not_a_catalog(void **state)
{
  (void)state;
  char *dir = t_tempdir();
  ls_catalog *c = (ls_catalog *)&c;
  ls_diag d = {{0}};
  assert_int_equal(ls_catalog_load_file(dir, &c, &d), LS_EIO);
  assert_null(c);
  assert_contains(d.text, dir);
  assert_contains(d.text, "not a regular file");
}

static void test_oversized_file(void **state)
{
  (void)state;
  char *dir = t_tempdir();
  t_write_sized(dir, "big.json", (long long)LIMIT + 1);
  const char *path = t_path("%s/big.json", dir);
  ls_catalog *c = (ls_catalog *)&c;
  ls_diag d = {{0}};
  assert_int_equal(ls_catalog_load_file(path, &c, &d), LS_ETOOBIG);
  assert_null(c);
  assert_contains(d.text, path);
  assert_contains(d.text, "16777217 bytes");
}

/* Exactly at the limit is fine (the document is padded with spaces). */
static void test_file_at_limit_loads(void **state)
{
  (void)state;
  char *dir = t_tempdir();
  char *json = malloc(LIMIT + 1);
  assert_non_null(json);
  const char *doc = "{\"games\": [{\"id\": \"a\", \"name\": \"A\"}]}";
  memset(json, ' ', LIMIT);
  memcpy(json, doc, strlen(doc));
  json[LIMIT] = '\0';
  t_write(dir, "full.json", json);
  ls_catalog *c = NULL;
  ls_diag d = {{0}};
  assert_int_equal(ls_catalog_load_file(t_path("%s/full.json", dir), &c, &d), LS_OK);
  assert_int_equal(ls_catalog_count(c), 1);
  ls_catalog_free(c);
  /* and one byte more, as a buffer */
  char *more = realloc(json, LIMIT + 2);
  assert_non_null(more);
  more[LIMIT] = ' ';
  more[LIMIT + 1] = '\0';
  c = (ls_catalog *)&c;
  assert_int_equal(ls_catalog_load_buffer(more, LIMIT + 1, "buf", &c, &d), LS_ETOOBIG);
  assert_null(c);
  assert_contains(d.text, "buf: 16777217 bytes");
  free(more);
}

static void test_bad_arguments(void **state)
{
  (void)state;
  ls_diag d = {{0}};
  ls_catalog *c = NULL;
  assert_int_equal(ls_catalog_load_buffer("{}", 2, "x", NULL, &d), LS_EINVAL);
  assert_int_equal(ls_catalog_load_file(NULL, &c, &d), LS_EINVAL);
  assert_null(c);
  assert_int_equal(ls_catalog_load_buffer(NULL, 0, NULL, &c, NULL), LS_EFORMAT);
  assert_null(c);
  assert_int_equal(ls_catalog_load_buffer("{", 1, NULL, &c, &d), LS_EFORMAT);
  assert_contains(d.text, "<buffer>:1:1:");
}

/* ---- ls_json_locate ------------------------------------------------------ */

static ls_json_pos locate(const char *text, const ls_json_step *path, size_t depth)
{
  ls_json_pos pos = {0, 0, 0};
  int rc = ls_json_locate(text, strlen(text), path, depth, &pos);
  if (rc != LS_OK)
    fail_msg("locate failed: %d", rc);
  return pos;
}

static void assert_pos(ls_json_pos pos, int line, int column, size_t offset)
{
  if (pos.line != line || pos.column != column || pos.offset != offset)
    fail_msg("got %d:%d @%zu, want %d:%d @%zu", pos.line, pos.column, pos.offset, line,
             column, offset);
}

static void test_locate_nested_path(void **state)
{
  (void)state;
  const char *t = "{\"a\": {\"x\": 1, \"b\": [10, {\"c\": \"here\"}]}, \"z\": null}";
  ls_json_step p[] = {LS_JSON_KEY("a"), LS_JSON_KEY("b"), LS_JSON_INDEX(1), LS_JSON_KEY("c")};
  assert_pos(locate(t, p, 4), 1, 32, 31);
  assert_pos(locate(t, p, 3), 1, 26, 25);
  assert_pos(locate(t, p, 2), 1, 21, 20);
  assert_pos(locate(t, p, 1), 1, 7, 6);
  ls_json_step z[] = {LS_JSON_KEY("z")};
  assert_pos(locate(t, z, 1), 1, 48, 47);
}

static void test_locate_top_level_and_lines(void **state)
{
  (void)state;
  const char *t = "\n\r\n\t  {\n  \"k\":\n\n      [1,\n   2]}";
  assert_pos(locate(t, NULL, 0), 3, 4, 6);
  ls_json_step p[] = {LS_JSON_KEY("k"), LS_JSON_INDEX(1)};
  assert_pos(locate(t, p, 1), 6, 7, 22);
  assert_pos(locate(t, p, 2), 7, 4, 29);
}

static void test_locate_escaped_strings(void **state)
{
  (void)state;
  /* strings holding quotes, backslashes and brackets must not confuse it */
  const char *t = "{\"s\\\"}\": \"{[\\\"]}\\\\\", \"k\\u0065y\": [\"]\", \"\\\\\", 7], "
                  "\"\\ud83d\\ude00\": 1, \"\\/\\n\": 2}";
  ls_json_step key[] = {LS_JSON_KEY("key"), LS_JSON_INDEX(2)};
  ls_json_pos pos = locate(t, key, 2);
  assert_int_equal(t[pos.offset], '7');
  ls_json_step quote[] = {LS_JSON_KEY("s\"}")};
  assert_int_equal(t[locate(t, quote, 1).offset], '"');
  assert_int_equal(locate(t, quote, 1).offset, 9);
  ls_json_step emoji[] = {LS_JSON_KEY("\xf0\x9f\x98\x80")};
  assert_int_equal(t[locate(t, emoji, 1).offset], '1');
  ls_json_step ctl[] = {LS_JSON_KEY("/\n")};
  assert_int_equal(t[locate(t, ctl, 1).offset], '2');
  ls_json_pos ignored;
  ls_json_step prefix[] = {LS_JSON_KEY("ke")};
  assert_int_equal(ls_json_locate(t, strlen(t), prefix, 1, &ignored), LS_ENOENT);
  ls_json_step longer[] = {LS_JSON_KEY("keys")};
  assert_int_equal(ls_json_locate(t, strlen(t), longer, 1, &ignored), LS_ENOENT);
}

static void test_locate_arrays(void **state)
{
  (void)state;
  const char *t = "[[1, 2], [3, [4, {\"a\": [5]}, -6.5e+3]], true, \"s\"]";
  ls_json_step p[] = {LS_JSON_INDEX(1), LS_JSON_INDEX(1), LS_JSON_INDEX(2)};
  assert_int_equal(t[locate(t, p, 3).offset], '-');
  ls_json_step q[] = {LS_JSON_INDEX(1), LS_JSON_INDEX(1), LS_JSON_INDEX(1), LS_JSON_KEY("a"),
                      LS_JSON_INDEX(0)};
  assert_int_equal(t[locate(t, q, 5).offset], '5');
  ls_json_step r[] = {LS_JSON_INDEX(3)};
  assert_int_equal(t[locate(t, r, 1).offset], '"');
  ls_json_step s[] = {LS_JSON_INDEX(2)};
  assert_int_equal(locate(t, s, 1).offset, 40);
}

/* Columns count characters, like jansson: the value found in a valid text is
 * where jansson points at a one-character error token in the same place. */
static void test_locate_agrees_with_jansson(void **state)
{
  (void)state;
  const char *bad = "{\"\xc3\xa9t\xc3\xa9\": [1,\n {\"\xe2\x82\xac\": x}]}";
  const char *good = "{\"\xc3\xa9t\xc3\xa9\": [1,\n {\"\xe2\x82\xac\": 0}]}";
  json_error_t err;
  assert_null(json_loads(bad, 0, &err));
  ls_json_step p[] = {LS_JSON_KEY("\xc3\xa9t\xc3\xa9"), LS_JSON_INDEX(1),
                      LS_JSON_KEY("\xe2\x82\xac")};
  ls_json_pos pos = locate(good, p, 3);
  assert_int_equal(pos.line, err.line);
  assert_int_equal(pos.column, err.column);
  assert_int_equal(pos.line, 2);
  assert_int_equal(pos.column, 8);
}

static void test_locate_not_found(void **state)
{
  (void)state;
  const char *t = "{\"a\": [1, 2], \"o\": {}, \"e\": [], \"s\": \"str\"}";
  ls_json_pos pos;
  size_t n = strlen(t);
  ls_json_step missing[] = {LS_JSON_KEY("b")};
  assert_int_equal(ls_json_locate(t, n, missing, 1, &pos), LS_ENOENT);
  ls_json_step past[] = {LS_JSON_KEY("a"), LS_JSON_INDEX(2)};
  assert_int_equal(ls_json_locate(t, n, past, 2, &pos), LS_ENOENT);
  ls_json_step into_scalar[] = {LS_JSON_KEY("a"), LS_JSON_INDEX(0), LS_JSON_INDEX(0)};
  assert_int_equal(ls_json_locate(t, n, into_scalar, 3, &pos), LS_ENOENT);
  ls_json_step key_in_array[] = {LS_JSON_KEY("a"), LS_JSON_KEY("x")};
  assert_int_equal(ls_json_locate(t, n, key_in_array, 2, &pos), LS_ENOENT);
  ls_json_step index_in_object[] = {LS_JSON_INDEX(0)};
  assert_int_equal(ls_json_locate(t, n, index_in_object, 1, &pos), LS_ENOENT);
  ls_json_step empty_obj[] = {LS_JSON_KEY("o"), LS_JSON_KEY("x")};
  assert_int_equal(ls_json_locate(t, n, empty_obj, 2, &pos), LS_ENOENT);
  ls_json_step empty_arr[] = {LS_JSON_KEY("e"), LS_JSON_INDEX(0)};
  assert_int_equal(ls_json_locate(t, n, empty_arr, 2, &pos), LS_ENOENT);
  ls_json_step into_string[] = {LS_JSON_KEY("s"), LS_JSON_KEY("x")};
  assert_int_equal(ls_json_locate(t, n, into_string, 2, &pos), LS_ENOENT);
  assert_int_equal(ls_json_locate(NULL, 0, NULL, 0, &pos), LS_EINVAL);
  assert_int_equal(ls_json_locate(t, n, NULL, 1, &pos), LS_EINVAL);
  assert_int_equal(ls_json_locate(t, n, NULL, 0, NULL), LS_EINVAL);
  assert_int_equal(ls_json_locate("  ", 2, NULL, 0, &pos), LS_EFORMAT);
}

/* A repeated key: the last one, as jansson keeps it without
 * JSON_REJECT_DUPLICATES. */
static void test_locate_duplicate_key_finds_last(void **state)
{
  (void)state;
  const char *t = "{\"k\": 1, \"k\": 2}";
  ls_json_step p[] = {LS_JSON_KEY("k")};
  assert_int_equal(t[locate(t, p, 1).offset], '2');
}

/* Every prefix of a document, each in its own allocation so the sanitizer
 * sees any read past the end: never a crash, only answers. */
static void test_locate_truncated_text_is_safe(void **state)
{
  (void)state;
  const char *t = "{\"a\\\"\": [1, {\"b\": \"x\\u00e9\\\\\"}, [true, null]], \"c\": -1.5}";
  ls_json_step paths[][3] = {
    {LS_JSON_KEY("c")},
    {LS_JSON_KEY("a\""), LS_JSON_INDEX(1), LS_JSON_KEY("b")},
    {LS_JSON_KEY("a\""), LS_JSON_INDEX(2), LS_JSON_INDEX(1)},
  };
  size_t depths[] = {1, 3, 3};
  size_t n = strlen(t);
  for (size_t len = 0; len <= n; len++) {
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, t, len);
    for (size_t k = 0; k < 3; k++) {
      ls_json_pos pos;
      int rc = ls_json_locate(copy, len, paths[k], depths[k], &pos);
      assert_true(rc == LS_OK || rc == LS_ENOENT || rc == LS_EFORMAT);
      if (rc == LS_OK)
        assert_true(pos.offset < len);
    }
    free(copy);
  }
}

static void test_position_of(void **state)
{
  (void)state;
  ls_json_pos pos;
  const char *t = "ab\n\xc3\xa9z\n";
  ls_json_position_of(t, strlen(t), 0, &pos);
  assert_pos(pos, 1, 1, 0);
  ls_json_position_of(t, strlen(t), 5, &pos);
  assert_pos(pos, 2, 2, 5);
  ls_json_position_of(t, strlen(t), 100, &pos);
  assert_pos(pos, 3, 1, 7);
}

/* ---- version pins ------------------------------------------------------ */

#define PIN_HEX "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static void test_pins_load_and_are_found(void **state)
{
  (void)state;
  ls_catalog *c = load_ok("{\"games\": [{\"id\": \"g\", \"name\": \"G\", \"versions\": "
                          "{\"2.10\": \"sha256:" PIN_HEX "\", \"2.9\": \"sha256:" PIN_HEX "\"}},"
                          " {\"id\": \"h\", \"name\": \"H\"}]}");
  const ls_catalog_game *g = ls_catalog_find(c, "g");
  assert_int_equal(g->pin_count, 2);
  const uint8_t *pin = ls_catalog_pin_of(g, "2.10");
  assert_non_null(pin);
  assert_int_equal(pin[0], 0x00);
  assert_int_equal(pin[1], 0x11);
  assert_int_equal(pin[31], 0xff);
  assert_non_null(ls_catalog_pin_of(g, "2.9"));
  assert_null(ls_catalog_pin_of(g, "2.1"));
  assert_null(ls_catalog_pin_of(ls_catalog_find(c, "h"), "2.10"));
  assert_int_equal(ls_catalog_find(c, "h")->pin_count, 0);
  ls_catalog_free(c);
}

static void test_bad_pins_are_refused(void **state)
{
  (void)state;
  expect_refused(doc_with_field("\"versions\": [\"2.0\"]"), LS_EFORMAT, "t.json:5:19:",
                 "games[1].versions must be an object", NULL);
  expect_refused(doc_with_field("\"versions\": {\"2.0\": \"" PIN_HEX "\"}"), LS_EFORMAT,
                 "t.json:5:27:", "games[1].versions.\"2.0\" must be \"sha256:\" and 64", NULL);
  expect_refused(doc_with_field("\"versions\": {\"2.0\": \"sha256:" PIN_HEX "0\"}"), LS_EFORMAT,
                 "must be \"sha256:\"", NULL);
  expect_refused(doc_with_field("\"versions\": {\"2.0\": \"sha256:abc\"}"), LS_EFORMAT,
                 "must be \"sha256:\"", NULL);
  expect_refused(doc_with_field("\"versions\": {\"2.0\": \"sha256:"
                                "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff\"}"),
                 LS_EFORMAT, "lower-case hex", NULL);
  expect_refused(doc_with_field("\"versions\": {\"2.0\": 7}"), LS_EFORMAT, "not an integer",
                 NULL);
  expect_refused(doc_with_field("\"versions\": {\"\": \"sha256:" PIN_HEX "\"}"), LS_EFORMAT,
                 "version \"\" must be 1 to 128 bytes", NULL);
  expect_refused(doc_with_field("\"versions\": {\"a\\u202eb\": \"sha256:" PIN_HEX "\"}"),
                 LS_EFORMAT, "displayable", NULL);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_id_is_safe),
    cmocka_unit_test(test_builtin_loads),
    cmocka_unit_test(test_data_file_matches_builtin),
    cmocka_unit_test(test_valid_with_optional_and_unknown_fields),
    cmocka_unit_test(test_empty_games_array),
    cmocka_unit_test(test_size_at_int64_max),
    cmocka_unit_test(test_many_games_sorted_and_found),
    cmocka_unit_test(test_duplicate_id),
    cmocka_unit_test(test_duplicate_id_reports_earliest),
    cmocka_unit_test(test_unsafe_ids),
    cmocka_unit_test(test_wrong_types),
    cmocka_unit_test(test_integer_ranges),
    cmocka_unit_test(test_missing_fields),
    cmocka_unit_test(test_unsafe_launch),
    cmocka_unit_test(test_bad_structure),
    cmocka_unit_test(test_escaped_keys_located),
    cmocka_unit_test(test_malformed_json),
    cmocka_unit_test(test_load_file_and_positions_name_it),
    cmocka_unit_test(test_symlinked_file_is_followed),
    cmocka_unit_test(test_missing_file),
    cmocka_unit_test(test_directory_is_not_a_catalog),
    cmocka_unit_test(test_oversized_file),
    cmocka_unit_test(test_file_at_limit_loads),
    cmocka_unit_test(test_bad_arguments),
    cmocka_unit_test(test_locate_nested_path),
    cmocka_unit_test(test_locate_top_level_and_lines),
    cmocka_unit_test(test_locate_escaped_strings),
    cmocka_unit_test(test_locate_arrays),
    cmocka_unit_test(test_locate_agrees_with_jansson),
    cmocka_unit_test(test_locate_not_found),
    cmocka_unit_test(test_locate_duplicate_key_finds_last),
    cmocka_unit_test(test_locate_truncated_text_is_safe),
    cmocka_unit_test(test_position_of),
    cmocka_unit_test(test_pins_load_and_are_found),
    cmocka_unit_test(test_bad_pins_are_refused),
  };
  return ls_run_tests(tests, NULL, NULL);
}
