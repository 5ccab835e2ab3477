/* bench_scan: owns the local-library scan benchmark. It generates a sparse
 * library with lanspread-gen (found next to this binary), then times, in one
 * run and on a hot page cache: `find GAME_DIR -printf '%s\n'`, a cold scan
 * with an empty index plus its save, a warm rescan with the same in-memory
 * index, and a warm rescan after reopening the index from disk. It prints
 * median and min of each and checks the targets (cold <= 1.5 x find, warm
 * <= 100 ms, no payload file stat'ed on a warm rescan). The temporary
 * directory is removed at the end, on failure and on SIGINT/SIGTERM/SIGHUP. */
#include "benchkit.h"
#include "library/index.h"
#include "library/library.h"

#include <lanspread/catalog.h>
#include <lanspread/error.h>

#include <dirent.h>
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
#include <sys/vfs.h>
#include <unistd.h>

#define PROG "bench_scan"
#define GEN_NAME "lanspread-gen"
#define KEEP_MARKER ".bench_scan"
#define RATIO_TARGET 1.5
#define WARM_TARGET_MS 100.0
#define MAX_REPEAT 1000

typedef struct bench_options {
  unsigned long games;
  unsigned long files;
  unsigned long repeat;
  const char *keep;
} bench_options;

/* Paths of one benchmark run, all under the work directory. */
typedef struct bench_paths {
  char work[PATH_MAX];
  char games[PATH_MAX + 16];
  char catalog[PATH_MAX + 32];
  char marker[PATH_MAX + 16];
  char gen[PATH_MAX];
} bench_paths;

/* One set of timings (ms), `repeat` samples each. */
typedef struct bench_samples {
  double *find;
  double *cold;
  double *cold_scan;
  double *cold_save;
  double *warm;
  double *reopen;
} bench_samples;

typedef struct bench_result {
  ls_scan_stats cold_stats;
  ls_scan_stats warm_stats;
  ls_scan_stats reopen_stats;
  size_t games_found;
  size_t files_found;
  long long index_bytes;
  unsigned stat_failures; /* warm rescans that stat'ed payload files */
} bench_result;

/* ---- options ------------------------------------------------------------ */

static void print_help(void)
{
  printf(
    "Usage: " PROG " [--games N] [--files M] [--repeat R] [--keep DIR]\n"
    "Benchmark the local library scan against find(1).\n"
    "\n"
    "Generates N games x M payload files (sparse, 1 MiB each, plus version.ini)\n"
    "and a catalog with " GEN_NAME " from this binary's directory, then times\n"
    "R times each (hot page cache):\n"
    "  find     find GAME_DIR -printf '%%s\\n' > /dev/null (fork/exec, wall time)\n"
    "  cold     ls_index_open on an empty state dir + ls_scan_local_library +\n"
    "           ls_index_save (a fresh state dir per repeat)\n"
    "  warm     rescan with the same in-memory index\n"
    "  reopen   ls_index_free, ls_index_open from disk + rescan\n"
    "and prints median and min in ms, the warm rescan's ls_scan_stats and\n"
    "ratio cold/find. Targets: cold/find <= %.2f, warm <= %.0f ms, and no\n"
    "payload file stat'ed by a warm rescan.\n"
    "\n"
    "Options:\n"
    "  --games N    games to generate (default 2000)\n"
    "  --files M    payload archives per game (default 20)\n"
    "  --repeat R   measurements of each kind (default 5)\n"
    "  --keep DIR   work in DIR and keep it (games/, catalog.json, state-*/)\n"
    "               instead of a temporary directory; DIR must be new, empty,\n"
    "               or kept by an earlier run, whose library is reused when\n"
    "               --games and --files match (and regenerated otherwise)\n"
    "  -h, --help   show this help\n"
    "\n"
    "The temporary directory ($TMPDIR or /tmp) is removed at the end, on\n"
    "failure and on SIGINT/SIGTERM/SIGHUP.\n"
    "Exit status: 0 when every measurement ran and the scan results were\n"
    "right (missed timing targets are reported, not failed); 1 on an error or a\n"
    "warm rescan that stat'ed payload files; 2 on a usage error.\n",
    RATIO_TARGET, WARM_TARGET_MS);
}

