/* Owns the test helpers of testutil.h, including the cleanup of every
 * temporary directory a test process made. */
#include "testutil.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_TEMPDIRS 64
static char *tempdirs[MAX_TEMPDIRS];
static int tempdir_count;
static pid_t owner_pid;

static void remove_tempdirs(void)
{
  if (getpid() != owner_pid)
    return; /* a forked child must not remove its parent's directories */
  for (int i = 0; i < tempdir_count; i++) {
    ls_rmtree_at(AT_FDCWD, tempdirs[i], NULL);
    free(tempdirs[i]);
  }
  tempdir_count = 0;
}

char *t_tempdir(void)
{
  const char *base = getenv("TMPDIR");
  char tmpl[4096];
  snprintf(tmpl, sizeof tmpl, "%s/lanspread-test-XXXXXX", base && *base ? base : "/tmp");
  assert_non_null(mkdtemp(tmpl));
  assert_true(tempdir_count < MAX_TEMPDIRS);
  if (tempdir_count == 0 && owner_pid == 0) {
    owner_pid = getpid();
    atexit(remove_tempdirs);
  }
  tempdirs[tempdir_count] = strdup(tmpl);
  return tempdirs[tempdir_count++];
}

static void make_parents(const char *path)
{
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  char *slash = strrchr(buf, '/');
  if (slash) {
    *slash = '\0';
    assert_int_equal(ls_mkdir_p(buf, 0, NULL), 0);
  }
}

void t_write(const char *dir, const char *rel, const char *content)
{
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, rel);
  make_parents(path);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(content, 1, strlen(content), f), strlen(content));
  assert_int_equal(fclose(f), 0);
}

void t_write_sized(const char *dir, const char *rel, long long size)
{
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, rel);
  make_parents(path);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  assert_true(fd >= 0);
  assert_int_equal(ftruncate(fd, size), 0);
  close(fd);
}

void t_mkdir(const char *dir, const char *rel)
{
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, rel);
  assert_int_equal(ls_mkdir_p(path, 0, NULL), 0);
}

void t_symlink(const char *target, const char *dir, const char *rel)
{
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, rel);
  make_parents(path);
  assert_int_equal(symlink(target, path), 0);
}

bool t_make_deep_tree(const char *dir, const char *rel, size_t levels)
{
  char top[4096];
  snprintf(top, sizeof top, "%s/%s", dir, rel);
  if (ls_mkdir_p(top, 0, NULL) != 0)
    return false;
  int fd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  for (size_t i = 0; fd >= 0 && i < levels; i++) {
    int next = mkdirat(fd, "d", 0755) == 0 ? openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                                           : -1;
    close(fd);
    fd = next;
  }
  int leaf = fd >= 0 ? openat(fd, "leaf", O_WRONLY | O_CREAT | O_CLOEXEC, 0644) : -1;
  if (leaf >= 0)
    close(leaf);
  if (fd >= 0)
    close(fd);
  return leaf >= 0;
}

void t_deep_tree(const char *dir, const char *rel, size_t levels)
{
  assert_true(t_make_deep_tree(dir, rel, levels));
}

void t_run_on_stack(size_t stack_size, void *(*fn)(void *), void *arg)
{
  pthread_attr_t attr;
  pthread_t thread;
  assert_int_equal(pthread_attr_init(&attr), 0);
  assert_int_equal(pthread_attr_setstacksize(&attr, stack_size), 0);
  assert_int_equal(pthread_create(&thread, &attr, fn, arg), 0);
  assert_int_equal(pthread_join(thread, NULL), 0);
  pthread_attr_destroy(&attr);
}

int t_open_fds(void)
{
  DIR *d = opendir("/proc/self/fd");
  assert_non_null(d);
  int n = -1; /* the DIR's own descriptor */
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

const char *t_path(const char *fmt, ...)
{
  static char bufs[8][4096];
  static int next;
  char *buf = bufs[next++ % 8];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof bufs[0], fmt, ap);
  va_end(ap);
  return buf;
}

#include <jansson.h>
#include <lanspread/catalog.h>

struct ls_catalog *t_catalog(const char *const *ids, size_t count)
{
  json_t *games = json_array();
  for (size_t i = 0; i < count; i++) {
    char name[128];
    snprintf(name, sizeof name, "Game %s", ids[i]);
    json_array_append_new(games, json_pack("{s:s, s:s}", "id", ids[i], "name", name));
  }
  json_t *root = json_pack("{s:o}", "games", games);
  char *text = json_dumps(root, JSON_COMPACT);
  json_decref(root);
  ls_catalog *catalog = NULL;
  ls_diag diag;
  int rc = ls_catalog_load_buffer(text, strlen(text), "test-catalog", &catalog, &diag);
  if (rc != 0)
    fail_msg("test catalog refused: %s", diag.text);
  free(text);
  return catalog;
}

struct ls_catalog *t_catalog_numbered(const char *prefix, size_t count)
{
  char **ids = calloc(count, sizeof *ids);
  for (size_t i = 0; i < count; i++) {
    ids[i] = malloc(strlen(prefix) + 16);
    sprintf(ids[i], "%s%04zu", prefix, i);
  }
  struct ls_catalog *catalog = t_catalog((const char *const *)ids, count);
  for (size_t i = 0; i < count; i++)
    free(ids[i]);
  free(ids);
  return catalog;
}

bool t_exists(const char *path)
{
  struct stat st;
  return lstat(path, &st) == 0;
}

char *t_read(const char *path, size_t *len)
{
  char *data = NULL;
  if (ls_read_file_at(AT_FDCWD, path, (size_t)1 << 30, &data, len, NULL) != LS_OK)
    return NULL;
  return data;
}

void t_rmtree(const char *path)
{
  ls_diag diag = {""};
  if (ls_rmtree_at(AT_FDCWD, path, &diag) != LS_OK)
    fail_msg("rm -rf %s: %s", path, diag.text);
}

bool t_wait_child(int pid, long delay_us, const char *label)
{
  if (delay_us >= 0) {
    struct timespec ts = {delay_us / 1000000, (delay_us % 1000000) * 1000};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  bool killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  if (!killed && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
    fail_msg("%s: the child failed without a crash (status %d)", label, status);
  return killed;
}
