/* bench_hostile: owns the hostile-peer benchmark. In one run it starts real
 * victims (lanspread-peer-cli --serve on 127.0.0.1 with one generated game,
 * as tests/integration/test_hostile.c does), a fresh one for every phase,
 * and measures each in its own process, first left idle (the baseline)
 * and then under each attack of the malicious peer of
 * tests/common/evilpeer.h:
 *   rss      its peak resident set, VmHWM of /proc/PID/status: the peak
 *            since it started, so every phase has a victim of its own and
 *            no attack's peak carries into the next;
 *   stall    its event loop's worst lateness: the runtime's loop-lag probe
 *            (src/peer/lag.c), read with `loop-stats` (docs/CLI.md) when the
 *            phase starts (a new window) and when it ends;
 *   connect  how long a well-behaved peer takes to connect meanwhile: a peer
 *            (evilpeer's serve mode with an empty game list, its identity
 *            made beforehand) started --probes times in the phase, timed
 *            from its start to the victim's HelloAck (QUIC handshake and a
 *            Hello); one that gets none in 5 s failed.
 * The victims all start together before the first phase (their start-up
 * is over before anything is measured) and each stops after its phase. The
 * idle victim is left alone for --seconds; an attack runs --seconds once
 * the malicious peer has made its identities. The malicious peer comes from
 * 127.0.0.2 and the well-behaved one from 127.0.0.1, as from two machines
 * (a victim admits connections per address).
 *
 * Targets: one hostile connection adds at most 32 MiB of RSS to the idle
 * baseline, more connections from one address (ghosts, floods) at most
 * 64 MiB in all; the loop never stalls more than 50 ms; a well-behaved peer
 * connects in under 2 s during every attack. A missed target is printed
 * (BELOW TARGET), not failed.
 *
 *   scripts/bench hostile            full size: 10 s per phase, 100 s in all here
 *   scripts/bench --tiny hostile     what CI runs: 0.5 s per phase, about 7 s
 *   build-bench/bench_hostile --seconds 5 --attack half-frames,ghosts --keep
 *
 * It prints a header, one line per phase (wrapped here; figures of a full
 * run on 2 shared cores) with what the malicious peer said below it, and a
 * summary:
 *   == bench_hostile: 8 attacks, 10 s each, 3 connects each, game 64M, 2 CPUs; ...
 *   hostile.idle rss_peak_MiB=9.3 stall_max_ms=2.5 (target <= 50)
 *     connect_max_ms=7.5 (target < 2000) connects=3/3 (baseline: ...)
 *   hostile.ghosts rss_peak_MiB=25.6 rss_added_MiB=+16.3 rss_ratio=2.74
 *     (target added <= 64) stall_max_ms=4.5 stall_added_ms=+2.0 (target <= 50)
 *     connect_max_ms=6.3 connect_ratio=0.84 (target < 2000) connects=3/3
 *     evil: ghost-hello=300 ghosts=1 done=1; ghosts.datagrams_nonzero=255/300 ...
 *   ...
 *   hostile: 8 attacks, 0 below target, 0 victims died
 * A phase that missed a target ends its line with BELOW TARGET (rss,
 * stall, connect: the ones it missed); one whose victim died says VICTIM
 * DIED with the last line of its log.
 *
 * Adding an attack is one line of `attacks` below. Exit status: 0 when
 * every phase was measured (missed targets included), 1 when a victim died
 * or on an error, 2 on a usage error. Every child process is killed and the
 * temporary directory removed at the end, on failure and on
 * SIGINT/SIGTERM/SIGHUP (benchkit). */
#include "benchkit.h"
#include "evilpeer.h"
#include "gamelists.h"
#include "procfs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROG "bench_hostile"
/* The victims listen on 127.0.0.1; the malicious peer comes from another
 * address than the well-behaved one, as from another machine (the victim
 * admits connections per address). */
#define HOSTILE_HOST "127.0.0.2"
#define FRIEND_HOST "127.0.0.1"
/* The victims' one game: 2 tar archives of --size / 2 each (16 MiB at the
 * tiny size); GAME_ARCHIVE is the first. */
#define GAME_ID "g0001"
#define GAME_ARCHIVE GAME_ID ".part01.eti"
#define MAX_PROBES 20
#define CONNECT_TIMEOUT_MS 5000
#define RSS_ONE_CONN_TARGET_MIB 32.0
#define RSS_MANY_CONNS_TARGET_MIB 64.0
#define STALL_TARGET_MS 50.0
#define CONNECT_TARGET_MS 2000.0
#define REPLY_TIMEOUT_S 30.0
#define SETUP_TIMEOUT_S 120.0 /* a malicious peer making hundreds of identities */

/* A GameList the malicious peer answers ListGames with (serve mode). */
typedef struct list_spec {
  const char *prefix; /* ids PREFIX0, PREFIX1, ... */
  size_t games, name_len;
} list_spec;

