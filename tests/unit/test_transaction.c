/* Tests the install transactions (install/transaction.h) on real files with
 * test unpackers of their own (a simple "LSTEST1" text archive format that
 * can fail on a corrupt archive or SIGKILL itself after N bytes): install,
 * update, uninstall and remove-downloaded with their refusals, failures and
 * cancels, recovery of unreadable intents and foreign directories, and crash
 * injection (forked children killed at every step boundary and at seeded
 * random points) followed by ls_recover_game_root; and, with the real
 * libarchive unpacker, archive bombs from a hostile peer refused under the
 * extraction limits with the previous install kept. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testrun.h"

#include "bombs.h"
#include "testutil.h"

#include "core/error.h"
#include "core/fs.h"
#include "core/teststep.h"
#include "install/transaction.h"
#include "install/unpack.h"
#include "library/layout.h"

#include <lanspread/catalog.h>

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ID "game1"
#define MAGIC "LSTEST1\n"
#define VOLUME2_MAGIC "LSVOL2\n"
#define CHUNK 512
#define RANDOM_CRASHES 50

/* ---- file helpers --------------------------------------------------------- */

static bool exists(const char *path)
{
  struct stat st;
  return lstat(path, &st) == 0;
}

static char *slurp(const char *path, size_t *len)
{
  char *data = NULL;
  if (ls_read_file_at(AT_FDCWD, path, (size_t)1 << 24, &data, len, NULL) != LS_OK)
    return NULL;
  return data;
}

static void assert_contains(const char *text, const char *part)
{
  if (!strstr(text, part))
    fail_msg("\"%s\" does not contain \"%s\"", text, part);
}

/* ---- the LSTEST1 archive format and its unpacker ----------------------------- */

/* Archive: "LSTEST1\n", then per file "F <length> <path>\n" and the bytes. */
typedef struct test_unpacker {
  long long kill_after; /* SIGKILL once this many bytes are written (0: never) */
  size_t deep_levels;   /* the first archive also writes DEST/deep/d/.../d (0: no) */
  long long written;
  int calls;
  char order[8][128]; /* the archives unpacked, in order */
} test_unpacker;

static int write_entry(test_unpacker *u, const char *dest, const char *rel, const char *data,
                       size_t len, ls_unpack_progress_cb progress, void *user, uint64_t *done)
{
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dest, rel);
  char *slash = strrchr(path, '/');
  *slash = '\0';
  if (ls_mkdir_p(path, 0, NULL) != LS_OK)
    return LS_EIO;
  *slash = '/';
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return LS_EIO;
  for (size_t off = 0; off < len; off += CHUNK) {
    size_t n = len - off < CHUNK ? len - off : CHUNK;
    if (write(fd, data + off, n) != (ssize_t)n) {
      close(fd);
      return LS_EIO;
    }
    u->written += (long long)n;
    *done += n;
    if (u->kill_after > 0 && u->written >= u->kill_after)
      raise(SIGKILL); /* a crash in the middle of an extraction */
    if (progress && !progress(user, *done)) {
      close(fd);
      return LS_ECANCELED;
    }
  }
  close(fd);
  return LS_OK;
}

static int test_unpack(void *self, const char *archive, const char *dest,
                       ls_unpack_limits *limits, ls_unpack_progress_cb progress, void *user,
                       ls_diag *diag)
{
  (void)limits; /* the test format has no bombs */
  test_unpacker *u = self;
  const char *base = strrchr(archive, '/') ? strrchr(archive, '/') + 1 : archive;
  if (u->calls < 8)
    snprintf(u->order[u->calls], sizeof u->order[0], "%s", base);
  u->calls++;
  size_t len = 0;
  char *data = slurp(archive, &len);
  if (!data)
    return ls_diag_set(diag, LS_EIO, "%s: cannot read", archive);
  size_t pos = strlen(MAGIC);
  uint64_t done = 0;
  int rc = LS_OK;
  while (rc == LS_OK && pos < len) {
    size_t size = 0;
    int used = 0;
    char rel[256];
    if (sscanf(data + pos, "F %zu %255s\n%n", &size, rel, &used) != 2 || used == 0 ||
        size > len - pos - (size_t)used) {
      rc = ls_diag_set(diag, LS_EFORMAT, "%s: corrupt archive (bad entry at byte %zu)", archive,
                       pos);
      break;
    }
    pos += (size_t)used;
    rc = write_entry(u, dest, rel, data + pos, size, progress, user, &done);
    if (rc != LS_OK && rc != LS_ECANCELED)
      ls_diag_set(diag, rc, "%s: cannot write %s", archive, rel);
    if (rc == LS_ECANCELED)
      ls_diag_set(diag, rc, "%s: cancelled", archive);
    pos += size;
  }
  free(data);
  if (rc == LS_OK && u->deep_levels && u->calls == 1 &&
      !t_make_deep_tree(dest, "deep", u->deep_levels))
    rc = ls_diag_set(diag, LS_EIO, "%s: cannot write the deep tree", archive);
  return rc;
}

static bool test_is_archive(void *self, const char *path)
{
  (void)self;
  char head[8] = {0};
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return false;
  ssize_t n = read(fd, head, sizeof head);
  close(fd);
  return n == (ssize_t)strlen(MAGIC) && memcmp(head, MAGIC, strlen(MAGIC)) == 0;
}

static ls_unpacker unpacker_of(test_unpacker *u)
{
  return (ls_unpacker){test_unpack, test_is_archive, u};
}

/* ---- game trees --------------------------------------------------------------- */

typedef struct tfile {
  const char *path;
  size_t len;
} tfile;

typedef struct tree {
  const char *tag; /* the version; also seeds the content */
  const tfile *files;
  size_t count;
} tree;

static const tfile files_v1[] = {
  {"game.exe", 3000}, {"data/level1.dat", 4000}, {"data/level2.dat", 2500}, {"readme.txt", 100},
};
static const tfile files_v2[] = {
  {"game.exe", 3500}, {"data/level1.dat", 4000}, {"data/level3.dat", 2000},
  {"docs/manual.txt", 1500},
};
static const tree tree_v1 = {"1.0", files_v1, 4};
static const tree tree_v2 = {"2.0", files_v2, 4};

static char *content_of(const tree *t, const tfile *f)
{
  char *buf = malloc(f->len + 1);
  char unit[160];
  int n = snprintf(unit, sizeof unit, "<%s:%s>", t->tag, f->path);
  for (size_t i = 0; i < f->len; i++)
    buf[i] = unit[i % (size_t)n];
  buf[f->len] = '\0';
  return buf;
}

