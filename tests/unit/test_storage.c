/* Tests the download storage (download/storage.h) on real files: discard of
 * cancelled downloads, begin/write/commit from several threads, the
 * version-sentinel transaction, rollback, journal-based startup recovery,
 * a full disk (tmpfs) and symbolic-link safety. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testrun.h"

#define TEST_CHUNK (1024 * 1024) /* the protocol's chunk size */

#include "testutil.h"

#include "core/fs.h"
#include "download/storage.h"
#include "library/hashing.h"
#include "library/layout.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------ */

static bool exists(const char *path)
{
  struct stat st;
  return lstat(path, &st) == 0;
}

static char *slurp(const char *path, size_t *len)
{
  char *data = NULL;
  ls_diag diag = {""};
  if (ls_read_file_at(AT_FDCWD, path, (size_t)1 << 30, &data, len, &diag) != LS_OK)
    fail_msg("%s", diag.text);
  return data;
}

static void assert_content(const char *path, const char *expected)
{
  size_t len = 0;
  char *data = slurp(path, &len);
  assert_int_equal(len, strlen(expected));
  assert_memory_equal(data, expected, len);
  free(data);
}

static void assert_bytes(const char *path, const unsigned char *expected, size_t size)
{
  size_t len = 0;
  char *data = slurp(path, &len);
  assert_int_equal(len, size);
  assert_memory_equal(data, expected, size);
  free(data);
}

static unsigned char *random_bytes(size_t size, unsigned seed)
{
  unsigned char *b = malloc(size ? size : 1);
  assert_non_null(b);
  for (size_t i = 0; i < size; i++)
    b[i] = (unsigned char)(rand_r(&seed) >> 7);
  return b;
}

static void write_whole(ls_storage *s, size_t index, const void *data, size_t len)
{
  ls_diag diag = {""};
  int rc = ls_storage_write(s, index, 0, data, len, &diag);
  if (rc != LS_OK)
    fail_msg("write of file #%zu: %s", index, diag.text);
}

static ls_storage *begin_ok(const char *game_dir, const char *id, const char *version,
                            const ls_storage_file *files, size_t count)
{
  ls_storage *s = NULL;
  ls_diag diag = {""};
  int rc = ls_storage_begin(game_dir, id, version, TEST_CHUNK, files, count, &s, &diag);
  if (rc != LS_OK)
    fail_msg("begin: %s (%s)", diag.text, ls_strerror(rc));
  assert_non_null(s);
  return s;
}

static void commit_ok(ls_storage *s)
{
  ls_diag diag = {"x"};
  int rc = ls_storage_commit(s, &diag);
  if (rc != LS_OK)
    fail_msg("commit: %s", diag.text);
  assert_string_equal(diag.text, ""); /* no cleanup warning */
}

/* A listing of a tree (path, type, size, mode, mtime, content) to prove that
 * it was left byte-for-byte alone. */
static FILE *snap_out;
static size_t snap_base_len;

