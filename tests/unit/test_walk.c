/* Tests the directory walker (core/walk.h) on real trees: visit order,
 * skipping, the depth cap, symlinks (also one swapped in for a directory
 * mid-walk), close-on-exec descriptors, and a 5000-level tree walked, fsynced
 * and removed on a small stack; plus ls_rmtree_at and ls_fsync_tree_at,
 * its users in core/fs.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testrun.h"

#include "testutil.h"

#include "core/fs.h"
#include "core/walk.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SEEN 256
#define DEEP_LEVELS 5000
#define SMALL_STACK (256 * 1024) /* a recursive walk of DEEP_LEVELS would need far more */

/* What a walk saw: one line per visit ("PRE d a/b", "POST d a/b"). */
typedef struct seen {
  char lines[MAX_SEEN][128];
  size_t count;
  size_t deepest;
  const char *swap_target;  /* the symlink's target */
  const char *skip;         /* a directory path to answer LS_WALK_SKIP for */
  int fail_at_depth;        /* answer LS_EIO at this depth (0: never) */
  bool cloexec_ok;
} seen;

static const char type_char[] = {'f', 'd', 'l', 'o'};

static bool fd_is_cloexec(int fd)
{
  int flags = fcntl(fd, F_GETFD);
  return flags >= 0 && (flags & FD_CLOEXEC);
}

static int record(void *ctx, const ls_walk_entry *e, ls_diag *diag)
{
  seen *s = ctx;
  (void)diag;
  if (s->count < MAX_SEEN)
    snprintf(s->lines[s->count++], sizeof s->lines[0], "%s %c %.100s",
             e->visit == LS_WALK_PRE ? "PRE" : "POST", type_char[e->type], e->path);
  if (e->depth > s->deepest)
    s->deepest = e->depth;
  s->cloexec_ok &= fd_is_cloexec(e->dir_fd);
  if (e->visit == LS_WALK_POST)
    s->cloexec_ok &= e->fd >= 0 && fd_is_cloexec(e->fd);
  else
    s->cloexec_ok &= e->fd == -1;
  assert_string_equal(e->name, strrchr(e->path, '/') ? strrchr(e->path, '/') + 1 : e->path);
  if (s->fail_at_depth && e->depth == (size_t)s->fail_at_depth)
    return LS_EIO;
  if (s->skip && e->visit == LS_WALK_PRE && strcmp(e->path, s->skip) == 0)
    return LS_WALK_SKIP;
  return LS_OK;
}

static long find_line(const seen *s, const char *line)
{
  long at = -1;
  for (size_t i = 0; i < s->count; i++)
    if (strcmp(s->lines[i], line) == 0) {
      if (at >= 0)
        fail_msg("'%s' seen twice", line);
      at = (long)i;
    }
  return at;
}

static void assert_before(const seen *s, const char *first, const char *then)
{
  long a = find_line(s, first), b = find_line(s, then);
  if (a < 0 || b < 0 || a >= b)
    fail_msg("expected '%s' (at %ld) before '%s' (at %ld)", first, a, then, b);
}

static int walk_dir(const char *dir, unsigned flags, seen *s, ls_diag *diag)
{
  s->cloexec_ok = true;
  return ls_walk(AT_FDCWD, dir, flags, record, s, diag);
}

static char *small_tree(void)
{
  char *tmp = t_tempdir();
  t_write(tmp, "root/a/b/f", "f");
  t_write(tmp, "root/a/g", "g");
  t_write(tmp, "root/h", "h");
  t_mkdir(tmp, "root/e");
  assert_int_equal(mkfifo(t_path("%s/root/fifo", tmp), 0600), 0);
  return tmp;
}