static uint64_t tree_bytes(const tree *t)
{
  uint64_t sum = 0;
  for (size_t i = 0; i < t->count; i++)
    sum += t->files[i].len;
  return sum;
}

/* Writes an LSTEST1 archive DIR/REL holding files [from, to) of t. */
static void write_archive(const char *dir, const char *rel, const tree *t, size_t from, size_t to)
{
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, rel);
  char *slash = strrchr(path, '/');
  *slash = '\0';
  assert_int_equal(ls_mkdir_p(path, 0, NULL), LS_OK);
  *slash = '/';
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  fputs(MAGIC, f);
  for (size_t i = from; i < to; i++) {
    char *c = content_of(t, &t->files[i]);
    fprintf(f, "F %zu %s\n", t->files[i].len, t->files[i].path);
    fwrite(c, 1, t->files[i].len, f);
    free(c);
  }
  assert_int_equal(fclose(f), 0);
}

/* The payload of version t in ROOT: two archives, a file that is no archive
 * and version.ini; earlier archives are replaced. */
static void write_payload(const char *root, const tree *t)
{
  ls_rmtree_at(AT_FDCWD, t_path("%s/a.eti", root), NULL);
  ls_rmtree_at(AT_FDCWD, t_path("%s/sub", root), NULL);
  write_archive(root, "a.eti", t, 0, t->count / 2);
  write_archive(root, "sub/b.eti", t, t->count / 2, t->count);
  t_write(root, "notes.nfo", "not an archive\n");
  t_write(root, LS_VERSION_FILE, t->tag);
}