static int snap_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void)flag;
  (void)ftw;
  fprintf(snap_out, "%s %o %lld %lld.%09ld", path + snap_base_len, (unsigned)st->st_mode,
          (long long)st->st_size, (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
  if (S_ISREG(st->st_mode)) {
    size_t len = 0;
    char *data = slurp(path, &len);
    fputc(' ', snap_out);
    fwrite(data, 1, len, snap_out);
    free(data);
  } else if (S_ISLNK(st->st_mode)) {
    char target[4096];
    ssize_t n = readlink(path, target, sizeof target - 1);
    fprintf(snap_out, " -> %.*s", (int)(n > 0 ? n : 0), target);
  }
  fputc('\n', snap_out);
  return 0;
}

static char *snapshot(const char *dir)
{
  char *text = NULL;
  size_t len = 0;
  snap_out = open_memstream(&text, &len);
  snap_base_len = strlen(dir);
  assert_int_equal(nftw(dir, snap_entry, 16, FTW_PHYS), 0);
  fclose(snap_out);
  return text;
}

/* An installed game at version 1.0: sentinel, payload, install state and
 * foreign markers. */
static void make_installed_game(const char *root)
{
  t_write(root, "version.ini", "1.0\n");
  t_write(root, "game.eti", "old archive");
  t_write(root, "sub/part2.eti", "old part 2");
  t_write(root, "local/game.exe", "installed exe");
  t_write(root, "local/data/save.dat", "save game");
  t_write(root, ".lanspread.json", "{\"intent\":\"none\"}");
  t_write(root, ".local.backup/.lanspread_owned", "");
  t_write(root, ".local.backup/old.exe", "backup exe");
  t_write(root, ".local.installing/.lanspread_owned", "");
  t_write(root, ".softlan_game_installed", "softlan");
  t_write(root, ".sync/state", "sync state");
}

static void assert_install_state_intact(const char *root)
{
  assert_content(t_path("%s/local/game.exe", root), "installed exe");
  assert_content(t_path("%s/local/data/save.dat", root), "save game");
  assert_content(t_path("%s/.lanspread.json", root), "{\"intent\":\"none\"}");
  assert_content(t_path("%s/.local.backup/.lanspread_owned", root), "");
  assert_content(t_path("%s/.local.backup/old.exe", root), "backup exe");
  assert_content(t_path("%s/.local.installing/.lanspread_owned", root), "");
  assert_content(t_path("%s/.softlan_game_installed", root), "softlan");
  assert_content(t_path("%s/.sync/state", root), "sync state");
}

static void assert_no_transients(const char *root)
{
  assert_false(exists(t_path("%s/%s", root, LS_VERSION_TMP)));
  assert_false(exists(t_path("%s/%s", root, LS_VERSION_DISCARDED)));
  assert_false(exists(t_path("%s/%s", root, LS_VERSION_KEPT)));
  assert_false(exists(t_path("%s/%s", root, LS_DOWNLOAD_JOURNAL)));
  assert_false(exists(t_path("%s/%s", root, LS_CHUNK_MAP)));
}

/* ---- discard (the seed's two tests) ------------------------------------- */

static void discard_cancelled_download_removes_peer_owned_payload(void **state)
{
  (void)state;
  const char *dir = t_tempdir();
  char root[4096];
  snprintf(root, sizeof root, "%s/fresh", dir);
  t_write(root, "a.eti", "partial a");
  t_write(root, "b.eti", "partial b");
  t_write(root, "nested/deeper/c.eti", "partial c");
  t_write(root, LS_VERSION_TMP, "2.0");
  t_write(root, LS_DOWNLOAD_JOURNAL, "{}");
  assert_int_equal(ls_discard_cancelled_download(dir, "fresh", NULL), LS_OK);
  assert_false(exists(root));
  /* A missing root is nothing to discard. */
  assert_int_equal(ls_discard_cancelled_download(dir, "fresh", NULL), LS_OK);
  /* The id must be a direct child. */
  assert_int_equal(ls_discard_cancelled_download(dir, "../x", NULL), LS_EINVAL);
  assert_int_equal(ls_discard_cancelled_download(dir, "..", NULL), LS_EINVAL);
  assert_int_equal(ls_discard_cancelled_download(dir, "", NULL), LS_EINVAL);
}

static void discard_cancelled_download_preserves_local_install_state(void **state)
{
  (void)state;
  const char *dir = t_tempdir();
  char root[4096];
  snprintf(root, sizeof root, "%s/upd", dir);
  make_installed_game(root);
  t_write(root, LS_VERSION_DISCARDED, "1.0\n");
  t_write(root, "new.eti", "partial new");
  assert_int_equal(ls_discard_cancelled_download(dir, "upd", NULL), LS_OK);
  assert_install_state_intact(root);
  assert_false(exists(t_path("%s/version.ini", root)));
  assert_false(exists(t_path("%s/game.eti", root)));
  assert_false(exists(t_path("%s/new.eti", root)));
  assert_false(exists(t_path("%s/sub", root)));
  assert_no_transients(root);
}

/* ---- a full download from several threads ------------------------------- */

typedef struct chunk {
  size_t file;
  uint64_t offset;
  size_t len;
} chunk;

typedef struct writer {
  ls_storage *s;
  const chunk *chunks;
  size_t count;
  size_t first, step;
  unsigned char *const *sources;
  atomic_int *failures;
} writer;

static void *write_chunks(void *arg)
{
  writer *w = arg;
  for (size_t i = w->first; i < w->count; i += w->step) {
    const chunk *c = &w->chunks[i];
    ls_diag diag = {""};
    if (ls_storage_write(w->s, c->file, c->offset, w->sources[c->file] + c->offset, c->len,
                         &diag) != LS_OK)
      atomic_fetch_add(w->failures, 1);
  }
  return NULL;
}

/* Cuts every file into chunks of `size` bytes, shuffles them, and writes them
 * from `threads` threads. */
static void write_shuffled(ls_storage *s, const ls_storage_file *files, size_t nfiles,
                           unsigned char *const *sources, size_t size, int threads)
{
  size_t count = 0;
  for (size_t f = 0; f < nfiles; f++)
    count += (size_t)((files[f].size + size - 1) / size);
  chunk *chunks = calloc(count, sizeof *chunks);
  assert_non_null(chunks);
  size_t n = 0;
  for (size_t f = 0; f < nfiles; f++)
    for (uint64_t off = 0; off < files[f].size; off += size)
      chunks[n++] = (chunk){f, off, (size_t)(files[f].size - off < size ? files[f].size - off : size)};
  unsigned seed = 42;
  for (size_t i = count; i > 1; i--) {
    size_t j = (size_t)rand_r(&seed) % i;
    chunk tmp = chunks[i - 1];
    chunks[i - 1] = chunks[j];
    chunks[j] = tmp;
  }
  atomic_int failures = 0;
  pthread_t tids[16];
  writer ws[16];
  for (int t = 0; t < threads; t++) {
    ws[t] = (writer){s, chunks, count, (size_t)t, (size_t)threads, sources, &failures};
    assert_int_equal(pthread_create(&tids[t], NULL, write_chunks, &ws[t]), 0);
  }
  for (int t = 0; t < threads; t++)
    pthread_join(tids[t], NULL);
  assert_int_equal(atomic_load(&failures), 0);
  free(chunks);
}

static void full_download_from_threads_then_commit(void **state)
{
  (void)state;
  const char *dir = t_tempdir();
  char root[4096];
  snprintf(root, sizeof root, "%s/game", dir);
  make_installed_game(root);
  t_write(root, "olddir/stale.eti", "stale");
  t_symlink("/etc/passwd", root, "stale-link");
  const char *version_ini = "[game]\nversion=2.10\n";
  ls_storage_file files[] = {
    {"data1.eti", 300 * 1024 + 17, NULL},
    {"sub/dir/data2.eti", 200 * 1024, NULL},
    {"version.ini", strlen(version_ini), NULL},
    {"sub/data3.eti", 77 * 1024 + 1, NULL},
  };
  unsigned char *sources[4] = {
    random_bytes(files[0].size, 1), random_bytes(files[1].size, 2),
    (unsigned char *)strdup(version_ini), random_bytes(files[3].size, 3),
  };
  ls_storage *s = begin_ok(dir, "game", "2.10", files, 4);
  assert_true(exists(t_path("%s/%s", root, LS_DOWNLOAD_JOURNAL)));
  assert_content(t_path("%s/%s", root, LS_VERSION_KEPT), "1.0\n"); /* no old file listed */
  assert_false(exists(t_path("%s/version.ini", root)));
  write_shuffled(s, files, 4, sources, 3 * 1024, 4);
  /* version.ini is not on disk before the commit. */
  assert_false(exists(t_path("%s/version.ini", root)));
  commit_ok(s);
  ls_storage_free(s);

  for (size_t i = 0; i < 4; i++)
    assert_bytes(t_path("%s/%s", root, files[i].path), sources[i], (size_t)files[i].size);
  assert_no_transients(root);
  assert_false(exists(t_path("%s/game.eti", root)));
  assert_false(exists(t_path("%s/sub/part2.eti", root)));
  assert_false(exists(t_path("%s/olddir", root)));
  assert_false(exists(t_path("%s/stale-link", root)));
  assert_true(exists("/etc/passwd"));
  assert_install_state_intact(root);
  for (size_t i = 0; i < 4; i++)
    free(sources[i]);
}

static void concurrent_writes_to_one_file_land_correctly(void **state)
{
  (void)state;
  const char *dir = t_tempdir();
  ls_storage_file files[] = {{"one.eti", 1024 * 1024 + 333, NULL}, {"version.ini", 3, NULL}};
  unsigned char *sources[2] = {random_bytes(files[0].size, 9), (unsigned char *)strdup("7.0")};
  ls_storage *s = begin_ok(dir, "one", "7.0", files, 2);
  write_shuffled(s, files, 2, sources, 1000, 8);
  commit_ok(s);
  ls_storage_free(s);
  assert_bytes(t_path("%s/one/one.eti", dir), sources[0], (size_t)files[0].size);
  assert_content(t_path("%s/one/version.ini", dir), "7.0");
  free(sources[0]);
  free(sources[1]);
}

static void writes_past_the_end_are_refused(void **state)
{
  (void)state;
  const char *dir = t_tempdir();
  ls_storage_file files[] = {{"a.eti", 10, NULL}, {"version.ini", 3, NULL}, {"empty.eti", 0, NULL}};
  ls_storage *s = begin_ok(dir, "g", "1.0", files, 3);
  ls_diag diag = {""};
  char buf[16] = "0123456789abcdef";
  assert_int_equal(ls_storage_write(s, 0, 0, buf, 11, &diag), LS_EINVAL);
  assert_non_null(strstr(diag.text, "a.eti"));
  assert_int_equal(ls_storage_write(s, 0, 8, buf, 3, NULL), LS_EINVAL);
  assert_int_equal(ls_storage_write(s, 0, 11, buf, 0, NULL), LS_EINVAL);
  assert_int_equal(ls_storage_write(s, 0, UINT64_MAX, buf, 2, NULL), LS_EINVAL);
  assert_int_equal(ls_storage_write(s, 1, 0, buf, 4, NULL), LS_EINVAL);
  assert_int_equal(ls_storage_write(s, 2, 0, buf, 1, NULL), LS_EINVAL);
  assert_int_equal(ls_storage_write(s, 3, 0, buf, 1, NULL), LS_EINVAL);
  assert_int_equal(ls_storage_write(s, 0, 7, buf, 3, NULL), LS_OK);
  assert_int_equal(ls_storage_write(s, 0, 10, buf, 0, NULL), LS_OK);
  assert_int_equal(ls_storage_abort(s, LS_ROLLBACK_CANCELLED, NULL), LS_OK);
  ls_storage_free(s);
  assert_false(exists(t_path("%s/g", dir)));
}

/* ---- begin: validation, reuse of existing files ------------------------- */

static void begin_refuses_unsafe_file_lists(void **state)
{
  (void)state;
  const char *dir = t_tempdir();
  const char *bad[] = {"/abs.eti", "../up.eti", "a/../b.eti", "a//b.eti", "a/./b.eti",
                       "dir/", "", "local/evil.exe", ".sync/x", ".lanspread.download",
                       ".version.ini.tmp", ".lanspread.json", ".lanspread.chunks"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ls_storage_file files[] = {{bad[i], 4, NULL}, {"version.ini", 3, NULL}};
    ls_storage *s = NULL;
    ls_diag diag = {""};
    assert_int_equal(ls_storage_begin(dir, "g", "1.0", TEST_CHUNK, files, 2, &s, &diag), LS_EINVAL);
    assert_null(s);
  }
  ls_storage_file dup[] = {{"a.eti", 4, NULL}, {"version.ini", 3, NULL}, {"a.eti", 4, NULL}};
  ls_storage *s = NULL;
  assert_int_equal(ls_storage_begin(dir, "g", "1.0", TEST_CHUNK, dup, 3, &s, NULL), LS_EINVAL);
  ls_storage_file no_sentinel[] = {{"a.eti", 4, NULL}, {"sub/version.ini", 3, NULL}};
  assert_int_equal(ls_storage_begin(dir, "g", "1.0", TEST_CHUNK, no_sentinel, 2, &s, NULL), LS_EINVAL);
  ls_storage_file huge_sentinel[] = {{"version.ini", LS_STORAGE_VERSION_INI_MAX + 1, NULL}};
  assert_int_equal(ls_storage_begin(dir, "g", "1.0", TEST_CHUNK, huge_sentinel, 1, &s, NULL), LS_ETOOBIG);
  ls_storage_file ok[] = {{"version.ini", 3, NULL}};
  assert_int_equal(ls_storage_begin(dir, "a/b", "1.0", TEST_CHUNK, ok, 1, &s, NULL), LS_EINVAL);
  assert_int_equal(ls_storage_begin(dir, "..", "1.0", TEST_CHUNK, ok, 1, &s, NULL), LS_EINVAL);
  assert_int_equal(ls_storage_begin(dir, "g", "", TEST_CHUNK, ok, 1, &s, NULL), LS_EINVAL);
  assert_null(s);
  assert_false(exists(t_path("%s/g", dir))); /* nothing created */
}

static void begin_keeps_content_of_right_sized_files(void **state)
{
  (void)state;
  const char *dir = t_tempdir();
  char root[4096];
  snprintf(root, sizeof root, "%s/g", dir);
  t_write(root, "same.eti", "0123456789");
  t_write(root, "longer.eti", "0123456789");
  t_write(root, "shorter.eti", "0123456789");
  ls_storage_file files[] = {
    {"same.eti", 10, NULL}, {"longer.eti", 4, NULL}, {"shorter.eti", 12, NULL}, {"version.ini", 3, NULL}};
  ls_storage *s = begin_ok(dir, "g", "1.0", files, 4);
  assert_content(t_path("%s/same.eti", root), "0123456789");
  struct stat st;
  assert_int_equal(stat(t_path("%s/longer.eti", root), &st), 0);
  assert_int_equal(st.st_size, 4);
  assert_int_equal(stat(t_path("%s/shorter.eti", root), &st), 0);
  assert_int_equal(st.st_size, 12);
  /* Writes never truncate: a write in the middle keeps the rest. */
  assert_int_equal(ls_storage_write(s, 0, 2, "ab", 2, NULL), LS_OK);
  assert_content(t_path("%s/same.eti", root), "01ab456789");
  write_whole(s, 3, "1.0", 3);
  commit_ok(s);
  ls_storage_free(s);
  assert_content(t_path("%s/version.ini", root), "1.0");
}

static void commit_refuses_a_version_ini_of_another_version(void **state)
{
  (void)state;
  const char *dir = t_tempdir();
  ls_storage_file files[] = {{"a.eti", 2, NULL}, {"version.ini", 3, NULL}};
  ls_storage *s = begin_ok(dir, "g", "2.0", files, 2);
  write_whole(s, 0, "aa", 2);
  write_whole(s, 1, "1.0", 3);
  ls_diag diag = {""};
  assert_int_equal(ls_storage_commit(s, &diag), LS_EPROTO);
  assert_non_null(strstr(diag.text, "'1.0'"));
  assert_false(exists(t_path("%s/g/version.ini", dir)));
  assert_int_equal(ls_storage_abort(s, LS_ROLLBACK_FAILED, NULL), LS_OK);
  ls_storage_free(s);
  assert_false(exists(t_path("%s/g", dir)));
}

/* ---- the version-sentinel transaction and rollback ---------------------- */

static ls_storage_recovery recover_ok(const char *dir, const char *id)
{
  ls_storage_recovery done = LS_RECOVERY_NONE;
  ls_diag diag = {""};
  int rc = ls_storage_recover(dir, id, &done, NULL, &diag);
  if (rc != LS_OK)
    fail_msg("recover: %s", diag.text);
  return done;
}

static void update_parks_the_old_sentinel_until_commit(void **state)
{
  (void)state;
  const char *dir = t_tempdir();
  char root[4096];
  snprintf(root, sizeof root, "%s/g", dir);
  make_installed_game(root);
  ls_storage_file files[] = {{"game.eti", 5, NULL}, {"version.ini", 4, NULL}};
  ls_storage *s = begin_ok(dir, "g", "2.0", files, 2);
  assert_content(t_path("%s/%s", root, LS_VERSION_DISCARDED), "1.0\n");
  assert_false(exists(t_path("%s/version.ini", root)));
  write_whole(s, 0, "new!!", 5);
  write_whole(s, 1, "2.0\n", 4);
  assert_true(exists(t_path("%s/%s", root, LS_VERSION_DISCARDED)));
  commit_ok(s);
  /* Committed: abort refuses and touches nothing. */
  assert_int_equal(ls_storage_abort(s, LS_ROLLBACK_CANCELLED, NULL), LS_ESTATE);
  ls_storage_free(s);
  assert_content(t_path("%s/version.ini", root), "2.0\n");
  assert_content(t_path("%s/game.eti", root), "new!!");
  assert_false(exists(t_path("%s/sub", root)));
  assert_no_transients(root);
  assert_install_state_intact(root);
}

/* A cancel discards the payload, the old version's too, and keeps local/
 * and the other survivors (the seed's rule). */
static void update_cancel_rolls_back_and_discards(void **state)
{
  (void)state;
  const char *dir = t_tempdir();
  char root[4096];
  snprintf(root, sizeof root, "%s/g", dir);
  make_installed_game(root);
  ls_storage_file files[] = {{"game.eti", 5, NULL}, {"more/new.eti", 3, NULL}, {"version.ini", 4, NULL}};
  ls_storage *s = begin_ok(dir, "g", "2.0", files, 3);
  assert_true(exists(t_path("%s/%s", root, LS_VERSION_DISCARDED))); /* game.eti is resized */
  write_whole(s, 0, "new!!", 5);
  write_whole(s, 2, "2.0\n", 4);
  t_write(root, LS_VERSION_TMP, "2.0\n"); /* as if a commit had started */
  ls_diag diag = {""};
  assert_int_equal(ls_storage_abort(s, LS_ROLLBACK_CANCELLED, &diag), LS_OK);
  ls_storage_free(s);
  assert_no_transients(root);
  assert_false(exists(t_path("%s/version.ini", root))); /* not restored */
  assert_false(exists(t_path("%s/game.eti", root)));
  assert_false(exists(t_path("%s/sub", root)));
  assert_false(exists(t_path("%s/more", root)));
  assert_install_state_intact(root);
  assert_int_equal(ls_storage_abort(NULL, LS_ROLLBACK_FAILED, NULL), LS_OK);
}

/* The old version of make_installed_game, whole: version.ini and both
 * archives as they were. */
static void assert_old_version_intact(const char *root)
{
  assert_content(t_path("%s/version.ini", root), "1.0\n");
  assert_content(t_path("%s/game.eti", root), "old archive");
  assert_content(t_path("%s/sub/part2.eti", root), "old part 2");
  assert_no_transients(root);
  assert_install_state_intact(root);
}

/* A failed update whose list shares a file with the old version but never
 * wrote into it: what it made goes, the old version is back, downloaded,
 * also after a pause and a resume, and after a crash that recovery finds. */
static void failed_update_keeps_the_old_version(void **state)
{
  (void)state;
  const char *dir = t_tempdir();
  char root[4096];
  snprintf(root, sizeof root, "%s/g", dir);
  make_installed_game(root);
  ls_storage_file files[] = {{"game-2.eti", 5, NULL}, {"sub/part2.eti", 10, NULL},
                             {"new/deep/x.eti", 3, NULL}, {"version.ini", 4, NULL}};
  for (int how = 0; how < 3; how++) { /* failed at once; after a resume; found by recovery */
    ls_storage *s = begin_ok(dir, "g", "2.0", files, 4);
    assert_true(exists(t_path("%s/%s", root, LS_VERSION_KEPT)));
    assert_false(exists(t_path("%s/version.ini", root)));
    write_whole(s, 0, "new!!", 5);
    write_whole(s, 3, "2.0\n", 4);
    if (how > 0) {
      uint8_t bits[1] = {0x01}; /* game-2.eti's chunk is durable */
      assert_int_equal(ls_storage_sync(s, bits, NULL), LS_OK);
      ls_storage_free(s); /* paused, or a crash */
      if (how == 2) {
        assert_int_equal(unlink(t_path("%s/%s", root, LS_CHUNK_MAP)), 0); /* not resumable */
        assert_int_equal(recover_ok(dir, "g"), LS_RECOVERY_DISCARDED);
        assert_old_version_intact(root);
        assert_false(exists(t_path("%s/game-2.eti", root)));
        continue;
      }
      s = begin_ok(dir, "g", "2.0", files, 4); /* the resume: game-2.eti is its own */
      assert_true(ls_storage_get_resume(s).resumed);
      assert_true(exists(t_path("%s/%s", root, LS_VERSION_KEPT)));
    }
    assert_int_equal(ls_storage_abort(s, LS_ROLLBACK_FAILED, NULL), LS_OK);
    ls_storage_free(s);
    assert_old_version_intact(root);
    assert_false(exists(t_path("%s/game-2.eti", root)));
    assert_false(exists(t_path("%s/new", root)));
  }
  /* A crash after the rollback put version.ini back, before the journal
   * went: recovery drops the journal and keeps the version. */
  ls_storage *s = begin_ok(dir, "g", "2.0", files, 4);
  ls_storage_free(s);
  assert_int_equal(unlink(t_path("%s/%s", root, LS_CHUNK_MAP)), 0);
  assert_int_equal(unlink(t_path("%s/game-2.eti", root)), 0);
  assert_int_equal(rename(t_path("%s/%s", root, LS_VERSION_KEPT), t_path("%s/version.ini", root)),
                   0);
  assert_int_equal(recover_ok(dir, "g"), LS_RECOVERY_UNSTARTED);
  assert_old_version_intact(root);
}

/* A paused update resumed with another file list: a file the paused run
 * made that the new list does not name is the download's too. A failure
 * then gives the old version back without it (it would be served as a
 * file of the old version). */
static void failed_resume_of_another_list_removes_what_the_first_run_made(void **state)
{
  (void)state;
  const char *dir = t_tempdir();
  char root[4096];
  snprintf(root, sizeof root, "%s/g", dir);
  make_installed_game(root);
  ls_storage_file first[] = {{"game-2.eti", 5, NULL}, {"new/only-2.eti", 3, NULL},
                             {"version.ini", 4, NULL}};
  ls_storage *s = begin_ok(dir, "g", "2.0", first, 3);
  write_whole(s, 0, "new!!", 5);
  write_whole(s, 1, "two", 3);
  uint8_t bits[1] = {0x03};
  assert_int_equal(ls_storage_sync(s, bits, NULL), LS_OK);
  ls_storage_free(s); /* paused */
  ls_storage_file second[] = {{"game-2.eti", 5, NULL}, {"game-3.eti", 3, NULL},
                              {"version.ini", 4, NULL}};
  s = begin_ok(dir, "g", "3.0", second, 3);
  assert_true(ls_storage_get_resume(s).manifest_changed);
  assert_int_equal(ls_storage_abort(s, LS_ROLLBACK_FAILED, NULL), LS_OK);
  ls_storage_free(s);
  assert_old_version_intact(root);
  assert_false(exists(t_path("%s/game-2.eti", root)));
  assert_false(exists(t_path("%s/game-3.eti", root)));
  assert_false(exists(t_path("%s/new", root)));
}

/* A download of the version on disk (a repair) whose rollback put
 * version.ini back, or whose begin had written only the journal, when a
 * crash came: version.ini names the journal's version as after a commit,
 * but nothing was committed. Recovery drops the journal and deletes no
 * file of that version, listed or not. */
static void recovery_of_a_download_of_the_version_on_disk_deletes_nothing(void **state)
{
  (void)state;
  const char *dir = t_tempdir();
  char root[4096];
  snprintf(root, sizeof root, "%s/g", dir);
  make_installed_game(root);
  ls_storage_file files[] = {{"game.eti", 11, NULL}, {"version.ini", 4, NULL}};
  ls_storage *s = begin_ok(dir, "g", "1.0", files, 2); /* sub/part2.eti is not listed */
  ls_storage_free(s);
  /* the rollback's steps up to the crash: the map, then version.ini back */
  assert_int_equal(unlink(t_path("%s/%s", root, LS_CHUNK_MAP)), 0);
  assert_int_equal(rename(t_path("%s/%s", root, LS_VERSION_KEPT), t_path("%s/version.ini", root)),
                   0);
  recover_ok(dir, "g");
  assert_old_version_intact(root);
}

/* Once the download wrote into a file of the old version, that version is
 * gone: a failure removes every file the download lists, keeps the others
 * and does not put the old version.ini back. */
static void failed_update_that_wrote_an_old_file(void **state)
{
  (void)state;
  const char *dir = t_tempdir();
  char root[4096];
  snprintf(root, sizeof root, "%s/g", dir);
  make_installed_game(root);
  ls_storage_file files[] = {{"game.eti", 11, NULL}, {"new/x.eti", 3, NULL}, {"version.ini", 4, NULL}};
  ls_storage *s = begin_ok(dir, "g", "2.0", files, 3);
  assert_true(exists(t_path("%s/%s", root, LS_VERSION_KEPT))); /* same size: not resized */
  write_whole(s, 1, "abc", 3);
  assert_true(exists(t_path("%s/%s", root, LS_VERSION_KEPT)));
  write_whole(s, 0, "new archive", 11);
  assert_false(exists(t_path("%s/%s", root, LS_VERSION_KEPT)));
  assert_true(exists(t_path("%s/%s", root, LS_VERSION_DISCARDED)));
  assert_int_equal(ls_storage_abort(s, LS_ROLLBACK_FAILED, NULL), LS_OK);
  ls_storage_free(s);
  assert_no_transients(root);
  assert_false(exists(t_path("%s/version.ini", root)));
  assert_false(exists(t_path("%s/game.eti", root)));
  assert_false(exists(t_path("%s/new", root)));
  assert_content(t_path("%s/sub/part2.eti", root), "old part 2"); /* not listed: stays */
  assert_install_state_intact(root);
}

/* ---- startup recovery --------------------------------------------------- */

/* A crash after begin: the download is kept as paused (again and again),
 * until a discard removes it as a cancel would. */
static void recovery_keeps_a_download_crashed_after_begin(void **state)
{
  (void)state;
  const char *dir = t_tempdir();
  ls_storage_file files[] = {{"a.eti", 4096, NULL}, {"d/b.eti", 10, NULL}, {"version.ini", 3, NULL}};
  ls_storage_free(begin_ok(dir, "fresh", "1.0", files, 3)); /* crash */
  assert_true(exists(t_path("%s/fresh/%s", dir, LS_DOWNLOAD_JOURNAL)));
  assert_true(exists(t_path("%s/fresh/%s", dir, LS_CHUNK_MAP)));
  ls_storage_paused paused = {.bytes = 1};
  ls_storage_recovery done = LS_RECOVERY_NONE;
  assert_int_equal(ls_storage_recover(dir, "fresh", &done, &paused, NULL), LS_OK);
  assert_int_equal(done, LS_RECOVERY_PAUSED);
  assert_string_equal(paused.version, "1.0");
  assert_int_equal(paused.bytes, 0); /* nothing was synced */
  assert_int_equal(paused.total_bytes, 4096 + 10 + 3);
  assert_int_equal(recover_ok(dir, "fresh"), LS_RECOVERY_PAUSED);
  assert_true(exists(t_path("%s/fresh/a.eti", dir)));
  assert_int_equal(ls_discard_cancelled_download(dir, "fresh", NULL), LS_OK);
  assert_false(exists(t_path("%s/fresh", dir)));
  assert_int_equal(recover_ok(dir, "fresh"), LS_RECOVERY_NONE);
}

/* Synced chunks are kept; a chunk whose file is now shorter than the map
 * says is not; a damaged map, or one of another file list, discards. */
static void recovery_trusts_the_map_only_as_far_as_the_files_go(void **state)
{
  (void)state;
  const char *dir = t_tempdir();
  ls_storage_file files[] = {{"a.eti", 3 * TEST_CHUNK, NULL}, {"b.eti", 10, NULL},
                             {"version.ini", 3, NULL}};
  ls_storage *s = begin_ok(dir, "g", "1.0", files, 3);
  assert_int_equal(ls_storage_chunk_count(s), 5);
  char *zeros = calloc(1, TEST_CHUNK);
  for (int c = 0; c < 3; c++)
    assert_int_equal(ls_storage_write(s, 0, (uint64_t)c * TEST_CHUNK, zeros, TEST_CHUNK, NULL),
                     LS_OK);
  write_whole(s, 1, "0123456789", 10);
  uint8_t bits[1] = {0x1f}; /* every chunk, the sentinel's too: sync drops that one */
  assert_int_equal(ls_storage_sync(s, bits, NULL), LS_OK);
  ls_storage_free(s);
  free(zeros);
  ls_storage_paused paused = {.bytes = 0};
  ls_storage_recovery done = LS_RECOVERY_NONE;
  assert_int_equal(ls_storage_recover(dir, "g", &done, &paused, NULL), LS_OK);
  assert_int_equal(done, LS_RECOVERY_PAUSED);
  assert_int_equal(paused.bytes, 3 * TEST_CHUNK + 10);
  assert_int_equal(truncate(t_path("%s/g/a.eti", dir), 2 * TEST_CHUNK - 1), 0);
  assert_int_equal(ls_storage_recover(dir, "g", &done, &paused, NULL), LS_OK);
  assert_int_equal(paused.bytes, TEST_CHUNK + 10); /* chunks 1 and 2 of a.eti are gone */
  /* One flipped bit of the map: not a map any more. */
  size_t len = 0;
  char *map = slurp(t_path("%s/g/%s", dir, LS_CHUNK_MAP), &len);
  map[len / 2] ^= 1;
  FILE *f = fopen(t_path("%s/g/%s", dir, LS_CHUNK_MAP), "wb");
  fwrite(map, 1, len, f);
  fclose(f);
  free(map);
  assert_int_equal(recover_ok(dir, "g"), LS_RECOVERY_DISCARDED);
  assert_false(exists(t_path("%s/g", dir)));
}

/* A game of more files than the process may open descriptors: each file
 * is open only for the one write or sync that needs it, so begin, the
 * writes, a resume's probes, the commit and a discard all succeed. */
static void a_game_of_more_files_than_descriptors(void **state)
{
  (void)state;
  enum { FILES = 1500, FD_LIMIT = 128 };
  const char *dir = t_tempdir();
  static char paths[FILES][32];
  ls_storage_file files[FILES + 1];
  for (int i = 0; i < FILES; i++) {
    snprintf(paths[i], sizeof paths[i], "d%02d/file%04d.eti", i % 50, i);
    files[i] = (ls_storage_file){paths[i], 8, NULL};
  }
  files[FILES] = (ls_storage_file){"version.ini", 3, NULL};
  struct rlimit old, low;
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
  low = (struct rlimit){FD_LIMIT, old.rlim_max};
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
  ls_storage *s = begin_ok(dir, "many", "1.0", files, FILES + 1);
  for (int i = 0; i < FILES; i++)
    write_whole(s, (size_t)i, "12345678", 8);
  write_whole(s, FILES, "1.0", 3);
  uint8_t bits[(FILES + 1 + 7) / 8];
  memset(bits, 0xff, sizeof bits);
  assert_int_equal(ls_storage_sync(s, bits, NULL), LS_OK);
  commit_ok(s);
  ls_storage_free(s);
  assert_content(t_path("%s/many/%s", dir, paths[FILES - 1]), "12345678");
  s = begin_ok(dir, "again", "1.0", files, FILES + 1);
  assert_int_equal(ls_storage_abort(s, LS_ROLLBACK_CANCELLED, NULL), LS_OK);
  ls_storage_free(s);
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
  assert_false(exists(t_path("%s/again", dir)));
  assert_no_transients(t_path("%s/many", dir));
}

/* A verification of a hostile file list: a FIFO, a symlink out of the root
 * and a path through a symlinked directory are no match, at once (nothing
 * blocks on the FIFO, nothing outside the root is read); a payload path
 * the rule refuses is refused before anything is opened. */
static void probes_refuse_fifos_and_symlinks(void **state)
{
  (void)state;
  const char *dir = t_tempdir();
  t_write(dir, "g/version.ini", "1.0");
  assert_int_equal(mkfifo(t_path("%s/g/fifo.eti", dir), 0644), 0);
  t_symlink("/etc/passwd", t_path("%s/g", dir), "passwd.eti");
  t_symlink("/etc", t_path("%s/g", dir), "etc");
  size_t plen = 0;
  char *passwd = slurp("/etc/passwd", &plen);
  uint8_t hash[32];
  ls_sha256(passwd, plen, hash);
  ls_storage_file files[] = {{"fifo.eti", 4, NULL}, {"passwd.eti", plen, NULL},
                             {"etc/passwd", plen, NULL}, {"version.ini", 3, NULL}};
  ls_storage *s = NULL;
  assert_int_equal(ls_storage_open_readonly(dir, "g", TEST_CHUNK, files, 4, &s, NULL), LS_OK);
  char *buf = malloc(plen + 4);
  for (size_t i = 0; i < 3; i++) {
    bool match = true;
    assert_int_equal(ls_storage_probe(s, i, 0, (uint32_t)(i ? plen : 4), hash, buf, &match,
                                      NULL),
                     LS_OK);
    assert_false(match);
  }
  ls_storage_free(s);
  ls_storage_file bad[] = {{"../g/version.ini", 3, NULL}, {"version.ini", 3, NULL}};
  assert_int_equal(ls_storage_open_readonly(dir, "g", TEST_CHUNK, bad, 2, &s, NULL), LS_EINVAL);
  assert_null(s);
  free(buf);
  free(passwd);
}

/* A journal of the first format (no chunk hashes) cannot be resumed. */
static void recovery_discards_a_format_1_journal(void **state)
{
  (void)state;
  const char *dir = t_tempdir();
  t_write(dir, "g/a.eti", "abc");
  t_write(dir, "g/local/x", "installed");
  t_write(dir, "g/" LS_DOWNLOAD_JOURNAL,
          "{\"format\":1,\"version\":\"1.0\",\"files\":[{\"path\":\"a.eti\"}]}");
  assert_int_equal(recover_ok(dir, "g"), LS_RECOVERY_DISCARDED);
  assert_false(exists(t_path("%s/g/a.eti", dir)));
  assert_content(t_path("%s/g/local/x", dir), "installed");
}

static void recovery_keeps_an_update_crashed_after_some_writes(void **state)
{
  (void)state;
  const char *dir = t_tempdir();
  char root[4096];
  snprintf(root, sizeof root, "%s/g", dir);
  make_installed_game(root);
  ls_storage_file files[] = {{"game.eti", 6, NULL}, {"new.eti", 6, NULL}, {"version.ini", 3, NULL}};
  ls_storage *s = begin_ok(dir, "g", "2.0", files, 3);
  write_whole(s, 0, "half..", 6);
  write_whole(s, 2, "2.0", 3); /* buffered only: lost in the crash */
  ls_storage_free(s);
  assert_int_equal(recover_ok(dir, "g"), LS_RECOVERY_PAUSED);
  assert_false(exists(t_path("%s/version.ini", root))); /* never shown as downloaded */
  assert_install_state_intact(root);
  assert_int_equal(ls_discard_cancelled_download(dir, "g", NULL), LS_OK);
  assert_no_transients(root);
  assert_false(exists(t_path("%s/version.ini", root)));
  assert_false(exists(t_path("%s/game.eti", root)));
  assert_false(exists(t_path("%s/new.eti", root)));
  assert_install_state_intact(root);
}

static void recovery_keeps_a_download_crashed_before_the_rename(void **state)
{
  (void)state;
  const char *dir = t_tempdir();
  ls_storage_file files[] = {{"a.eti", 3, NULL}, {"version.ini", 3, NULL}};
  ls_storage *s = begin_ok(dir, "g", "2.0", files, 2);
  write_whole(s, 0, "abc", 3);
  ls_storage_free(s);
  t_write(dir, "g/" LS_VERSION_TMP, "2.0"); /* crash between tmp write and rename */
  assert_int_equal(recover_ok(dir, "g"), LS_RECOVERY_PAUSED);
  assert_false(exists(t_path("%s/g/%s", dir, LS_VERSION_TMP)));
  assert_false(exists(t_path("%s/g/version.ini", dir)));
  assert_true(exists(t_path("%s/g/a.eti", dir)));
}

static void recovery_finishes_a_committed_download(void **state)
{
  (void)state;
  const char *dir = t_tempdir();
  char root[4096];
  snprintf(root, sizeof root, "%s/g", dir);
  make_installed_game(root);
  ls_storage_file files[] = {{"game.eti", 6, NULL}, {"x/new.eti", 6, NULL}, {"version.ini", 4, NULL}};
  ls_storage *s = begin_ok(dir, "g", "2.0", files, 3);
  write_whole(s, 0, "new v2", 6);
  write_whole(s, 1, "more!!", 6);
  ls_storage_free(s);
  /* The crash happened after the version.ini rename, before the cleanup. */
  t_write(root, "version.ini", "2.0\n");
  assert_true(exists(t_path("%s/%s", root, LS_VERSION_DISCARDED)));
  assert_true(exists(t_path("%s/sub/part2.eti", root)));
  assert_int_equal(recover_ok(dir, "g"), LS_RECOVERY_COMPLETED);
  assert_no_transients(root);
  assert_content(t_path("%s/version.ini", root), "2.0\n");
  assert_content(t_path("%s/game.eti", root), "new v2");
  assert_content(t_path("%s/x/new.eti", root), "more!!");
  assert_false(exists(t_path("%s/sub", root))); /* stale, not in the manifest */
  assert_install_state_intact(root);
}

static void recovery_leaves_roots_without_a_journal_alone(void **state)
{
  (void)state;
  const char *dir = t_tempdir();
  make_installed_game(t_path("%s/installed", dir));
  t_write(dir, "partial/a.eti", "half a payload");
  t_write(dir, "partial/" LS_VERSION_DISCARDED, "0.9");
  t_write(dir, "partial/" LS_VERSION_TMP, "1.0");
  t_mkdir(dir, "empty");
  char *before = snapshot(dir);
  assert_int_equal(recover_ok(dir, "installed"), LS_RECOVERY_NONE);
  assert_int_equal(recover_ok(dir, "partial"), LS_RECOVERY_NONE);
  assert_int_equal(recover_ok(dir, "empty"), LS_RECOVERY_NONE);
  assert_int_equal(recover_ok(dir, "absent"), LS_RECOVERY_NONE);
  char *after = snapshot(dir);
  assert_string_equal(before, after);
  free(before);
  free(after);
}

static void recovery_discards_a_root_with_an_unreadable_journal(void **state)
{
  (void)state;
  const char *dir = t_tempdir();
  t_write(dir, "g/a.eti", "a");
  t_write(dir, "g/local/x", "installed");
  t_write(dir, "g/" LS_DOWNLOAD_JOURNAL, "{not json");
  assert_int_equal(recover_ok(dir, "g"), LS_RECOVERY_DISCARDED);
  assert_false(exists(t_path("%s/g/a.eti", dir)));
  assert_false(exists(t_path("%s/g/%s", dir, LS_DOWNLOAD_JOURNAL)));
  assert_content(t_path("%s/g/local/x", dir), "installed");
}

static void journal_parse_reads_what_begin_wrote(void **state)
{
  (void)state;
  const char *dir = t_tempdir();
  ls_storage_file files[] = {{"a.eti", 3, NULL}, {"d/b.eti", 2, NULL}, {"version.ini", 3, NULL}};
  ls_storage *s = begin_ok(dir, "g", "2.0", files, 3);
  size_t len = 0;
  char *text = slurp(t_path("%s/g/%s", dir, LS_DOWNLOAD_JOURNAL), &len);
  ls_storage_journal j;
  ls_diag diag = {""};
  assert_int_equal(ls_storage_journal_parse(text, len, &j, &diag), LS_OK);
  assert_string_equal(j.version, "2.0");
  assert_int_equal(j.count, 3);
  for (size_t i = 0; i < 3; i++)
    assert_string_equal(j.paths[i], files[i].path);
  ls_storage_journal_free(&j);
  free(text);
  assert_int_equal(ls_storage_abort(s, LS_ROLLBACK_CANCELLED, &diag), LS_OK);
  ls_storage_free(s);
}

static void expect_bad_journal(const char *text, const char *why)
{
  ls_storage_journal j;
  ls_diag diag = {""};
  assert_int_equal(ls_storage_journal_parse(text, strlen(text), &j, &diag), LS_EFORMAT);
  assert_null(j.version);
  assert_int_equal(j.count, 0);
  if (!strstr(diag.text, why))
    fail_msg("diag \"%s\" does not mention \"%s\"", diag.text, why);
}

static void journal_parse_refuses_bad_journals(void **state)
{
  (void)state;
  expect_bad_journal("{not json", "not JSON");
  expect_bad_journal("{\"format\":3,\"version\":\"1\",\"files\":[]}", "format 1");
  expect_bad_journal("{\"format\":2,\"version\":\"1\",\"files\":[]}", "chunk_size");
  /* 2^58 chunks of 1 byte: 2^58 x 64 hex digits wraps to 0, which an empty
   * sha256 would match if the length were compared by multiplication. */
  expect_bad_journal("{\"format\":2,\"version\":\"1\",\"chunk_size\":1,\"digest\":\""
                     "0000000000000000000000000000000000000000000000000000000000000000\","
                     "\"files\":[{\"path\":\"a\",\"size\":288230376151711744,"
                     "\"sha256\":\"\"}]}",
                     "must hold");
  expect_bad_journal("{\"format\":2,\"version\":\"1\",\"chunk_size\":4,\"digest\":\""
                     "0000000000000000000000000000000000000000000000000000000000000000\","
                     "\"files\":[]}",
                     "does not match");
  /* 2^32 + 1 is not format 1 (an int conversion would make it 1). */
  expect_bad_journal("{\"format\":4294967297,\"version\":\"1\",\"files\":[]}", "format 1");
  expect_bad_journal("{\"format\":1,\"version\":\"1\",\"files\":{}}", "format 1");
  expect_bad_journal("{\"format\":1,\"version\":\"1\",\"files\":[{\"size\":1}]}",
                     "file 1 has no path");
  expect_bad_journal("{\"format\":1,\"version\":\"1\",\"files\":[{\"path\":\"a\"},"
                     "{\"path\":\"../x\"}]}",
                     "file 2 is not a payload path");
  expect_bad_journal("{\"format\":1,\"version\":\"1\",\"files\":[{\"path\":\"local/x\"}]}",
                     "reserved");
}

static void begin_settles_a_leftover_journal_first(void **state)
{
  (void)state;
  const char *dir = t_tempdir();
  ls_storage_file files[] = {{"a.eti", 3, NULL}, {"stale.eti", 3, NULL}, {"version.ini", 3, NULL}};
  ls_storage *s = begin_ok(dir, "g", "1.0", files, 3);
  write_whole(s, 0, "abc", 3);
  ls_storage_free(s); /* crash */
  ls_storage_file again[] = {{"a.eti", 3, NULL}, {"version.ini", 3, NULL}};
  s = begin_ok(dir, "g", "1.0", again, 2);
  write_whole(s, 0, "xyz", 3);
  write_whole(s, 1, "1.0", 3);
  commit_ok(s);
  ls_storage_free(s);
  assert_false(exists(t_path("%s/g/stale.eti", dir))); /* not in the new list */
  assert_content(t_path("%s/g/a.eti", dir), "xyz");
  assert_no_transients(t_path("%s/g", dir));
}

/* ---- a full disk -------------------------------------------------------- */

typedef struct tmpfs_fixture {
  char *mnt;
  bool mounted;
} tmpfs_fixture;

static int mount_small_tmpfs(void **state)
{
  tmpfs_fixture *fx = calloc(1, sizeof *fx);
  fx->mnt = strdup(t_path("%s/mnt", t_tempdir()));
  mkdir(fx->mnt, 0755);
  fx->mounted = mount("tmpfs", fx->mnt, "tmpfs", 0, "size=1m") == 0;
  *state = fx;
  return 0;
}

static int unmount_small_tmpfs(void **state)
{
  tmpfs_fixture *fx = *state;
  if (fx->mounted)
    umount2(fx->mnt, MNT_DETACH);
  free(fx->mnt);
  free(fx);
  return 0;
}

static void full_disk_fails_with_enospc_and_rolls_back(void **state)
{
  tmpfs_fixture *fx = *state;
  if (!fx->mounted)
    ls_skip("cannot mount a tmpfs here (needs CAP_SYS_ADMIN)");
  t_write(fx->mnt, "g/local/game.exe", "installed");
  ls_storage_file files[] = {{"small.eti", 1000, NULL}, {"big.eti", 4 << 20, NULL}, {"version.ini", 3, NULL}};
  ls_storage *s = NULL;
  ls_diag diag = {""};
  int rc = ls_storage_begin(fx->mnt, "g", "1.0", TEST_CHUNK, files, 3, &s, &diag);
  if (rc == LS_OK) { /* a file system without pre-allocation: the writes fail */
    unsigned char *big = random_bytes(4 << 20, 5);
    rc = ls_storage_write(s, 1, 0, big, 4 << 20, &diag);
    free(big);
    assert_int_equal(ls_storage_abort(s, LS_ROLLBACK_FAILED, NULL), LS_OK);
    ls_storage_free(s);
  }
  assert_int_equal(rc, LS_ENOSPC);
  /* Refused before anything is written, with both figures. */
  print_message("%s\n", diag.text);
  assert_non_null(strstr(diag.text, "needs 4.0 MiB more on disk"));
  assert_non_null(strstr(diag.text, "is free"));
  assert_null(strstr(diag.text, "rollback failed"));
  assert_content(t_path("%s/g/local/game.exe", fx->mnt), "installed");
  assert_false(exists(t_path("%s/g/small.eti", fx->mnt)));
  assert_false(exists(t_path("%s/g/big.eti", fx->mnt)));
  assert_no_transients(t_path("%s/g", fx->mnt));

  /* A fresh download: nothing of the root is left. */
  assert_int_equal(ls_storage_begin(fx->mnt, "h", "1.0", TEST_CHUNK, files, 3, &s, &diag), LS_ENOSPC);
  assert_false(exists(t_path("%s/h", fx->mnt)));
}

/* A file list may claim any size (up to 2^53 bytes a file): one that claims
 * more than the disk has is refused before a byte is written, and what is
 * on disk already (a resume, an update) does not count twice. */
static void begin_refuses_a_download_the_disk_cannot_hold(void **state)
{
  tmpfs_fixture *fx = *state;
  const char *dir = t_tempdir();
  ls_storage_file claim[] = {{"huge.eti", 1ull << 50, NULL}, {"version.ini", 3, NULL}};
  ls_storage *s = NULL;
  ls_diag diag = {""};
  assert_int_equal(ls_storage_begin(dir, "g", "1.0", TEST_CHUNK, claim, 2, &s, &diag), LS_ENOSPC);
  assert_null(s);
  assert_non_null(strstr(diag.text, "needs 1.0 PiB more on disk"));
  assert_false(exists(t_path("%s/g", dir)));
  if (!fx->mounted)
    ls_skip("cannot mount a tmpfs here (needs CAP_SYS_ADMIN)");
  /* 700 KiB of a 1 MiB disk on disk already: a resume of it still fits. */
  ls_storage_file files[] = {{"a.eti", 700 * 1024, NULL}, {"version.ini", 3, NULL}};
  s = begin_ok(fx->mnt, "g", "1.0", files, 2);
  unsigned char *a = random_bytes(700 * 1024, 7);
  write_whole(s, 0, a, 700 * 1024);
  free(a);
  ls_storage_free(s); /* kept, as a pause keeps it */
  s = begin_ok(fx->mnt, "g", "1.0", files, 2);
  assert_int_equal(ls_storage_abort(s, LS_ROLLBACK_CANCELLED, NULL), LS_OK);
  ls_storage_free(s);
}

static void full_disk_at_commit_fails_and_abort_cleans_up(void **state)
{
  tmpfs_fixture *fx = *state;
  if (!fx->mounted)
    ls_skip("cannot mount a tmpfs here (needs CAP_SYS_ADMIN)");
  ls_storage_file files[] = {{"a.eti", 64 * 1024, NULL}, {"version.ini", 3, NULL}};
  ls_storage *s = begin_ok(fx->mnt, "g", "1.0", files, 2);
  unsigned char *a = random_bytes(64 * 1024, 6);
  write_whole(s, 0, a, 64 * 1024);
  write_whole(s, 1, "1.0", 3);
  free(a);
  /* Someone else fills the disk. */
  int fd = open(t_path("%s/filler", fx->mnt), O_WRONLY | O_CREAT, 0644);
  assert_true(fd >= 0);
  char block[4096] = {0};
  while (write(fd, block, sizeof block) > 0)
    ;
  close(fd);
  ls_diag diag = {""};
  assert_int_equal(ls_storage_commit(s, &diag), LS_ENOSPC);
  assert_non_null(strstr(diag.text, LS_VERSION_TMP));
  assert_non_null(strstr(diag.text, "No space left on device"));
  assert_int_equal(ls_storage_abort(s, LS_ROLLBACK_FAILED, &diag), LS_OK);
  ls_storage_free(s);
  assert_false(exists(t_path("%s/g", fx->mnt)));
}

/* ---- symbolic links ----------------------------------------------------- */

static void symlinked_game_root_is_refused(void **state)
{
  (void)state;
  const char *dir = t_tempdir();
  const char *outside = t_tempdir();
  t_write(outside, "keep.eti", "outside");
  t_symlink(outside, dir, "g");
  ls_storage_file files[] = {{"a.eti", 3, NULL}, {"version.ini", 3, NULL}};
  ls_storage *s = NULL;
  ls_diag diag = {""};
  assert_int_equal(ls_storage_begin(dir, "g", "1.0", TEST_CHUNK, files, 2, &s, &diag), LS_EINVAL);
  assert_non_null(strstr(diag.text, "symbolic link"));
  assert_null(s);
  assert_int_equal(ls_discard_cancelled_download(dir, "g", NULL), LS_EINVAL);
  t_write(outside, LS_DOWNLOAD_JOURNAL, "{}");
  assert_int_equal(recover_ok(dir, "g"), LS_RECOVERY_NONE);
  assert_content(t_path("%s/keep.eti", outside), "outside");
  assert_true(exists(t_path("%s/%s", outside, LS_DOWNLOAD_JOURNAL)));
  assert_false(exists(t_path("%s/a.eti", outside)));
}

static void symlinked_payload_directory_is_refused(void **state)
{
  (void)state;
  const char *dir = t_tempdir();
  const char *elsewhere = t_tempdir();
  t_write(elsewhere, "mine.txt", "not yours");
  t_write(dir, "g/version.ini", "1.0");
  t_symlink(elsewhere, dir, "g/data");
  ls_storage_file files[] = {{"data/a.eti", 3, NULL}, {"version.ini", 3, NULL}};
  ls_storage *s = NULL;
  ls_diag diag = {""};
  assert_int_equal(ls_storage_begin(dir, "g", "2.0", TEST_CHUNK, files, 2, &s, &diag), LS_EINVAL);
  assert_null(s);
  assert_non_null(strstr(diag.text, "g/data is a symbolic link"));
  assert_false(exists(t_path("%s/a.eti", elsewhere)));
  assert_content(t_path("%s/mine.txt", elsewhere), "not yours");
  /* The failed begin changed nothing: the link is as it was, the old
   * version.ini back. */
  assert_content(t_path("%s/g/version.ini", dir), "1.0");
  assert_no_transients(t_path("%s/g", dir));
  struct stat st;
  assert_int_equal(lstat(t_path("%s/g/data", dir), &st), 0);
  assert_true(S_ISLNK(st.st_mode));

  /* A symlinked file is refused too. */
  t_symlink(t_path("%s/mine.txt", elsewhere), dir, "h/a.eti");
  ls_storage_file one[] = {{"a.eti", 3, NULL}, {"version.ini", 3, NULL}};
  assert_int_equal(ls_storage_begin(dir, "h", "1.0", TEST_CHUNK, one, 2, &s, &diag), LS_EINVAL);
  assert_content(t_path("%s/mine.txt", elsewhere), "not yours");
}

static void discard_deletes_a_symlink_not_its_target(void **state)
{
  (void)state;
  const char *dir = t_tempdir();
  const char *outside = t_tempdir();
  t_write(outside, "precious/file.txt", "precious");
  t_write(dir, "g/a.eti", "a");
  t_symlink(t_path("%s/precious", outside), dir, "g/link");
  t_symlink(t_path("%s/precious", outside), dir, "g/sub/deeper-link");
  assert_int_equal(ls_discard_cancelled_download(dir, "g", NULL), LS_OK);
  assert_false(exists(t_path("%s/g", dir)));
  assert_content(t_path("%s/precious/file.txt", outside), "precious");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(discard_cancelled_download_removes_peer_owned_payload),
    cmocka_unit_test(discard_cancelled_download_preserves_local_install_state),
    cmocka_unit_test(full_download_from_threads_then_commit),
    cmocka_unit_test(concurrent_writes_to_one_file_land_correctly),
    cmocka_unit_test(writes_past_the_end_are_refused),
    cmocka_unit_test(begin_refuses_unsafe_file_lists),
    cmocka_unit_test(begin_keeps_content_of_right_sized_files),
    cmocka_unit_test(commit_refuses_a_version_ini_of_another_version),
    cmocka_unit_test(update_parks_the_old_sentinel_until_commit),
    cmocka_unit_test(update_cancel_rolls_back_and_discards),
    cmocka_unit_test(failed_update_keeps_the_old_version),
    cmocka_unit_test(failed_update_that_wrote_an_old_file),
    cmocka_unit_test(recovery_of_a_download_of_the_version_on_disk_deletes_nothing),
    cmocka_unit_test(failed_resume_of_another_list_removes_what_the_first_run_made),
    cmocka_unit_test(recovery_keeps_a_download_crashed_after_begin),
    cmocka_unit_test(recovery_discards_a_format_1_journal),
    cmocka_unit_test(a_game_of_more_files_than_descriptors),
    cmocka_unit_test(probes_refuse_fifos_and_symlinks),
    cmocka_unit_test(recovery_trusts_the_map_only_as_far_as_the_files_go),
    cmocka_unit_test(recovery_keeps_an_update_crashed_after_some_writes),
    cmocka_unit_test(recovery_keeps_a_download_crashed_before_the_rename),
    cmocka_unit_test(recovery_finishes_a_committed_download),
    cmocka_unit_test(recovery_leaves_roots_without_a_journal_alone),
    cmocka_unit_test(recovery_discards_a_root_with_an_unreadable_journal),
    cmocka_unit_test(journal_parse_reads_what_begin_wrote),
    cmocka_unit_test(journal_parse_refuses_bad_journals),
    cmocka_unit_test(begin_settles_a_leftover_journal_first),
    cmocka_unit_test_setup_teardown(full_disk_fails_with_enospc_and_rolls_back,
                                    mount_small_tmpfs, unmount_small_tmpfs),
    cmocka_unit_test_setup_teardown(begin_refuses_a_download_the_disk_cannot_hold,
                                    mount_small_tmpfs, unmount_small_tmpfs),
    cmocka_unit_test_setup_teardown(full_disk_at_commit_fails_and_abort_cleans_up,
                                    mount_small_tmpfs, unmount_small_tmpfs),
    cmocka_unit_test(symlinked_game_root_is_refused),
    cmocka_unit_test(symlinked_payload_directory_is_refused),
    cmocka_unit_test(discard_deletes_a_symlink_not_its_target),
  };
  return ls_run_tests(tests, NULL, NULL);
}
