/* bench_install: owns the extraction benchmark. It generates one game of
 * SIZE bytes in M archives with lanspread-gen (found next to this binary),
 * once as tar and once as zip, then times, in the same run and on the same
 * archives, `bsdtar -xf ARCHIVE -C DEST` (one process per archive) against
 * our libarchive unpacker (install/unpack.c), R times each, alternating which
 * goes first. Before every timed run the destination is removed and the file
 * system synced, so both start without dirty pages. It prints MB/s of both,
 * the ratio ours/bsdtar (target >= 0.90) and, separately, what
 * ls_fsync_tree costs after our extraction (bsdtar never fsyncs). The
 * temporary directory is removed at the end, on failure and on
 * SIGINT/SIGTERM/SIGHUP. */
#include "install/unpack.h"
#include "core/fs.h"

#include <lanspread/error.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROG "bench_install"
#define GEN_NAME "lanspread-gen"
#define RATIO_TARGET 0.90
#define MAX_REPEAT 100
#define MAX_ARCHIVES 999

typedef struct bench_options {
  const char *size;
  unsigned long archives;
  unsigned long repeat;
} bench_options;

typedef struct bench_result {
  double bsdtar_s[MAX_REPEAT];
  double ours_s[MAX_REPEAT];
  double fsync_s[MAX_REPEAT];
} bench_result;

/* ---- cleanup, also from signal handlers (async-signal-safe only) -------- */

static char g_work[PATH_MAX];
static volatile sig_atomic_t g_cleanup_armed;
static volatile sig_atomic_t g_child_pid;

static void remove_tree(const char *path)
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
  if (g_cleanup_armed) {
    g_cleanup_armed = 0;
    remove_tree(g_work);
  }
}

static void on_signal(int sig)
{
  pid_t child = (pid_t)g_child_pid;
  if (child > 0) {
    kill(child, SIGTERM);
    while (waitpid(child, NULL, 0) < 0 && errno == EINTR) {
    }
  }
  cleanup();
  signal(sig, SIG_DFL);
  raise(sig);
}

static void install_signal_handlers(void)
{
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, PROG ": ");
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(1); /* atexit runs cleanup() */
}

/* ---- options ------------------------------------------------------------ */

static void print_help(void)
{
  printf("Usage: " PROG " [--size BYTES] [--archives M] [--repeat R]\n"
         "Benchmark our libarchive unpacker against bsdtar -xf.\n"
         "\n"
         "Generates one game of BYTES (default 1G; K, M, G suffixes) in M archives\n"
         "(default 4) with " GEN_NAME " --format tar and --format zip, then times R\n"
         "times (default 3) the extraction of all M archives with bsdtar (one\n"
         "process per archive) and with ls_unpacker_libarchive, prints MB/s of\n"
         "both per run, the median and the best run of each and the ratio\n"
         "ours/bsdtar (target >= %.2f, judged on the best runs: the machine is\n"
         "shared, so the fastest run is the least disturbed), and the cost of\n"
         "ls_fsync_tree after our extraction (not part of the ratio).\n"
         "Work directory: a new directory under $TMPDIR (or /tmp), removed at the\n"
         "end, on failure and on SIGINT/SIGTERM/SIGHUP.\n"
         "Exit status: 0 when the best-run ratio meets the target for both formats,\n"
         "1 on an error or a missed target, 2 on a usage error.\n",
         RATIO_TARGET);
}

static unsigned long parse_count(const char *opt, const char *s, unsigned long max)
{
  char *end = NULL;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || !*s || *end || v == 0 || v > max) {
    fprintf(stderr, PROG ": %s: '%s' is not a number from 1 to %lu\n", opt, s, max);
    exit(2);
  }
  return v;
}

