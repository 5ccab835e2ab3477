/* Tests scan_local_library: layout classification, payload lists, the
 * library index (reuse, invalidation, corruption) and the summaries. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testrun.h"

#include "testutil.h"

#include "core/fs.h"
#include "library/index.h"
#include "library/library.h"
#include "library/version_file.h"

#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static const char *const ids[] = {"dl", "both", "localonly", "partial", "empty", "absent",
                                  "linked", "verlink", "loclink", "keyed"};
#define NIDS (sizeof ids / sizeof ids[0])

/* Builds one root of every kind of docs/ARCHITECTURE.md, "Game roots", under
 * dir. */
static void make_layout(const char *dir, const char *outside)
{
  t_write(dir, "dl/version.ini", "  1.2\n");
  t_write(dir, "dl/a.eti", "0123456789");
  t_write(dir, "dl/sub/b.eti", "abcde");
  t_symlink("/etc/passwd", dir, "dl/escape.eti");
  t_symlink("/etc", dir, "dl/escdir");
  t_symlink(outside, dir, "dl/sub/out");

  t_write(dir, "both/version.ini", "2.0");
  t_write(dir, "both/game.eti", "xx");
  t_write(dir, "both/local/game.exe", "exe");
  t_write(dir, "both/.lanspread.json", "{}");
  t_write(dir, "both/.softlan_game_installed", "");
  t_write(dir, "both/.sync/state", "s");
  t_write(dir, "both/.version.ini.tmp", "3.0");
  t_write(dir, "both/.version.ini.discarded", "1.0");
  t_write(dir, "both/.local.installing/.lanspread_owned", "");
  t_write(dir, "both/.local.backup/.lanspread_owned", "");
  t_write(dir, "both/.lanspread.download", "j");

  t_write(dir, "localonly/local/game.exe", "exe");
  t_write(dir, "partial/part1.eti", "half");
  t_mkdir(dir, "empty");
  t_write(outside, "version.ini", "9.9");
  t_write(outside, "big.eti", "outside bytes");
  t_symlink(outside, dir, "linked");
  t_write(dir, "verlink/x.eti", "x");
  t_symlink(t_path("%s/version.ini", outside), dir, "verlink/version.ini");
  t_mkdir(dir, "loclink");
  t_symlink(outside, dir, "loclink/local");
  t_write(dir, "keyed/version.ini", "[game]\nname = Keyed\nversion = \"3.1\"\n");

  t_write(dir, "notincatalog/version.ini", "1.0");
  t_write(dir, "stray.txt", "stray");
}

static void assert_file(const ls_local_game *g, size_t i, const char *path, uint64_t size)
{
  assert_true(i < g->file_count);
  assert_string_equal(g->files[i].path, path);
  assert_int_equal(g->files[i].size, size);
}

static void classifies_every_layout(void **state)
{
  (void)state;
  char *dir = t_tempdir(), *outside = t_tempdir();
  make_layout(dir, outside);
  ls_catalog *catalog = t_catalog(ids, NIDS);
  ls_library lib;
  ls_diag diag;
  assert_int_equal(ls_scan_local_library(dir, catalog, NULL, false, &lib, NULL, &diag), 0);

  const ls_local_game *g = ls_library_find(&lib, "dl");
  assert_non_null(g);
  assert_true(g->downloaded);
  assert_false(g->installed);
  assert_string_equal(g->version, "1.2");
  assert_int_equal(g->file_count, 3); /* symlinks are not payload */
  assert_file(g, 0, "a.eti", 10);
  assert_file(g, 1, "sub/b.eti", 5);
  assert_file(g, 2, "version.ini", 6);
  assert_int_equal(g->size, 21);

  g = ls_library_find(&lib, "both");
  assert_true(g->downloaded && g->installed);
  assert_string_equal(g->version, "2.0");
  assert_int_equal(g->file_count, 2); /* reserved names and transients excluded */
  assert_file(g, 0, "game.eti", 2);
  assert_file(g, 1, "version.ini", 3);

  g = ls_library_find(&lib, "localonly");
  assert_true(g->installed);
  assert_false(g->downloaded);
  assert_null(g->version);
  assert_int_equal(g->file_count, 0);

  g = ls_library_find(&lib, "partial");
  assert_false(g->downloaded || g->installed);
  assert_int_equal(g->size, 4);

  assert_null(ls_library_find(&lib, "empty"));
  assert_null(ls_library_find(&lib, "absent"));
  assert_null(ls_library_find(&lib, "linked"));      /* symlinked root: ignored */
  assert_null(ls_library_find(&lib, "notincatalog"));
  g = ls_library_find(&lib, "verlink");               /* symlinked version.ini */
  assert_false(g->downloaded);
  assert_null(ls_library_find(&lib, "loclink"));      /* symlinked local/ */
  g = ls_library_find(&lib, "keyed");
  assert_string_equal(g->version, "3.1");
  assert_int_equal(lib.count, 6);

  ls_library_clear(&lib);
  ls_catalog_free(catalog);
}

