/* lanspread-gen: owns the test-data generator. It creates game roots with
 * version.ini, payload archives of deterministic pseudo-random content (raw,
 * tar or zip), optionally an installed local/ tree, the tree that extracting
 * the archives yields (--expect-dir), and a catalog listing the generated ids.
 * Tests, benchmarks and demos depend on its output being byte-identical for
 * identical arguments. */
#include "core/error.h"
#include <lanspread/catalog.h>
#include "core/fs.h"
#include <lanspread/release.h>

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PROG "lanspread-gen"
#define EXIT_USAGE 2
#define EXIT_IO 1
#define ID_MAX 64
#define BUF_SIZE (1u << 20)
#define FILES_PER_ARCHIVE 2u
#define ARCHIVE_MTIME 1700000000 /* fixed entry time: archives must be reproducible */

typedef enum gen_format { FORMAT_RAW, FORMAT_TAR, FORMAT_ZIP } gen_format;

typedef struct gen_options {
  const char *game_dir;
  unsigned long games;
  unsigned long first;
  const char *id_prefix;
  unsigned long archives;
  uint64_t size;
  const char *version;
  gen_format format;
  bool sparse;
  bool installed;
  bool quiet;
  uint64_t seed;
  const char *catalog;
  bool catalog_merge;
  const char *expect_dir;
} gen_options;

typedef struct gen_progress {
  bool enabled;
  bool printed;
  unsigned long games_total;
  unsigned long games_done;
  uint64_t bytes_total;
  uint64_t bytes_done;
  double started;
  double last_print;
} gen_progress;

static unsigned char g_buf[BUF_SIZE];

/* ---- errors ------------------------------------------------------------- */

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage_error(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, PROG ": ");
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\nTry '" PROG " --help' for more information.\n");
  exit(EXIT_USAGE);
}

static void io_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void io_error(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, PROG ": ");
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(EXIT_IO);
}

static void errno_error(const char *what, const char *path, int e) __attribute__((noreturn));
static void errno_error(const char *what, const char *path, int e)
{
  io_error("%s %s: %s", what, path, strerror(e));
}

static void *xmalloc(size_t n)
{
  void *p = malloc(n ? n : 1);
  if (!p)
    io_error("out of memory");
  return p;
}

/* ---- help --------------------------------------------------------------- */