static void parse_options(int argc, char **argv, bench_options *o)
{
  static const struct option longs[] = {{"size", required_argument, NULL, 's'},
                                        {"archives", required_argument, NULL, 'a'},
                                        {"repeat", required_argument, NULL, 'r'},
                                        {"help", no_argument, NULL, 'h'},
                                        {NULL, 0, NULL, 0}};
  *o = (bench_options){.size = "1G", .archives = 4, .repeat = 3};
  int c;
  while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
    switch (c) {
    case 's': o->size = optarg; break;
    case 'a': o->archives = parse_count("--archives", optarg, MAX_ARCHIVES); break;
    case 'r': o->repeat = parse_count("--repeat", optarg, MAX_REPEAT); break;
    case 'h': print_help(); exit(0);
    default: fprintf(stderr, "Try '" PROG " --help'.\n"); exit(2);
    }
  }
  if (optind != argc) {
    fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
    exit(2);
  }
}

/* ---- processes ---------------------------------------------------------- */

static int run(char *const argv[])
{
  pid_t pid = fork();
  if (pid < 0)
    die("fork: %s", strerror(errno));
  if (pid == 0) {
    execvp(argv[0], argv);
    fprintf(stderr, PROG ": cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  g_child_pid = pid;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      die("waitpid: %s", strerror(errno));
  g_child_pid = 0;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void gen_path(char *out, size_t cap)
{
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n < 0)
    die("readlink /proc/self/exe: %s", strerror(errno));
  self[n] = '\0';
  snprintf(out, cap, "%s/" GEN_NAME, dirname(self));
  if (access(out, X_OK) != 0)
    die("%s not found (build the tools target)", out);
}

static void generate(const char *gen, const char *dir, const char *format,
                     const bench_options *o)
{
  char archives[32];
  snprintf(archives, sizeof archives, "%lu", o->archives);
  char *const argv[] = {(char *)gen, "--game-dir", (char *)dir, "--format", (char *)format,
                        "--archives", archives, "--size", (char *)o->size, "--quiet", NULL};
  if (run(argv) != 0)
    die("%s failed", gen);
}

/* ---- one measurement ---------------------------------------------------- */

static void fresh_dest(const char *dest)
{
  ls_diag diag = {{0}};
  if (ls_rmtree_at(AT_FDCWD, dest, &diag) != LS_OK || ls_mkdir_p(dest, 0, &diag) != LS_OK)
    die("%s", diag.text);
  sync(); /* no dirty pages from the previous run */
  struct timespec settle = {.tv_sec = 0, .tv_nsec = 200 * 1000 * 1000};
  nanosleep(&settle, NULL);
}

static char *archive_path(const char *games, unsigned long i)
{
  static char path[PATH_MAX + 64];
  if (snprintf(path, sizeof path, "%s/game0001/game0001.part%02lu.eti", games, i + 1) >=
      (int)sizeof path)
    die("%s: path too long", games);
  return path;
}

static double time_bsdtar(const char *games, const char *dest, unsigned long archives)
{
  fresh_dest(dest);
  double t0 = now_s();
  for (unsigned long i = 0; i < archives; i++) {
    char *const argv[] = {"bsdtar", "-xf", archive_path(games, i), "-C", (char *)dest, NULL};
    if (run(argv) != 0)
      die("bsdtar -xf %s failed", archive_path(games, i));
  }
  return now_s() - t0;
}

static double time_ours(ls_unpacker *u, const char *games, const char *dest,
                        unsigned long archives, double *fsync_s)
{
  fresh_dest(dest);
  ls_diag diag = {{0}};
  double t0 = now_s();
  for (unsigned long i = 0; i < archives; i++)
    if (u->unpack(u->self, archive_path(games, i), dest, NULL, NULL, &diag) != LS_OK)
      die("%s", diag.text);
  double t1 = now_s();
  if (ls_fsync_tree(dest, &diag) != LS_OK)
    die("%s", diag.text);
  *fsync_s = now_s() - t1;
  return t1 - t0;
}

/* ---- statistics and report ---------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double minimum(const double *v, unsigned long n)
{
  double m = v[0];
  for (unsigned long i = 1; i < n; i++)
    m = v[i] < m ? v[i] : m;
  return m;
}

static double median(const double *v, unsigned long n)
{
  double s[MAX_REPEAT];
  memcpy(s, v, n * sizeof *v);
  qsort(s, n, sizeof *s, cmp_double);
  return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static uint64_t payload_bytes(const char *games, unsigned long archives)
{
  uint64_t total = 0;
  for (unsigned long i = 0; i < archives; i++) {
    struct stat st;
    if (stat(archive_path(games, i), &st) != 0)
      die("stat %s: %s", archive_path(games, i), strerror(errno));
    total += (uint64_t)st.st_size;
  }
  return total;
}

static bool bench_format(const char *gen, const char *format, const bench_options *o)
{
  char games[PATH_MAX + 32], dest[PATH_MAX + 32];
  snprintf(games, sizeof games, "%s/%s", g_work, format);
  snprintf(dest, sizeof dest, "%s/dest", g_work);
  generate(gen, games, format, o);
  double mb = (double)payload_bytes(games, o->archives) / 1e6;
  ls_unpacker u;
  ls_diag diag = {{0}};
  if (ls_unpacker_libarchive(&u, NULL, &diag) != LS_OK)
    die("%s", diag.text);
  bench_result *r = calloc(1, sizeof *r);
  if (!r)
    die("out of memory");
  printf("%s: %.0f MB in %lu archives\n", format, mb, o->archives);
  for (unsigned long i = 0; i < o->repeat; i++) {
    if (i % 2 == 0) {
      r->bsdtar_s[i] = time_bsdtar(games, dest, o->archives);
      r->ours_s[i] = time_ours(&u, games, dest, o->archives, &r->fsync_s[i]);
    } else {
      r->ours_s[i] = time_ours(&u, games, dest, o->archives, &r->fsync_s[i]);
      r->bsdtar_s[i] = time_bsdtar(games, dest, o->archives);
    }
    printf("  run %lu: bsdtar %7.1f MB/s  ours %7.1f MB/s  ratio %.2f  (fsync_tree %.2f s)\n",
           i + 1, mb / r->bsdtar_s[i], mb / r->ours_s[i], r->bsdtar_s[i] / r->ours_s[i],
           r->fsync_s[i]);
    fflush(stdout);
  }
  double b = median(r->bsdtar_s, o->repeat), ours = median(r->ours_s, o->repeat);
  double bb = minimum(r->bsdtar_s, o->repeat), ob = minimum(r->ours_s, o->repeat);
  double ratio = bb / ob;
  printf("  median: bsdtar %.1f MB/s, ours %.1f MB/s, ratio %.2f\n", mb / b, mb / ours, b / ours);
  printf("  best:   bsdtar %.1f MB/s, ours %.1f MB/s, ratio %.2f (target >= %.2f): %s\n",
         mb / bb, mb / ob, ratio, RATIO_TARGET, ratio >= RATIO_TARGET ? "PASS" : "MISS");
  printf("  ls_fsync_tree after our extraction: median %.2f s (not in the ratio)\n",
         median(r->fsync_s, o->repeat));
  free(r);
  ls_unpacker_libarchive_free(&u);
  ls_rmtree_at(AT_FDCWD, games, NULL);
  return ratio >= RATIO_TARGET;
}

int main(int argc, char **argv)
{
  bench_options o;
  parse_options(argc, argv, &o);
  char gen[PATH_MAX];
  gen_path(gen, sizeof gen);
  const char *tmp = getenv("TMPDIR");
  snprintf(g_work, sizeof g_work, "%s/bench_install-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(g_work))
    die("mkdtemp %s: %s", g_work, strerror(errno));
  g_cleanup_armed = 1;
  atexit(cleanup);
  install_signal_handlers();
  bool ok = bench_format(gen, "tar", &o);
  ok = bench_format(gen, "zip", &o) && ok;
  return ok ? 0 : 1;
}