static bool collect_files(const char *dir, const char *prefix, char names[][128], size_t *count)
{
  DIR *d = opendir(dir);
  if (!d)
    return false;
  struct dirent *de;
  bool ok = true;
  while (ok && (de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    char path[4096], rel[400];
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    snprintf(rel, sizeof rel, "%.100s%s", prefix, de->d_name);
    struct stat st;
    if (lstat(path, &st) != 0)
      ok = false;
    else if (S_ISDIR(st.st_mode))
      ok = collect_files(path, strcat(rel, "/"), names, count);
    else if (!S_ISREG(st.st_mode) || *count >= 32)
      ok = false;
    else
      snprintf(names[(*count)++], 128, "%.127s", rel);
  }
  closedir(d);
  return ok;
}

/* True when DIR holds exactly the files of t, byte for byte. */
static bool tree_equals(const char *dir_path, const tree *t)
{
  char dir[4096]; /* dir_path may be a t_path buffer: they rotate */
  snprintf(dir, sizeof dir, "%s", dir_path);
  char names[32][128];
  size_t count = 0;
  if (!collect_files(dir, "", names, &count) || count != t->count)
    return false;
  for (size_t i = 0; i < t->count; i++) {
    size_t len = 0;
    char *got = slurp(t_path("%s/%s", dir, t->files[i].path), &len);
    char *want = content_of(t, &t->files[i]);
    bool same = got && len == t->files[i].len && memcmp(got, want, len) == 0;
    free(got);
    free(want);
    if (!same)
      return false;
  }
  return true;
}

static bool no_leftovers(const char *root)
{
  return !exists(t_path("%s/%s", root, LS_INSTALLING_DIR)) &&
         !exists(t_path("%s/%s", root, LS_BACKUP_DIR)) &&
         !exists(t_path("%s/%s", root, LS_INTENT_FILE)) &&
         !exists(t_path("%s/%s.tmp", root, LS_INTENT_FILE));
}

static void assert_installed(const char *root, const tree *t)
{
  assert_true(tree_equals(t_path("%s/%s", root, LS_LOCAL_DIR), t));
  assert_true(no_leftovers(root));
}

/* ---- fixture -------------------------------------------------------------------- */

typedef struct fixture {
  char *game_dir;
  char root[2048];
  test_unpacker tu;
  ls_unpacker u;
} fixture;

static int setup(void **state)
{
  fixture *f = calloc(1, sizeof *f);
  f->game_dir = t_tempdir();
  snprintf(f->root, sizeof f->root, "%s/%s", f->game_dir, ID);
  t_mkdir(f->root, "");
  f->u = unpacker_of(&f->tu);
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  free(*state);
  return 0;
}

static int install(fixture *f, ls_diag *diag)
{
  memset(&f->tu, 0, sizeof f->tu);
  return ls_install_game(f->game_dir, ID, &f->u, NULL, NULL, diag);
}

static void install_ok(fixture *f)
{
  ls_diag diag;
  int rc = install(f, &diag);
  if (rc != LS_OK)
    fail_msg("install failed: %s", diag.text);
}

/* ---- happy paths ---------------------------------------------------------------- */

typedef struct progress_log {
  uint64_t last_done, total;
  int calls;
  bool monotonic;
  int cancel_after; /* return false at this call (0: never) */
} progress_log;

static bool log_progress(void *user, uint64_t done, uint64_t total)
{
  progress_log *p = user;
  if (done < p->last_done || done > total || (p->calls && total != p->total))
    p->monotonic = false;
  p->last_done = done;
  p->total = total;
  p->calls++;
  return p->cancel_after == 0 || p->calls < p->cancel_after;
}

static void test_install(void **state)
{
  fixture *f = *state;
  write_payload(f->root, &tree_v1);
  progress_log p = {.monotonic = true};
  ls_diag diag;
  assert_int_equal(ls_install_game(f->game_dir, ID, &f->u, log_progress, &p, &diag), LS_OK);
  assert_string_equal(diag.text, "");
  assert_installed(f->root, &tree_v1);
  assert_false(exists(t_path("%s/%s/%s", f->root, LS_LOCAL_DIR, LS_OWNED_MARKER)));
  assert_true(exists(t_path("%s/a.eti", f->root))); /* the payload stays */
  assert_true(p.monotonic);
  struct stat a, b;
  assert_int_equal(stat(t_path("%s/a.eti", f->root), &a), 0);
  assert_int_equal(stat(t_path("%s/sub/b.eti", f->root), &b), 0);
  assert_int_equal(p.total, (uint64_t)(a.st_size + b.st_size));
  assert_int_equal(p.last_done, p.total);
  ls_txn_recovery_report rep;
  assert_int_equal(ls_recover_game_root(f->game_dir, ID, &rep, &diag), LS_OK);
  assert_int_equal(rep.outcome, LS_TXN_RECOVERY_NOTHING);
  assert_string_equal(diag.text, "");
}

/* Archives are extracted in byte order of their paths, first volumes and
 * archives only, never through a symlink; a later archive wins a clash. */
static void test_install_order(void **state)
{
  fixture *f = *state;
  static const tfile one[] = {{"common.txt", 10}};
  const tree ta = {"a", one, 1}, tb = {"b", one, 1}, tc = {"c", one, 1};
  write_archive(f->root, "c/d.eti", &tc, 0, 1);
  write_archive(f->root, "b.eti", &tb, 0, 1);
  write_archive(f->root, "a.eti", &ta, 0, 1);
  t_write(f->root, "a.eti.002", VOLUME2_MAGIC "later volume");
  t_write(f->root, LS_VERSION_FILE, "1");
  char *outside = t_tempdir();
  write_archive(outside, "evil.eti", &ta, 0, 1);
  t_symlink(t_path("%s/evil.eti", outside), f->root, "0link.eti");
  install_ok(f);
  assert_int_equal(f->tu.calls, 3);
  assert_string_equal(f->tu.order[0], "a.eti");
  assert_string_equal(f->tu.order[1], "b.eti");
  assert_string_equal(f->tu.order[2], "d.eti");
  assert_true(tree_equals(t_path("%s/%s", f->root, LS_LOCAL_DIR), &tc));
}

static void test_update(void **state)
{
  fixture *f = *state;
  write_payload(f->root, &tree_v1);
  install_ok(f);
  write_payload(f->root, &tree_v2);
  install_ok(f);
  assert_installed(f->root, &tree_v2);
  /* Installed and same version: a reinstall from the archives. */
  t_write(f->root, "local/data/level1.dat", "damaged");
  t_write(f->root, "local/stray.sav", "x");
  install_ok(f);
  assert_installed(f->root, &tree_v2);
}

static void test_uninstall(void **state)
{
  fixture *f = *state;
  write_payload(f->root, &tree_v1);
  install_ok(f);
  ls_diag diag;
  assert_int_equal(ls_uninstall_game(f->game_dir, ID, &diag), LS_OK);
  assert_string_equal(diag.text, "");
  assert_false(exists(t_path("%s/%s", f->root, LS_LOCAL_DIR)));
  assert_true(no_leftovers(f->root));
  assert_true(exists(t_path("%s/a.eti", f->root)));
  assert_true(exists(t_path("%s/%s", f->root, LS_VERSION_FILE)));
}

static void test_remove_downloaded(void **state)
{
  fixture *f = *state;
  const char *ids[] = {ID, "game2"};
  ls_catalog *catalog = t_catalog(ids, 2);
  write_payload(f->root, &tree_v1);
  char *outside = t_tempdir();
  t_write(outside, "precious.txt", "keep");
  t_symlink(outside, f->root, "link");
  t_write(f->game_dir, "game2/version.ini", "1");
  ls_diag diag;
  assert_int_equal(ls_remove_downloaded_game(f->game_dir, catalog, ID, &diag), LS_OK);
  assert_false(exists(f->root));
  assert_true(exists(t_path("%s/precious.txt", outside)));
  assert_true(exists(t_path("%s/game2/version.ini", f->game_dir)));
  ls_catalog_free(catalog);
}

/* ---- refusals --------------------------------------------------------------------- */

static void expect_refusal(int rc, const ls_diag *diag, int want, const char *reason)
{
  if (rc != want)
    fail_msg("got %d (%s), want %d (%s)", rc, diag->text, want, reason);
  assert_contains(diag->text, reason);
}

static void test_install_refusals(void **state)
{
  fixture *f = *state;
  ls_diag d;
  expect_refusal(ls_install_game(f->game_dir, "../x", &f->u, NULL, NULL, &d), &d, LS_EINVAL,
                 "not a valid game id");
  expect_refusal(ls_install_game(f->game_dir, "nope", &f->u, NULL, NULL, &d), &d, LS_ENOENT,
                 "not downloaded");
  write_archive(f->root, "a.eti", &tree_v1, 0, 2);
  expect_refusal(install(f, &d), &d, LS_ESTATE, "not downloaded");
  char *outside = t_tempdir();
  t_write(outside, "v", "1.0");
  t_symlink(t_path("%s/v", outside), f->root, LS_VERSION_FILE);
  expect_refusal(install(f, &d), &d, LS_ESTATE, "not downloaded");
  unlink(t_path("%s/%s", f->root, LS_VERSION_FILE));
  t_write(f->root, LS_VERSION_FILE, "1.0");
  t_write(f->root, LS_DOWNLOAD_JOURNAL, "{}");
  expect_refusal(install(f, &d), &d, LS_ESTATE, "download is in flight");
  unlink(t_path("%s/%s", f->root, LS_DOWNLOAD_JOURNAL));
  t_write(f->root, LS_LOCAL_DIR, "a file");
  expect_refusal(install(f, &d), &d, LS_ESTATE, "is not a directory");
  unlink(t_path("%s/%s", f->root, LS_LOCAL_DIR));
  t_write(f->root, ".local.backup/save.dat", "theirs");
  expect_refusal(install(f, &d), &d, LS_ESTATE, "not created by Lanspread");
  assert_true(exists(t_path("%s/.local.backup/save.dat", f->root)));
  ls_rmtree_at(AT_FDCWD, t_path("%s/%s", f->root, LS_BACKUP_DIR), NULL);
  unlink(t_path("%s/a.eti", f->root));
  t_write(f->root, "notes.txt", "no archive here");
  expect_refusal(install(f, &d), &d, LS_ENOENT, "no archive to install");
  t_symlink(f->root, f->game_dir, "linked");
  expect_refusal(ls_install_game(f->game_dir, "linked", &f->u, NULL, NULL, &d), &d, LS_EINVAL,
                 "symbolic link");
  assert_false(exists(t_path("%s/%s", f->root, LS_LOCAL_DIR)));
  assert_true(no_leftovers(f->root));
}

static void test_uninstall_refusals(void **state)
{
  fixture *f = *state;
  ls_diag d;
  expect_refusal(ls_uninstall_game(f->game_dir, "nope", &d), &d, LS_ENOENT, "not installed");
  expect_refusal(ls_uninstall_game(f->game_dir, "a/b", &d), &d, LS_EINVAL, "not a valid game id");
  write_payload(f->root, &tree_v1);
  expect_refusal(ls_uninstall_game(f->game_dir, ID, &d), &d, LS_ESTATE, "not installed");
  char *outside = t_tempdir();
  t_write(outside, "game.exe", "theirs");
  t_symlink(outside, f->root, LS_LOCAL_DIR);
  expect_refusal(ls_uninstall_game(f->game_dir, ID, &d), &d, LS_ESTATE, "not installed");
  assert_true(exists(t_path("%s/game.exe", outside)));
}

static void test_remove_refusals(void **state)
{
  fixture *f = *state;
  const char *ids[] = {ID, "linked", "other"};
  ls_catalog *catalog = t_catalog(ids, 3);
  ls_diag d;
  expect_refusal(ls_remove_downloaded_game(f->game_dir, catalog, "..", &d), &d, LS_EINVAL,
                 "not a valid game id");
  expect_refusal(ls_remove_downloaded_game(f->game_dir, catalog, "stranger", &d), &d, LS_ENOENT,
                 "not a catalog game");
  expect_refusal(ls_remove_downloaded_game(f->game_dir, catalog, "other", &d), &d, LS_ENOENT,
                 "not downloaded");
  write_archive(f->root, "a.eti", &tree_v1, 0, 2);
  expect_refusal(ls_remove_downloaded_game(f->game_dir, catalog, ID, &d), &d, LS_ESTATE,
                 "not downloaded");
  t_mkdir(f->root, LS_VERSION_FILE);
  expect_refusal(ls_remove_downloaded_game(f->game_dir, catalog, ID, &d), &d, LS_ESTATE,
                 "not downloaded");
  rmdir(t_path("%s/%s", f->root, LS_VERSION_FILE));
  t_write(f->root, LS_VERSION_FILE, "1.0");
  t_mkdir(f->root, LS_LOCAL_DIR);
  expect_refusal(ls_remove_downloaded_game(f->game_dir, catalog, ID, &d), &d, LS_ESTATE,
                 "installed: uninstall it first");
  rmdir(t_path("%s/%s", f->root, LS_LOCAL_DIR));
  t_mkdir(f->root, LS_INSTALLING_DIR);
  expect_refusal(ls_remove_downloaded_game(f->game_dir, catalog, ID, &d), &d, LS_ESTATE,
                 "install is in flight");
  rmdir(t_path("%s/%s", f->root, LS_INSTALLING_DIR));
  t_write(f->root, LS_DOWNLOAD_JOURNAL, "{}");
  expect_refusal(ls_remove_downloaded_game(f->game_dir, catalog, ID, &d), &d, LS_ESTATE,
                 "download is in flight");
  unlink(t_path("%s/%s", f->root, LS_DOWNLOAD_JOURNAL));
  t_symlink(f->root, f->game_dir, "linked");
  expect_refusal(ls_remove_downloaded_game(f->game_dir, catalog, "linked", &d), &d, LS_EINVAL,
                 "symbolic link");
  assert_true(exists(t_path("%s/a.eti", f->root)));
  ls_catalog_free(catalog);
}

/* ---- failures and cancel -------------------------------------------------------- */

static void corrupt_second_archive(const char *root)
{
  t_write(root, "sub/b.eti", MAGIC "F 99999 broken\nshort");
}

static void test_failing_unpacker_install(void **state)
{
  fixture *f = *state;
  write_payload(f->root, &tree_v1);
  corrupt_second_archive(f->root);
  ls_diag d;
  expect_refusal(install(f, &d), &d, LS_EFORMAT, "corrupt archive");
  assert_contains(d.text, "sub/b.eti");
  assert_false(exists(t_path("%s/%s", f->root, LS_LOCAL_DIR)));
  assert_true(no_leftovers(f->root));
}

static void test_failing_unpacker_update(void **state)
{
  fixture *f = *state;
  write_payload(f->root, &tree_v1);
  install_ok(f);
  write_payload(f->root, &tree_v2);
  corrupt_second_archive(f->root);
  ls_diag d;
  expect_refusal(install(f, &d), &d, LS_EFORMAT, "sub/b.eti");
  assert_installed(f->root, &tree_v1);
}

static void test_cancel(void **state)
{
  fixture *f = *state;
  write_payload(f->root, &tree_v1);
  install_ok(f);
  write_payload(f->root, &tree_v2);
  progress_log p = {.monotonic = true, .cancel_after = 4};
  ls_diag d;
  expect_refusal(ls_install_game(f->game_dir, ID, &f->u, log_progress, &p, &d), &d,
                 LS_ECANCELED, "cancel");
  assert_installed(f->root, &tree_v1);
}

/* ---- recovery of what is not (provably) ours ------------------------------------- */

static void test_recovery_leaves_foreign_backup(void **state)
{
  fixture *f = *state;
  write_payload(f->root, &tree_v1);
  t_write(f->root, ".local.backup/save.dat", "theirs");
  ls_txn_recovery_report rep;
  ls_diag d;
  assert_int_equal(ls_recover_game_root(f->game_dir, ID, &rep, &d), LS_OK);
  assert_true(rep.foreign_backup);
  assert_int_equal(rep.outcome, LS_TXN_RECOVERY_NOTHING);
  assert_contains(d.text, "left alone");
  assert_true(exists(t_path("%s/.local.backup/save.dat", f->root)));
  assert_false(exists(t_path("%s/%s", f->root, LS_LOCAL_DIR)));
  /* Also with an installed game and a valid uninstall intent whose rename
   * has not happened: the backup cannot be ours. */
  rename(t_path("%s/.local.backup", f->root), t_path("%s/theirs", f->game_dir));
  install_ok(f);
  rename(t_path("%s/theirs", f->game_dir), t_path("%s/.local.backup", f->root));
  t_write(f->root, LS_INTENT_FILE,
          "{\"format\":1,\"id\":\"" ID "\",\"op\":\"uninstall\",\"phase\":\"removing\","
          "\"from\":\"1.0\",\"to\":null}");
  assert_int_equal(ls_recover_game_root(f->game_dir, ID, &rep, &d), LS_OK);
  assert_true(rep.foreign_backup);
  assert_int_equal(rep.outcome, LS_TXN_RECOVERY_ROLLED_BACK);
  assert_true(exists(t_path("%s/.local.backup/save.dat", f->root)));
  assert_true(tree_equals(t_path("%s/%s", f->root, LS_LOCAL_DIR), &tree_v1));
  assert_false(exists(t_path("%s/%s", f->root, LS_INTENT_FILE)));
}

static void expect_intent(const char *text, ls_txn_op op, ls_txn_phase phase)
{
  ls_txn_intent it;
  ls_diag d = {""};
  if (ls_txn_intent_parse(text, strlen(text), &it, &d) != LS_OK)
    fail_msg("%s: %s", text, d.text);
  assert_int_equal(it.op, op);
  assert_int_equal(it.phase, phase);
}

static void expect_bad_intent(const char *text, const char *why)
{
  ls_txn_intent it;
  ls_diag d = {""};
  assert_int_equal(ls_txn_intent_parse(text, strlen(text), &it, &d), LS_EFORMAT);
  assert_contains(d.text, why);
}

static void test_intent_parse(void **state)
{
  (void)state;
  /* As intent_write writes them. */
  expect_intent("{\"format\":1,\"id\":\"g\",\"op\":\"install\",\"phase\":\"extracting\","
                "\"from\":null,\"to\":\"1.0\"}",
                LS_TXN_OP_INSTALL, LS_TXN_PHASE_EXTRACTING);
  expect_intent("{\"format\":1,\"id\":\"g\",\"op\":\"update\",\"phase\":\"swapping\","
                "\"from\":\"1.0\",\"to\":\"2.0\"}",
                LS_TXN_OP_UPDATE, LS_TXN_PHASE_SWAPPING);
  expect_intent("{\"phase\":\"removing\",\"op\":\"uninstall\",\"format\":1}",
                LS_TXN_OP_UNINSTALL, LS_TXN_PHASE_REMOVING);
  expect_bad_intent("{\"format\":1,\"op\":\"install\",\"pha", "not JSON");
  expect_bad_intent("{\"format\":99,\"op\":\"update\",\"phase\":\"swapping\"}", "format 1");
  /* 2^32 + 1 is not format 1 (an int conversion would make it 1). */
  expect_bad_intent("{\"format\":4294967297,\"op\":\"install\",\"phase\":\"extracting\"}",
                    "format 1");
  expect_bad_intent("{\"format\":1,\"op\":\"none\",\"phase\":\"extracting\"}", "operation");
  expect_bad_intent("{\"format\":1,\"op\":\"install\",\"phase\":\"swapping\"}", "operation");
  expect_bad_intent("{\"format\":1,\"op\":\"install\",\"op\":\"update\",\"phase\":\"swapping\"}",
                    "not JSON");
}

static void test_recovery_corrupt_intent(void **state)
{
  fixture *f = *state;
  write_payload(f->root, &tree_v1);
  t_write(f->root, LS_INTENT_FILE, "{\"format\":1,\"op\":\"install\",\"pha");
  t_write(f->root, ".local.installing/half.dat", "unproven");
  ls_txn_recovery_report rep;
  ls_diag d;
  assert_int_equal(ls_recover_game_root(f->game_dir, ID, &rep, &d), LS_OK);
  assert_true(rep.intent_unreadable);
  assert_true(rep.foreign_installing);
  assert_int_equal(rep.outcome, LS_TXN_RECOVERY_CLEANED);
  assert_true(exists(t_path("%s/.local.installing/half.dat", f->root)));
  assert_false(exists(t_path("%s/%s", f->root, LS_INTENT_FILE)));
  /* An unknown format proves nothing either; the marker does. */
  ls_rmtree_at(AT_FDCWD, t_path("%s/%s", f->root, LS_INSTALLING_DIR), NULL);
  t_write(f->root, LS_INTENT_FILE,
          "{\"format\":99,\"op\":\"update\",\"phase\":\"swapping\"}");
  t_write(f->root, ".local.installing/" LS_OWNED_MARKER, "");
  t_write(f->root, ".local.backup/game.exe", "old");
  t_write(f->root, ".local.backup/" LS_OWNED_MARKER, "");
  assert_int_equal(ls_recover_game_root(f->game_dir, ID, &rep, &d), LS_OK);
  assert_int_equal(rep.outcome, LS_TXN_RECOVERY_CLEANED);
  assert_false(rep.foreign_installing || rep.foreign_backup);
  assert_true(no_leftovers(f->root));
  /* The marked backup was restored, without its marker. */
  assert_true(exists(t_path("%s/local/game.exe", f->root)));
  assert_false(exists(t_path("%s/local/%s", f->root, LS_OWNED_MARKER)));
}

static void test_recovery_marked_backup_with_local(void **state)
{
  fixture *f = *state;
  write_payload(f->root, &tree_v2);
  install_ok(f);
  t_write(f->root, ".local.backup/game.exe", "old");
  t_write(f->root, ".local.backup/" LS_OWNED_MARKER, "");
  ls_txn_recovery_report rep;
  assert_int_equal(ls_recover_game_root(f->game_dir, ID, &rep, NULL), LS_OK);
  assert_int_equal(rep.outcome, LS_TXN_RECOVERY_CLEANED);
  assert_installed(f->root, &tree_v2);
  assert_int_equal(ls_recover_game_root(f->game_dir, "missing", &rep, NULL), LS_OK);
  assert_int_equal(rep.outcome, LS_TXN_RECOVERY_NOTHING);
}

/* ---- crash injection ------------------------------------------------------------- */

typedef enum crash_op { CRASH_INSTALL, CRASH_UPDATE, CRASH_UNINSTALL } crash_op;

typedef struct crash_stats {
  int trials, killed, ended_old, ended_new;
} crash_stats;

/* The state before the operation: the old tree (or none) and the payload. */
static void prepare(fixture *f, crash_op op)
{
  assert_int_equal(ls_rmtree_at(AT_FDCWD, f->root, NULL), LS_OK);
  t_mkdir(f->root, "");
  write_payload(f->root, &tree_v1);
  if (op != CRASH_INSTALL)
    install_ok(f);
  if (op == CRASH_UPDATE)
    write_payload(f->root, &tree_v2);
}

static int run_op(fixture *f, crash_op op, long long kill_after)
{
  memset(&f->tu, 0, sizeof f->tu);
  f->tu.kill_after = kill_after;
  if (op == CRASH_UNINSTALL)
    return ls_uninstall_game(f->game_dir, ID, NULL);
  return ls_install_game(f->game_dir, ID, &f->u, NULL, NULL, NULL);
}

/* After recovery: local/ is exactly the old or the new tree (for uninstall:
 * the old one or absent), and nothing of the transaction is left. */
static void check_recovered(fixture *f, crash_op op, crash_stats *s, const char *label)
{
  ls_txn_recovery_report rep;
  ls_diag d;
  int rc = ls_recover_game_root(f->game_dir, ID, &rep, &d);
  if (rc != LS_OK)
    fail_msg("%s: recovery failed: %s", label, d.text);
  char local[4096];
  snprintf(local, sizeof local, "%s/%s", f->root, LS_LOCAL_DIR);
  const tree *old_tree = op == CRASH_INSTALL ? NULL : &tree_v1;
  const tree *new_tree = op == CRASH_UNINSTALL ? NULL : op == CRASH_UPDATE ? &tree_v2 : &tree_v1;
  bool is_old = old_tree ? tree_equals(local, old_tree) : !exists(local);
  bool is_new = new_tree ? tree_equals(local, new_tree) : !exists(local);
  if (!is_old && !is_new) {
    char names[32][128];
    size_t count = 0;
    collect_files(local, "", names, &count);
    for (size_t i = 0; i < count; i++)
      print_message("  local/%s\n", names[i]);
    fail_msg("%s: local/ is neither the old nor the new tree (recovery: %s)", label, d.text);
  }
  if (!no_leftovers(f->root) || rep.foreign_backup || rep.foreign_installing)
    fail_msg("%s: transaction state left behind (recovery: %s)", label, d.text);
  if (!exists(t_path("%s/a.eti", f->root)) || !exists(t_path("%s/version.ini", f->root)))
    fail_msg("%s: the payload was touched", label);
  s->trials++;
  s->ended_old += is_old && !is_new;
  s->ended_new += is_new;
}

/* Runs the operation in a child that dies at the step named `step_name`, after
 * `kill_after` extracted bytes, or by SIGKILL from here after `delay_us`. */
static void crash_trial(fixture *f, crash_op op, const char *step_name, long long kill_after,
                        long delay_us, crash_stats *s, const char *label)
{
  prepare(f, op);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    if (step_name)
      setenv("LS_TEST_CRASH_AT", step_name, 1);
    _exit(run_op(f, op, kill_after) == LS_OK ? 0 : 1);
  }
  bool killed = t_wait_child(pid, delay_us, label);
  s->killed += killed;
  check_recovered(f, op, s, label);
}