static void print_help(void)
{
  printf(
    "Usage: " PROG " --game-dir DIR [--games N] [--first K] [--id-prefix PREFIX]\n"
    "         [--archives M] [--size BYTES] [--game-version V]\n"
    "         [--format raw|tar|zip] [--sparse] [--installed] [--seed S]\n"
    "         [--catalog FILE [--catalog-merge]] [--expect-dir DIR] [--quiet]\n"
    "       " PROG " --help | --version\n"
    "Generate a Lanspread game library for tests, benchmarks and demos.\n"
    "\n"
    "Creates game roots DIR/<PREFIX><NUMBER> (NUMBER zero-padded to 4 digits),\n"
    "each with version.ini (\"V\\n\") and M payload archives <id>.partNN.eti\n"
    "(NN from 01). The same arguments always produce byte-identical files.\n"
    "\n"
    "Options:\n"
    "  --game-dir DIR     where the game roots go (created if missing; required)\n"
    "  --games N          number of games (default 1)\n"
    "  --first K          number of the first game (default 1)\n"
    "  --id-prefix PREFIX id prefix (default \"game\"); ids must be 1-64 chars of\n"
    "                     [A-Za-z0-9._-] starting with a letter or digit\n"
    "  --archives M       payload archives per game (default 1; 0 = none)\n"
    "  --size BYTES       total payload bytes per game, split evenly over the\n"
    "                     archives (default 1M); suffixes K, M, G are binary\n"
    "                     (1K = 1024)\n"
    "  --game-version V   content of version.ini (default \"1.0\")\n"
    "  --format FORMAT    raw: archives are plain pseudo-random bytes (default)\n"
    "                     tar: pax tar archives; zip: zip archives, stored\n"
    "                     (tar/zip: archive NN holds the directories <id>/ and\n"
    "                     <id>/data/ and %u files <id>/data/fileXX.bin, XX\n"
    "                     counting from 01 over all archives of the game; the\n"
    "                     files share the archive's payload size evenly)\n"
    "  --sparse           create raw archives with ftruncate only (no content,\n"
    "                     no disk blocks; for scan benchmarks); raw format only\n"
    "  --installed        also create local/README.txt (the game is installed)\n"
    "  --seed S           seed of the pseudo-random content (default 1)\n"
    "  --catalog FILE     write a catalog JSON listing the generated ids\n"
    "                     ({\"games\":[{\"id\",\"name\",\"genre\",\"max_players\"}]},\n"
    "                     names like \"Generated Game 0007\"); replaces FILE\n"
    "  --catalog-merge    keep the games already in FILE (a missing FILE is an\n"
    "                     empty catalog) and add only ids not yet listed\n"
    "  --expect-dir DIR   tar/zip only: also write, for each game, the tree that\n"
    "                     extracting all its archives yields, into DIR/<id>/\n"
    "                     (so `diff -r GAME_DIR/<id>/local DIR/<id>` checks an\n"
    "                     install)\n"
    "  -q, --quiet        no progress on stderr\n"
    "  -h, --help         show this help and exit\n"
    "  --version          print the version of " PROG " and exit\n"
    "\n"
    "Content: byte OFFSET of a stream is byte OFFSET%%8 (little-endian) of\n"
    "splitmix64 at counter OFFSET/8 + 1, keyed by (seed, id, archive index,\n"
    "member index); incompressible. Existing files are overwritten; nothing\n"
    "is deleted. Progress goes to stderr when a job takes over a second.\n"
    "\n"
    "Examples:\n"
    "  " PROG " --game-dir /tmp/g --games 3 --archives 2 --size 64M --catalog /tmp/c.json\n"
    "  " PROG " --game-dir /tmp/g --games 2000 --archives 20 --size 20M --sparse\n"
    "  " PROG " --game-dir /tmp/g --format zip --installed --expect-dir /tmp/want\n"
    "\n"
    "Exit status: 0 on success, 1 on an I/O error (the message names the path\n"
    "and the reason), 2 on a usage error.\n",
    FILES_PER_ARCHIVE);
}

/* ---- argument parsing --------------------------------------------------- */

static unsigned long parse_count(const char *opt, const char *s)
{
  char *end;
  errno = 0;
  if (*s < '0' || *s > '9')
    usage_error("%s: '%s' is not a non-negative integer", opt, s);
  unsigned long v = strtoul(s, &end, 10);
  if (errno == ERANGE || *end != '\0' || v > 100000000ul)
    usage_error("%s: '%s' is not an integer from 0 to 100000000", opt, s);
  return v;
}

static uint64_t parse_u64(const char *opt, const char *s)
{
  char *end;
  errno = 0;
  if (*s < '0' || *s > '9')
    usage_error("%s: '%s' is not a non-negative integer", opt, s);
  unsigned long long v = strtoull(s, &end, 0);
  if (errno == ERANGE || *end != '\0')
    usage_error("%s: '%s' is not a 64-bit unsigned integer", opt, s);
  return (uint64_t)v;
}

/* 10, 20, 30 for the binary suffixes K, M, G (either case), else 0. */
static unsigned suffix_shift(char c)
{
  switch (c) {
  case 'k': case 'K': return 10;
  case 'm': case 'M': return 20;
  case 'g': case 'G': return 30;
  default: return 0;
  }
}

