/* Owns the shared benchmark helpers of benchkit.h. The cleanup also runs
 * from signal handlers, so it uses async-signal-safe calls only. */
#include "benchkit.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CHILDREN 64

static const char *g_prog = "bench";
static char g_work[PATH_MAX];
static volatile sig_atomic_t g_work_armed;
static volatile pid_t g_children[MAX_CHILDREN];

/* ---- cleanup ------------------------------------------------------------ */

static void kill_children(void)
{
  for (size_t i = 0; i < MAX_CHILDREN; i++) {
    pid_t pid = g_children[i];
    if (pid > 0) {
      kill(pid, SIGKILL);
      while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
      }
      g_children[i] = 0;
    }
  }
}

/* fork + execv of rm: async-signal-safe, so the cleanup can use it. */
void bench_remove_tree(const char *path)
{
  pid_t pid = fork();
  if (pid == 0) {
    char *const argv[] = {"rm", "-rf", "--", (char *)path, NULL};
    execv("/bin/rm", argv);
    _exit(127);
  }
  if (pid > 0)
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
}

static void cleanup(void)
{
  kill_children();
  if (g_work_armed) {
    g_work_armed = 0;
    bench_remove_tree(g_work);
  }
}

static void on_signal(int sig)
{
  cleanup();
  signal(sig, SIG_DFL);
  raise(sig);
}

void bench_init(const char *prog)
{
  g_prog = prog;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  atexit(cleanup);
}

void bench_remove_at_exit(const char *dir)
{
  snprintf(g_work, sizeof g_work, "%s", dir);
  g_work_armed = 1;
}

/* ---- processes ---------------------------------------------------------- */

pid_t bench_fork(void)
{
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0)
    bench_die("cannot fork: %s", strerror(errno));
  if (pid == 0) {
    g_work_armed = 0;
    for (size_t i = 0; i < MAX_CHILDREN; i++)
      g_children[i] = 0;
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    return 0;
  }
  for (size_t i = 0; i < MAX_CHILDREN; i++)
    if (g_children[i] == 0) {
      g_children[i] = pid;
      break;
    }
  return pid;
}

void bench_forget_child(pid_t pid)
{
  for (size_t i = 0; i < MAX_CHILDREN; i++)
    if (g_children[i] == pid)
      g_children[i] = 0;
}

int bench_run(char *const argv[], bool quiet_stdout)
{
  pid_t pid = bench_fork();
  if (pid == 0) {
    if (quiet_stdout) {
      int fd = open("/dev/null", O_WRONLY);
      if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0)
        _exit(126);
    }
    execvp(argv[0], argv);
    fprintf(stderr, "%s: cannot run %s: %s\n", g_prog, argv[0], strerror(errno));
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      bench_die("waitpid: %s", strerror(errno));
  bench_forget_child(pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- errors and options ------------------------------------------------- */

static void report(const char *fmt, va_list ap)
{
  fprintf(stderr, "%s: ", g_prog);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
}

void bench_die(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  report(fmt, ap);
  va_end(ap);
  exit(1); /* atexit runs the cleanup */
}

void bench_child_die(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  report(fmt, ap);
  va_end(ap);
  _exit(1);
}

void bench_usage_error(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  report(fmt, ap);
  va_end(ap);
  fprintf(stderr, "Try '%s --help' for more information.\n", g_prog);
  exit(2);
}

void *bench_calloc(size_t n, size_t size)
{
  void *p = calloc(n ? n : 1, size);
  if (!p)
    bench_die("out of memory");
  return p;
}

unsigned long bench_parse_count(const char *opt, const char *s, unsigned long min,
                                unsigned long max)
{
  char *end;
  errno = 0;
  unsigned long v = (*s >= '0' && *s <= '9') ? strtoul(s, &end, 10) : 0;
  if (*s < '0' || *s > '9' || errno == ERANGE || *end != '\0' || v < min || v > max)
    bench_usage_error("%s: '%s' is not an integer from %lu to %lu", opt, s, min, max);
  return v;
}

/* ---- time and statistics ------------------------------------------------ */

double bench_now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int compare_doubles(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double bench_median(const double *v, size_t n)
{
  double *s = bench_calloc(n, sizeof *s);
  memcpy(s, v, n * sizeof *s);
  qsort(s, n, sizeof *s, compare_doubles);
  double m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  free(s);
  return m;
}

double bench_min(const double *v, size_t n)
{
  double m = v[0];
  for (size_t i = 1; i < n; i++)
    m = v[i] < m ? v[i] : m;
  return m;
}

/* ---- paths -------------------------------------------------------------- */

void bench_join_path(char *out, size_t cap, const char *dir, const char *name)
{
  if ((size_t)snprintf(out, cap, "%s/%s", dir, name) >= cap)
    bench_die("path too long: %s/%s", dir, name);
}

void bench_sibling(const char *name, char *out, size_t cap)
{
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n < 0)
    bench_die("cannot read /proc/self/exe: %s", strerror(errno));
  self[n] = '\0';
  bench_join_path(out, cap, dirname(self), name);
  if (access(out, X_OK) != 0)
    bench_die("cannot run %s: %s (build the %s target)", out, strerror(errno), name);
}