typedef struct step_list {
  char names[32][64];
  int count;
} step_list;

#ifdef LS_TEST_HOOKS
static void record_step(void *user, const char *step_name)
{
  step_list *l = user;
  for (int i = 0; i < l->count; i++)
    if (strcmp(l->names[i], step_name) == 0)
      return;
  if (l->count < 32)
    snprintf(l->names[l->count++], 64, "%s", step_name);
}

#endif

static int crash_at_every_step(fixture *f, crash_op op, crash_stats *s)
{
  step_list steps = {.count = 0};
  prepare(f, op);
#ifdef LS_TEST_HOOKS
  ls_test_set_step_hook(record_step, &steps);
#endif
  assert_int_equal(run_op(f, op, 0), LS_OK);
#ifdef LS_TEST_HOOKS
  ls_test_set_step_hook(NULL, NULL);
#endif
  assert_true(steps.count >= 4);
  for (int i = 0; i < steps.count; i++)
    print_message("%s%s", i ? ", " : "steps: ", steps.names[i]);
  print_message("\n");
  for (int i = 0; i < steps.count; i++)
    crash_trial(f, op, steps.names[i], 0, -1, s, steps.names[i]);
  assert_int_equal(s->killed, steps.count); /* every step was reached and crashed at */
  return steps.count;
}