static uint64_t parse_size(const char *opt, const char *s)
{
  char *end;
  errno = 0;
  if (*s < '0' || *s > '9')
    usage_error("%s: '%s' is not a size (BYTES, or a number with K, M or G)", opt, s);
  unsigned long long v = strtoull(s, &end, 10);
  unsigned shift = suffix_shift(*end);
  if (shift > 0)
    end++;
  if (errno == ERANGE || *end != '\0')
    usage_error("%s: '%s' is not a size (BYTES, or a number with K, M or G)", opt, s);
  if (v > (UINT64_MAX >> shift))
    usage_error("%s: '%s' is too large", opt, s);
  return (uint64_t)v << shift;
}

static gen_format parse_format(const char *s)
{
  if (strcmp(s, "raw") == 0)
    return FORMAT_RAW;
  if (strcmp(s, "tar") == 0)
    return FORMAT_TAR;
  if (strcmp(s, "zip") == 0)
    return FORMAT_ZIP;
  usage_error("--format: '%s' is not one of raw, tar, zip", s);
}

static void format_id(const gen_options *o, unsigned long number, char *out, size_t cap)
{
  int n = snprintf(out, cap, "%s%04lu", o->id_prefix, number);
  if (n < 0 || (size_t)n >= cap || !ls_catalog_id_is_safe(out))
    usage_error("'%s%04lu' is not a valid game id (1-64 chars of [A-Za-z0-9._-], "
                "starting with a letter or digit)", o->id_prefix, number);
}

static void check_options(const gen_options *o)
{
  if (!o->game_dir)
    usage_error("--game-dir DIR is required");
  if (!*o->game_dir)
    usage_error("--game-dir: empty path");
  if (!*o->version || strlen(o->version) > 256 || strpbrk(o->version, "\r\n"))
    usage_error("--game-version: must be 1 to 256 characters on one line");
  if (o->sparse && o->format != FORMAT_RAW)
    usage_error("--sparse works with --format raw only");
  if (o->expect_dir && o->format == FORMAT_RAW)
    usage_error("--expect-dir needs --format tar or zip");
  if (o->catalog_merge && !o->catalog)
    usage_error("--catalog-merge needs --catalog FILE");
  if (o->archives > 9999)
    usage_error("--archives: at most 9999");
  if (o->games > 0 && o->first > ULONG_MAX - o->games)
    usage_error("--first + --games is too large");
  if (o->games > 0) {
    char id[ID_MAX + 32];
    format_id(o, o->first, id, sizeof id);
    format_id(o, o->first + o->games - 1, id, sizeof id);
  }
}

enum {
  OPT_GAME_DIR = 256, OPT_GAMES, OPT_FIRST, OPT_ID_PREFIX, OPT_ARCHIVES, OPT_SIZE,
  OPT_VERSION, OPT_FORMAT, OPT_SPARSE, OPT_INSTALLED, OPT_SEED, OPT_CATALOG,
  OPT_CATALOG_MERGE, OPT_EXPECT_DIR, OPT_PROGRAM_VERSION,
};