static void summaries_list_downloaded_games_only(void **state)
{
  (void)state;
  char *dir = t_tempdir(), *outside = t_tempdir();
  make_layout(dir, outside);
  ls_catalog *catalog = t_catalog(ids, NIDS);
  ls_library lib;
  assert_int_equal(ls_scan_local_library(dir, catalog, NULL, false, &lib, NULL, NULL), 0);
  ls_game_summary *s;
  size_t n;
  assert_int_equal(ls_library_summaries(&lib, catalog, &s, &n), 0);
  assert_int_equal(n, 3);
  assert_string_equal(s[0].id, "both");
  assert_string_equal(s[0].name, "Game both");
  assert_string_equal(s[0].version, "2.0");
  assert_int_equal(s[0].size, 5);
  assert_string_equal(s[1].id, "dl");
  assert_string_equal(s[2].id, "keyed");
  free(s);
  ls_library_clear(&lib);
  ls_catalog_free(catalog);
}

static void game_dir_errors_name_the_directory(void **state)
{
  (void)state;
  ls_catalog *catalog = t_catalog(ids, NIDS);
  ls_library lib;
  ls_diag diag;
  assert_int_equal(ls_scan_local_library("/nonexistent/games", catalog, NULL, false, &lib,
                                         NULL, &diag),
                   LS_ENOENT);
  assert_non_null(strstr(diag.text, "/nonexistent/games"));
  ls_catalog_free(catalog);
}

/* ---- the index ---------------------------------------------------------- */

#define MANY 1000

static void make_many(const char *dir)
{
  for (int i = 0; i < MANY; i++) {
    t_write(dir, t_path("g%04d/version.ini", i), "1.0");
    t_write_sized(dir, t_path("g%04d/a.eti", i), 100 + i);
    t_write_sized(dir, t_path("g%04d/b.eti", i), 7);
  }
}

static void assert_same_library(const ls_library *a, const ls_library *b)
{
  assert_int_equal(a->count, b->count);
  for (size_t i = 0; i < a->count; i++) {
    const ls_local_game *x = &a->games[i], *y = &b->games[i];
    assert_string_equal(x->id, y->id);
    assert_int_equal(x->downloaded, y->downloaded);
    assert_int_equal(x->installed, y->installed);
    assert_string_equal(x->version ? x->version : "-", y->version ? y->version : "-");
    assert_int_equal(x->size, y->size);
    assert_int_equal(x->file_count, y->file_count);
    for (size_t f = 0; f < x->file_count; f++) {
      assert_string_equal(x->files[f].path, y->files[f].path);
      assert_int_equal(x->files[f].size, y->files[f].size);
    }
  }
}

static void warm_rescan_skips_payload_files(void **state)
{
  (void)state;
  char *dir = t_tempdir(), *sdir = t_tempdir();
  make_many(dir);
  ls_catalog *catalog = t_catalog_numbered("g", MANY);
  ls_index *index;
  assert_int_equal(ls_index_open(sdir, &index, NULL), 0);
  ls_library cold, warm;
  ls_scan_stats cs = {0}, ws = {0};
  assert_int_equal(ls_scan_local_library(dir, catalog, index, false, &cold, &cs, NULL), 0);
  assert_int_equal(cs.roots_walked, MANY);
  assert_int_equal(cs.files_statted, 3 * MANY);
  assert_int_equal(ls_index_save(index, NULL), 0);
  ls_index_free(index);

  /* A new process: the index comes back from disk. */
  assert_int_equal(ls_index_open(sdir, &index, NULL), 0);
  assert_null(ls_index_rejected_reason(index));
  assert_int_equal(ls_index_count(index), MANY);
  for (size_t i = 0; i < MANY; i++)
    assert_string_equal(ls_index_at(index, i)->id, ls_catalog_at(catalog, i)->id);
  assert_null(ls_index_at(index, MANY));
  assert_int_equal(ls_scan_local_library(dir, catalog, index, false, &warm, &ws, NULL), 0);
  assert_int_equal(ws.roots_seen, MANY);
  assert_int_equal(ws.roots_reused, MANY);
  assert_int_equal(ws.roots_walked, 0);
  assert_int_equal(ws.files_statted, 0);
  assert_int_equal(ws.dirs_opened, 0);
  assert_same_library(&cold, &warm);
  ls_library_clear(&warm);

  /* A new file changes the root's mtime: that root alone is walked again. */
  t_write_sized(dir, "g0042/c.eti", 11);
  memset(&ws, 0, sizeof ws);
  assert_int_equal(ls_scan_local_library(dir, catalog, index, false, &warm, &ws, NULL), 0);
  assert_int_equal(ws.roots_walked, 1);
  assert_int_equal(ws.files_statted, 4);
  assert_int_equal(ls_library_find(&warm, "g0042")->file_count, 4);
  ls_library_clear(&warm);
  ls_library_clear(&cold);
  ls_index_free(index);
  ls_catalog_free(catalog);
}