static void pre_and_post_order(void **state)
{
  (void)state;
  char *tmp = small_tree();
  seen *s = calloc(1, sizeof *s);
  ls_diag diag = {{0}};
  assert_int_equal(walk_dir(t_path("%s/root", tmp), LS_WALK_POSTORDER, s, &diag), LS_OK);
  assert_int_equal(s->count, 10); /* 7 PRE (a, a/b, a/b/f, a/g, h, e, fifo) + 3 POST */
  assert_before(s, "PRE d a", "PRE d a/b");
  assert_before(s, "PRE d a/b", "PRE f a/b/f");
  assert_before(s, "PRE f a/b/f", "POST d a/b");
  assert_before(s, "POST d a/b", "POST d a");
  assert_before(s, "PRE f a/g", "POST d a");
  assert_before(s, "PRE d e", "POST d e");
  assert_true(find_line(s, "PRE f h") >= 0);
  assert_true(find_line(s, "PRE o fifo") >= 0);
  assert_int_equal(s->deepest, 3);
  assert_true(s->cloexec_ok);

  memset(s, 0, sizeof *s);
  assert_int_equal(walk_dir(t_path("%s/root", tmp), 0, s, &diag), LS_OK);
  assert_int_equal(s->count, 7); /* no POST visits without LS_WALK_POSTORDER */
  free(s);
}

static void skip_and_errors(void **state)
{
  (void)state;
  char *tmp = small_tree();
  seen *s = calloc(1, sizeof *s);
  ls_diag diag = {{0}};
  s->skip = "a";
  assert_int_equal(walk_dir(t_path("%s/root", tmp), LS_WALK_POSTORDER, s, &diag), LS_OK);
  assert_true(find_line(s, "PRE d a") >= 0);
  assert_int_equal(find_line(s, "PRE d a/b"), -1);
  assert_int_equal(find_line(s, "POST d a"), -1);

  memset(s, 0, sizeof *s);
  s->fail_at_depth = 2; /* the callback's error stops the walk and is its result */
  assert_int_equal(walk_dir(t_path("%s/root", tmp), 0, s, &diag), LS_EIO);
  assert_int_equal(find_line(s, "PRE f a/b/f"), -1);

  assert_int_equal(walk_dir(t_path("%s/nope", tmp), 0, s, &diag), LS_ENOENT);
  assert_non_null(strstr(diag.text, "nope"));
  assert_int_not_equal(walk_dir(t_path("%s/root/h", tmp), 0, s, &diag), LS_OK);
  free(s);
}

/* The root given as a descriptor is read through a descriptor of its own:
 * the caller's keeps its offset and a second walk sees everything again. */