static void parse_args(int argc, char **argv, bench_options *o)
{
  static const struct option longopts[] = {
    {"games", required_argument, NULL, 'g'},
    {"files", required_argument, NULL, 'f'},
    {"repeat", required_argument, NULL, 'r'},
    {"keep", required_argument, NULL, 'k'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
  };
  *o = (bench_options){.games = 2000, .files = 20, .repeat = 5};
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
    switch (c) {
    case 'g': o->games = bench_parse_count("--games", optarg, 1, 1000000); break;
    case 'f': o->files = bench_parse_count("--files", optarg, 0, 9999); break;
    case 'r': o->repeat = bench_parse_count("--repeat", optarg, 1, MAX_REPEAT); break;
    case 'k': o->keep = optarg; break;
    case 'h': print_help(); exit(0);
    case ':': bench_usage_error("%s needs a value", argv[optind - 1]);
    default: bench_usage_error("unknown option '%s'", argv[optind - 1]);
    }
  }
  if (optind < argc)
    bench_usage_error("unexpected argument '%s'", argv[optind]);
  if (o->keep && !*o->keep)
    bench_usage_error("--keep: empty path");
}

/* ---- small helpers ------------------------------------------------------ */

static bool dir_is_empty(const char *path)
{
  DIR *d = opendir(path);
  if (!d)
    bench_die("cannot open directory %s: %s", path, strerror(errno));
  struct dirent *de;
  bool empty = true;
  while (empty && (de = readdir(d)) != NULL)
    empty = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;
  closedir(d);
  return empty;
}

static const char *fs_type_name(const char *path)
{
  struct statfs sf;
  if (statfs(path, &sf) != 0)
    return "unknown fs";
  switch ((unsigned long)sf.f_type) {
  case 0xEF53ul: return "ext4";
  case 0x01021994ul: return "tmpfs";
  case 0x9123683Eul: return "btrfs";
  case 0x58465342ul: return "xfs";
  case 0x794c7630ul: return "overlayfs";
  default: return "other fs";
  }
}

/* ---- children ----------------------------------------------------------- */

static double now_ms(void)
{
  return bench_now_s() * 1e3;
}

/* Runs argv quietly; returns its wall time in ms. Dies unless it exits 0. */
static double run_child(char *const argv[])
{
  double start = now_ms();
  int status = bench_run(argv, true);
  if (status != 0)
    bench_die("%s failed (%s %d)", argv[0], status > 128 ? "signal" : "exit status",
              status > 128 ? status - 128 : status);
  return now_ms() - start;
}

/* ---- work directory ----------------------------------------------------- */

static void make_dir(const char *path)
{
  if (mkdir(path, 0755) != 0 && errno != EEXIST)
    bench_die("cannot create directory %s: %s", path, strerror(errno));
}

static void create_temp_work_dir(bench_paths *p)
{
  const char *tmp = getenv("TMPDIR");
  if (!tmp || !*tmp)
    tmp = "/tmp";
  bench_join_path(p->work, sizeof p->work, tmp, "lanspread-bench-scan.XXXXXX");
  if (!mkdtemp(p->work))
    bench_die("cannot create a directory in %s: %s", tmp, strerror(errno));
  bench_remove_at_exit(p->work);
}