static void parse_args(int argc, char **argv, gen_options *o)
{
  static const struct option longopts[] = {
    {"game-dir", required_argument, NULL, OPT_GAME_DIR},
    {"games", required_argument, NULL, OPT_GAMES},
    {"first", required_argument, NULL, OPT_FIRST},
    {"id-prefix", required_argument, NULL, OPT_ID_PREFIX},
    {"archives", required_argument, NULL, OPT_ARCHIVES},
    {"size", required_argument, NULL, OPT_SIZE},
    {"game-version", required_argument, NULL, OPT_VERSION},
    {"version", no_argument, NULL, OPT_PROGRAM_VERSION},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"sparse", no_argument, NULL, OPT_SPARSE},
    {"installed", no_argument, NULL, OPT_INSTALLED},
    {"seed", required_argument, NULL, OPT_SEED},
    {"catalog", required_argument, NULL, OPT_CATALOG},
    {"catalog-merge", no_argument, NULL, OPT_CATALOG_MERGE},
    {"expect-dir", required_argument, NULL, OPT_EXPECT_DIR},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
  };
  *o = (gen_options){.games = 1, .first = 1, .id_prefix = "game", .archives = 1,
                     .size = 1u << 20, .version = "1.0", .format = FORMAT_RAW, .seed = 1};
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":qh", longopts, NULL)) != -1) {
    switch (c) {
    case OPT_GAME_DIR: o->game_dir = optarg; break;
    case OPT_GAMES: o->games = parse_count("--games", optarg); break;
    case OPT_FIRST: o->first = parse_count("--first", optarg); break;
    case OPT_ID_PREFIX: o->id_prefix = optarg; break;
    case OPT_ARCHIVES: o->archives = parse_count("--archives", optarg); break;
    case OPT_SIZE: o->size = parse_size("--size", optarg); break;
    case OPT_VERSION: o->version = optarg; break;
    case OPT_FORMAT: o->format = parse_format(optarg); break;
    case OPT_SPARSE: o->sparse = true; break;
    case OPT_INSTALLED: o->installed = true; break;
    case OPT_SEED: o->seed = parse_u64("--seed", optarg); break;
    case OPT_CATALOG: o->catalog = optarg; break;
    case OPT_CATALOG_MERGE: o->catalog_merge = true; break;
    case OPT_EXPECT_DIR: o->expect_dir = optarg; break;
    case 'q': o->quiet = true; break;
    case 'h': print_help(); exit(0);
    case OPT_PROGRAM_VERSION: printf(PROG " %s\n", ls_release_version()); exit(0);
    case ':': usage_error("%s needs a value", argv[optind - 1]);
    default:
      if (optopt > 0 && optopt < 256)
        usage_error("unknown option '-%c'", optopt);
      usage_error("unknown option '%s'", argv[optind - 1]);
    }
  }
  if (optind < argc)
    usage_error("unexpected argument '%s'", argv[optind]);
  check_options(o);
}

/* ---- deterministic content ---------------------------------------------- */

#define GOLDEN 0x9E3779B97F4A7C15ull

static uint64_t mix64(uint64_t z)
{
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static uint64_t hash_string(const char *s)
{
  uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 0x100000001b3ull;
  }
  return h;
}

/* The key of one content stream: raw archive `archive` has member 0; file
 * `member` (1-based) of a tar/zip archive has its own stream. */
static uint64_t stream_key(uint64_t seed, const char *id, unsigned long archive,
                           unsigned long member)
{
  uint64_t k = mix64(seed ^ GOLDEN);
  k = mix64(k ^ hash_string(id));
  k = mix64(k ^ ((uint64_t)archive * GOLDEN));
  return mix64(k ^ ((uint64_t)member + 1) * 0xD1B54A32D192ED03ull);
}

static uint64_t stream_word(uint64_t key, uint64_t word)
{
  return mix64(key + (word + 1) * GOLDEN);
}

/* Fills buf with bytes [offset, offset + len) of the stream. */
static void fill_stream(uint64_t key, uint64_t offset, unsigned char *buf, size_t len)
{
  size_t i = 0;
  while (i < len && ((offset + i) & 7u) != 0) {
    uint64_t pos = offset + i;
    buf[i++] = (unsigned char)(stream_word(key, pos >> 3) >> (8 * (pos & 7u)));
  }
  for (uint64_t w = (offset + i) >> 3; len - i >= 8; w++, i += 8) {
    uint64_t v = stream_word(key, w);
    for (unsigned b = 0; b < 8; b++)
      buf[i + b] = (unsigned char)(v >> (8 * b));
  }
  while (i < len) {
    uint64_t pos = offset + i;
    buf[i++] = (unsigned char)(stream_word(key, pos >> 3) >> (8 * (pos & 7u)));
  }
}

/* Size of part `i` of `n` equal parts of `total` (the first parts get the
 * remainder, one byte each). */
static uint64_t share_of(uint64_t total, unsigned long n, unsigned long i)
{
  return total / n + (i < total % n ? 1 : 0);
}

/* ---- progress ----------------------------------------------------------- */