static unsigned test_seed(void)
{
  const char *env = getenv("LS_TEST_SEED");
  return env ? (unsigned)strtoul(env, NULL, 0) : 20240611u;
}

static unsigned next_random(unsigned *x)
{
  *x ^= *x << 13;
  *x ^= *x >> 17;
  *x ^= *x << 5;
  return *x;
}

static long op_duration_us(fixture *f, crash_op op)
{
  prepare(f, op);
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  assert_int_equal(run_op(f, op, 0), LS_OK);
  clock_gettime(CLOCK_MONOTONIC, &b);
  return (b.tv_sec - a.tv_sec) * 1000000L + (b.tv_nsec - a.tv_nsec) / 1000;
}

/* Step boundaries, then RANDOM_CRASHES seeded random points: during the
 * extraction (a byte count) for install and update, by a timed SIGKILL for
 * uninstall (which extracts nothing); plus a few timed kills for all. */
static void crash_suite(void **state, crash_op op, const char *name)
{
#ifndef LS_TEST_HOOKS
  ls_skip("needs a build with LS_TEST_HOOKS (the transaction step hooks)");
#endif
  fixture *f = *state;
  crash_stats s = {0};
  unsigned seed = test_seed(), x = seed ? seed : 1;
  int steps = crash_at_every_step(f, op, &s);
  const tree *extracted = op == CRASH_UPDATE ? &tree_v2 : &tree_v1;
  long duration = op_duration_us(f, op);
  int random_points = 0;
  for (int i = 0; i < RANDOM_CRASHES; i++, random_points++) {
    char label[96];
    if (op == CRASH_UNINSTALL) {
      long delay = (long)(next_random(&x) % (unsigned)(duration * 3 / 2 + 1));
      snprintf(label, sizeof label, "%s random #%d: kill after %ld us (seed %u)", name, i, delay,
               seed);
      crash_trial(f, op, NULL, 0, delay, &s, label);
    } else {
      long long bytes = 1 + (long long)(next_random(&x) % tree_bytes(extracted));
      snprintf(label, sizeof label, "%s random #%d: kill after %lld bytes (seed %u)", name, i,
               bytes, seed);
      crash_trial(f, op, NULL, bytes, -1, &s, label);
    }
  }
  for (int i = 0; op != CRASH_UNINSTALL && i < 10; i++, random_points++) {
    char label[96];
    long delay = (long)(next_random(&x) % (unsigned)(duration * 3 / 2 + 1));
    snprintf(label, sizeof label, "%s timed #%d: kill after %ld us (seed %u)", name, i, delay,
             seed);
    crash_trial(f, op, NULL, 0, delay, &s, label);
  }
  print_message("%s: seed %u, %d step boundaries + %d random crash points, %d trials "
                "(%d killed): %d ended old, %d ended new (op takes %ld us)\n",
                name, seed, steps, random_points, s.trials, s.killed, s.ended_old, s.ended_new,
                duration);
  assert_true(s.ended_old > 0 && s.ended_new > 0);
}

