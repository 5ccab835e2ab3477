/* Helpers shared by the tests: temporary directories that are removed even
 * when a test fails, and one-line file creation. Include after cmocka's
 * prerequisites (<stdarg.h>, <stddef.h>, <stdint.h>, <setjmp.h>). */
#ifndef LS_TESTUTIL_H
#define LS_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>

/* A new directory under $TMPDIR (or /tmp), removed at process exit. */
char *t_tempdir(void);

/* Writes content to DIR/REL, creating parent directories. Fails the test on
 * error. */
void t_write(const char *dir, const char *rel, const char *content);
/* Creates an empty file of `size` bytes (sparse). */
void t_write_sized(const char *dir, const char *rel, long long size);
void t_mkdir(const char *dir, const char *rel);
void t_symlink(const char *target, const char *dir, const char *rel);
/* DIR/REL/d/d/.../d, `levels` directories "d" below DIR/REL (made with its
 * parents), with a file "leaf" in the deepest: made with mkdirat and
 * openat, so any depth works. t_make_deep_tree returns false on failure
 * instead of failing the test (for threads other than cmocka's). */
void t_deep_tree(const char *dir, const char *rel, size_t levels);
bool t_make_deep_tree(const char *dir, const char *rel, size_t levels);
/* Runs fn(arg) on a new thread with a stack of stack_size bytes and waits
 * for it (fn must not fail the test: it runs outside cmocka's thread). */
void t_run_on_stack(size_t stack_size, void *(*fn)(void *), void *arg);
/* Open descriptors of this process (entries of /proc/self/fd). */
int t_open_fds(void);
/* Waits for the child pid, SIGKILLing it after delay_us first unless
 * delay_us < 0. True when SIGKILL ended it; fails the test when it ended
 * otherwise than by exiting 0. */
bool t_wait_child(int pid, long delay_us, const char *label);
/* lstat succeeds: the path exists (a dangling symlink too). */
bool t_exists(const char *path);
/* The whole file (malloc'ed, NUL-terminated, *len bytes), or NULL when it
 * cannot be read. */
char *t_read(const char *path, size_t *len);
/* rm -rf of a path made by the test (fails the test on error). */
void t_rmtree(const char *path);
/* snprintf into a static rotating buffer: for building paths in tests. */
const char *t_path(const char *fmt, ...) __attribute__((format(printf, 1, 2)));



/* A catalog listing the given ids (names "Game <id>"), built with jansson. */
struct ls_catalog;
struct ls_catalog *t_catalog(const char *const *ids, size_t count);
/* The same for ids PREFIX0000 .. PREFIX<count-1>. */
struct ls_catalog *t_catalog_numbered(const char *prefix, size_t count);
#endif