static void write_marker(const bench_paths *p, const char *content)
{
  int fd = open(p->marker, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    bench_die("cannot create %s: %s", p->marker, strerror(errno));
  size_t len = strlen(content);
  if (write(fd, content, len) != (ssize_t)len || close(fd) != 0)
    bench_die("cannot write %s: %s", p->marker, strerror(errno));
}

/* What the marker of a --keep directory says once its library is complete. */
static void library_shape(const bench_options *o, char *out, size_t cap)
{
  snprintf(out, cap, "library games=%lu files=%lu\n", o->games, o->files);
}

static bool kept_library_matches(const bench_options *o, const bench_paths *p)
{
  char want[128], have[128] = "";
  library_shape(o, want, sizeof want);
  FILE *f = fopen(p->marker, "r");
  if (!f)
    return false;
  size_t n = fread(have, 1, sizeof have - 1, f);
  fclose(f);
  have[n] = '\0';
  return strcmp(want, have) == 0 && access(p->games, F_OK) == 0 &&
         access(p->catalog, F_OK) == 0;
}

/* --keep DIR: new, empty, or marked by an earlier run. Returns true when
 * DIR already holds a complete library of the requested shape (reused);
 * otherwise its old library is removed. Never removes anything outside
 * what an earlier run created. */
static bool prepare_kept_work_dir(const bench_options *o, bench_paths *p)
{
  make_dir(p->work);
  if (access(p->marker, F_OK) == 0) {
    if (kept_library_matches(o, p))
      return true;
    write_marker(p, "");
    bench_remove_tree(p->games);
    return false;
  }
  if (!dir_is_empty(p->work))
    bench_die("--keep %s: the directory is not empty and was not made by " PROG, p->work);
  write_marker(p, "");
  return false;
}

static void state_dir_path(const bench_paths *p, unsigned long run, char *out, size_t cap)
{
  char name[32];
  snprintf(name, sizeof name, "state-%lu", run + 1);
  bench_join_path(out, cap, p->work, name);
}

/* A fresh, empty state dir for cold run `run`. */
static void fresh_state_dir(const bench_paths *p, unsigned long run, char *out, size_t cap)
{
  state_dir_path(p, run, out, cap);
  bench_remove_tree(out);
  make_dir(out);
}

/* ---- the measurements --------------------------------------------------- */

/* Runs lanspread-gen; a --keep directory's marker records the finished
 * library so that the next run with the same shape reuses it. */
static double generate_library(const bench_options *o, const bench_paths *p)
{
  char games[32], files[32], size[48];
  snprintf(games, sizeof games, "%lu", o->games);
  snprintf(files, sizeof files, "%lu", o->files);
  snprintf(size, sizeof size, "%luM", o->files); /* 1 MiB per payload file */
  char *const argv[] = {
    (char *)p->gen, "--game-dir", (char *)p->games, "--games", games, "--archives", files,
    "--size", size, "--sparse", "--catalog", (char *)p->catalog, "--quiet", NULL,
  };
  double ms = run_child(argv);
  if (access(p->marker, F_OK) == 0) {
    char shape[128];
    library_shape(o, shape, sizeof shape);
    write_marker(p, shape);
  }
  return ms;
}

static double time_find(const bench_paths *p)
{
  char *const argv[] = {"find", (char *)p->games, "-printf", "%s\n", NULL};
  return run_child(argv);
}

static void check_scan(int rc, const ls_diag *diag, const char *what)
{
  if (rc != LS_OK)
    bench_die("%s failed: %s (%s)", what, diag->text[0] ? diag->text : "no detail", ls_strerror(rc));
}

static ls_index *open_index(const char *state_dir, bool must_be_valid)
{
  ls_index *index = NULL;
  ls_diag diag = {{0}};
  check_scan(ls_index_open(state_dir, &index, &diag), &diag, "ls_index_open");
  const char *why = ls_index_rejected_reason(index);
  if (must_be_valid && why)
    bench_die("the saved index in %s was rejected: %s", state_dir, why);
  return index;
}

/* One ls_scan_local_library; returns its time in ms. The library is
 * checked against the generated shape, then freed (untimed). */
static double scan_once(const bench_paths *p, const ls_catalog *catalog, ls_index *index,
                        ls_scan_stats *stats, bench_result *r)
{
  ls_library lib = {0};
  ls_diag diag = {{0}};
  memset(stats, 0, sizeof *stats);
  double start = now_ms();
  int rc = ls_scan_local_library(p->games, catalog, index, false, &lib, stats, &diag);
  double ms = now_ms() - start;
  check_scan(rc, &diag, "ls_scan_local_library");
  r->games_found = lib.count;
  r->files_found = 0;
  for (size_t i = 0; i < lib.count; i++)
    r->files_found += lib.games[i].file_count;
  ls_library_clear(&lib);
  return ms;
}

static long long file_size(const char *dir, const char *name)
{
  char path[PATH_MAX + 64];
  struct stat st;
  bench_join_path(path, sizeof path, dir, name);
  return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* Cold, warm and reopen measurements of repeat `run`. */
static void measure_scans(const bench_paths *p, const ls_catalog *catalog, unsigned long run,
                          bench_samples *s, bench_result *r)
{
  char state[PATH_MAX + 32];
  fresh_state_dir(p, run, state, sizeof state);
  ls_diag diag = {{0}};

  double start = now_ms();
  ls_index *index = open_index(state, false);
  s->cold_scan[run] = scan_once(p, catalog, index, &r->cold_stats, r);
  double save_start = now_ms();
  check_scan(ls_index_save(index, &diag), &diag, "ls_index_save");
  s->cold_save[run] = now_ms() - save_start;
  s->cold[run] = now_ms() - start;
  r->index_bytes = file_size(state, LS_INDEX_FILE);

  s->warm[run] = scan_once(p, catalog, index, &r->warm_stats, r);
  if (r->warm_stats.files_statted != 0)
    r->stat_failures++;
  ls_index_free(index);

  start = now_ms();
  index = open_index(state, true);
  scan_once(p, catalog, index, &r->reopen_stats, r);
  s->reopen[run] = now_ms() - start;
  if (r->reopen_stats.files_statted != 0)
    r->stat_failures++;
  ls_index_free(index);
}

/* ---- report ------------------------------------------------------------- */

static void print_figure(const char *name, const double *v, size_t n, const char *note)
{
  printf("%s median=%.2f min=%.2f   # %s\n", name, bench_median(v, n), bench_min(v, n), note);
}

static void print_stats(const char *name, const ls_scan_stats *s, const char *note)
{
  printf("%s roots_seen=%u roots_reused=%u roots_walked=%u files_statted=%u dirs_opened=%u%s%s\n",
         name, s->roots_seen, s->roots_reused, s->roots_walked, s->files_statted, s->dirs_opened,
         note ? "   # " : "", note ? note : "");
}

static const char *verdict(bool ok)
{
  return ok ? "ok" : "MISSED";
}

static void print_report(const bench_options *o, const bench_samples *s, const bench_result *r)
{
  size_t n = o->repeat;
  double warm = bench_median(s->warm, n), reopen = bench_median(s->reopen, n);
  double ratio = bench_median(s->cold, n) / bench_median(s->find, n);
  char note[160];
  printf("# figures in ms over %lu runs (hot page cache)\n", o->repeat);
  print_figure("scan.find_ms", s->find, n, "find GAME_DIR -printf '%s\\n' > /dev/null");
  print_figure("scan.cold_ms", s->cold, n, "index open (empty) + scan + index save");
  print_figure("scan.cold_scan_ms", s->cold_scan, n, "of which ls_scan_local_library");
  print_figure("scan.cold_save_ms", s->cold_save, n, "of which ls_index_save");
  snprintf(note, sizeof note, "rescan, same in-memory index (target <= %.0f ms: %s)",
           WARM_TARGET_MS, verdict(warm <= WARM_TARGET_MS));
  print_figure("scan.warm_ms", s->warm, n, note);
  snprintf(note, sizeof note, "index reopened from disk + rescan (target <= %.0f ms: %s)",
           WARM_TARGET_MS, verdict(reopen <= WARM_TARGET_MS));
  print_figure("scan.reopen_ms", s->reopen, n, note);
  print_stats("scan.cold_stats", &r->cold_stats, NULL);
  print_stats("scan.warm_stats", &r->warm_stats,
              r->warm_stats.files_statted == 0 ? "files_statted must be 0: ok"
                                               : "files_statted must be 0: FAILED");
  print_stats("scan.reopen_stats", &r->reopen_stats, NULL);
  printf("scan.index_bytes=%lld\n", r->index_bytes);
  printf("ratio cold_scan/find = %.2f   # scan alone, without index open/save\n",
         bench_median(s->cold_scan, n) / bench_median(s->find, n));
  printf("ratio cold/find = %.2f (target <= %.2f)%s\n", ratio, RATIO_TARGET,
         ratio <= RATIO_TARGET ? "" : " MISSED");
}

/* ---- main --------------------------------------------------------------- */

static ls_catalog *load_catalog(const char *path)
{
  ls_catalog *catalog = NULL;
  ls_diag diag = {{0}};
  int rc = ls_catalog_load_file(path, &catalog, &diag);
  if (rc != LS_OK)
    bench_die("cannot load the catalog: %s", diag.text[0] ? diag.text : ls_strerror(rc));
  return catalog;
}

static void check_library_shape(const bench_options *o, const bench_result *r)
{
  if (r->games_found != o->games)
    bench_die("the scan found %zu games, expected %lu", r->games_found, o->games);
}

static void run_benchmark(const bench_options *o, const bench_paths *p, bool reuse)
{
  printf("# " PROG ": %lu games x %lu files in %s (%s), repeat %lu\n", o->games, o->files,
         p->work, fs_type_name(p->work), o->repeat);
  fflush(stdout);
  if (reuse) {
    printf("# reusing the library kept in %s\n", p->work);
  } else {
    double gen_ms = generate_library(o, p);
    printf("# generated with %s --sparse in %.0f ms\n", GEN_NAME, gen_ms);
  }
  fflush(stdout);
  ls_catalog *catalog = load_catalog(p->catalog);

  bench_samples s = {
    .find = bench_calloc(o->repeat, sizeof(double)),
    .cold = bench_calloc(o->repeat, sizeof(double)),
    .cold_scan = bench_calloc(o->repeat, sizeof(double)),
    .cold_save = bench_calloc(o->repeat, sizeof(double)),
    .warm = bench_calloc(o->repeat, sizeof(double)),
    .reopen = bench_calloc(o->repeat, sizeof(double)),
  };
  bench_result r = {0};
  time_find(p); /* warm-up: the page cache holds what generation left */
  for (unsigned long run = 0; run < o->repeat; run++) {
    s.find[run] = time_find(p);
    measure_scans(p, catalog, run, &s, &r);
    check_library_shape(o, &r);
  }
  printf("# library: %zu games, %zu payload files per scan\n", r.games_found, r.files_found);
  print_report(o, &s, &r);
  fflush(stdout);
  ls_catalog_free(catalog);
  free(s.find), free(s.cold), free(s.cold_scan), free(s.cold_save), free(s.warm),
    free(s.reopen);
  if (r.stat_failures)
    bench_die("%u warm rescans stat'ed payload files (files_statted must be 0)", r.stat_failures);
}

static void set_work_paths(bench_paths *p)
{
  bench_join_path(p->games, sizeof p->games, p->work, "games");
  bench_join_path(p->catalog, sizeof p->catalog, p->work, "catalog.json");
  bench_join_path(p->marker, sizeof p->marker, p->work, KEEP_MARKER);
}

int main(int argc, char **argv)
{
  bench_init(PROG);
  bench_options o;
  parse_args(argc, argv, &o);
  bench_paths p;
  memset(&p, 0, sizeof p);
  bench_sibling(GEN_NAME, p.gen, sizeof p.gen);
  bool reuse = false;
  if (o.keep) {
    if ((size_t)snprintf(p.work, sizeof p.work, "%s", o.keep) >= sizeof p.work)
      bench_usage_error("--keep: path too long");
    set_work_paths(&p);
    reuse = prepare_kept_work_dir(&o, &p);
  } else {
    create_temp_work_dir(&p);
    set_work_paths(&p);
  }
  run_benchmark(&o, &p, reuse);
  if (o.keep)
    printf("# kept %s\n", p.work);
  return 0;
}