static void root_descriptor_is_the_walkers_own(void **state)
{
  (void)state;
  char *tmp = small_tree();
  int fd = open(t_path("%s/root", tmp), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  assert_true(fd >= 0);
  seen *s = calloc(1, sizeof *s);
  ls_diag diag = {{0}};
  for (int round = 0; round < 2; round++) {
    memset(s, 0, sizeof *s);
    assert_int_equal(ls_walk(fd, NULL, 0, record, s, &diag), LS_OK);
    assert_int_equal(s->count, 7);
  }
  close(fd);
  free(s);
}

static void depth_cap_is_reported_or_skipped(void **state)
{
  (void)state;
  char *tmp = t_tempdir();
  t_deep_tree(tmp, "at_cap", LS_WALK_MAX_DEPTH - 1); /* the leaf is at depth 64 */
  t_deep_tree(tmp, "past_cap", LS_WALK_MAX_DEPTH);   /* the leaf is at depth 65 */
  seen *s = calloc(1, sizeof *s);
  ls_diag diag = {{0}};
  assert_int_equal(walk_dir(t_path("%s/at_cap", tmp), LS_WALK_POSTORDER, s, &diag), LS_OK);
  assert_int_equal(s->deepest, LS_WALK_MAX_DEPTH);
  assert_int_equal(s->count, 2 * (LS_WALK_MAX_DEPTH - 1) + 1);

  memset(s, 0, sizeof *s);
  assert_int_equal(walk_dir(t_path("%s/past_cap", tmp), 0, s, &diag), LS_ETOOBIG);
  if (!strstr(diag.text, "deeper than 64 levels"))
    fail_msg("diag: %s", diag.text);

  memset(s, 0, sizeof *s);
  assert_int_equal(walk_dir(t_path("%s/past_cap", tmp), LS_WALK_SKIP_DEEP | LS_WALK_POSTORDER,
                            s, &diag),
                   LS_OK);
  assert_int_equal(s->deepest, LS_WALK_MAX_DEPTH);
  /* 64 directories PRE, 63 of them entered and POST, the deepest not entered */
  assert_int_equal(s->count, LS_WALK_MAX_DEPTH + LS_WALK_MAX_DEPTH - 1);
  free(s);
}

static void symlinks_are_never_followed(void **state)
{
  (void)state;
  char *tmp = t_tempdir();
  t_write(tmp, "outside/secret", "s");
  t_write(tmp, "root/a/f", "f");
  t_symlink(t_path("%s/outside", tmp), tmp, "root/dirlink");
  t_symlink(t_path("%s/outside/secret", tmp), tmp, "root/a/filelink");
  t_symlink("nowhere", tmp, "root/dangling");
  seen *s = calloc(1, sizeof *s);
  ls_diag diag = {{0}};
  assert_int_equal(walk_dir(t_path("%s/root", tmp), LS_WALK_POSTORDER, s, &diag), LS_OK);
  assert_true(find_line(s, "PRE l dirlink") >= 0);
  assert_true(find_line(s, "PRE l a/filelink") >= 0);
  assert_true(find_line(s, "PRE l dangling") >= 0);
  for (size_t i = 0; i < s->count; i++)
    assert_null(strstr(s->lines[i], "secret"));

  /* a root that is a symlink is not followed either */
  t_symlink(t_path("%s/outside", tmp), tmp, "rootlink");
  memset(s, 0, sizeof *s);
  assert_int_not_equal(walk_dir(t_path("%s/rootlink", tmp), 0, s, &diag), LS_OK);
  assert_int_equal(s->count, 0);
  free(s);
}

/* At its PRE visit, "sw" is swapped for a symlink to outside/: the walker
 * must not enter outside/ through it. */
static int swap_in_symlink(void *ctx, const ls_walk_entry *e, ls_diag *diag)
{
  seen *s = ctx;
  record(ctx, e, diag);
  if (e->visit == LS_WALK_PRE && strcmp(e->path, "sw") == 0) {
    assert_int_equal(renameat(e->dir_fd, "sw", e->dir_fd, "sw.old"), 0);
    assert_int_equal(symlinkat(s->swap_target, e->dir_fd, "sw"), 0);
  }
  return LS_OK;
}

static void symlink_swapped_in_for_a_directory(void **state)
{
  (void)state;
  char *tmp = t_tempdir();
  t_write(tmp, "outside/secret", "s");
  t_write(tmp, "root/sw/inner", "i");
  seen *s = calloc(1, sizeof *s);
  s->swap_target = t_path("%s/outside", tmp);
  ls_diag diag = {{0}};
  int rc = ls_walk(AT_FDCWD, t_path("%s/root", tmp), 0, swap_in_symlink, s, &diag);
  assert_int_not_equal(rc, LS_OK); /* the open of "sw" refuses the symlink */
  assert_non_null(strstr(diag.text, "sw"));
  for (size_t i = 0; i < s->count; i++) {
    assert_null(strstr(s->lines[i], "secret"));
    assert_null(strstr(s->lines[i], "sw/"));
  }
  struct stat st;
  assert_int_equal(stat(t_path("%s/outside/secret", tmp), &st), 0);
  free(s);
}

/* ---- a 5000-level tree on a small stack ------------------------------------ */

typedef struct deep_job {
  const char *dir;
  int walk_rc, skip_rc, fsync_rc, rm_rc;
  size_t skip_deepest;
  ls_diag walk_diag, fsync_diag, rm_diag;
} deep_job;

static int count_only(void *ctx, const ls_walk_entry *e, ls_diag *diag)
{
  size_t *deepest = ctx;
  (void)diag;
  if (e->depth > *deepest)
    *deepest = e->depth;
  return LS_OK;
}

static void *deep_run(void *arg)
{
  deep_job *j = arg;
  size_t deepest = 0;
  j->walk_rc = ls_walk(AT_FDCWD, t_path("%s/deep", j->dir), 0, count_only, &deepest,
                       &j->walk_diag);
  j->skip_rc = ls_walk(AT_FDCWD, t_path("%s/deep", j->dir), LS_WALK_SKIP_DEEP, count_only,
                       &j->skip_deepest, NULL);
  j->fsync_rc = ls_fsync_tree_at(AT_FDCWD, t_path("%s/deep", j->dir), &j->fsync_diag);
  j->rm_rc = ls_rmtree_at(AT_FDCWD, t_path("%s/deep", j->dir), &j->rm_diag);
  return NULL;
}

static void five_thousand_levels_on_a_small_stack(void **state)
{
  (void)state;
  char *tmp = t_tempdir();
  t_deep_tree(tmp, "deep", DEEP_LEVELS);
  t_write(tmp, "beside/canary", "c");
  int fds_before = t_open_fds();

  deep_job j = {.dir = tmp};
  t_run_on_stack(SMALL_STACK, deep_run, &j);

  assert_int_equal(j.walk_rc, LS_ETOOBIG);
  assert_non_null(strstr(j.walk_diag.text, "deeper than 64 levels"));
  assert_int_equal(j.skip_rc, LS_OK);
  assert_int_equal(j.skip_deepest, LS_WALK_MAX_DEPTH);
  assert_int_equal(j.fsync_rc, LS_ETOOBIG);
  if (j.rm_rc != LS_OK)
    fail_msg("rm -rf of the deep tree: %s", j.rm_diag.text);
  struct stat st;
  assert_int_equal(lstat(t_path("%s/deep", tmp), &st), -1);
  assert_int_equal(stat(t_path("%s/beside/canary", tmp), &st), 0);
  assert_int_equal(t_open_fds(), fds_before);
}

/* rm -rf never follows a symlink: what it points to stays. */
static void rmtree_keeps_symlink_targets(void **state)
{
  (void)state;
  char *tmp = t_tempdir();
  t_write(tmp, "outside/keep", "k");
  t_write(tmp, "doomed/a/f", "f");
  t_symlink(t_path("%s/outside", tmp), tmp, "doomed/a/link");
  t_symlink(t_path("%s/outside/keep", tmp), tmp, "doomed/flink");
  ls_diag diag = {{0}};
  assert_int_equal(ls_rmtree_at(AT_FDCWD, t_path("%s/doomed", tmp), &diag), LS_OK);
  struct stat st;
  assert_int_equal(lstat(t_path("%s/doomed", tmp), &st), -1);
  assert_int_equal(stat(t_path("%s/outside/keep", tmp), &st), 0);
  assert_int_equal(ls_rmtree_at(AT_FDCWD, t_path("%s/doomed", tmp), &diag), LS_OK);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(pre_and_post_order),
    cmocka_unit_test(skip_and_errors),
    cmocka_unit_test(root_descriptor_is_the_walkers_own),
    cmocka_unit_test(depth_cap_is_reported_or_skipped),
    cmocka_unit_test(symlinks_are_never_followed),
    cmocka_unit_test(symlink_swapped_in_for_a_directory),
    cmocka_unit_test(five_thousand_levels_on_a_small_stack),
    cmocka_unit_test(rmtree_keeps_symlink_targets),
  };
  return ls_run_tests(tests, NULL, NULL);
}