static void nested_payload_dirs_are_checked(void **state)
{
  (void)state;
  char *dir = t_tempdir(), *sdir = t_tempdir();
  const char *one[] = {"game"};
  t_write(dir, "game/version.ini", "1");
  t_write(dir, "game/disc1/a.eti", "a");
  ls_catalog *catalog = t_catalog(one, 1);
  ls_index *index;
  assert_int_equal(ls_index_open(sdir, &index, NULL), 0);
  ls_library lib;
  assert_int_equal(ls_scan_local_library(dir, catalog, index, false, &lib, NULL, NULL), 0);
  ls_library_clear(&lib);
  t_write(dir, "game/disc1/b.eti", "bb"); /* changes disc1's mtime, not the root's */
  ls_scan_stats st = {0};
  assert_int_equal(ls_scan_local_library(dir, catalog, index, false, &lib, &st, NULL), 0);
  assert_int_equal(st.roots_walked, 1);
  assert_int_equal(ls_library_find(&lib, "game")->file_count, 3);
  ls_library_clear(&lib);
  ls_index_free(index);
  ls_catalog_free(catalog);
}

static void deep_scan_sees_in_place_growth(void **state)
{
  (void)state;
  char *dir = t_tempdir(), *sdir = t_tempdir();
  const char *one[] = {"game"};
  t_write(dir, "game/version.ini", "1");
  t_write_sized(dir, "game/a.eti", 10);
  ls_catalog *catalog = t_catalog(one, 1);
  ls_index *index;
  assert_int_equal(ls_index_open(sdir, &index, NULL), 0);
  ls_library lib;
  assert_int_equal(ls_scan_local_library(dir, catalog, index, false, &lib, NULL, NULL), 0);
  ls_library_clear(&lib);
  assert_int_equal(truncate(t_path("%s/game/a.eti", dir), 5000), 0);
  ls_scan_stats st = {0};
  assert_int_equal(ls_scan_local_library(dir, catalog, index, true, &lib, &st, NULL), 0);
  assert_int_equal(st.roots_walked, 1);
  assert_int_equal(ls_library_find(&lib, "game")->files[0].size, 5000);
  ls_library_clear(&lib);
  ls_index_free(index);
  ls_catalog_free(catalog);
}

static void version_change_is_seen(void **state)
{
  (void)state;
  char *dir = t_tempdir(), *sdir = t_tempdir();
  const char *one[] = {"game"};
  t_write(dir, "game/version.ini", "1.0");
  ls_catalog *catalog = t_catalog(one, 1);
  ls_index *index;
  assert_int_equal(ls_index_open(sdir, &index, NULL), 0);
  ls_library lib;
  assert_int_equal(ls_scan_local_library(dir, catalog, index, false, &lib, NULL, NULL), 0);
  ls_library_clear(&lib);
  t_write(dir, "game/version.ini", "1.1"); /* rewritten in place: same size */
  struct timeval tv[2] = {{1000, 0}, {1000, 0}};
  assert_int_equal(utimes(t_path("%s/game/version.ini", dir), tv), 0);
  assert_int_equal(ls_scan_local_library(dir, catalog, index, false, &lib, NULL, NULL), 0);
  assert_string_equal(ls_library_find(&lib, "game")->version, "1.1");
  ls_library_clear(&lib);
  ls_index_free(index);
  ls_catalog_free(catalog);
}