/* One attack: what the malicious peer does (an evil_config of
 * tests/common/evilpeer.h). The bench fills in victim, bind_host
 * (HOSTILE_HOST unless set), state_dir, run_ms and game_list. Its RSS
 * target follows the number of hostile connections (hostile_connections). */
typedef struct attack {
  const char *name;
  evil_config cfg;
  list_spec list; /* serve mode: the ListGames answer; none: an empty list */
} attack;

static const attack attacks[] = {
  /* 256 streams (a connection's budget), each a frame header announcing
   * 60 KiB and 32 KiB of it, then nothing */
  {.name = "half-frames", .cfg = {.attack = EVIL_HALF_FRAMES, .conns = 1, .streams = 256,
                                  .announce = 60 * 1024, .send = 32 * 1024}},
  /* 64 GetGames of the game, their answers never read */
  {.name = "get-game-flood",
   .cfg = {.attack = EVIL_GET_GAME_FLOOD, .conns = 1, .streams = 64, .game_id = GAME_ID}},
  /* 300 throwaway identities that say Hello and vanish */
  {.name = "ghosts", .cfg = {.ghosts = 300}},
  /* game lists: over LS_PROTO_MAX_GAMES, over the GameList frame limit,
   * and 3000 ids not in the catalog, re-sent at every refresh */
  {.name = "list-too-many", .list = {"g000", 4097, 1}},
  {.name = "list-oversized", .list = {"g", 2200, 2000}},
  {.name = "list-foreign", .list = {"foreign", 3000, 8}},
  /* 256 streams each asking for 16 MiB of the first archive, granting
   * 64 KiB of credit and reading nothing */
  {.name = "unread-chunks", .cfg = {.attack = EVIL_UNREAD_CHUNKS, .conns = 1, .streams = 256,
                                    .game_id = GAME_ID, .file_path = GAME_ARCHIVE,
                                    .chunk_length = 16u << 20, .recv_window = 64u << 10}},
  /* 512 connections from one UDP port, doing nothing */
  {.name = "conn-flood", .cfg = {.attack = EVIL_CONN_FLOOD, .conns = 512}},
};
#define N_ATTACKS (sizeof attacks / sizeof attacks[0])

typedef struct bench_options {
  double seconds;
  unsigned long probes;
  const char *size;
  bool keep;
  bool selected[N_ATTACKS];
} bench_options;

typedef struct bench_paths {
  char work[PATH_MAX];
  char games[PATH_MAX + 16];
  char catalog[PATH_MAX + 16];
  char friend_dir[PATH_MAX + 16];
  char gen[PATH_MAX], cli[PATH_MAX];
} bench_paths;

/* A file a child writes its lines to, read as it grows. */
typedef struct line_file {
  int fd;
  char *buf;
  size_t len, cap;
} line_file;

/* A child process: its stdin (a pipe), its stdout (a file). */
typedef struct child {
  pid_t pid;
  int in_fd;
  line_file out;
  char err_path[PATH_MAX + 64];
  bool exited;
  int status; /* its wait status once exited */
} child;

/* A victim: a lanspread-peer-cli and the address it serves on. */
typedef struct victim {
  child proc;
  char addr[64];
} victim;

/* What one phase measured. */
typedef struct phase_result {
  bool died;         /* the victim was gone at the end */
  double rss_mib;    /* VmHWM */
  double stall_ms;   /* loop-stats lag_max_us of the phase */
  double connect_ms[MAX_PROBES];
  size_t probes, connected;
  char evil[1024];   /* what the malicious peer said, summed up */
} phase_result;

/* ---- options ------------------------------------------------------------ */

static void print_help(void)
{
  printf("Usage: " PROG " [--seconds S] [--probes N] [--size BYTES] [--attack NAME[,NAME...]]\n"
         "         [--keep] [--list]\n"
         "Measure a victim peer (lanspread-peer-cli) under the attacks of the malicious\n"
         "peer of tests/common/evilpeer.h: its peak RSS (VmHWM), its event loop's\n"
         "worst stall (loop-stats) and how long a well-behaved peer takes to connect\n"
         "(QUIC handshake and Hello), idle first (the baseline), then under each\n"
         "attack; a fresh victim per phase.\n"
         "Targets: one hostile connection adds <= %.0f MiB, many <= %.0f MiB; no stall\n"
         "> %.0f ms; a well-behaved peer connects in < %.0f ms. Missed targets are\n"
         "printed (BELOW TARGET), not failed.\n"
         "\n"
         "Options:\n"
         "  --seconds S      length of each phase (default 10; 0.1 to 600, fractions\n"
         "                   allowed)\n"
         "  --probes N       connects of the well-behaved peer per phase (default 3)\n"
         "  --size BYTES     the victim's game, 2 archives (default 64M; K, M, G; at\n"
         "                   least 32M: unread-chunks asks for 16 MiB of the first)\n"
         "  --attack LIST    the attacks to play (default: all; see --list)\n"
         "  --keep           keep the work directory (every process's output and log)\n"
         "  --list           print the attacks and exit\n"
         "  -h, --help       show this help\n"
         "\n"
         "Exit status: 0 when every phase was measured, 1 when a victim died or on\n"
         "an error, 2 on a usage error.\n",
         RSS_ONE_CONN_TARGET_MIB, RSS_MANY_CONNS_TARGET_MIB, STALL_TARGET_MS, CONNECT_TARGET_MS);
}