static double now_seconds(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void progress_print(gen_progress *p, bool final)
{
  double mib_done = (double)p->bytes_done / (1024.0 * 1024.0);
  double mib_total = (double)p->bytes_total / (1024.0 * 1024.0);
  char bytes[64] = "";
  if (p->bytes_total > 0)
    snprintf(bytes, sizeof bytes, ", %.0f/%.0f MiB written", mib_done, mib_total);
  fprintf(stderr, PROG ": %s%lu/%lu games%s, %.1f s\n", final ? "done: " : "",
          p->games_done, p->games_total, bytes, now_seconds() - p->started);
  p->printed = true;
}

static void progress_add(gen_progress *p, uint64_t bytes, unsigned long games)
{
  p->bytes_done += bytes;
  p->games_done += games;
  if (!p->enabled)
    return;
  double t = now_seconds();
  if (t - p->last_print >= 1.0) {
    p->last_print = t;
    progress_print(p, false);
  }
}

static void progress_finish(gen_progress *p)
{
  if (p->enabled && p->printed)
    progress_print(p, true);
}

/* ---- file writing ------------------------------------------------------- */

static void write_all(int fd, const void *data, size_t len, const char *path)
{
  const unsigned char *p = data;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      errno_error("cannot write", path, errno);
    p += n;
    len -= (size_t)n;
  }
}

static int create_file_at(int dir_fd, const char *name, const char *path)
{
  int fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0)
    errno_error("cannot create", path, errno);
  return fd;
}

static void close_file(int fd, const char *path)
{
  if (close(fd) != 0)
    errno_error("cannot write", path, errno);
}

static void write_small_file_at(int dir_fd, const char *name, const char *content,
                                const char *path)
{
  int fd = create_file_at(dir_fd, name, path);
  write_all(fd, content, strlen(content), path);
  close_file(fd, path);
}

/* Writes `size` bytes of stream `key` to fd. */
static void write_stream(int fd, uint64_t key, uint64_t size, const char *path,
                         gen_progress *progress)
{
  for (uint64_t off = 0; off < size;) {
    size_t n = size - off < BUF_SIZE ? (size_t)(size - off) : BUF_SIZE;
    fill_stream(key, off, g_buf, n);
    write_all(fd, g_buf, n, path);
    off += n;
    progress_add(progress, n, 0);
  }
}

static void make_dir_at(int dir_fd, const char *name, const char *path)
{
  if (mkdirat(dir_fd, name, 0755) != 0 && errno != EEXIST)
    errno_error("cannot create directory", path, errno);
}

static int open_dir_at(int dir_fd, const char *name, const char *path)
{
  int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    errno_error("cannot open directory", path, errno);
  return fd;
}

static void make_dirs(const char *path)
{
  ls_diag diag = {{0}};
  if (ls_mkdir_p(path, 0, &diag) != LS_OK)
    io_error("%s", diag.text);
}

/* ---- one game ----------------------------------------------------------- */

typedef struct game_ctx {
  const gen_options *o;
  const char *id;
  int root_fd;
  char root_path[4096];
  gen_progress *progress;
} game_ctx;

static void member_name(const game_ctx *g, unsigned long file_no, char *out, size_t cap)
{
  snprintf(out, cap, "%s/data/file%02lu.bin", g->id, file_no);
}

static void archive_name(const game_ctx *g, unsigned long archive, char *out, size_t cap)
{
  snprintf(out, cap, "%s.part%02lu.eti", g->id, archive + 1);
}

static void write_raw_archive(game_ctx *g, unsigned long archive, uint64_t size)
{
  char name[128], path[4300];
  archive_name(g, archive, name, sizeof name);
  snprintf(path, sizeof path, "%s/%s", g->root_path, name);
  int fd = create_file_at(g->root_fd, name, path);
  if (g->o->sparse) {
    if (ftruncate(fd, (off_t)size) != 0)
      errno_error("cannot set the size of", path, errno);
  } else {
    write_stream(fd, stream_key(g->o->seed, g->id, archive, 0), size, path, g->progress);
  }
  close_file(fd, path);
}