/* Writes a corrupted copy of a good index and checks it is rebuilt. */
static void check_rebuilt_after(const char *what, void (*corrupt)(const char *path))
{
  char *dir = t_tempdir(), *sdir = t_tempdir();
  const char *two[] = {"a", "b"};
  t_write(dir, "a/version.ini", "1");
  t_write(dir, "b/version.ini", "2");
  ls_catalog *catalog = t_catalog(two, 2);
  ls_index *index;
  assert_int_equal(ls_index_open(sdir, &index, NULL), 0);
  ls_library lib;
  assert_int_equal(ls_scan_local_library(dir, catalog, index, false, &lib, NULL, NULL), 0);
  ls_library_clear(&lib);
  assert_int_equal(ls_index_save(index, NULL), 0);
  ls_index_free(index);

  corrupt(t_path("%s/library.index", sdir));
  assert_int_equal(ls_index_open(sdir, &index, NULL), 0);
  const char *reason = ls_index_rejected_reason(index);
  assert_non_null(reason);
  print_message("corrupt index (%s): %s\n", what, reason);
  ls_scan_stats st = {0};
  assert_int_equal(ls_scan_local_library(dir, catalog, index, false, &lib, &st, NULL), 0);
  assert_int_equal(st.roots_walked, 2);
  assert_string_equal(ls_library_find(&lib, "b")->version, "2");
  assert_int_equal(ls_index_save(index, NULL), 0); /* rebuilt file is good again */
  ls_index_free(index);
  assert_int_equal(ls_index_open(sdir, &index, NULL), 0);
  assert_null(ls_index_rejected_reason(index));
  ls_library_clear(&lib);
  ls_index_free(index);
  ls_catalog_free(catalog);
}

static void flip_a_byte(const char *path)
{
  int fd = open(path, O_RDWR);
  unsigned char c;
  assert_int_equal(pread(fd, &c, 1, 20), 1);
  c ^= 0x40;
  assert_int_equal(pwrite(fd, &c, 1, 20), 1);
  close(fd);
}

static void cut_in_half(const char *path)
{
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(truncate(path, st.st_size / 2), 0);
}

static void overwrite_with_garbage(const char *path)
{
  assert_int_equal(ls_write_file_atomic(path, "garbage", 7, 0600, NULL), 0);
}

/* Valid magic and checksum around a body whose count is absurd. */
static void huge_count_with_valid_checksum(const char *path)
{
  unsigned char buf[8 + 4 + 32] = "LSIDX001\xff\xff\xff\xff";
  struct sha256_ctx ctx;
  sha256_init(&ctx);
  sha256_update(&ctx, 12, buf);
  sha256_digest(&ctx, 32, buf + 12);
  FILE *f = fopen(path, "wb");
  fwrite(buf, 1, sizeof buf, f);
  fclose(f);
}

static void corrupt_index_is_rebuilt(void **state)
{
  (void)state;
  check_rebuilt_after("flipped byte", flip_a_byte);
  check_rebuilt_after("truncated", cut_in_half);
  check_rebuilt_after("garbage", overwrite_with_garbage);
  check_rebuilt_after("absurd count", huge_count_with_valid_checksum);
}

static void chunk_hashes_follow_the_file(void **state)
{
  (void)state;
  char *dir = t_tempdir(), *sdir = t_tempdir();
  const char *one[] = {"game"};
  t_write(dir, "game/version.ini", "1");
  t_write(dir, "game/a.eti", "payload");
  ls_catalog *catalog = t_catalog(one, 1);
  ls_index *index;
  assert_int_equal(ls_index_open(sdir, &index, NULL), 0);
  ls_library lib;
  assert_int_equal(ls_scan_local_library(dir, catalog, index, false, &lib, NULL, NULL), 0);
  ls_library_clear(&lib);

  struct stat st;
  assert_int_equal(stat(t_path("%s/game/a.eti", dir), &st), 0);
  ls_stamp stamp = ls_stamp_of(&st);
  uint8_t hashes[64];
  memset(hashes, 0xab, sizeof hashes);
  assert_int_equal(ls_index_set_hashes(index, "game", "a.eti", stamp, 4, hashes, 2), 0);
  assert_int_equal(ls_index_save(index, NULL), 0);
  ls_index_free(index);

  assert_int_equal(ls_index_open(sdir, &index, NULL), 0);
  const uint8_t *got;
  uint32_t n;
  assert_int_equal(ls_index_get_hashes(index, "game", "a.eti", stamp, 4, &got, &n), 0);
  assert_int_equal(n, 2);
  assert_memory_equal(got, hashes, 64);
  assert_int_equal(ls_index_get_hashes(index, "game", "a.eti", stamp, 8, &got, &n), LS_ENOENT);

  /* A rescan that keeps the file keeps its hashes; a changed file loses them. */
  assert_int_equal(ls_scan_local_library(dir, catalog, index, true, &lib, NULL, NULL), 0);
  ls_library_clear(&lib);
  assert_int_equal(ls_index_get_hashes(index, "game", "a.eti", stamp, 4, &got, &n), 0);
  t_write(dir, "game/a.eti", "changed payload");
  assert_int_equal(stat(t_path("%s/game/a.eti", dir), &st), 0);
  assert_int_equal(ls_scan_local_library(dir, catalog, index, true, &lib, NULL, NULL), 0);
  ls_library_clear(&lib);
  assert_int_equal(ls_index_get_hashes(index, "game", "a.eti", ls_stamp_of(&st), 4, &got, &n),
                   LS_ENOENT);
  ls_index_free(index);
  ls_catalog_free(catalog);
}

