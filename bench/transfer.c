/* bench_transfer: owns the loopback transfer benchmark. It generates one game
 * with a single large archive (lanspread-gen, found next to this binary) and
 * times, in the same run and interleaved round by round:
 *   ours                 the download engine of src/download/ as the runtime
 *                        drives it. A forked serving node (ls_node); a forked
 *                        client, a small driver: its own ls_node connects,
 *                        fetches the manifest (GetGame) and calls
 *                        ls_download_start with the server as the one
 *                        source, each fetch one GetGameFileChunk request
 *                        (ls_request_start); the engine hashes every chunk
 *                        on the pool, writes it through the download storage
 *                        and commits. The parent then checks the committed
 *                        archive and version.ini against the source;
 *   ngtcp2_download      ngtcp2's example pair (gtlsserver/gtlsclient, HTTP/3)
 *                        with --download (the body is written);
 *   ngtcp2_receive_only  the same pair with --no-http-dump;
 *   nginx_curl           nginx (HTTPS, one process) and curl -o FILE.
 * It prints wall time, MB/s (10^6 bytes), CPU seconds and peak RSS of the
 * receiving process and of the server, median and best of R runs, where
 * ours' time went (storage begin, chunks, commit), the ratios against the
 * references, and optional variant tables (libuv pool size; GSO/GRO/mmsg
 * off). A missing or failing reference tool is reported as unavailable.
 * Every child is killed and the temporary directory removed at the end, on
 * failure and on SIGINT/SIGTERM/SIGHUP.
 *
 * Dropped with the private download client this file used to carry: the
 * --inflight list (the engine's planner keeps 1 to LS_DOWNLOAD_MAX_INFLIGHT
 * chunks requested by the source's measured rate), --hash loop|pool|split
 * (the engine always hashes and writes on the pool) and --write
 * buffered|direct (the storage writes with pwrite + sync_file_range; it has
 * no O_DIRECT path). They tuned code that did not ship; trying one of
 * them now means changing src/download/, which this benchmark then
 * measures. The options are refused with that reason. */
#include "benchkit.h"
#include "procfs.h"
#include "download/download.h"
#include "net/identity.h"
#include "net/quic.h"
#include "node/fetch.h"
#include "node/node.h"
#include "node/request.h"
#include "proto/proto.h"

#include <lanspread/catalog.h>
#include <lanspread/error.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <nettle/sha2.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROG "bench_transfer"
#define GEN_NAME "lanspread-gen"
#define GAME_ID "game0001"
#define ARCHIVE_NAME GAME_ID ".part01.eti"
#define MAX_REPEAT 100
#define MAX_LIST 8
#define PAYLOAD 1452u
#define RSS_TARGET_MIB 64.0
#define RATIO_TARGET 1.0
#define TICK_MS 250 /* the engine's ticks, as the runtime's (src/peer/downloads.c) */

static const char *const cc_names[] = {"cubic", "reno", "bbr", "bbr2"};

typedef struct bench_options {
  uint64_t size;
  unsigned long repeat;
  const char *keep;
  unsigned workers[MAX_LIST]; /* 0: libuv's default */
  size_t n_workers;
  int cc;
  unsigned flags;
  unsigned timeout_s;
  bool table;
  bool no_reference;
} bench_options;

typedef struct bench_paths {
  char work[PATH_MAX];
  char games[PATH_MAX + 16];
  char game_root[PATH_MAX + 32];
  char source[PATH_MAX + 64];
  char catalog[PATH_MAX + 32];
  char srv_state[PATH_MAX + 32];
  char cli_games[PATH_MAX + 32];
  char cli_state[PATH_MAX + 32];
  char cli_archive[PATH_MAX + 64]; /* what ours commits */
  char cli_version[PATH_MAX + 64];
  char src_version[PATH_MAX + 64];
  char out_dir[PATH_MAX + 16];
  char key[PATH_MAX + 16];
  char cert[PATH_MAX + 16];
  char logs[PATH_MAX + 16];
  char gen[PATH_MAX];
} bench_paths;

/* What ours uses, per process (server and client get the same transport). */
typedef struct variant {
  unsigned workers; /* UV_THREADPOOL_SIZE of the client; 0: libuv's default */
  int cc;
  unsigned flags;
} variant;

/* One measured receiver: R samples. */
typedef struct series {
  const char *name;
  char unavailable[256];
  size_t n;
  double wall[MAX_REPEAT], cpu[MAX_REPEAT], rss[MAX_REPEAT];
  double srv_cpu[MAX_REPEAT], srv_rss[MAX_REPEAT];
  double drops[MAX_REPEAT]; /* UDP receive-buffer drops during the run */
  bool has_phases;             /* ours: storage begin, chunks, commit (s) */
  double phase[3][MAX_REPEAT];
} series;

/* What a transfer must reproduce: the archive, and for ours the committed
 * version.ini. */
typedef struct source_digests {
  uint8_t archive[SHA256_DIGEST_SIZE];
  uint8_t version[SHA256_DIGEST_SIZE];
  uint64_t version_size;
} source_digests;

/* A server process we started. */
typedef struct server {
  pid_t pid;
  unsigned port;
  char peer_id[LS_PEER_ID_LEN + 1];
} server;

/* ---- options ------------------------------------------------------------ */

static void print_help(void)
{
  printf(
    "Usage: " PROG " [--size BYTES] [--repeat R] [--keep DIR] [--workers N[,N...]]\n"
    "         [--cc cubic|reno|bbr|bbr2] [--no-gso] [--no-gro] [--no-mmsg]\n"
    "         [--table] [--no-reference] [--timeout S]\n"
    "Benchmark a game download over loopback: the download engine of\n"
    "src/download/ against ngtcp2's example HTTP/3 pair and nginx + curl.\n"
    "\n"
    "Generates one game with one archive of BYTES with " GEN_NAME " (from this\n"
    "binary's directory) and measures, R rounds, each round in turn:\n"
    "  ours                 forked ls_node server on 127.0.0.1; a forked client\n"
    "                       (an ls_node) fetches GetGame, then downloads the\n"
    "                       game with the engine (ls_download_start, every\n"
    "                       fetch a GetGameFileChunk request): each chunk's\n"
    "                       SHA-256 checked on the pool, written through the\n"
    "                       download storage, committed (fsync, version.ini);\n"
    "                       the committed archive's SHA-256 is checked after\n"
    "  ngtcp2_download      gtlsserver + gtlsclient --download DIR (HTTP/3)\n"
    "  ngtcp2_receive_only  gtlsserver + gtlsclient --no-http-dump\n"
    "  nginx_curl           nginx (HTTPS, sendfile on) + curl -k -o FILE\n"
    "Wall time is the receiving process's life (fork to exit, handshake\n"
    "included); CPU is its user+sys seconds and RSS its peak (getrusage of the\n"
    "child); the server's CPU is the delta over the transfer and its RSS the\n"
    "peak (/proc). Median and best of R. The file system is synced before each\n"
    "transfer. UDP payload: 1452 bytes on both.\n"
    "Targets: ours >= %.2f x ngtcp2_receive_only, ours' RSS < %.0f MiB.\n"
    "\n"
    "Options:\n"
    "  --size BYTES     archive size (default 1G; suffixes K, M, G)\n"
    "  --repeat R       rounds (default 3)\n"
    "  --keep DIR       work in DIR and keep it (the archive is reused when its\n"
    "                   size matches) instead of a temporary directory\n"
    "  --workers LIST   libuv pool threads of the client (UV_THREADPOOL_SIZE;\n"
    "                   default: libuv's, as the runtime); a list such as 1,2,4\n"
    "                   adds a variant table (the first is the headline)\n"
    "  --cc NAME        congestion control of both ends (default cubic)\n"
    "  --no-gso, --no-gro, --no-mmsg\n"
    "                   LS_QUIC_NO_* tuning flags for ours (both ends)\n"
    "  --table          also run ours with full, no-gso, no-gro, no-mmsg\n"
    "  --no-reference   measure ours only\n"
    "  --timeout S      per transfer (default 120)\n"
    "  -h, --help       show this help\n"
    "--inflight, --hash and --write are gone: they tuned a private client; the\n"
    "engine plans requests by rate and hashes and writes on the pool.\n"
    "\n"
    "Exit status: 0 when every transfer of ours ran and verified (missed\n"
    "targets and unavailable references are reported, not failed); 1 on an\n"
    "error; 2 on a usage error.\n",
    RATIO_TARGET, RSS_TARGET_MIB);
}