static void archive_failed(struct archive *a, const char *what, const char *path)
  __attribute__((noreturn));
static void archive_failed(struct archive *a, const char *what, const char *path)
{
  int e = archive_errno(a);
  const char *msg = archive_error_string(a);
  io_error("%s %s: %s%s%s", what, path, msg ? msg : "libarchive error",
           e > 0 ? ": " : "", e > 0 ? strerror(e) : "");
}

static void archive_add_dir(struct archive *a, const char *name, const char *path)
{
  struct archive_entry *e = archive_entry_new();
  if (!e)
    io_error("out of memory");
  archive_entry_set_pathname(e, name);
  archive_entry_set_filetype(e, AE_IFDIR);
  archive_entry_set_perm(e, 0755);
  archive_entry_set_size(e, 0);
  archive_entry_set_mtime(e, ARCHIVE_MTIME, 0);
  if (archive_write_header(a, e) != ARCHIVE_OK)
    archive_failed(a, "cannot write", path);
  archive_entry_free(e);
}

static void archive_add_file(struct archive *a, const char *name, uint64_t key, uint64_t size,
                             const char *path, gen_progress *progress)
{
  struct archive_entry *e = archive_entry_new();
  if (!e)
    io_error("out of memory");
  archive_entry_set_pathname(e, name);
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_size(e, (la_int64_t)size);
  archive_entry_set_mtime(e, ARCHIVE_MTIME, 0);
  if (archive_write_header(a, e) != ARCHIVE_OK)
    archive_failed(a, "cannot write", path);
  archive_entry_free(e);
  for (uint64_t off = 0; off < size;) {
    size_t n = size - off < BUF_SIZE ? (size_t)(size - off) : BUF_SIZE;
    fill_stream(key, off, g_buf, n);
    la_ssize_t w = archive_write_data(a, g_buf, n);
    if (w < 0 || (size_t)w != n)
      archive_failed(a, "cannot write", path);
    off += n;
    progress_add(progress, n, 0);
  }
}

static struct archive *new_archive_writer(gen_format format)
{
  struct archive *a = archive_write_new();
  if (!a)
    io_error("out of memory");
  int rc = format == FORMAT_TAR ? archive_write_set_format_pax_restricted(a)
                                : archive_write_set_format_zip(a);
  if (rc == ARCHIVE_OK && format == FORMAT_ZIP)
    rc = archive_write_zip_set_compression_store(a);
  if (rc != ARCHIVE_OK)
    io_error("libarchive: %s", archive_error_string(a));
  return a;
}

static void write_packed_archive(game_ctx *g, unsigned long archive, uint64_t size)
{
  char name[128], path[4300], dir[ID_MAX + 16], member[ID_MAX + 32];
  archive_name(g, archive, name, sizeof name);
  snprintf(path, sizeof path, "%s/%s", g->root_path, name);
  int fd = create_file_at(g->root_fd, name, path);
  struct archive *a = new_archive_writer(g->o->format);
  if (archive_write_open_fd(a, fd) != ARCHIVE_OK)
    archive_failed(a, "cannot write", path);
  snprintf(dir, sizeof dir, "%s/", g->id);
  archive_add_dir(a, dir, path);
  snprintf(dir, sizeof dir, "%s/data/", g->id);
  archive_add_dir(a, dir, path);
  for (unsigned long j = 0; j < FILES_PER_ARCHIVE; j++) {
    unsigned long file_no = archive * FILES_PER_ARCHIVE + j + 1;
    member_name(g, file_no, member, sizeof member);
    archive_add_file(a, member, stream_key(g->o->seed, g->id, archive, j + 1),
                     share_of(size, FILES_PER_ARCHIVE, j), path, g->progress);
  }
  if (archive_write_close(a) != ARCHIVE_OK)
    archive_failed(a, "cannot write", path);
  archive_write_free(a);
  close_file(fd, path);
}

