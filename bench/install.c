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
#include "benchkit.h"
#include "core/fs.h"
#include "install/unpack.h"

#include <lanspread/error.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
    case 'a': o->archives = bench_parse_count("--archives", optarg, 1, MAX_ARCHIVES); break;
    case 'r': o->repeat = bench_parse_count("--repeat", optarg, 1, MAX_REPEAT); break;
    case 'h': print_help(); exit(0);
    default: bench_usage_error("unknown option '%s'", argv[optind - 1]);
    }
  }
  if (optind != argc)
    bench_usage_error("unexpected argument '%s'", argv[optind]);
}

static void generate(const char *gen, const char *dir, const char *format,
                     const bench_options *o)
{
  char archives[32];
  snprintf(archives, sizeof archives, "%lu", o->archives);
  char *const argv[] = {(char *)gen, "--game-dir", (char *)dir, "--format", (char *)format,
                        "--archives", archives, "--size", (char *)o->size, "--quiet", NULL};
  if (bench_run(argv, false) != 0)
    bench_die("%s failed", gen);
}

/* ---- one measurement ---------------------------------------------------- */

static void fresh_dest(const char *dest)
{
  ls_diag diag = {{0}};
  if (ls_rmtree_at(AT_FDCWD, dest, &diag) != LS_OK || ls_mkdir_p(dest, 0, &diag) != LS_OK)
    bench_die("%s", diag.text);
  sync(); /* no dirty pages from the previous run */
  struct timespec settle = {.tv_sec = 0, .tv_nsec = 200 * 1000 * 1000};
  nanosleep(&settle, NULL);
}

static char *archive_path(const char *games, unsigned long i)
{
  static char path[PATH_MAX + 64];
  if (snprintf(path, sizeof path, "%s/game0001/game0001.part%02lu.eti", games, i + 1) >=
      (int)sizeof path)
    bench_die("%s: path too long", games);
  return path;
}

static double time_bsdtar(const char *games, const char *dest, unsigned long archives)
{
  fresh_dest(dest);
  double t0 = bench_now_s();
  for (unsigned long i = 0; i < archives; i++) {
    char *const argv[] = {"bsdtar", "-xf", archive_path(games, i), "-C", (char *)dest, NULL};
    if (bench_run(argv, false) != 0)
      bench_die("bsdtar -xf %s failed", archive_path(games, i));
  }
  return bench_now_s() - t0;
}

static double time_ours(ls_unpacker *u, const char *games, const char *dest,
                        unsigned long archives, double *fsync_s)
{
  fresh_dest(dest);
  ls_diag diag = {{0}};
  double t0 = bench_now_s();
  for (unsigned long i = 0; i < archives; i++)
    if (u->unpack(u->self, archive_path(games, i), dest, NULL, NULL, NULL, &diag) != LS_OK)
      bench_die("%s", diag.text);
  double t1 = bench_now_s();
  if (ls_fsync_tree(dest, &diag) != LS_OK)
    bench_die("%s", diag.text);
  *fsync_s = bench_now_s() - t1;
  return t1 - t0;
}

/* ---- statistics and report ---------------------------------------------- */

static uint64_t payload_bytes(const char *games, unsigned long archives)
{
  uint64_t total = 0;
  for (unsigned long i = 0; i < archives; i++) {
    struct stat st;
    if (stat(archive_path(games, i), &st) != 0)
      bench_die("stat %s: %s", archive_path(games, i), strerror(errno));
    total += (uint64_t)st.st_size;
  }
  return total;
}

static bool bench_format(const char *gen, const char *work, const char *format,
                         const bench_options *o)
{
  char games[PATH_MAX + 32], dest[PATH_MAX + 32];
  snprintf(games, sizeof games, "%s/%s", work, format);
  snprintf(dest, sizeof dest, "%s/dest", work);
  generate(gen, games, format, o);
  double mb = (double)payload_bytes(games, o->archives) / 1e6;
  ls_unpacker u;
  ls_diag diag = {{0}};
  if (ls_unpacker_libarchive(&u, NULL, &diag) != LS_OK)
    bench_die("%s", diag.text);
  bench_result *r = calloc(1, sizeof *r);
  if (!r)
    bench_die("out of memory");
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
  double b = bench_median(r->bsdtar_s, o->repeat), ours = bench_median(r->ours_s, o->repeat);
  double bb = bench_min(r->bsdtar_s, o->repeat), ob = bench_min(r->ours_s, o->repeat);
  double ratio = bb / ob;
  printf("  median: bsdtar %.1f MB/s, ours %.1f MB/s, ratio %.2f\n", mb / b, mb / ours, b / ours);
  printf("  best:   bsdtar %.1f MB/s, ours %.1f MB/s, ratio %.2f (target >= %.2f): %s\n",
         mb / bb, mb / ob, ratio, RATIO_TARGET, ratio >= RATIO_TARGET ? "PASS" : "MISS");
  printf("  ls_fsync_tree after our extraction: median %.2f s (not in the ratio)\n",
         bench_median(r->fsync_s, o->repeat));
  free(r);
  ls_unpacker_libarchive_free(&u);
  ls_rmtree_at(AT_FDCWD, games, NULL);
  return ratio >= RATIO_TARGET;
}

int main(int argc, char **argv)
{
  bench_init(PROG);
  bench_options o;
  parse_options(argc, argv, &o);
  char gen[PATH_MAX], work[PATH_MAX];
  bench_sibling(GEN_NAME, gen, sizeof gen);
  const char *tmp = getenv("TMPDIR");
  snprintf(work, sizeof work, "%s/" PROG "-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(work))
    bench_die("mkdtemp %s: %s", work, strerror(errno));
  bench_remove_at_exit(work);
  bool ok = bench_format(gen, work, "tar", &o);
  ok = bench_format(gen, work, "zip", &o) && ok;
  return ok ? 0 : 1;
}