static void version_file_forms(void **state)
{
  (void)state;
  struct { const char *text; const char *want; } cases[] = {
    {"1.2", "1.2"},
    {"  1.2 \r\n", "1.2"},
    {"\xEF\xBB\xBF" "20240115\n", "20240115"},
    {"version=3.0", "3.0"},
    {"[Game]\r\nName=X\r\nVersion = 4.5b\r\n", "4.5b"},
    {"; comment\nversion='7'\n", "7"},
    {"name=x\nbuild=9\n", NULL},  /* key=value without a version key */
    {"", NULL},
    {"   \n\t", NULL},
    {"1.0\n2.0\n", NULL},          /* two lines: ambiguous */
    {"1.0\x01", NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *v = ls_version_file_parse(cases[i].text, strlen(cases[i].text));
    if (cases[i].want)
      assert_string_equal(v, cases[i].want);
    else
      assert_null(v);
    free(v);
  }
  char big[300];
  memset(big, '1', sizeof big);
  assert_null(ls_version_file_parse(big, sizeof big));
  assert_null(ls_version_file_parse("1.0\0x", 5));
}

/* Payload is what a peer could ask for: names the path rule refuses and
 * entries deeper than its 64 levels are not listed; the scan of a root
 * holding a 2000-level tree succeeds. */
static void payload_keeps_to_the_path_rule(void **state)
{
  (void)state;
  char *dir = t_tempdir();
  t_write(dir, "g/version.ini", "1");
  t_write(dir, "g/ok.eti", "ok");
  t_write(dir, "g/back\\slash.eti", "b");
  t_write(dir, "g/new\nline.eti", "n");
  t_write(dir, "g/bad\xff.eti", "u");
  t_deep_tree(dir, "g/edge", 62);   /* edge/d x 62/leaf: 64 components */
  t_deep_tree(dir, "g/deep", 2000); /* the review's attack, on disk */
  static const char *const gid[] = {"g"};
  ls_catalog *catalog = t_catalog(gid, 1);
  ls_library lib;
  ls_diag diag = {{0}};
  if (ls_scan_local_library(dir, catalog, NULL, false, &lib, NULL, &diag) != LS_OK)
    fail_msg("%s", diag.text);
  const ls_local_game *g = ls_library_find(&lib, "g");
  assert_non_null(g);
  assert_int_equal(g->file_count, 3);
  assert_int_equal(strlen(g->files[0].path), strlen("edge") + 62 * 2 + strlen("/leaf"));
  assert_string_equal(g->files[1].path, "ok.eti");
  assert_string_equal(g->files[2].path, "version.ini");
  ls_library_clear(&lib);
  ls_catalog_free(catalog);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(classifies_every_layout),
    cmocka_unit_test(summaries_list_downloaded_games_only),
    cmocka_unit_test(game_dir_errors_name_the_directory),
    cmocka_unit_test(warm_rescan_skips_payload_files),
    cmocka_unit_test(nested_payload_dirs_are_checked),
    cmocka_unit_test(deep_scan_sees_in_place_growth),
    cmocka_unit_test(version_change_is_seen),
    cmocka_unit_test(corrupt_index_is_rebuilt),
    cmocka_unit_test(chunk_hashes_follow_the_file),
    cmocka_unit_test(version_file_forms),
    cmocka_unit_test(payload_keeps_to_the_path_rule),
  };
  return ls_run_tests(tests, NULL, NULL);
}