static uint64_t parse_size(const char *s)
{
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  uint64_t mul = 1;
  if (*end == 'K' || *end == 'k')
    mul = 1u << 10;
  else if (*end == 'M' || *end == 'm')
    mul = 1u << 20;
  else if (*end == 'G' || *end == 'g')
    mul = 1u << 30;
  if (mul != 1)
    end++;
  if (errno || end == s || *end || v == 0 || v > (1ull << 40) / mul)
    bench_usage_error("--size: '%s' is not a size (1 byte to 1T)", s);
  return v * mul;
}

static size_t parse_list(const char *opt, const char *s, unsigned *out, unsigned long max)
{
  char buf[256];
  size_t n = 0;
  snprintf(buf, sizeof buf, "%s", s);
  for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    if (n == MAX_LIST)
      bench_usage_error("%s: at most %d values", opt, MAX_LIST);
    out[n++] = (unsigned)bench_parse_count(opt, tok, 1, max);
  }
  if (!n)
    bench_usage_error("%s: no value", opt);
  return n;
}

static int parse_cc(const char *s)
{
  static const int ids[] = {LS_QUIC_CC_CUBIC, LS_QUIC_CC_RENO, LS_QUIC_CC_BBR, LS_QUIC_CC_BBR2};
  for (int i = 0; i < 4; i++)
    if (!strcmp(s, cc_names[i]))
      return ids[i];
  bench_usage_error("--cc: '%s' is not cubic, reno, bbr or bbr2", s);
}

static const char *cc_name(int cc)
{
  return cc == LS_QUIC_CC_RENO ? "reno" : cc == LS_QUIC_CC_BBR ? "bbr"
       : cc == LS_QUIC_CC_BBR2 ? "bbr2" : "cubic";
}

static void parse_args(int argc, char **argv, bench_options *o)
{
  enum { O_SIZE = 256, O_REPEAT, O_KEEP, O_CC, O_NOGSO, O_NOGRO, O_NOMMSG, O_TABLE, O_NOREF,
         O_TIMEOUT, O_WORKERS, O_DROPPED };
  static const struct option longopts[] = {
    {"size", required_argument, NULL, O_SIZE}, {"repeat", required_argument, NULL, O_REPEAT},
    {"keep", required_argument, NULL, O_KEEP}, {"cc", required_argument, NULL, O_CC},
    {"no-gso", no_argument, NULL, O_NOGSO}, {"no-gro", no_argument, NULL, O_NOGRO},
    {"no-mmsg", no_argument, NULL, O_NOMMSG}, {"table", no_argument, NULL, O_TABLE},
    {"no-reference", no_argument, NULL, O_NOREF},
    {"workers", required_argument, NULL, O_WORKERS},
    {"timeout", required_argument, NULL, O_TIMEOUT}, {"help", no_argument, NULL, 'h'},
    {"inflight", required_argument, NULL, O_DROPPED}, {"hash", required_argument, NULL, O_DROPPED},
    {"write", required_argument, NULL, O_DROPPED}, {NULL, 0, NULL, 0}};
  *o = (bench_options){.size = 1ull << 30, .repeat = 3, .n_workers = 1, .timeout_s = 120};
  int c, index = 0;
  while ((c = getopt_long(argc, argv, "h", longopts, &index)) != -1) {
    switch (c) {
    case O_SIZE: o->size = parse_size(optarg); break;
    case O_REPEAT: o->repeat = bench_parse_count("--repeat", optarg, 1, MAX_REPEAT); break;
    case O_KEEP: o->keep = optarg; break;
    case O_WORKERS: o->n_workers = parse_list("--workers", optarg, o->workers, 64); break;
    case O_CC: o->cc = parse_cc(optarg); break;
    case O_NOGSO: o->flags |= LS_QUIC_NO_GSO; break;
    case O_NOGRO: o->flags |= LS_QUIC_NO_GRO; break;
    case O_NOMMSG: o->flags |= LS_QUIC_NO_MMSG; break;
    case O_TABLE: o->table = true; break;
    case O_NOREF: o->no_reference = true; break;
    case O_TIMEOUT: o->timeout_s = (unsigned)bench_parse_count("--timeout", optarg, 1, 3600); break;
    case O_DROPPED:
      bench_usage_error("--%s is gone: the download engine plans its requests and hashes and "
                        "writes on the pool (see the top of bench/transfer.c)",
                        longopts[index].name);
    case 'h': print_help(); exit(0);
    default: bench_usage_error("unknown option");
    }
  }
  if (optind < argc)
    bench_usage_error("unexpected argument '%s'", argv[optind]);
}

/* ---- small helpers ------------------------------------------------------ */