static void select_attacks(const char *list, bench_options *o)
{
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", list);
  for (char *save, *name = strtok_r(buf, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
    size_t i = 0;
    while (i < N_ATTACKS && strcmp(attacks[i].name, name) != 0)
      i++;
    if (i == N_ATTACKS)
      bench_usage_error("--attack: no attack '%s' (see --list)", name);
    o->selected[i] = true;
  }
}

static double parse_seconds(const char *s)
{
  char *end;
  double v = strtod(s, &end);
  if (end == s || *end || !(v >= 0.1 && v <= 600))
    bench_usage_error("--seconds: '%s' is not a number of seconds from 0.1 to 600", s);
  return v;
}

static void parse_args(int argc, char **argv, bench_options *o)
{
  enum { O_SECONDS = 256, O_PROBES, O_SIZE, O_ATTACK, O_KEEP, O_LIST };
  static const struct option longopts[] = {
    {"seconds", required_argument, NULL, O_SECONDS}, {"probes", required_argument, NULL, O_PROBES},
    {"size", required_argument, NULL, O_SIZE}, {"attack", required_argument, NULL, O_ATTACK},
    {"keep", no_argument, NULL, O_KEEP}, {"list", no_argument, NULL, O_LIST},
    {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
  *o = (bench_options){.seconds = 10, .probes = 3, .size = "64M"};
  bool any = false;
  int c;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
    case O_SECONDS: o->seconds = parse_seconds(optarg); break;
    case O_PROBES: o->probes = bench_parse_count("--probes", optarg, 1, MAX_PROBES); break;
    case O_SIZE: o->size = optarg; break;
    case O_ATTACK: select_attacks(optarg, o); any = true; break;
    case O_KEEP: o->keep = true; break;
    case O_LIST:
      for (size_t i = 0; i < N_ATTACKS; i++)
        printf("%s\n", attacks[i].name);
      exit(0);
    case 'h': print_help(); exit(0);
    default: bench_usage_error("unknown option");
    }
  }
  if (optind < argc)
    bench_usage_error("unexpected argument '%s'", argv[optind]);
  for (size_t i = 0; !any && i < N_ATTACKS; i++)
    o->selected[i] = true;
}

/* ---- small helpers ------------------------------------------------------ */

static void sleep_s(double s)
{
  if (s <= 0)
    return;
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

static void make_dir(const char *path)
{
  if (mkdir(path, 0700) != 0 && errno != EEXIST)
    bench_die("cannot create %s: %s", path, strerror(errno));
}

/* An empty file at path (truncated when it exists). */
static void make_empty_file(const char *path)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    bench_die("cannot create %s: %s", path, strerror(errno));
  close(fd);
}

/* The last line of a log, for messages. */
static void log_tail(const char *path, char *out, size_t cap)
{
  FILE *f = fopen(path, "r");
  char line[512];
  snprintf(out, cap, "(no log)");
  while (f && fgets(line, sizeof line, f))
    if (line[0] && line[0] != '\n') {
      line[strcspn(line, "\n")] = '\0';
      snprintf(out, cap, "%s", line);
    }
  if (f)
    fclose(f);
}


/* ---- lines of a file that a child writes -------------------------------- */

static void line_file_open(line_file *f, const char *path)
{
  *f = (line_file){.fd = open(path, O_RDONLY | O_CLOEXEC)};
  if (f->fd < 0)
    bench_die("cannot open %s: %s", path, strerror(errno));
}

static void line_file_close(line_file *f)
{
  if (f->fd >= 0)
    close(f->fd);
  free(f->buf);
  *f = (line_file){.fd = -1};
}

/* The next complete line (malloc'ed, without newline), or NULL when none
 * has been written yet. */
static char *line_file_next(line_file *f)
{
  for (;;) {
    char *nl = f->len ? memchr(f->buf, '\n', f->len) : NULL;
    if (nl) {
      size_t n = (size_t)(nl - f->buf);
      char *line = strndup(f->buf, n);
      if (!line)
        bench_die("out of memory");
      memmove(f->buf, nl + 1, f->len - n - 1);
      f->len -= n + 1;
      return line;
    }
    if (f->len == f->cap) {
      f->cap = f->cap ? f->cap * 2 : 64 * 1024;
      if (!(f->buf = realloc(f->buf, f->cap)))
        bench_die("out of memory");
    }
    ssize_t n = read(f->fd, f->buf + f->len, f->cap - f->len);
    if (n <= 0)
      return NULL;
    f->len += (size_t)n;
  }
}

/* ---- child processes ---------------------------------------------------- */

/* In a forked child: dies with the bench, reads in_fd, writes out and err. */
static void child_stdio(int in_fd, const char *out, const char *err)
{
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  int o = open(out, O_WRONLY | O_APPEND);
  int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (o < 0 || e < 0 || dup2(in_fd, 0) < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
    _exit(126);
  close(in_fd);
  close(o);
  close(e);
}

/* Forks a child with a stdin pipe and its stdout in out_path; the child
 * returns 0 from here (and sets itself up), the parent its pid. */
static pid_t fork_child(child *c, const char *out_path, const char *err_path)
{
  int in[2];
  make_empty_file(out_path);
  if (pipe(in) != 0)
    bench_die("pipe: %s", strerror(errno));
  *c = (child){.in_fd = in[1]};
  snprintf(c->err_path, sizeof c->err_path, "%s", err_path);
  pid_t pid = bench_fork();
  if (pid == 0) {
    close(in[1]);
    child_stdio(in[0], out_path, err_path);
    return 0;
  }
  close(in[0]);
  fcntl(c->in_fd, F_SETFD, FD_CLOEXEC);
  c->pid = pid;
  line_file_open(&c->out, out_path);
  return pid;
}

static void spawn(child *c, char *const argv[], const char *out_path, const char *err_path)
{
  if (fork_child(c, out_path, err_path) == 0) {
    execv(argv[0], argv);
    dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
}

static bool child_running(child *c)
{
  int status;
  if (!c->exited && waitpid(c->pid, &status, WNOHANG) == c->pid) {
    c->exited = true;
    c->status = status;
    bench_forget_child(c->pid);
  }
  return !c->exited;
}

/* Writes one line to c's stdin; false when c no longer reads it. */
static bool child_send(child *c, const char *line)
{
  size_t n = strlen(line);
  return write(c->in_fd, line, n) == (ssize_t)n && write(c->in_fd, "\n", 1) == 1;
}

/* Does the JSON line have key == value (value NULL: any string)? */
static bool has_field(json_t *obj, const char *key, const char *value)
{
  const char *got = json_string_value(json_object_get(obj, key));
  return got && (!value || strcmp(got, value) == 0);
}

/* The next line of c with key == value (and key2 == value2 unless key2 is
 * NULL), reading every poll_s; NULL after timeout_s or once c has exited
 * with no such line left. Caller decrefs. */
static json_t *child_expect(child *c, const char *key, const char *value, const char *key2,
                            const char *value2, double timeout_s, double poll_s)
{
  double deadline = bench_now_s() + timeout_s;
  for (;;) {
    bool running = child_running(c); /* before reading: its last lines are in */
    char *line;
    while ((line = line_file_next(&c->out)) != NULL) {
      json_t *obj = json_loads(line, 0, NULL);
      free(line);
      if (obj && has_field(obj, key, value) && (!key2 || has_field(obj, key2, value2)))
        return obj;
      json_decref(obj);
    }
    if (!running || bench_now_s() >= deadline)
      return NULL;
    sleep_s(poll_s);
  }
}

/* Waits up to timeout_s for c to exit, then kills it; true when it exited
 * by itself with status 0. */
static bool child_stop(child *c, double timeout_s)
{
  double deadline = bench_now_s() + timeout_s;
  while (child_running(c) && bench_now_s() < deadline)
    sleep_s(0.01);
  bool clean = c->exited && WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0;
  if (!c->exited) {
    kill(c->pid, SIGKILL);
    while (waitpid(c->pid, &c->status, 0) < 0 && errno == EINTR) {
    }
    c->exited = true;
    bench_forget_child(c->pid);
  }
  close(c->in_fd);
  line_file_close(&c->out);
  return clean;
}

/* ---- victims ------------------------------------------------------------ */

static void start_victim(const bench_paths *p, size_t index, victim *v)
{
  char dir[PATH_MAX + 32], state[PATH_MAX + 48], out[PATH_MAX + 48], err[PATH_MAX + 48];
  snprintf(dir, sizeof dir, "%s/victim%zu", p->work, index);
  make_dir(dir);
  bench_join_path(state, sizeof state, dir, "state");
  bench_join_path(out, sizeof out, dir, "out.jsonl");
  bench_join_path(err, sizeof err, dir, "err.log");
  char *const argv[] = {(char *)p->cli, "--serve", "--no-mdns", "--listen", "127.0.0.1:0",
                        "--game-dir", (char *)p->games, "--state-dir", state, "--catalog",
                        (char *)p->catalog, "--name", "victim", NULL};
  memset(v, 0, sizeof *v);
  spawn(&v->proc, argv, out, err);
}

/* Reads the victim's ready line: the address it serves on. */
static void wait_victim_ready(victim *v)
{
  json_t *ready = child_expect(&v->proc, "type", "ready", NULL, NULL, SETUP_TIMEOUT_S, 0.01);
  if (!ready) {
    char tail[512];
    log_tail(v->proc.err_path, tail, sizeof tail);
    bench_die("a victim did not start: %s", tail);
  }
  snprintf(v->addr, sizeof v->addr, "%s", json_string_value(json_object_get(ready, "listen")));
  json_decref(ready);
}

/* Sends a command and returns its reply, or NULL when the victim is gone
 * or silent. Caller decrefs. */
static json_t *victim_command(victim *v, const char *cmd)
{
  if (!child_running(&v->proc) || !child_send(&v->proc, cmd))
    return NULL;
  return child_expect(&v->proc, "type", "reply", "cmd", cmd, REPLY_TIMEOUT_S, 0.005);
}

/* The worst loop lag (ms) since the previous loop-stats, or -1. */
static double victim_loop_lag_ms(victim *v)
{
  json_t *r = victim_command(v, "loop-stats");
  double ms = r ? (double)json_integer_value(json_object_get(r, "lag_max_us")) / 1000.0 : -1;
  json_decref(r);
  return ms;
}

/* ---- the malicious peer and the well-behaved one ----------------------- */

/* Runs cfg in a forked child (tests/common/evilpeer.c) with its lines in
 * out_path. */
static void start_evil(child *c, const evil_config *cfg, const char *out_path,
                       const char *err_path)
{
  if (fork_child(c, out_path, err_path) == 0) {
    int rc = evil_run(cfg);
    fflush(NULL);
    _exit(rc);
  }
}

/* The well-behaved peer: evilpeer's serve mode (it answers the victim's
 * Hello, ListGames and Pings as any peer does) with an empty game list. */
static evil_config friend_config(const bench_paths *p, const char *victim_addr, unsigned run_ms)
{
  static const char empty[] = "{\"type\":\"GameList\",\"games\":[]}";
  return (evil_config){.victim = victim_addr, .bind_host = FRIEND_HOST,
                       .state_dir = p->friend_dir, .game_list = empty,
                       .game_list_len = sizeof empty - 1, .run_ms = run_ms};
}

/* Milliseconds from the well-behaved peer's start to the victim's HelloAck,
 * or -1 when none came within CONNECT_TIMEOUT_MS. */
static double probe_connect_ms(const bench_paths *p, const victim *v)
{
  char out[PATH_MAX + 32], err[PATH_MAX + 32];
  bench_join_path(out, sizeof out, p->work, "friend.out");
  bench_join_path(err, sizeof err, p->work, "friend.err");
  evil_config cfg = friend_config(p, v->addr, CONNECT_TIMEOUT_MS);
  child c;
  double start = bench_now_s();
  start_evil(&c, &cfg, out, err);
  json_t *acked = child_expect(&c, "evil", "hello-acked", NULL, NULL,
                               CONNECT_TIMEOUT_MS / 1000.0, 0.001);
  double ms = acked ? (bench_now_s() - start) * 1000.0 : -1;
  json_decref(acked);
  child_send(&c, "stop");
  child_stop(&c, 10);
  return ms;
}

/* The connections an attack opens from its one address. */
static unsigned hostile_connections(const evil_config *cfg)
{
  return cfg->attack != EVIL_SERVE ? cfg->conns : cfg->ghosts ? cfg->ghosts : 1;
}

static double rss_target_mib(const attack *a)
{
  return hostile_connections(&a->cfg) > 1 ? RSS_MANY_CONNS_TARGET_MIB : RSS_ONE_CONN_TARGET_MIB;
}

/* ---- what the malicious peer said --------------------------------------- */

/* One "evil" kind of line, how often it was said, and its last line. */
typedef struct said {
  char kind[32];
  unsigned n;
  json_t *last;
} said;

/* Appends " KIND.KEY=V" for the numbers of a line: integers as they are,
 * arrays as how many are non-zero and the largest. */
static void append_numbers(const char *kind, json_t *obj, char *out, size_t cap)
{
  const char *key;
  json_t *v;
  json_object_foreach(obj, key, v) {
    size_t len = strlen(out);
    if (json_is_integer(v)) {
      snprintf(out + len, cap - len, " %s.%s=%lld", kind, key, (long long)json_integer_value(v));
    } else if (json_is_array(v)) {
      size_t i, nonzero = 0;
      json_int_t max = 0;
      json_t *x;
      json_array_foreach(v, i, x) {
        nonzero += json_integer_value(x) != 0;
        max = json_integer_value(x) > max ? json_integer_value(x) : max;
      }
      snprintf(out + len, cap - len, " %s.%s_nonzero=%zu/%zu %s.%s_max=%lld", kind, key,
               nonzero, json_array_size(v), kind, key, (long long)max);
    }
  }
}

/* Counts a line of its kind (at most cap kinds) and keeps it as the last. */
static void note_said(said *kinds, size_t *n, size_t cap, const char *kind, json_t *line)
{
  size_t i = 0;
  while (i < *n && strcmp(kinds[i].kind, kind) != 0)
    i++;
  if (i == *n && *n < cap)
    snprintf(kinds[(*n)++].kind, sizeof kinds[0].kind, "%s", kind);
  if (i == *n)
    return;
  kinds[i].n++;
  json_decref(kinds[i].last);
  kinds[i].last = json_incref(line);
}

/* "KIND=N ...; KIND.KEY=V ...": every kind of line the malicious peer
 * printed with its count, then the numbers of the lines it printed once
 * (its reports: "attack", "ghosts", "flood-settled", "done", ...). */
static void summarize_evil(const char *out_path, char *out, size_t cap)
{
  said kinds[32] = {{"", 0, NULL}};
  size_t n = 0;
  line_file f;
  line_file_open(&f, out_path);
  for (char *line; (line = line_file_next(&f)) != NULL; free(line)) {
    json_t *obj = json_loads(line, 0, NULL);
    const char *kind = json_string_value(json_object_get(obj, "evil"));
    if (kind)
      note_said(kinds, &n, 32, kind, obj);
    json_decref(obj);
  }
  line_file_close(&f);
  out[0] = '\0';
  for (size_t i = 0; i < n; i++)
    snprintf(out + strlen(out), cap - strlen(out), "%s%s=%u", i ? " " : "", kinds[i].kind,
             kinds[i].n);
  snprintf(out + strlen(out), cap - strlen(out), ";");
  for (size_t i = 0; i < n; i++) {
    if (kinds[i].n == 1)
      append_numbers(kinds[i].kind, kinds[i].last, out, cap);
    json_decref(kinds[i].last);
  }
}

/* ---- one phase ----------------------------------------------------------- */

/* The well-behaved peer connects --probes times, evenly spread over the
 * --seconds that begin at `from` (a slow connect delays the next). */
static void run_probes(const bench_options *o, const bench_paths *p, const victim *v,
                       double from, phase_result *r)
{
  for (size_t i = 0; i < o->probes; i++) {
    sleep_s(from + ((double)i + 0.5) * o->seconds / (double)o->probes - bench_now_s());
    double ms = probe_connect_ms(p, v);
    r->connect_ms[r->probes++] = ms;
    r->connected += ms >= 0;
  }
}

/* The evil_config of attack a against victim_addr for run_ms, its game
 * list built into *body, its identities in WORK/evil-NAME. */
static evil_config attack_config(const attack *a, const bench_paths *p, const char *victim_addr,
                                 unsigned run_ms, char **body)
{
  char dir[PATH_MAX + 64];
  snprintf(dir, sizeof dir, "%s/evil-%s", p->work, a->name);
  make_dir(dir);
  *body = evil_game_list_body(a->list.prefix ? a->list.prefix : "", a->list.games,
                              a->list.name_len);
  evil_config cfg = a->cfg;
  cfg.victim = victim_addr;
  cfg.bind_host = cfg.bind_host ? cfg.bind_host : HOSTILE_HOST;
  cfg.state_dir = strdup(dir);
  cfg.game_list = *body;
  cfg.game_list_len = *body ? strlen(*body) : 0;
  cfg.run_ms = run_ms;
  if (!*body || !cfg.state_dir)
    bench_die("out of memory");
  return cfg;
}

/* Plays attack a against v: the malicious peer starts, makes its
 * identities, attacks for --seconds and ends; the probes run meanwhile. */
static void play_attack(const attack *a, const bench_options *o, const bench_paths *p,
                        victim *v, phase_result *r)
{
  char *body, out[PATH_MAX + 64], err[PATH_MAX + 64];
  evil_config cfg = attack_config(a, p, v->addr, (unsigned)(o->seconds * 1000), &body);
  snprintf(out, sizeof out, "%s/evil-%s.out", p->work, a->name);
  snprintf(err, sizeof err, "%s/evil-%s.err", p->work, a->name);
  child e;
  start_evil(&e, &cfg, out, err);
  /* its first line, whatever it says, comes once its identities are made */
  json_t *first = child_expect(&e, "evil", NULL, NULL, NULL, SETUP_TIMEOUT_S, 0.005);
  const char *kind = json_string_value(json_object_get(first, "evil"));
  if (!kind || !strcmp(kind, "setup-failed")) {
    char tail[512];
    log_tail(out, tail, sizeof tail);
    bench_die("%s: the malicious peer did not start: %s", a->name, tail);
  }
  json_decref(first);
  run_probes(o, p, v, bench_now_s(), r);
  if (!child_stop(&e, o->seconds + 60))
    fprintf(stderr, PROG ": %s: the malicious peer did not end by itself (see %s)\n", a->name,
            err);
  summarize_evil(out, r->evil, sizeof r->evil);
  free((char *)cfg.state_dir);
  free(body);
}

/* One phase on its own victim: idle (a NULL) or attack a. */
static phase_result run_phase(const attack *a, const bench_options *o, const bench_paths *p,
                              victim *v)
{
  phase_result r = {0};
  victim_loop_lag_ms(v); /* a new window */
  if (a) {
    play_attack(a, o, p, v, &r);
  } else {
    double start = bench_now_s();
    run_probes(o, p, v, start, &r);
    sleep_s(start + o->seconds - bench_now_s());
  }
  r.stall_ms = victim_loop_lag_ms(v);
  r.rss_mib = (double)t_proc_number((int)v->proc.pid, "status", "VmHWM:") / 1024.0;
  r.died = r.stall_ms < 0 || !child_running(&v->proc);
  child_send(&v->proc, "quit");
  if (!child_stop(&v->proc, REPLY_TIMEOUT_S))
    r.died = true;
  return r;
}

/* ---- the report ---------------------------------------------------------- */

/* The slowest connect of a phase; a failed one counts as the timeout. */
static double connect_max_ms(const phase_result *r)
{
  double max = 0;
  for (size_t i = 0; i < r->probes; i++) {
    double ms = r->connect_ms[i] < 0 ? CONNECT_TIMEOUT_MS : r->connect_ms[i];
    max = ms > max ? ms : max;
  }
  return max;
}

static double ratio(double x, double base)
{
  return base > 0 ? x / base : 0;
}

static bool connect_missed(const phase_result *r)
{
  return r->connected < r->probes || connect_max_ms(r) >= CONNECT_TARGET_MS;
}

/* "  BELOW TARGET (rss, stall)": the targets a phase missed, if any. */
static void print_misses(bool rss, bool stall, bool connect)
{
  if (!rss && !stall && !connect)
    return;
  const char *sep = "";
  printf("  BELOW TARGET (");
  if (rss)
    printf("rss"), sep = ", ";
  if (stall)
    printf("%sstall", sep), sep = ", ";
  if (connect)
    printf("%sconnect", sep);
  printf(")");
}

/* The baseline's line; the bench cannot go on without it. */
static void print_idle(const phase_result *idle, const bench_options *o, const char *victim_err)
{
  if (idle->died) {
    char tail[512];
    log_tail(victim_err, tail, sizeof tail);
    bench_die("the idle victim died (its log: %s)", tail);
  }
  printf("hostile.idle rss_peak_MiB=%.1f stall_max_ms=%.1f (target <= %.0f) connect_max_ms=%.1f "
         "(target < %.0f) connects=%zu/%zu (baseline: a victim left idle %g s)",
         idle->rss_mib, idle->stall_ms, STALL_TARGET_MS, connect_max_ms(idle), CONNECT_TARGET_MS,
         idle->connected, idle->probes, o->seconds);
  print_misses(false, idle->stall_ms > STALL_TARGET_MS, connect_missed(idle));
  printf("\n");
}

/* Prints attack a's line against the idle baseline; true when it missed
 * a target. */
static bool print_attack(const attack *a, const phase_result *r, const phase_result *idle,
                         const char *victim_err)
{
  if (r->died) {
    char tail[512];
    log_tail(victim_err, tail, sizeof tail);
    printf("hostile.%s VICTIM DIED (its log: %s)\n  evil: %s\n", a->name, tail, r->evil);
    return true;
  }
  double added = r->rss_mib - idle->rss_mib, connect = connect_max_ms(r);
  bool rss = added > rss_target_mib(a), stall = r->stall_ms > STALL_TARGET_MS;
  printf("hostile.%s rss_peak_MiB=%.1f rss_added_MiB=%+.1f rss_ratio=%.2f (target added <= %.0f) "
         "stall_max_ms=%.1f stall_added_ms=%+.1f (target <= %.0f) connect_max_ms=%.1f "
         "connect_ratio=%.2f (target < %.0f) connects=%zu/%zu",
         a->name, r->rss_mib, added, ratio(r->rss_mib, idle->rss_mib), rss_target_mib(a),
         r->stall_ms, r->stall_ms - idle->stall_ms, STALL_TARGET_MS, connect,
         ratio(connect, connect_max_ms(idle)), CONNECT_TARGET_MS, r->connected, r->probes);
  print_misses(rss, stall, connect_missed(r));
  printf("\n  evil: %s\n", r->evil);
  return rss || stall || connect_missed(r);
}

/* ---- identities, made before anything is measured ----------------------- */

/* A UDP socket on 127.0.0.1 that reads nothing, and its address: where the
 * identity runs connect, so that no one answers them. */
static int open_sink(char *addr, size_t cap)
{
  struct sockaddr_in at = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof at;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&at, sizeof at) != 0 ||
      getsockname(fd, (struct sockaddr *)&at, &len) != 0)
    bench_die("cannot bind a UDP socket on 127.0.0.1: %s", strerror(errno));
  snprintf(addr, cap, "127.0.0.1:%u", ntohs(at.sin_port));
  return fd;
}

/* Runs cfg against the sink for 1 ms: the peer makes its identities (they
 * stay in its state directory, so its phase loads them) and ends. */
static void start_identity_run(child *c, evil_config cfg, const char *sink, const bench_paths *p,
                               const char *name)
{
  char out[PATH_MAX + 64], err[PATH_MAX + 64];
  snprintf(out, sizeof out, "%s/ids-%s.out", p->work, name);
  snprintf(err, sizeof err, "%s/ids-%s.err", p->work, name);
  cfg.victim = sink;
  cfg.run_ms = 1;
  start_evil(c, &cfg, out, err);
}

/* Starts the identity runs of the well-behaved peer and of every selected
 * attack; returns how many. */
static size_t start_identity_runs(const bench_options *o, const bench_paths *p,
                                  const char *sink, child *runs)
{
  size_t n = 0;
  make_dir(p->friend_dir);
  start_identity_run(&runs[n++], friend_config(p, sink, 1), sink, p, "friend");
  for (size_t i = 0; i < N_ATTACKS; i++) {
    if (!o->selected[i])
      continue;
    char *body;
    evil_config cfg = attack_config(&attacks[i], p, sink, 1, &body);
    start_identity_run(&runs[n++], cfg, sink, p, attacks[i].name);
    free((char *)cfg.state_dir); /* the child has its copies */
    free(body);
  }
  return n;
}

static void wait_identity_runs(child *runs, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (!child_stop(&runs[i], SETUP_TIMEOUT_S))
      bench_die("a malicious or well-behaved peer could not make its identities (see %s)",
                runs[i].err_path);
}

/* ---- setup --------------------------------------------------------------- */

static void prepare(const bench_options *o, bench_paths *p)
{
  bench_sibling("lanspread-gen", p->gen, sizeof p->gen);
  bench_sibling("lanspread-peer-cli", p->cli, sizeof p->cli);
  const char *tmp = getenv("TMPDIR");
  snprintf(p->work, sizeof p->work, "%s/" PROG ".XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(p->work))
    bench_die("cannot create a temporary directory: %s", strerror(errno));
  if (o->keep)
    printf("work directory (kept): %s\n", p->work);
  else
    bench_remove_at_exit(p->work);
  bench_join_path(p->games, sizeof p->games, p->work, "games");
  bench_join_path(p->catalog, sizeof p->catalog, p->work, "catalog.json");
  bench_join_path(p->friend_dir, sizeof p->friend_dir, p->work, "friend");
  char *const gen[] = {p->gen, "--quiet", "--game-dir", p->games, "--games", "1", "--id-prefix",
                       "g", "--archives", "2", "--size", (char *)o->size, "--format", "tar",
                       "--catalog", p->catalog, NULL};
  if (bench_run(gen, true) != 0)
    bench_die("lanspread-gen --size %s failed", o->size);
}

static size_t selected_count(const bench_options *o)
{
  size_t n = 0;
  for (size_t i = 0; i < N_ATTACKS; i++)
    n += o->selected[i];
  return n;
}

/* Starts the victims (one per phase) and the identity runs together, so
 * that all of it is over before the first phase. */
static victim *start_victims(const bench_options *o, const bench_paths *p, size_t phases)
{
  char sink[64];
  int sink_fd = open_sink(sink, sizeof sink);
  child ids[N_ATTACKS + 1];
  size_t n_ids = start_identity_runs(o, p, sink, ids);
  victim *v = bench_calloc(phases, sizeof *v);
  for (size_t i = 0; i < phases; i++)
    start_victim(p, i, &v[i]);
  for (size_t i = 0; i < phases; i++)
    wait_victim_ready(&v[i]);
  wait_identity_runs(ids, n_ids);
  close(sink_fd);
  return v;
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
  prepare(&o, &p);
  size_t n = selected_count(&o);
  printf("== " PROG ": %zu attacks, %g s each, %lu connects each, game %s, %ld CPUs; "
         "victims: lanspread-peer-cli on 127.0.0.1, a fresh one per phase\n",
         n, o.seconds, o.probes, o.size, sysconf(_SC_NPROCESSORS_ONLN));
  victim *v = start_victims(&o, &p, n + 1);

  phase_result idle = run_phase(NULL, &o, &p, &v[0]);
  print_idle(&idle, &o, v[0].proc.err_path);
  size_t below = 0, deaths = 0;
  for (size_t i = 0, k = 1; i < N_ATTACKS; i++) {
    if (!o.selected[i])
      continue;
    phase_result r = run_phase(&attacks[i], &o, &p, &v[k]);
    below += print_attack(&attacks[i], &r, &idle, v[k++].proc.err_path);
    deaths += r.died;
  }
  printf("hostile: %zu attacks, %zu below target, %zu victims died\n", n, below, deaths);
  free(v);
  return deaths ? 1 : 0;
}