static void test_crash_install(void **state)
{
  crash_suite(state, CRASH_INSTALL, "install");
}

static void test_crash_update(void **state)
{
  crash_suite(state, CRASH_UPDATE, "update");
}

static void test_crash_uninstall(void **state)
{
  crash_suite(state, CRASH_UNINSTALL, "uninstall");
}

/* ---- the review's attack: trees deeper than the path rule ------------------ */

#define DEEP 2000
#define SMALL_STACK (1024 * 1024) /* the old recursive walks took about 4 KiB a level */

typedef struct deep_run {
  fixture *f;
  bool uninstall;
  int rc;
  ls_diag diag;
} deep_run;

static void *deep_thread(void *arg)
{
  deep_run *r = arg;
  r->rc = r->uninstall ? ls_uninstall_game(r->f->game_dir, ID, &r->diag)
                       : ls_install_game(r->f->game_dir, ID, &r->f->u, NULL, NULL, &r->diag);
  return NULL;
}

/* Installs (or uninstalls) on a thread whose stack a walk recursing once
 * per level of a DEEP tree would overflow, as the pool's did. */
static int on_small_stack(fixture *f, bool uninstall, ls_diag *diag)
{
  deep_run r = {.f = f, .uninstall = uninstall};
  t_run_on_stack(SMALL_STACK, deep_thread, &r);
  *diag = r.diag;
  return r.rc;
}

