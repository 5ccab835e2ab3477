/* Tests scripts/demo end to end against the programs of this build
 * (LS_BUILD_DIR=$LS_BINARY_DIR): a full run downloads, installs and verifies
 * the game and exits 0; an interrupted run exits 130. Either way no process
 * and no file of the demo may be left behind (its TMPDIR is a test temp dir,
 * checked to be empty, and /proc is searched for processes naming it). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testrun.h"

#include "testutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RUN_TIMEOUT_MS (300 * 1000)

static uint64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Starts scripts/demo with ARGS (NULL-terminated, at most 4), TMPDIR=tmpdir
 * and all its output in out_path. */
static pid_t start_demo(const char *tmpdir, const char *out_path, const char *const *args)
{
  const char *src = getenv("LS_SOURCE_DIR"), *bin = getenv("LS_BINARY_DIR");
  assert_non_null(src);
  assert_non_null(bin);
  char script[4096];
  snprintf(script, sizeof script, "%s/scripts/demo", src);
  char *argv[6] = {script};
  for (int i = 0; i < 4 && args[i]; i++)
    argv[i + 1] = (char *)args[i];
  int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  assert_true(fd >= 0 && null >= 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(null, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    setenv("TMPDIR", tmpdir, 1);
    setenv("LS_BUILD_DIR", bin, 1);
    execv(script, argv);
    _exit(127);
  }
  close(fd);
  close(null);
  return pid;
}

/* The exit status of pid (128+signal when killed); fails the test (after
 * killing it) when it runs past the deadline. */
static int wait_demo(pid_t pid, uint64_t deadline)
{
  int status;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (now_ms() > deadline) {
      kill(pid, SIGTERM);
      sleep(10);
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      fail_msg("scripts/demo did not finish in time");
    }
    usleep(50 * 1000);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The whole file (NUL-terminated); caller frees. */
static char *slurp(const char *path)
{
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  size_t cap = 1 << 16, len = 0, n;
  char *buf = malloc(cap);
  while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
    len += n;
    if (cap - len < 2)
      buf = realloc(buf, cap *= 2);
  }
  fclose(f);
  buf[len] = '\0';
  return buf;
}

/* Waits until out_path contains text; false after the deadline. */
static bool wait_for_output(const char *out_path, const char *text, uint64_t deadline)
{
  while (now_ms() < deadline) {
    char *out = slurp(out_path);
    bool found = strstr(out, text) != NULL;
    free(out);
    if (found)
      return true;
    usleep(50 * 1000);
  }
  return false;
}

static void assert_contains(const char *haystack, const char *needle)
{
  if (!strstr(haystack, needle))
    fail_msg("demo output lacks \"%s\":\n%s", needle, haystack);
}

static void assert_dir_empty(const char *dir)
{
  DIR *d = opendir(dir);
  assert_non_null(d);
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
      fail_msg("the demo left %s/%s behind", dir, e->d_name);
  closedir(d);
}

/* Fails when a process has an argument containing text. */
static void assert_no_process_mentions(const char *text)
{
  DIR *proc = opendir("/proc");
  assert_non_null(proc);
  struct dirent *e;
  while ((e = readdir(proc)) != NULL) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9')
      continue;
    char path[300], args[8192];
    snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      continue;
    ssize_t n = read(fd, args, sizeof args - 1);
    close(fd);
    for (ssize_t i = 0; i < n; i += (ssize_t)strlen(args + i) + 1) {
      args[n] = '\0';
      if (strstr(args + i, text))
        fail_msg("process %s (%s) outlived the demo", e->d_name, args);
    }
  }
  closedir(proc);
}

static void demo_downloads_installs_and_cleans_up(void **state)
{
  (void)state;
  char *tmp = t_tempdir(), *logs = t_tempdir();
  const char *out_path = t_path("%s/demo.out", logs);
  const char *args[] = {"--size", "8M", NULL};
  pid_t pid = start_demo(tmp, out_path, args);
  int rc = wait_demo(pid, now_ms() + RUN_TIMEOUT_MS);
  char *out = slurp(out_path);
  if (rc != 0)
    fail_msg("scripts/demo exited %d:\n%s", rc, out);
  assert_contains(out, "connected to 2 peers");
  assert_contains(out, "8.0 MiB from 2 peers");
  assert_contains(out, "downloading [##############################] 100%");
  assert_contains(out, "game0001  Generated Game 0001  downloaded, installed");
  assert_contains(out, "game0002  Generated Game 0002  on the network");
  assert_contains(out, "game0001/local/game0001/data/file01.bin");
  assert_contains(out, "local/ is identical to what the archives hold");
  assert_contains(out, "all peers exited cleanly");
  assert_contains(out, "Done: game0001 was downloaded from 2 peers, installed and verified.");
  free(out);
  assert_dir_empty(tmp);
  assert_no_process_mentions(tmp);
}

static void demo_interrupted_cleans_up(void **state)
{
  (void)state;
  char *tmp = t_tempdir(), *logs = t_tempdir();
  const char *out_path = t_path("%s/demo.out", logs);
  const char *args[] = {"--size", "128M", "--format", "zip", NULL};
  uint64_t deadline = now_ms() + RUN_TIMEOUT_MS;
  pid_t pid = start_demo(tmp, out_path, args);
  /* The download has been accepted: three peers run, files are on disk. */
  if (!wait_for_output(out_path, "MiB from 2 peers", deadline)) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    char *out = slurp(out_path);
    fail_msg("the demo never started the download:\n%s", out);
  }
  kill(pid, SIGINT);
  int rc = wait_demo(pid, deadline);
  char *out = slurp(out_path);
  if (rc != 130)
    fail_msg("scripts/demo exited %d after SIGINT (want 130):\n%s", rc, out);
  assert_contains(out, "demo: interrupted; peers stopped, files removed");
  free(out);
  assert_dir_empty(tmp);
  assert_no_process_mentions(tmp);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(demo_downloads_installs_and_cleans_up),
    cmocka_unit_test(demo_interrupted_cleans_up),
  };
  return ls_run_tests(tests, NULL, NULL);
}
