/* Tests the relative-path rule (core/relpath.h) with a table of accepted
 * and refused paths and their reasons, every limit exactly at and one past
 * its edge, the relaxed variants (archive names, the catalog's launch path,
 * symlink targets), and the UTF-8 rule it uses (core/utf8.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testrun.h"

#include "core/relpath.h"
#include "core/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct row {
  const char *path;
  unsigned flags;
  int rc;
  const char *reason; /* a part of the diag; NULL for accepted paths */
  size_t depth;       /* accepted paths: real components */
} row;

#define DOT LS_RELPATH_ALLOW_DOT
#define LOOSE LS_RELPATH_ALLOW_EMPTY

static const row rows[] = {
  {"a", 0, LS_OK, NULL, 1},
  {"a/b.eti", 0, LS_OK, NULL, 2},
  {"...", 0, LS_OK, NULL, 1},
  {"a..b/..c/c..", 0, LS_OK, NULL, 3},
  {".hidden/.x", 0, LS_OK, NULL, 2},
  {"dir with space/\xc3\xa9.eti", 0, LS_OK, NULL, 2},
  {"\xf0\x9f\x8e\xae/\xe6\xb8\xb8\xe6\x88\x8f", 0, LS_OK, NULL, 2},
  {"", 0, LS_EFORMAT, "empty path", 0},
  {"/", 0, LS_EFORMAT, "absolute path", 0},
  {"/etc/passwd", 0, LS_EFORMAT, "absolute path", 0},
  {"//x", 0, LS_EFORMAT, "absolute path", 0},
  {"a//b", 0, LS_EFORMAT, "empty component", 0},
  {"a/", 0, LS_EFORMAT, "empty component", 0},
  {"./a", 0, LS_EFORMAT, "'.' component", 0},
  {"a/./b", 0, LS_EFORMAT, "'.' component", 0},
  {"a/.", 0, LS_EFORMAT, "'.' component", 0},
  {".", 0, LS_EFORMAT, "'.' component", 0},
  {"..", 0, LS_EFORMAT, "'..' component", 0},
  {"../a", 0, LS_EFORMAT, "'..' component", 0},
  {"a/../b", 0, LS_EFORMAT, "'..' component", 0},
  {"a/..", 0, LS_EFORMAT, "'..' component", 0},
  {"a\\b", 0, LS_EFORMAT, "backslash at byte 1", 0},
  {"\\a", 0, LS_EFORMAT, "backslash at byte 0", 0},
  {"..\\a", 0, LS_EFORMAT, "backslash", 0},
  {"a/\\/b", 0, LS_EFORMAT, "backslash", 0},
  {"a/\nb", 0, LS_EFORMAT, "control character U+000A at byte 2", 0},
  {"a\tb", 0, LS_EFORMAT, "control character U+0009", 0},
  {"evil\xe2\x80\xaetxt.exe", 0, LS_EFORMAT, "control character U+202E at byte 4", 0},
  {"a\xc2\x85", 0, LS_EFORMAT, "control character U+0085 at byte 1", 0},
  {"a\xe2\x81\xa6" "b", 0, LS_EFORMAT, "control character U+2066", 0},
  {"a\x7f", 0, LS_EFORMAT, "control character U+007F", 0},
  {"a/\xff", 0, LS_EFORMAT, "not valid UTF-8", 0},
  {"\xc0\xae\xc0\xae/x", 0, LS_EFORMAT, "not valid UTF-8", 0}, /* overlong ".." */
  {"a/\xed\xa0\x80", 0, LS_EFORMAT, "not valid UTF-8", 0},     /* a surrogate */
  /* the catalog's launch: "." is harmless, empty components are not */
  {"./run.sh", DOT, LS_OK, NULL, 1},
  {"bin/./game", DOT, LS_OK, NULL, 2},
  {".", DOT, LS_EFORMAT, "only '.' components", 0},
  {"bin//game", DOT, LS_EFORMAT, "empty component", 0},
  {"bin/", DOT, LS_EFORMAT, "empty component", 0},
  {"bin/../game", DOT, LS_EFORMAT, "'..' component", 0},
  /* archive entry names: "dir/", "./", "a//b" */
  {"dir/", LOOSE, LS_OK, NULL, 1},
  {"./a//b/", LOOSE, LS_OK, NULL, 2},
  {"./", LOOSE, LS_OK, NULL, 0},
  {"", LOOSE, LS_OK, NULL, 0},
  {"/abs", LOOSE, LS_EFORMAT, "absolute path", 0},
  {"a/../../b", LOOSE, LS_EFORMAT, "'..' component", 0},
};

static void table_of_paths(void **state)
{
  (void)state;
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    const row *r = &rows[i];
    ls_diag diag = {{0}};
    size_t depth = 99;
    int rc = ls_relpath_check_flags(r->path, r->flags, &depth, &diag);
    if (rc != r->rc)
      fail_msg("row %zu '%s': %d, expected %d (%s)", i, r->path, rc, r->rc, diag.text);
    if (r->reason && !strstr(diag.text, r->reason))
      fail_msg("row %zu '%s': reason '%s', expected '%s'", i, r->path, diag.text, r->reason);
    if (rc == LS_OK && depth != r->depth)
      fail_msg("row %zu '%s': depth %zu, expected %zu", i, r->path, depth, r->depth);
    if (r->flags == 0)
      assert_int_equal(ls_relpath_check(r->path, NULL), r->rc);
  }
  assert_int_equal(ls_relpath_check(NULL, NULL), LS_EINVAL);
}

/* "n/n/.../n" of `levels` components of `name_len` bytes, padded at the end
 * of the last component to `total` bytes when total is larger. */