/* A neighbour root in GAME_DIR and a directory outside it (which deep
 * trees link to): neither may change. */
static char *surroundings(const fixture *f)
{
  t_write(f->game_dir, "neighbour/keep.txt", "keep");
  char *outside = t_tempdir();
  t_write(outside, "precious.txt", "precious");
  return outside;
}

static void assert_surroundings(const fixture *f, const char *outside)
{
  size_t len = 0;
  char *keep = slurp(t_path("%s/neighbour/keep.txt", f->game_dir), &len);
  char *precious = slurp(t_path("%s/precious.txt", outside), &len);
  assert_non_null(keep);
  assert_non_null(precious);
  assert_string_equal(keep, "keep");
  assert_string_equal(precious, "precious");
  free(keep);
  free(precious);
}

/* A 2000-level tree in the payload is not payload: the install succeeds
 * and leaves it alone. */
static void test_deep_tree_in_payload(void **state)
{
  fixture *f = *state;
  char *outside = surroundings(f);
  write_payload(f->root, &tree_v1);
  t_deep_tree(f->root, "deep", DEEP);
  t_symlink(outside, f->root, "deep/d/out");
  ls_diag diag;
  if (on_small_stack(f, false, &diag) != LS_OK)
    fail_msg("install: %s", diag.text);
  assert_installed(f->root, &tree_v1);
  assert_true(exists(t_path("%s/deep/d/out", f->root)));
  assert_surroundings(f, outside);
}

/* A 2000-level tree inside local/ (a game's saves): the update deletes it
 * with the old tree, the uninstall with the install. */
static void test_deep_tree_in_local(void **state)
{
  fixture *f = *state;
  char *outside = surroundings(f);
  write_payload(f->root, &tree_v1);
  install_ok(f);
  t_deep_tree(f->root, "local/saves", DEEP);
  t_symlink(outside, f->root, "local/saves/d/out");
  write_payload(f->root, &tree_v2);
  ls_diag diag;
  if (on_small_stack(f, false, &diag) != LS_OK)
    fail_msg("update: %s", diag.text);
  assert_installed(f->root, &tree_v2);
  t_deep_tree(f->root, "local/saves", DEEP);
  t_symlink(outside, f->root, "local/saves/d/out");
  if (on_small_stack(f, true, &diag) != LS_OK)
    fail_msg("uninstall: %s", diag.text);
  assert_false(exists(t_path("%s/%s", f->root, LS_LOCAL_DIR)));
  assert_true(no_leftovers(f->root));
  assert_surroundings(f, outside);
}

/* An unpacker that writes a 2000-level tree (an external command could):
 * the install fails with a clear error before its commit point and
 * removes what was extracted; the unpacker's tree check refuses the same. */
static void test_unpacker_writes_a_deep_tree(void **state)
{
  fixture *f = *state;
  char *outside = surroundings(f);
  write_payload(f->root, &tree_v1);
  f->tu.deep_levels = DEEP;
  ls_diag diag;
  int rc = on_small_stack(f, false, &diag);
  if (rc != LS_ETOOBIG)
    fail_msg("install: %d %s", rc, diag.text);
  assert_contains(diag.text, "deeper than 64 levels");
  assert_contains(diag.text, LS_INSTALLING_DIR);
  assert_false(exists(t_path("%s/%s", f->root, LS_LOCAL_DIR)));
  assert_true(no_leftovers(f->root));
  assert_surroundings(f, outside);

  t_deep_tree(outside, "extracted", DEEP);
  assert_int_equal(ls_unpack_check_tree(t_path("%s/extracted", outside), &diag), LS_ETOOBIG);
  assert_contains(diag.text, "deeper than 64 levels");
}

/* ---- archive bombs with the real unpacker ---------------------------------------- */

/* A real archive of t's files (zip, deflated), written with libarchive. */
static void write_zip_of(const char *path, const tree *t)
{
  struct archive *a = archive_write_new();
  assert_int_equal(archive_write_set_format_zip(a), ARCHIVE_OK);
  assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
  for (size_t i = 0; i < t->count; i++) {
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, t->files[i].path);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, (la_int64_t)t->files[i].len);
    assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
    char *c = content_of(t, &t->files[i]);
    assert_int_equal(archive_write_data(a, c, t->files[i].len), (la_ssize_t)t->files[i].len);
    free(c);
    archive_entry_free(e);
  }
  assert_int_equal(archive_write_close(a), ARCHIVE_OK);
  archive_write_free(a);
}

static uint64_t g_walk_bytes;

static int sum_visit(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void)path;
  (void)flag;
  (void)ftw;
  if (S_ISREG(st->st_mode))
    g_walk_bytes += (uint64_t)st->st_size;
  return 0;
}