static void sleep_ms(unsigned ms)
{
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

static void make_dir(const char *path)
{
  if (mkdir(path, 0755) != 0 && errno != EEXIST)
    bench_die("cannot create %s: %s", path, strerror(errno));
}

static long long file_size(const char *path)
{
  struct stat st;
  return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* Is NAME an executable in PATH? */
static bool in_path(const char *name)
{
  const char *path = getenv("PATH");
  char buf[4096], cand[PATH_MAX];
  snprintf(buf, sizeof buf, "%s", path ? path : "/usr/bin:/bin");
  if (!strstr(buf, "/usr/sbin")) /* nginx and gtlsserver live there */
    strncat(buf, ":/usr/sbin:/sbin", sizeof buf - strlen(buf) - 1);
  for (char *save, *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
    snprintf(cand, sizeof cand, "%s/%s", d, name);
    if (access(cand, X_OK) == 0)
      return true;
  }
  return false;
}

/* SHA-256 of a whole file, read in 1 MiB blocks. */
static bool hash_file(const char *path, uint8_t out[SHA256_DIGEST_SIZE])
{
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return false;
  uint8_t *buf = bench_calloc(1, 1u << 20);
  struct sha256_ctx ctx;
  sha256_init(&ctx);
  ssize_t n;
  while ((n = read(fd, buf, 1u << 20)) > 0)
    sha256_update(&ctx, (size_t)n, buf);
  sha256_digest(&ctx, SHA256_DIGEST_SIZE, out);
  free(buf);
  close(fd);
  return n == 0;
}

/* ---- processes ---------------------------------------------------------- */

/* A finished receiving process. */
typedef struct proc_result {
  double wall_s, cpu_s, rss_mib;
  int status;
} proc_result;

/* Starts argv with stdin from /dev/null and stdout + stderr to log; killed
 * by SIGALRM after alarm_s (0: never). */
static pid_t spawn(char *const argv[], const char *log, unsigned alarm_s)
{
  pid_t pid = bench_fork();
  if (pid == 0) {
    int in = open("/dev/null", O_RDONLY);
    int out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
      _exit(126);
    if (alarm_s)
      alarm(alarm_s);
    execvp(argv[0], argv);
    dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  return pid;
}

static proc_result reap(pid_t pid, double start)
{
  proc_result r = {0};
  struct rusage ru;
  while (wait4(pid, &r.status, 0, &ru) < 0) {
    if (errno != EINTR)
      bench_die("wait4: %s", strerror(errno));
  }
  bench_forget_child(pid);
  r.wall_s = bench_now_s() - start;
  r.cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
            (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
  r.rss_mib = (double)ru.ru_maxrss / 1024.0;
  return r;
}

static void describe_status(int status, char *out, size_t cap)
{
  if (WIFEXITED(status))
    snprintf(out, cap, "exit status %d", WEXITSTATUS(status));
  else
    snprintf(out, cap, "killed by signal %d%s", WTERMSIG(status),
             WTERMSIG(status) == SIGALRM ? " (timeout)" : "");
}

static void stop_process(pid_t pid)
{
  if (pid <= 0)
    return;
  kill(pid, SIGTERM);
  for (int i = 0; i < 100; i++) {
    if (waitpid(pid, NULL, WNOHANG) == pid) {
      bench_forget_child(pid);
      return;
    }
    sleep_ms(20);
  }
  kill(pid, SIGKILL);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
  }
  bench_forget_child(pid);
}

/* CPU seconds (user + sys) of a live process, from /proc. */
static double proc_cpu_s(pid_t pid)
{
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *p = strrchr(buf, ')');
  unsigned long long ut = 0, st = 0;
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
    return 0;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Peak RSS (VmHWM) of a live process in MiB. */
static double proc_hwm_mib(pid_t pid)
{
  long kib = t_proc_number((int)pid, "status", "VmHWM:");
  return kib > 0 ? (double)kib / 1024.0 : 0;
}

/* A free port on 127.0.0.1 for the given socket type (closed again). */
static unsigned free_port(int type)
{
  int fd = socket(AF_INET, type, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) != 0)
    bench_die("cannot find a free port: %s", strerror(errno));
  close(fd);
  return ntohs(a.sin_port);
}

/* Is a UDP socket bound to 127.0.0.1:port (or any address)? */
static bool udp_port_bound(unsigned port)
{
  FILE *f = fopen("/proc/net/udp", "r");
  char line[512];
  bool found = false;
  if (!f)
    return false;
  while (!found && fgets(line, sizeof line, f)) {
    unsigned addr, p;
    if (sscanf(line, " %*d: %x:%x", &addr, &p) == 2 && p == port)
      found = true;
  }
  fclose(f);
  return found;
}

static bool tcp_port_accepts(unsigned port)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
  if (fd >= 0)
    close(fd);
  return ok;
}

/* Waits up to 5 s for a server to listen; false when it died or never did. */
static bool wait_listening(pid_t pid, unsigned port, bool udp)
{
  for (int i = 0; i < 250; i++) {
    if (waitpid(pid, NULL, WNOHANG) == pid) {
      bench_forget_child(pid);
      return false;
    }
    if (udp ? udp_port_bound(port) : tcp_port_accepts(port))
      return true;
    sleep_ms(20);
  }
  return false;
}

/* The last line of a log, for an "unavailable" reason. */
static void log_tail(const char *log, char *out, size_t cap)
{
  FILE *f = fopen(log, "r");
  char line[512];
  out[0] = '\0';
  if (!f)
    return;
  while (fgets(line, sizeof line, f))
    if (line[0] != '\n') {
      size_t n = strcspn(line, "\n");
      n = n < cap - 1 ? n : cap - 1; /* keep the start of a long line */
      memcpy(out, line, n);
      out[n] = '\0';
    }
  fclose(f);
}

/* ---- ours: the serving node (forked child) ------------------------------ */

static ls_quic_tuning tuning_of(const variant *v)
{
  /* Endpoint defaults, except what the variant sets; the payload is the
   * default (1452) spelled out so that the printout is what runs. */
  return (ls_quic_tuning){.max_udp_payload = PAYLOAD, .cc_algo = v->cc, .flags = v->flags};
}

/* Catalog, identity and monitor of one node. */
typedef struct node_parts {
  ls_catalog *catalog;
  ls_identity *identity;
  ls_monitor *monitor;
  ls_node *node;
} node_parts;

static void start_node(uv_loop_t *loop, const char *catalog, const char *games,
                       const char *state, const variant *v, node_parts *np,
                       void (*on_ready)(ls_node *, ls_quic_conn *, void *),
                       void (*on_closed)(ls_node *, ls_quic_conn *, int, const char *, void *),
                       void *user)
{
  ls_diag diag;
  if (ls_catalog_load_file(catalog, &np->catalog, &diag) != LS_OK)
    bench_child_die("catalog: %s", diag.text);
  if (ls_identity_load_or_create(state, &np->identity, &diag) != LS_OK)
    bench_child_die("identity: %s", diag.text);
  ls_monitor_config mc = {.loop = loop, .game_dir = games, .state_dir = state,
                          .catalog = np->catalog};
  if (ls_monitor_start(&mc, &np->monitor, &diag) != LS_OK)
    bench_child_die("monitor: %s", diag.text);
  struct sockaddr_in addr = {.sin_family = AF_INET};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ls_node_config nc = {
    .loop = loop, .bind_addr = (struct sockaddr *)&addr, .identity = np->identity,
    .catalog = np->catalog, .monitor = np->monitor, .game_dir = games, .name = PROG,
    .tuning = tuning_of(v), .on_conn_ready = on_ready, .on_conn_closed = on_closed,
    .user = user,
  };
  if (ls_node_new(&nc, &np->node, &diag) != LS_OK)
    bench_child_die("node: %s", diag.text);
}

static void server_main(const bench_paths *p, const variant *v, int report_fd)
{
  uv_loop_t loop;
  uv_loop_init(&loop);
  node_parts np = {0};
  start_node(&loop, p->catalog, p->games, p->srv_state, v, &np, NULL, NULL, NULL);
  dprintf(report_fd, "%u %s\n", ls_node_port(np.node), ls_identity_peer_id(np.identity));
  close(report_fd);
  uv_run(&loop, UV_RUN_DEFAULT); /* until SIGTERM */
  _exit(0);
}

static server start_our_server(const bench_paths *p, const variant *v)
{
  int fds[2];
  if (pipe(fds) != 0)
    bench_die("pipe: %s", strerror(errno));
  server s = {0};
  s.pid = bench_fork();
  if (s.pid == 0) {
    close(fds[0]);
    server_main(p, v, fds[1]);
  }
  close(fds[1]);
  struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
  char line[128] = "";
  ssize_t n = poll(&pfd, 1, 60000) == 1 ? read(fds[0], line, sizeof line - 1) : -1;
  close(fds[0]);
  if (n <= 0 || sscanf(line, "%u %64s", &s.port, s.peer_id) != 2)
    bench_die("our server did not start (see the message above)");
  return s;
}

/* ---- ours: the receiving client (forked child) -------------------------- */

/* The driver around the engine: a node connected to the server, GetGame for
 * the manifest, then one download with the server as its one source, the
 * game busy in the client's monitor meanwhile, as in the runtime. */
typedef struct client {
  uv_loop_t loop;
  node_parts np;
  const bench_paths *p;
  const server *srv;
  bool manifest_only, finished;
  ls_quic_conn *conn;
  ls_msg manifest;
  ls_download *engine;
  uv_timer_t tick;
  double t_start, t_begin, t_complete; /* for the phases reported */
  int report_fd;
} client;

/* One fetch: a GetGameFileChunk request on the one connection, through
 * the runtime's own glue (node/fetch.h). */
static int start_fetch(void *user, ls_fetch *fetch, const ls_fetch_request *fr, void **handle,
                       ls_diag *diag)
{
  client *cl = user;
  return ls_chunk_fetch_start(cl->conn, GAME_ID, fetch, fr, handle, diag);
}

static void stop_fetch(void *user, void *handle)
{
  (void)user;
  ls_chunk_fetch_stop(handle);
}

static void on_node_closed(void *user)
{
  client *cl = user;
  ls_monitor_close(cl->np.monitor, NULL, NULL); /* the loop ends once it is closed */
}

static void client_finish(client *cl)
{
  cl->finished = true;
  uv_close((uv_handle_t *)&cl->tick, NULL);
  ls_node_close(cl->np.node, on_node_closed, cl);
}

static void on_tick(uv_timer_t *t)
{
  client *cl = t->data;
  ls_download_tick(cl->engine); /* measures the rate the planner sizes requests by */
}

static void on_begin(void *user, int err, const char *diag)
{
  client *cl = user;
  if (err != LS_OK)
    bench_child_die("client: the download did not begin: %s (%s)", ls_strerror(err), diag);
  cl->t_begin = bench_now_s();
  uv_timer_start(&cl->tick, on_tick, TICK_MS, TICK_MS);
}

static void on_progress(void *user, const ls_download_progress *pr)
{
  client *cl = user;
  if (pr->bytes == pr->total_bytes && !cl->t_complete)
    cl->t_complete = bench_now_s();
}

static void on_end(void *user, int err, const char *diag)
{
  client *cl = user;
  cl->engine = NULL;
  if (err != LS_OK)
    bench_child_die("client: the download failed: %s (%s)", ls_strerror(err), diag);
  double now = bench_now_s();
  dprintf(cl->report_fd, "%.6f %.6f %.6f\n", cl->t_begin - cl->t_start,
          cl->t_complete - cl->t_begin, now - cl->t_complete);
  client_finish(cl);
}

static void log_line(void *user, const char *line)
{
  (void)user;
  fprintf(stderr, PROG ": client: %s\n", line);
}

static const ls_download_ops engine_ops = {
  .start_fetch = start_fetch, .stop_fetch = stop_fetch, .on_begin = on_begin,
  .on_progress = on_progress, .on_end = on_end, .log = log_line,
};

static void start_download(client *cl)
{
  const char *sources[] = {cl->srv->peer_id};
  ls_download_config c = {
    .loop = &cl->loop, .game_dir = cl->p->cli_games, .id = GAME_ID, .manifest = &cl->manifest,
    .sources = sources, .source_count = 1, .ops = &engine_ops, .user = cl,
  };
  ls_diag diag;
  ls_monitor_begin_operation(cl->np.monitor, GAME_ID);
  cl->t_start = bench_now_s();
  if (ls_download_start(&c, &cl->engine, &diag) != LS_OK)
    bench_child_die("client: %s", diag.text);
}

static void on_manifest(ls_request *req, const ls_msg *msg, void *user)
{
  (void)req;
  client *cl = user;
  if (msg->type != LS_MSG_GAME_FILES)
    bench_child_die("client: GetGame answered %s", ls_msg_type_name(msg->type));
  if (ls_msg_copy(&cl->manifest, msg) != LS_OK)
    bench_child_die("client: out of memory");
}

static void on_manifest_done(ls_request *req, int err, const char *diag, void *user)
{
  (void)req;
  client *cl = user;
  if (err != LS_OK)
    bench_child_die("client: GetGame: %s (%s)", ls_strerror(err), diag);
  if (cl->manifest_only)
    client_finish(cl);
  else
    start_download(cl);
}

static void ask_manifest(client *cl)
{
  static const ls_request_callbacks cb = {on_manifest, NULL, on_manifest_done};
  ls_msg m = {.type = LS_MSG_GET_GAME};
  m.game.id = GAME_ID;
  ls_request *req;
  ls_diag diag;
  if (ls_request_start(cl->conn, &m, &cb, cl, &req, &diag) != LS_OK)
    bench_child_die("client: GetGame: %s", diag.text);
}

static void on_hello_ack(ls_request *req, const ls_msg *msg, void *user)
{
  (void)req;
  (void)user;
  if (msg->type != LS_MSG_HELLO_ACK)
    bench_child_die("client: Hello answered %s", ls_msg_type_name(msg->type));
}

static void on_hello_done(ls_request *req, int err, const char *diag, void *user)
{
  (void)req;
  if (err != LS_OK)
    bench_child_die("client: Hello: %s (%s)", ls_strerror(err), diag);
  ask_manifest(user);
}

/* A server answers nothing before Hello. */
static void on_client_ready(ls_node *n, ls_quic_conn *conn, void *user)
{
  static const ls_request_callbacks cb = {on_hello_ack, NULL, on_hello_done};
  (void)n;
  client *cl = user;
  cl->conn = conn;
  ls_msg m = {.type = LS_MSG_HELLO};
  m.hello.protocol_version = LS_PROTO_VERSION;
  snprintf(m.hello.peer_id, sizeof m.hello.peer_id, "%s", ls_identity_peer_id(cl->np.identity));
  m.hello.name = "bench";
  ls_request *req;
  ls_diag diag;
  if (ls_request_start(conn, &m, &cb, cl, &req, &diag) != LS_OK)
    bench_child_die("client: Hello: %s", diag.text);
}

static void on_client_closed(ls_node *n, ls_quic_conn *conn, int err, const char *diag,
                             void *user)
{
  (void)n;
  (void)conn;
  client *cl = user;
  if (!cl->finished)
    bench_child_die("client: connection closed: %s (%s)", ls_strerror(err), diag);
}

static void client_main(const bench_paths *p, const variant *v, const server *srv,
                        bool manifest_only, int report_fd)
{
  client *cl = bench_calloc(1, sizeof *cl);
  *cl = (client){.p = p, .srv = srv, .manifest_only = manifest_only, .report_fd = report_fd};
  if (v->workers) {
    char workers[16];
    snprintf(workers, sizeof workers, "%u", v->workers);
    setenv("UV_THREADPOOL_SIZE", workers, 1); /* before the pool starts */
  }
  uv_loop_init(&cl->loop);
  uv_timer_init(&cl->loop, &cl->tick);
  cl->tick.data = cl;
  start_node(&cl->loop, p->catalog, p->cli_games, p->cli_state, v, &cl->np, on_client_ready,
             on_client_closed, cl);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)srv->port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ls_diag diag;
  if (ls_quic_connect(ls_node_endpoint(cl->np.node), (struct sockaddr *)&addr, srv->peer_id,
                      &cl->conn, &diag) != LS_OK)
    bench_child_die("client: connect: %s", diag.text);
  uv_run(&cl->loop, UV_RUN_DEFAULT);
  if (!cl->finished)
    bench_child_die("client: the loop ended early");
  uv_loop_close(&cl->loop);
  ls_identity_free(cl->np.identity);
  ls_catalog_free(cl->np.catalog);
  ls_msg_clear(&cl->manifest);
  free(cl);
  exit(0); /* the leak checker of an ASan build runs here */
}

/* Runs one client process; returns its figures (status != 0: failed) and,
 * unless manifest_only, the download's phases in seconds. */
static proc_result run_our_client(const bench_paths *p, const variant *v, const server *srv,
                                  bool manifest_only, unsigned timeout_s, double phase[3])
{
  int fds[2];
  if (pipe(fds) != 0)
    bench_die("pipe: %s", strerror(errno));
  double start = bench_now_s();
  pid_t pid = bench_fork();
  if (pid == 0) {
    close(fds[0]);
    alarm(timeout_s);
    client_main(p, v, srv, manifest_only, fds[1]);
  }
  close(fds[1]);
  proc_result r = reap(pid, start);
  char line[128] = "";
  ssize_t n = read(fds[0], line, sizeof line - 1);
  close(fds[0]);
  if (phase && r.status == 0 &&
      (n <= 0 || sscanf(line, "%lf %lf %lf", &phase[0], &phase[1], &phase[2]) != 3))
    bench_die("our client did not report its phases");
  return r;
}

/* ---- measurements ------------------------------------------------------- */

/* System-wide UDP RcvbufErrors (/proc/net/snmp): datagrams dropped because
 * a receive buffer was full. Only loopback traffic of ours runs meanwhile,
 * so the delta over a run is that run's losses (other users add noise). */
static double udp_rcvbuf_errors(void)
{
  FILE *f = fopen("/proc/net/snmp", "r");
  char head[512], vals[512];
  double result = 0;
  if (!f)
    return 0;
  while (fgets(head, sizeof head, f) && fgets(vals, sizeof vals, f)) {
    if (strncmp(head, "Udp:", 4) || strncmp(vals, "Udp:", 4))
      continue;
    char *hs, *vs, *h = strtok_r(head + 4, " \n", &hs), *v = strtok_r(vals + 4, " \n", &vs);
    for (; h && v; h = strtok_r(NULL, " \n", &hs), v = strtok_r(NULL, " \n", &vs))
      if (!strcmp(h, "RcvbufErrors"))
        result = strtod(v, NULL);
    break;
  }
  fclose(f);
  return result;
}

static double g_drops0; /* RcvbufErrors at the start of the current run */

static void series_add(series *s, const proc_result *r, double srv_cpu, double srv_rss)
{
  s->drops[s->n] = udp_rcvbuf_errors() - g_drops0;
  s->wall[s->n] = r->wall_s;
  s->cpu[s->n] = r->cpu_s;
  s->rss[s->n] = r->rss_mib;
  s->srv_cpu[s->n] = srv_cpu;
  s->srv_rss[s->n] = srv_rss;
  s->n++;
}

static void mark_unavailable(series *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mark_unavailable(series *s, const char *fmt, ...)
{
  if (s->unavailable[0])
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->unavailable, sizeof s->unavailable, fmt, ap);
  va_end(ap);
}

/* Checks the received file: its size and whole-file SHA-256. */
static bool output_matches(const char *path, uint64_t size, const uint8_t *want, char *why,
                           size_t cap)
{
  uint8_t got[SHA256_DIGEST_SIZE];
  long long have = file_size(path);
  if (have != (long long)size) {
    snprintf(why, cap, "%s has %lld bytes, not %llu", path, have, (unsigned long long)size);
    return false;
  }
  if (!hash_file(path, got) || memcmp(got, want, sizeof got)) {
    snprintf(why, cap, "%s: SHA-256 differs from the source", path);
    return false;
  }
  return true;
}

static void measure_ours(const bench_options *o, const bench_paths *p, const variant *v,
                         const server *srv, const source_digests *want, series *s)
{
  char root[PATH_MAX + 48], why[PATH_MAX + 128];
  bench_join_path(root, sizeof root, p->cli_games, GAME_ID);
  bench_remove_tree(root); /* a fresh download every time */
  sync();                  /* no earlier transfer's writeback during this one */
  double cpu0 = proc_cpu_s(srv->pid), phase[3];
  g_drops0 = udp_rcvbuf_errors();
  proc_result r = run_our_client(p, v, srv, false, o->timeout_s, phase);
  double srv_cpu = proc_cpu_s(srv->pid) - cpu0;
  if (r.status != 0) {
    describe_status(r.status, why, sizeof why);
    bench_die("our transfer failed: client %s (see the message above)", why);
  }
  if (!output_matches(p->cli_archive, o->size, want->archive, why, sizeof why) ||
      !output_matches(p->cli_version, want->version_size, want->version, why, sizeof why))
    bench_die("our transfer is wrong: %s", why);
  bench_remove_tree(root);
  s->has_phases = true;
  for (int i = 0; i < 3; i++)
    s->phase[i][s->n] = phase[i];
  series_add(s, &r, srv_cpu, proc_hwm_mib(srv->pid));
}

/* One reference client run against a server process; the check is done
 * when `check` is set (a downloaded file). */
static void measure_reference(const bench_options *o, const bench_paths *p, char *const argv[],
                              pid_t srv_pid, const char *check, const uint8_t *want,
                              series *s)
{
  char log[PATH_MAX + 64], why[PATH_MAX + 128];
  snprintf(log, sizeof log, "%s/%s.log", p->logs, s->name);
  if (check)
    unlink(check);
  sync(); /* as for ours */
  double cpu0 = proc_cpu_s(srv_pid);
  g_drops0 = udp_rcvbuf_errors();
  double start = bench_now_s();
  proc_result r = reap(spawn(argv, log, o->timeout_s), start);
  double srv_cpu = proc_cpu_s(srv_pid) - cpu0;
  if (r.status != 0) {
    describe_status(r.status, why, sizeof why);
    char tail[200];
    log_tail(log, tail, sizeof tail);
    mark_unavailable(s, "%s %s%s%s", argv[0], why, tail[0] ? ": " : "", tail);
    return;
  }
  if (check && !output_matches(check, o->size, want, why, sizeof why)) {
    mark_unavailable(s, "%s", why);
    return;
  }
  if (check)
    unlink(check);
  series_add(s, &r, srv_cpu, proc_hwm_mib(srv_pid));
}

/* ---- the references' servers -------------------------------------------- */

static bool make_certificate(const bench_paths *p, char *why, size_t cap)
{
  char log[PATH_MAX + 32], subj_alt[] = "subjectAltName=IP:127.0.0.1";
  snprintf(log, sizeof log, "%s/cert.log", p->logs);
  if (in_path("openssl")) {
    char *const argv[] = {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                          "ec_paramgen_curve:P-256", "-nodes", "-keyout", (char *)p->key,
                          "-out", (char *)p->cert, "-days", "2", "-subj", "/CN=localhost",
                          "-addext", subj_alt, NULL};
    if (reap(spawn(argv, log, 30), bench_now_s()).status == 0)
      return true;
  }
  if (in_path("certtool")) {
    char tmpl[PATH_MAX + 32];
    snprintf(tmpl, sizeof tmpl, "%s/cert.tmpl", p->work);
    FILE *f = fopen(tmpl, "w");
    if (f) {
      fputs("cn = localhost\nip_address = 127.0.0.1\nexpiration_days = 2\n"
            "tls_www_server\nsigning_key\n", f);
      fclose(f);
    }
    char *const gen[] = {"certtool", "--generate-privkey", "--key-type=ecdsa", "--outfile",
                         (char *)p->key, NULL};
    char *const sign[] = {"certtool", "--generate-self-signed", "--load-privkey",
                          (char *)p->key, "--template", tmpl, "--outfile", (char *)p->cert,
                          NULL};
    if (reap(spawn(gen, log, 30), bench_now_s()).status == 0 &&
        reap(spawn(sign, log, 30), bench_now_s()).status == 0)
      return true;
  }
  snprintf(why, cap, "cannot make a certificate (needs openssl or certtool from gnutls-bin)");
  return false;
}

static pid_t start_gtlsserver(const bench_paths *p, unsigned port, char *why, size_t cap)
{
  if (!in_path("gtlsserver") || !in_path("gtlsclient")) {
    snprintf(why, cap, "gtlsserver/gtlsclient not installed (run scripts/setup-bench)");
    return 0;
  }
  char ports[16], log[PATH_MAX + 32], payload[64];
  snprintf(ports, sizeof ports, "%u", port);
  snprintf(log, sizeof log, "%s/gtlsserver.log", p->logs);
  snprintf(payload, sizeof payload, "--max-udp-payload-size=%u", PAYLOAD);
  char *const argv[] = {"gtlsserver", "-q", "-d", (char *)p->game_root, payload, "127.0.0.1",
                        ports, (char *)p->key, (char *)p->cert, NULL};
  pid_t pid = spawn(argv, log, 0);
  if (!wait_listening(pid, port, true)) {
    char tail[200];
    log_tail(log, tail, sizeof tail);
    snprintf(why, cap, "gtlsserver did not start: %s", tail);
    stop_process(pid);
    return 0;
  }
  return pid;
}

static void write_nginx_conf(const bench_paths *p, const char *conf, unsigned port)
{
  FILE *f = fopen(conf, "w");
  if (!f)
    bench_die("cannot write %s: %s", conf, strerror(errno));
  fprintf(f,
          "daemon off;\nmaster_process off;\nworker_processes 1;\n"
          "pid %s/nginx.pid;\nerror_log %s/nginx-error.log;\n"
          "events { worker_connections 64; }\n"
          "http {\n  access_log off;\n  sendfile on;\n  default_type application/octet-stream;\n"
          "  client_body_temp_path %s/ngx-body;\n  proxy_temp_path %s/ngx-proxy;\n"
          "  fastcgi_temp_path %s/ngx-fcgi;\n  uwsgi_temp_path %s/ngx-uwsgi;\n"
          "  scgi_temp_path %s/ngx-scgi;\n"
          "  server {\n    listen 127.0.0.1:%u ssl;\n    ssl_certificate %s;\n"
          "    ssl_certificate_key %s;\n    ssl_protocols TLSv1.3;\n    root %s;\n  }\n}\n",
          p->logs, p->logs, p->logs, p->logs, p->logs, p->logs, p->logs, port, p->cert, p->key,
          p->game_root);
  fclose(f);
}

static pid_t start_nginx(const bench_paths *p, unsigned port, char *why, size_t cap)
{
  if (!in_path("nginx") || !in_path("curl")) {
    snprintf(why, cap, "nginx or curl not installed (run scripts/setup-bench)");
    return 0;
  }
  char conf[PATH_MAX + 32], log[PATH_MAX + 32], prefix[PATH_MAX + 32];
  snprintf(conf, sizeof conf, "%s/nginx.conf", p->logs);
  snprintf(log, sizeof log, "%s/nginx.log", p->logs);
  snprintf(prefix, sizeof prefix, "%s/", p->logs);
  write_nginx_conf(p, conf, port);
  char *const argv[] = {"nginx", "-p", prefix, "-e", log, "-c", conf, NULL};
  pid_t pid = spawn(argv, log, 0);
  if (!wait_listening(pid, port, false)) {
    char tail[200];
    log_tail(log, tail, sizeof tail);
    snprintf(why, cap, "nginx did not start: %s", tail);
    stop_process(pid);
    return 0;
  }
  return pid;
}

/* ---- the run ------------------------------------------------------------ */

/* One configuration of ours, measured against its own server. */
typedef struct ours_case {
  char name[64];
  variant v;
  server *srv;
  series s;
} ours_case;

/* The references and the state they need. */
typedef struct refs {
  pid_t gtls, nginx;
  unsigned gtls_port, nginx_port;
  char url_gtls[128], url_nginx[128], dl_file[PATH_MAX + 64];
  series download, receive, curl;
} refs;

static void start_references(const bench_paths *p, refs *r)
{
  char why[256] = "";
  r->download.name = "ngtcp2_download";
  r->receive.name = "ngtcp2_receive_only";
  r->curl.name = "nginx_curl";
  if (!make_certificate(p, why, sizeof why)) {
    mark_unavailable(&r->download, "%s", why);
    mark_unavailable(&r->receive, "%s", why);
    mark_unavailable(&r->curl, "%s", why);
    return;
  }
  r->gtls_port = free_port(SOCK_DGRAM);
  r->gtls = start_gtlsserver(p, r->gtls_port, why, sizeof why);
  if (!r->gtls) {
    mark_unavailable(&r->download, "%s", why);
    mark_unavailable(&r->receive, "%s", why);
  }
  r->nginx_port = free_port(SOCK_STREAM);
  r->nginx = start_nginx(p, r->nginx_port, why, sizeof why);
  if (!r->nginx)
    mark_unavailable(&r->curl, "%s", why);
  snprintf(r->url_gtls, sizeof r->url_gtls, "https://127.0.0.1:%u/" ARCHIVE_NAME, r->gtls_port);
  snprintf(r->url_nginx, sizeof r->url_nginx, "https://127.0.0.1:%u/" ARCHIVE_NAME,
           r->nginx_port);
  bench_join_path(r->dl_file, sizeof r->dl_file, p->out_dir, ARCHIVE_NAME);
}

static void measure_references(const bench_options *o, const bench_paths *p, refs *r,
                               const uint8_t *want)
{
  char port[16], dl[PATH_MAX + 32], payload[64];
  snprintf(port, sizeof port, "%u", r->gtls_port);
  snprintf(dl, sizeof dl, "--download=%s", p->out_dir);
  snprintf(payload, sizeof payload, "--max-udp-payload-size=%u", PAYLOAD);
  if (!r->download.unavailable[0]) {
    char *const argv[] = {"gtlsclient", "-q", "--exit-on-all-streams-close", dl, payload,
                          "127.0.0.1", port, r->url_gtls, NULL};
    measure_reference(o, p, argv, r->gtls, r->dl_file, want, &r->download);
  }
  if (!r->receive.unavailable[0]) {
    char *const argv[] = {"gtlsclient", "-q", "--exit-on-all-streams-close", "--no-http-dump",
                          payload, "127.0.0.1", port, r->url_gtls, NULL};
    measure_reference(o, p, argv, r->gtls, NULL, want, &r->receive);
  }
  if (!r->curl.unavailable[0]) {
    char *const argv[] = {"curl", "-k", "-s", "-S", "-f", "-o", r->dl_file, r->url_nginx, NULL};
    measure_reference(o, p, argv, r->nginx, r->dl_file, want, &r->curl);
  }
}

static double mb_s(uint64_t size, double wall)
{
  return wall > 0 ? (double)size / 1e6 / wall : 0;
}

static void print_series(const series *s, uint64_t size)
{
  if (s->unavailable[0] || s->n == 0) {
    printf("transfer.%s unavailable: %s\n", s->name, s->unavailable[0] ? s->unavailable : "not run");
    return;
  }
  double wall = bench_median(s->wall, s->n), best = bench_min(s->wall, s->n);
  printf("transfer.%s wall_s=%.2f MB_s=%.0f cpu_s=%.2f rss_MiB=%.1f server_cpu_s=%.2f "
         "server_rss_MiB=%.1f udp_drops=%.0f best_wall_s=%.2f best_MB_s=%.0f best_cpu_s=%.2f "
         "runs=%zu\n",
         s->name, wall, mb_s(size, wall), bench_median(s->cpu, s->n), bench_median(s->rss, s->n),
         bench_median(s->srv_cpu, s->n), bench_median(s->srv_rss, s->n), bench_median(s->drops, s->n),
         best, mb_s(size, best), bench_min(s->cpu, s->n), s->n);
  if (s->has_phases)
    printf("transfer.%s.phases begin_s=%.2f chunks_s=%.2f chunks_MB_s=%.0f commit_s=%.2f "
           "(storage begin; first chunk request to the last chunk written; commit)\n",
           s->name, bench_median(s->phase[0], s->n), bench_median(s->phase[1], s->n),
           mb_s(size, bench_median(s->phase[1], s->n)), bench_median(s->phase[2], s->n));
}

static void print_ratio(const series *ours, const series *ref, const char *target)
{
  if (ref->unavailable[0] || !ref->n || !ours->n) {
    printf("ratio ours/%s = unavailable\n", ref->name);
    return;
  }
  double med = bench_median(ref->wall, ref->n) / bench_median(ours->wall, ours->n);
  double best = bench_min(ref->wall, ref->n) / bench_min(ours->wall, ours->n);
  printf("ratio ours/%s = %.2f (best %.2f)%s\n", ref->name, med, best, target);
}

static void print_verdicts(const series *ours, const refs *r)
{
  print_ratio(ours, &r->receive, " (target >= 1.00)");
  print_ratio(ours, &r->download, "");
  print_ratio(ours, &r->curl, "");
  double rss = 0;
  for (size_t i = 0; i < ours->n; i++)
    rss = ours->rss[i] > rss ? ours->rss[i] : rss;
  printf("rss ours = %.1f MiB (max of %zu runs; target < %.0f)\n", rss, ours->n,
         RSS_TARGET_MIB);
}

static char *flags_name(unsigned flags, char *out, size_t cap)
{
  snprintf(out, cap, "%s%s%s%s", flags ? "" : "full", flags & LS_QUIC_NO_GSO ? "no-gso " : "",
           flags & LS_QUIC_NO_GRO ? "no-gro " : "", flags & LS_QUIC_NO_MMSG ? "no-mmsg " : "");
  size_t n = strlen(out);
  if (n && out[n - 1] == ' ')
    out[n - 1] = '\0';
  return out;
}

/* Starts a server (own state dir) and fetches the manifest once, so that
 * the chunk hashing of the first GetGame is not timed. */
static server *start_warm_server(const bench_options *o, bench_paths *p, const variant *v)
{
  static unsigned count;
  bench_paths q = *p;
  char name[32];
  snprintf(name, sizeof name, "state-server-%u", count++);
  bench_join_path(q.srv_state, sizeof q.srv_state, p->work, name);
  server *s = bench_calloc(1, sizeof *s);
  *s = start_our_server(&q, v);
  double start = bench_now_s();
  proc_result r = run_our_client(p, v, s, true, o->timeout_s, NULL);
  if (r.status != 0)
    bench_die("our warm-up GetGame failed (see the message above)");
  if (count == 1)
    printf("ours: server pid %d port %u; first GetGame (hashes %llu MiB) %.2f s\n", (int)s->pid,
           s->port, (unsigned long long)(o->size >> 20), bench_now_s() - start);
  return s;
}

static void add_case(ours_case *c, size_t *n, const char *name, variant v, server *srv)
{
  ours_case *x = &c[(*n)++];
  snprintf(x->name, sizeof x->name, "%s", name);
  x->v = v;
  x->srv = srv;
  x->s.name = x->name;
}

/* Extra variants: the pool sizes, the transport table. */
static size_t build_extra_cases(const bench_options *o, bench_paths *p, const variant *base,
                                server *s0, ours_case *c)
{
  size_t n = 0;
  char name[64], fl[64];
  for (size_t i = 0; o->n_workers > 1 && i < o->n_workers; i++) {
    variant v = *base;
    v.workers = o->workers[i];
    snprintf(name, sizeof name, "ours_workers_%u", v.workers);
    add_case(c, &n, name, v, s0);
  }
  static const unsigned table[] = {0, LS_QUIC_NO_GSO, LS_QUIC_NO_GRO, LS_QUIC_NO_MMSG};
  for (size_t i = 0; o->table && i < 4; i++) {
    variant v = *base;
    v.flags = table[i];
    snprintf(name, sizeof name, "ours_%s", flags_name(v.flags, fl, sizeof fl));
    for (char *q = name; *q; q++)
      *q = *q == '-' ? '_' : *q;
    add_case(c, &n, name, v, v.flags == base->flags ? s0 : start_warm_server(o, p, &v));
  }
  return n;
}

static const char *workers_name(unsigned workers, char *out, size_t cap)
{
  if (workers)
    snprintf(out, cap, "%u", workers);
  else
    snprintf(out, cap, "default");
  return out;
}

static void run_extra_cases(const bench_options *o, const bench_paths *p, ours_case *c,
                            size_t n, const source_digests *want)
{
  if (!n)
    return;
  printf("-- variants of ours (%lu rounds)\n", o->repeat);
  fflush(stdout);
  for (unsigned long round = 0; round < o->repeat; round++)
    for (size_t i = 0; i < n; i++)
      measure_ours(o, p, &c[i].v, c[i].srv, want, &c[i].s);
  for (size_t i = 0; i < n; i++) {
    char fl[64], wk[16];
    printf("  [workers=%s cc=%s transport=%s] ", workers_name(c[i].v.workers, wk, sizeof wk),
           cc_name(c[i].v.cc), flags_name(c[i].v.flags, fl, sizeof fl));
    print_series(&c[i].s, o->size);
  }
}

static void print_setup(const bench_options *o, const variant *v)
{
  char fl[64], wk[16];
  printf("== " PROG ": %llu bytes (%llu MiB), %lu rounds, %ld CPUs, MB = 10^6 bytes\n",
         (unsigned long long)o->size, (unsigned long long)(o->size >> 20), o->repeat,
         sysconf(_SC_NPROCESSORS_ONLN));
  printf("ours measures the download engine of src/download/ (ls_download_start, one source, "
         "every fetch a GetGameFileChunk request; hash on the pool, download storage, commit)\n");
  printf("ours: workers=%s (UV_THREADPOOL_SIZE of the client) cc=%s transport=%s "
         "max_udp_payload=%u (ls_quic_tuning, both ends; the endpoint clamps it to <= 1452) "
         "chunk=%u\n",
         workers_name(v->workers, wk, sizeof wk), cc_name(v->cc),
         flags_name(v->flags, fl, sizeof fl), PAYLOAD, LS_CHUNK_SIZE);
  if (!o->no_reference)
    printf("ngtcp2 pair: gtlsserver/gtlsclient --max-udp-payload-size=%u on both, their "
           "default windows and cubic; nginx: 1 process, TLSv1.3, sendfile on; curl -k\n",
           PAYLOAD);
  fflush(stdout);
}

/* ---- work directory ----------------------------------------------------- */

static void set_paths(bench_paths *p)
{
  bench_join_path(p->games, sizeof p->games, p->work, "games");
  bench_join_path(p->game_root, sizeof p->game_root, p->games, GAME_ID);
  bench_join_path(p->source, sizeof p->source, p->game_root, ARCHIVE_NAME);
  bench_join_path(p->catalog, sizeof p->catalog, p->work, "catalog.json");
  bench_join_path(p->srv_state, sizeof p->srv_state, p->work, "state-server");
  bench_join_path(p->cli_games, sizeof p->cli_games, p->work, "client-games");
  bench_join_path(p->cli_state, sizeof p->cli_state, p->work, "state-client");
  bench_join_path(p->out_dir, sizeof p->out_dir, p->work, "out");
  bench_join_path(p->cli_archive, sizeof p->cli_archive, p->cli_games, GAME_ID "/" ARCHIVE_NAME);
  bench_join_path(p->cli_version, sizeof p->cli_version, p->cli_games, GAME_ID "/version.ini");
  bench_join_path(p->src_version, sizeof p->src_version, p->game_root, "version.ini");
  bench_join_path(p->key, sizeof p->key, p->work, "key.pem");
  bench_join_path(p->cert, sizeof p->cert, p->work, "cert.pem");
  bench_join_path(p->logs, sizeof p->logs, p->work, "logs");
}

static void prepare_work_dir(const bench_options *o, bench_paths *p)
{
  if (o->keep) {
    make_dir(o->keep);
    if (!realpath(o->keep, p->work))
      bench_die("cannot resolve %s: %s", o->keep, strerror(errno));
  } else {
    const char *tmp = getenv("TMPDIR");
    snprintf(p->work, sizeof p->work, "%s/" PROG ".XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(p->work))
      bench_die("cannot create a temporary directory: %s", strerror(errno));
    bench_remove_at_exit(p->work);
  }
  set_paths(p);
  make_dir(p->cli_games);
  make_dir(p->out_dir);
  make_dir(p->logs);
}

static void generate(const bench_options *o, const bench_paths *p)
{
  if (file_size(p->source) == (long long)o->size && file_size(p->catalog) > 0) {
    printf("reusing %s\n", p->source);
    return;
  }
  char size[32];
  snprintf(size, sizeof size, "%llu", (unsigned long long)o->size);
  char *const argv[] = {(char *)p->gen, "--game-dir", (char *)p->games, "--size", size,
                        "--catalog", (char *)p->catalog, "--quiet", NULL};
  char log[PATH_MAX + 32];
  snprintf(log, sizeof log, "%s/gen.log", p->logs);
  double start = bench_now_s();
  proc_result r = reap(spawn(argv, log, 0), start);
  if (r.status != 0) {
    char tail[200];
    log_tail(log, tail, sizeof tail);
    bench_die(GEN_NAME " failed: %s", tail);
  }
  printf("generated %s in %.1f s\n", p->source, r.wall_s);
}

/* ---- main --------------------------------------------------------------- */

/* Stops every server and frees ours (the extra cases share s0). */
static void stop_servers(refs *r, server *s0, ours_case *extra, size_t n)
{
  stop_process(r->gtls);
  stop_process(r->nginx);
  for (size_t i = 0; i < n; i++)
    if (extra[i].srv != s0) {
      stop_process(extra[i].srv->pid);
      free(extra[i].srv);
    }
  free(extra);
  stop_process(s0->pid);
  free(s0);
}

int main(int argc, char **argv)
{
  bench_init(PROG);
  bench_options o;
  parse_args(argc, argv, &o);
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGPIPE, SIG_IGN);
  bench_paths p;
  memset(&p, 0, sizeof p);
  bench_sibling(GEN_NAME, p.gen, sizeof p.gen);
  prepare_work_dir(&o, &p);
  variant base = {.workers = o.workers[0], .cc = o.cc, .flags = o.flags};
  print_setup(&o, &base);
  generate(&o, &p);
  source_digests want = {.version_size = (uint64_t)file_size(p.src_version)};
  if (!hash_file(p.source, want.archive) || !hash_file(p.src_version, want.version))
    bench_die("cannot read %s or %s", p.source, p.src_version);

  server *s0 = start_warm_server(&o, &p, &base);
  refs r;
  memset(&r, 0, sizeof r);
  if (!o.no_reference)
    start_references(&p, &r);
  ours_case headline;
  memset(&headline, 0, sizeof headline);
  add_case(&headline, &(size_t){0}, "ours", base, s0);

  for (unsigned long round = 0; round < o.repeat; round++) {
    measure_ours(&o, &p, &base, s0, &want, &headline.s);
    if (!o.no_reference)
      measure_references(&o, &p, &r, want.archive);
  }
  print_series(&headline.s, o.size);
  if (!o.no_reference) {
    print_series(&r.download, o.size);
    print_series(&r.receive, o.size);
    print_series(&r.curl, o.size);
    print_verdicts(&headline.s, &r);
  }
  fflush(stdout);

  ours_case *extra = bench_calloc(MAX_LIST + 4, sizeof *extra);
  size_t n_extra = build_extra_cases(&o, &p, &base, s0, extra);
  run_extra_cases(&o, &p, extra, n_extra, &want);
  stop_servers(&r, s0, extra, n_extra);
  return 0;
}