/* DIR/<id>/<id>/data/fileXX.bin: what extracting archive `archive` yields. */
static void write_expected_files(game_ctx *g, unsigned long archive, uint64_t size)
{
  char data_dir[4300], path[4400], member[ID_MAX + 32];
  snprintf(data_dir, sizeof data_dir, "%s/%s/%s/data", g->o->expect_dir, g->id, g->id);
  make_dirs(data_dir);
  for (unsigned long j = 0; j < FILES_PER_ARCHIVE; j++) {
    unsigned long file_no = archive * FILES_PER_ARCHIVE + j + 1;
    member_name(g, file_no, member, sizeof member);
    snprintf(path, sizeof path, "%s/%s/%s", g->o->expect_dir, g->id, member);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
      errno_error("cannot create", path, errno);
    gen_progress quiet = {0};
    write_stream(fd, stream_key(g->o->seed, g->id, archive, j + 1),
                 share_of(size, FILES_PER_ARCHIVE, j), path, &quiet);
    close_file(fd, path);
  }
}

static void write_version_file(game_ctx *g)
{
  char path[4300], content[4200];
  snprintf(path, sizeof path, "%s/version.ini", g->root_path);
  snprintf(content, sizeof content, "%s\n", g->o->version);
  write_small_file_at(g->root_fd, "version.ini", content, path);
}

static void write_installed_marker(game_ctx *g)
{
  char path[4300], content[256];
  snprintf(path, sizeof path, "%s/local", g->root_path);
  make_dir_at(g->root_fd, "local", path);
  int local_fd = open_dir_at(g->root_fd, "local", path);
  snprintf(path, sizeof path, "%s/local/README.txt", g->root_path);
  snprintf(content, sizeof content, "%s: installed by " PROG " (version %.64s)\n", g->id,
           g->o->version);
  write_small_file_at(local_fd, "README.txt", content, path);
  close(local_fd);
}

static void generate_game(const gen_options *o, int game_dir_fd, const char *id,
                          gen_progress *progress)
{
  game_ctx g = {.o = o, .id = id, .progress = progress};
  snprintf(g.root_path, sizeof g.root_path, "%s/%s", o->game_dir, id);
  make_dir_at(game_dir_fd, id, g.root_path);
  g.root_fd = open_dir_at(game_dir_fd, id, g.root_path);
  write_version_file(&g);
  for (unsigned long i = 0; i < o->archives; i++) {
    uint64_t size = share_of(o->size, o->archives, i);
    if (o->format == FORMAT_RAW)
      write_raw_archive(&g, i, size);
    else
      write_packed_archive(&g, i, size);
    if (o->expect_dir)
      write_expected_files(&g, i, size);
  }
  if (o->installed)
    write_installed_marker(&g);
  close(g.root_fd);
  progress_add(progress, 0, 1);
}