/* The most .local.installing/ ever held when progress was reported. */
typedef struct staging_watch {
  const char *root;
  uint64_t max_bytes;
  unsigned calls;
} staging_watch;

static bool watch_staging(void *user, uint64_t done, uint64_t total)
{
  (void)done;
  (void)total;
  staging_watch *w = user;
  g_walk_bytes = 0;
  if (nftw(t_path("%s/%s", w->root, LS_INSTALLING_DIR), sum_visit, 16, FTW_PHYS) == 0 &&
      g_walk_bytes > w->max_bytes)
    w->max_bytes = g_walk_bytes;
  w->calls++;
  return true;
}

static uint64_t size_of(const char *path)
{
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  return (uint64_t)st.st_size;
}

/* Installs v1 from a real zip, then offers an update whose archive is a
 * bomb: the update fails with LS_ELIMIT naming the archive, the staging
 * tree never held more than the game's budget (32 x its payload + 64 MiB),
 * and local/ is still v1 with nothing left over; a normal update after it
 * installs. */
static void bomb_update_refused(fixture *f, bool xz)
{
  ls_unpacker u;
  ls_diag d;
  assert_int_equal(ls_unpacker_libarchive(&u, NULL, &d), LS_OK);
  write_zip_of(t_path("%s/game.zip", f->root), &tree_v1);
  t_write(f->root, LS_VERSION_FILE, "1.0");
  if (ls_install_game(f->game_dir, ID, &u, NULL, NULL, &d) != LS_OK)
    fail_msg("install: %s", d.text);
  assert_installed(f->root, &tree_v1);

  assert_int_equal(unlink(t_path("%s/game.zip", f->root)), 0);
  char bomb[4096]; /* t_path's buffers rotate */
  snprintf(bomb, sizeof bomb, "%s/%s", f->root, xz ? "bomb.tar.xz" : "bomb.zip");
  t_zero_bomb(bomb, xz, "data/", xz ? 8 : 20, (xz ? 16u : 8u) << 20); /* 128 / 160 MiB of zeros */
  t_write(f->root, LS_VERSION_FILE, "2.0");
  uint64_t budget = LS_UNPACK_GAME_RATIO * size_of(bomb) + LS_UNPACK_GAME_SLACK;
  staging_watch w = {.root = f->root};
  int rc = ls_install_game(f->game_dir, ID, &u, watch_staging, &w, &d);
  expect_refusal(rc, &d, LS_ELIMIT, xz ? "bomb.tar.xz" : "bomb.zip");
  assert_contains(d.text, "expands beyond its limit");
  assert_true(w.calls > 2);
  if (w.max_bytes > budget || w.max_bytes < budget / 2) /* written up to the cap, no further */
    fail_msg("staging held %llu bytes, over the budget of %llu",
             (unsigned long long)w.max_bytes, (unsigned long long)budget);
  assert_installed(f->root, &tree_v1);

  assert_int_equal(unlink(bomb), 0);
  write_zip_of(t_path("%s/game.zip", f->root), &tree_v2);
  if (ls_install_game(f->game_dir, ID, &u, NULL, NULL, &d) != LS_OK)
    fail_msg("update: %s", d.text);
  assert_installed(f->root, &tree_v2);
  ls_unpacker_libarchive_free(&u);
}

static void test_zip_bomb_update_refused(void **state)
{
  bomb_update_refused(*state, false);
}

static void test_tar_xz_bomb_update_refused(void **state)
{
  bomb_update_refused(*state, true);
}

/* A first install of a bomb: refused, no local/, nothing left over. */
static void test_bomb_install_refused(void **state)
{
  fixture *f = *state;
  ls_unpacker u;
  ls_diag d;
  assert_int_equal(ls_unpacker_libarchive(&u, NULL, &d), LS_OK);
  t_zero_bomb(t_path("%s/bomb.zip", f->root), false, "data/", 20, 8u << 20);
  t_write(f->root, LS_VERSION_FILE, "1.0");
  expect_refusal(ls_install_game(f->game_dir, ID, &u, NULL, NULL, &d), &d, LS_ELIMIT,
                 "bomb.zip");
  assert_false(exists(t_path("%s/%s", f->root, LS_LOCAL_DIR)));
  assert_true(no_leftovers(f->root));
  ls_unpacker_libarchive_free(&u);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_install, setup, teardown),
    cmocka_unit_test_setup_teardown(test_install_order, setup, teardown),
    cmocka_unit_test_setup_teardown(test_update, setup, teardown),
    cmocka_unit_test_setup_teardown(test_uninstall, setup, teardown),
    cmocka_unit_test_setup_teardown(test_remove_downloaded, setup, teardown),
    cmocka_unit_test_setup_teardown(test_install_refusals, setup, teardown),
    cmocka_unit_test_setup_teardown(test_uninstall_refusals, setup, teardown),
    cmocka_unit_test_setup_teardown(test_remove_refusals, setup, teardown),
    cmocka_unit_test_setup_teardown(test_failing_unpacker_install, setup, teardown),
    cmocka_unit_test_setup_teardown(test_failing_unpacker_update, setup, teardown),
    cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
    cmocka_unit_test_setup_teardown(test_recovery_leaves_foreign_backup, setup, teardown),
    cmocka_unit_test(test_intent_parse),
    cmocka_unit_test_setup_teardown(test_recovery_corrupt_intent, setup, teardown),
    cmocka_unit_test_setup_teardown(test_recovery_marked_backup_with_local, setup, teardown),
    cmocka_unit_test_setup_teardown(test_deep_tree_in_payload, setup, teardown),
    cmocka_unit_test_setup_teardown(test_deep_tree_in_local, setup, teardown),
    cmocka_unit_test_setup_teardown(test_unpacker_writes_a_deep_tree, setup, teardown),
    cmocka_unit_test_setup_teardown(test_zip_bomb_update_refused, setup, teardown),
    cmocka_unit_test_setup_teardown(test_tar_xz_bomb_update_refused, setup, teardown),
    cmocka_unit_test_setup_teardown(test_bomb_install_refused, setup, teardown),
    cmocka_unit_test_setup_teardown(test_crash_install, setup, teardown),
    cmocka_unit_test_setup_teardown(test_crash_update, setup, teardown),
    cmocka_unit_test_setup_teardown(test_crash_uninstall, setup, teardown),
  };
  return ls_run_tests(tests, NULL, NULL);
}