static char *make_path(size_t levels, size_t name_len, size_t total)
{
  size_t len = levels * (name_len + 1) - 1;
  if (total > len)
    len = total;
  char *p = malloc(len + 1);
  memset(p, 'n', len);
  for (size_t i = 1; i < levels; i++)
    p[i * (name_len + 1) - 1] = '/';
  p[len] = '\0';
  return p;
}

static void expect(char *path, int rc, const char *reason)
{
  ls_diag diag = {{0}};
  int got = ls_relpath_check(path, &diag);
  if (got != rc || (reason && !strstr(diag.text, reason)))
    fail_msg("%zu bytes: %d '%s', expected %d '%s'", strlen(path), got, diag.text, rc,
             reason ? reason : "");
  free(path);
}

static void limits_at_and_past_the_edge(void **state)
{
  (void)state;
  /* depth: 64 components, then 65 */
  expect(make_path(LS_RELPATH_MAX_DEPTH, 1, 0), LS_OK, NULL);
  expect(make_path(LS_RELPATH_MAX_DEPTH + 1, 1, 0), LS_ETOOBIG, "deeper than 64 levels");
  /* the review's attack: 2000 levels, well inside the length limit */
  expect(make_path(2000, 1, 0), LS_ETOOBIG, "deeper than 64 levels");
  /* component: 255 bytes, then 256 */
  expect(make_path(1, LS_RELPATH_MAX_NAME, 0), LS_OK, NULL);
  expect(make_path(1, LS_RELPATH_MAX_NAME + 1, 0), LS_ETOOBIG,
         "component longer than 255 bytes");
  /* length: 4096 bytes, then 4097 */
  char *len_ok = make_path(17, 240, 0); /* 17 * 241 - 1 = 4096 bytes */
  assert_int_equal(strlen(len_ok), LS_RELPATH_MAX_LEN);
  expect(len_ok, LS_OK, NULL);
  char *len_bad = make_path(17, 240, LS_RELPATH_MAX_LEN + 1);
  expect(len_bad, LS_ETOOBIG, "longer than 4096 bytes");
}

typedef struct link_row {
  const char *link, *target;
  int rc;
  const char *reason;
} link_row;

static const link_row link_rows[] = {
  {"d/s", "../d/f", LS_OK, NULL},
  {"a/b/c", "../../x", LS_OK, NULL},
  {"s", ".", LS_OK, NULL},
  {"./d//s", "./f", LS_OK, NULL},
  {"d/s", "x/../../y", LS_OK, NULL},
  {"l", "..", LS_EFORMAT, "target outside the destination"},
  {"d/l", "../../canary", LS_EFORMAT, "target outside the destination"},
  {"d/l", "x/../../..", LS_EFORMAT, "target outside the destination"},
  {"l", "/etc/passwd", LS_EFORMAT, "absolute target"},
  {"l", "", LS_EFORMAT, "empty target"},
  {"l", "a\\b", LS_EFORMAT, "backslash"},
  {"l", "a\nb", LS_EFORMAT, "control character"},
  {"../l", "x", LS_EFORMAT, "'..' component"},
};

static void symlink_targets(void **state)
{
  (void)state;
  for (size_t i = 0; i < sizeof link_rows / sizeof link_rows[0]; i++) {
    const link_row *r = &link_rows[i];
    ls_diag diag = {{0}};
    int rc = ls_relpath_check_link(r->link, r->target, &diag);
    if (rc != r->rc || (r->reason && !strstr(diag.text, r->reason)))
      fail_msg("'%s' -> '%s': %d '%s'", r->link, r->target, rc, diag.text);
  }
  /* the target's resolved depth is capped like a path's */
  char *deep = make_path(LS_RELPATH_MAX_DEPTH, 1, 0);
  ls_diag diag = {{0}};
  assert_int_equal(ls_relpath_check_link("l", deep, &diag), LS_OK);
  assert_int_equal(ls_relpath_check_link("d/l", deep, &diag), LS_ETOOBIG);
  assert_non_null(strstr(diag.text, "deeper than 64 levels"));
  free(deep);
}

static void utf8_rule(void **state)
{
  (void)state;
  static const char *const valid[] = {"", "ascii", "\xc3\xa9", "\xe2\x82\xac",
                                      "\xf0\x9f\x8e\xae", "\xf4\x8f\xbf\xbf"};
  static const char *const invalid[] = {
    "\x80",             /* a lone continuation */
    "\xc3",             /* cut short */
    "\xe2\x82",         /* cut short */
    "\xc0\x80",         /* overlong NUL */
    "\xc1\xbf",         /* overlong */
    "\xe0\x80\x80",     /* overlong */
    "\xf0\x80\x80\x80", /* overlong */
    "\xed\xa0\x80",     /* surrogate U+D800 */
    "\xf4\x90\x80\x80", /* U+110000 */
    "\xf5\x80\x80\x80", "\xff", "\xc3\x28",
  };
  for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
    assert_true(ls_utf8_valid(valid[i], strlen(valid[i])));
  for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
    if (ls_utf8_valid(invalid[i], strlen(invalid[i])))
      fail_msg("invalid[%zu] accepted", i);
  assert_int_equal(ls_utf8_char_len((const unsigned char *)"\xe2\x82\xac", 3), 3);
  assert_int_equal(ls_utf8_char_len((const unsigned char *)"\xe2\x82\xac", 2), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(table_of_paths),
    cmocka_unit_test(limits_at_and_past_the_edge),
    cmocka_unit_test(symlink_targets),
    cmocka_unit_test(utf8_rule),
  };
  return ls_run_tests(tests, NULL, NULL);
}