static void generate_games(const gen_options *o)
{
  make_dirs(o->game_dir);
  int game_dir_fd = open(o->game_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (game_dir_fd < 0)
    errno_error("cannot open directory", o->game_dir, errno);
  gen_progress progress = {
    .enabled = !o->quiet,
    .games_total = o->games,
    .bytes_total = o->sparse ? 0 : o->size * o->games,
    .started = now_seconds(),
  };
  progress.last_print = progress.started;
  for (unsigned long i = 0; i < o->games; i++) {
    char id[ID_MAX + 32];
    format_id(o, o->first + i, id, sizeof id);
    generate_game(o, game_dir_fd, id, &progress);
  }
  close(game_dir_fd);
  progress_finish(&progress);
}

/* ---- catalog ------------------------------------------------------------ */

static const char *const k_genres[] = {
  "Action", "Racing", "Strategy", "Shooter", "Sports", "Puzzle", "RPG", "Simulation",
};

static json_t *catalog_entry(const gen_options *o, unsigned long number)
{
  char id[ID_MAX + 32], name[64];
  format_id(o, number, id, sizeof id);
  snprintf(name, sizeof name, "Generated Game %04lu", number);
  json_t *game = json_object();
  if (!game || json_object_set_new(game, "id", json_string(id)) != 0 ||
      json_object_set_new(game, "name", json_string(name)) != 0 ||
      json_object_set_new(game, "genre",
                          json_string(k_genres[number % (sizeof k_genres / sizeof *k_genres)])) != 0 ||
      json_object_set_new(game, "max_players", json_integer((json_int_t)(2 + number % 31))) != 0)
    io_error("out of memory");
  return game;
}

/* The existing catalog for --catalog-merge: a missing file is empty. */
static json_t *load_catalog_for_merge(const char *path)
{
  if (access(path, F_OK) != 0 && errno == ENOENT)
    return NULL;
  json_error_t err;
  json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
  if (!root)
    io_error("%s:%d:%d: %s", path, err.line, err.column, err.text);
  json_t *games = json_object_get(root, "games");
  if (!json_is_object(root) || !json_is_array(games))
    io_error("%s: not a catalog: expected an object with a \"games\" array", path);
  size_t i;
  json_t *game;
  json_array_foreach(games, i, game) {
    if (!json_is_string(json_object_get(game, "id")))
      io_error("%s: games[%zu] has no string \"id\"", path, i);
  }
  return root;
}

static json_t *new_catalog(void)
{
  json_t *root = json_object();
  if (!root || json_object_set_new(root, "games", json_array()) != 0)
    io_error("out of memory");
  return root;
}

static void add_generated_games(const gen_options *o, json_t *games, bool merge)
{
  /* A set of the ids already listed, so a merge stays linear. */
  json_t *listed = json_object();
  if (!listed)
    io_error("out of memory");
  size_t i;
  json_t *game;
  if (merge) {
    json_array_foreach(games, i, game) {
      json_object_set_new(listed, json_string_value(json_object_get(game, "id")), json_true());
    }
  }
  for (unsigned long n = 0; n < o->games; n++) {
    json_t *entry = catalog_entry(o, o->first + n);
    const char *id = json_string_value(json_object_get(entry, "id"));
    if (json_object_get(listed, id)) {
      json_decref(entry);
      continue;
    }
    json_object_set_new(listed, id, json_true());
    if (json_array_append_new(games, entry) != 0)
      io_error("out of memory");
  }
  json_decref(listed);
}

/* Writes FILE.tmp, then renames it over FILE, so readers never see half a
 * catalog. */
static void write_json_file(const char *path, json_t *root)
{
  char *text = json_dumps(root, JSON_INDENT(2));
  if (!text)
    io_error("out of memory");
  size_t len = strlen(text);
  char *tmp = xmalloc(strlen(path) + 16);
  sprintf(tmp, "%s.tmp", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    errno_error("cannot create", tmp, errno);
  write_all(fd, text, len, tmp);
  write_all(fd, "\n", 1, tmp);
  close_file(fd, tmp);
  if (rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    errno_error("cannot rename to", path, e);
  }
  free(tmp);
  free(text);
}

/* The catalog to write: the existing one when merging (loaded before any
 * game is generated, so a bad FILE fails early), else a new one. */
static json_t *start_catalog(const gen_options *o, bool *merge)
{
  json_t *root = o->catalog_merge ? load_catalog_for_merge(o->catalog) : NULL;
  *merge = root != NULL;
  return root ? root : new_catalog();
}

static void finish_catalog(const gen_options *o, json_t *root, bool merge)
{
  add_generated_games(o, json_object_get(root, "games"), merge);
  write_json_file(o->catalog, root);
  json_decref(root);
}

int main(int argc, char **argv)
{
  gen_options o;
  parse_args(argc, argv, &o);
  bool merge = false;
  json_t *catalog = o.catalog ? start_catalog(&o, &merge) : NULL;
  generate_games(&o);
  if (catalog)
    finish_catalog(&o, catalog, merge);
  return 0;
}
