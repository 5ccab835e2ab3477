/* Owns the scenario-test LAN of peernet.h: its hosts' directories, the
 * generated games and shared catalog, the peers it starts, and the event and
 * file helpers built on peerproc.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "peernet.h"
#include "testrun.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <lanspread/peer.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double pn_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *rotating(void)
{
  static char bufs[8][4096];
  static int next;
  return bufs[next++ % 8];
}

pn_net *pn_create(int hosts, const char *port)
{
  char why[256];
  assert_true(hosts > 0 && hosts <= PN_MAX_HOSTS);
  ls_netns *ns = ls_netns_create(hosts, why, sizeof why);
  if (!ns)
    ls_skip("%s", why);
  pn_net *n = calloc(1, sizeof *n);
  n->ns = ns;
  n->hosts = hosts;
  n->root = t_tempdir();
  snprintf(n->catalog, sizeof n->catalog, "%s/catalog.json", n->root);
  snprintf(n->port, sizeof n->port, "%s", port);
  return n;
}

void pn_destroy(pn_net *n)
{
  for (int i = 0; i < n->hosts; i++)
    if (n->peers[i])
      pn_stop(n, i);
  ls_netns_destroy(n->ns);
  free(n);
}

const char *pn_game_dir(const pn_net *n, int host)
{
  char *b = rotating();
  snprintf(b, 4096, "%s/h%d", n->root, host);
  return b;
}

const char *pn_endpoint(const pn_net *n, int host)
{
  char *b = rotating();
  snprintf(b, 4096, "%s:%s", ls_netns_addr(n->ns, host), n->port);
  return b;
}

void pn_generate(pn_net *n, int host, pn_game g)
{
  char first[16], archives[16], seed[16];
  snprintf(first, sizeof first, "%d", g.number ? g.number : 1);
  snprintf(archives, sizeof archives, "%d", g.archives ? g.archives : 2);
  snprintf(seed, sizeof seed, "%d", g.seed ? g.seed : 1);
  char *dir = strdup(g.game_dir ? g.game_dir : pn_game_dir(n, host));
  char *argv[32] = {(char *)pp_program("lanspread-gen"), "--game-dir", dir, "--games", "1",
                    "--first", first, "--id-prefix", "g", "--archives", archives, "--size",
                    (char *)(g.size ? g.size : "4M"), "--game-version",
                    (char *)(g.version ? g.version : "1.0"), "--format",
                    (char *)(g.format ? g.format : "tar"), "--seed", seed, "--catalog",
                    n->catalog, "--catalog-merge", "--quiet"};
  int k = 23;
  if (g.installed)
    argv[k++] = "--installed";
  if (g.expect_dir) {
    argv[k++] = "--expect-dir";
    argv[k++] = (char *)g.expect_dir;
  }
  argv[k] = NULL;
  assert_int_equal(pp_run(argv, PN_T_MS), 0);
  free(dir);
}


/* Host's peer is registered once it printed "ready" (its peer id kept). */
static peerproc *await_ready(pn_net *n, int host, peerproc *p)
{
  n->peers[host] = p;
  json_t *ready = pp_expect(p, "ready", NULL, PN_T_MS);
  snprintf(n->ids[host], sizeof n->ids[host], "%s",
           json_string_value(json_object_get(ready, "peer_id")));
  json_decref(ready);
  return p;
}
peerproc *pn_start(pn_net *n, int host, pn_peer o)
{
  char *game_dir = strdup(pn_game_dir(n, host));
  char *state_dir = strdup(t_path("%s/s%d", n->root, host));
  char *listen = strdup(pn_endpoint(n, host));
  char name[32];
  snprintf(name, sizeof name, "host%d", host);
  char *peer_args[PN_MAX_HOSTS] = {0};
  char *argv[48] = {(char *)pp_program("lanspread-peer-cli"), "--game-dir", game_dir,
                    "--state-dir", state_dir, "--catalog",
                    (char *)(o.catalog ? o.catalog : n->catalog), "--listen", listen,
                    "--name", name, "--serve"};
  int k = 12;
  if (!o.mdns)
    argv[k++] = "--no-mdns";
  if (o.party_key_file) {
    argv[k++] = "--party-key-file";
    argv[k++] = (char *)o.party_key_file;
  }
  for (int i = 0; i < n->hosts; i++)
    if (o.static_peers & (1u << i)) {
      peer_args[i] = strdup(pn_endpoint(n, i));
      argv[k++] = "--peer";
      argv[k++] = peer_args[i];
    }
  argv[k] = NULL;
  t_mkdir(n->root, t_path("h%d", host));

  char env_name[128] = "";
  if (o.env) {
    const char *eq = strchr(o.env, '=');
    assert_non_null(eq);
    snprintf(env_name, sizeof env_name, "%.*s", (int)(eq - o.env), o.env);
    setenv(env_name, eq + 1, 1);
  }
  int saved = -1;
  if (o.log) {
    saved = dup(2);
    int log = open(t_path("%s/h%d.log", n->root, host), O_WRONLY | O_CREAT | O_APPEND, 0644);
    assert_true(log >= 0);
    dup2(log, 2);
    close(log);
  }
  peerproc *p = ls_netns_start(n->ns, host, argv);
  if (o.log) {
    dup2(saved, 2);
    close(saved);
  }
  if (o.env)
    unsetenv(env_name);
  free(game_dir);
  free(state_dir);
  free(listen);
  for (int i = 0; i < PN_MAX_HOSTS; i++)
    free(peer_args[i]);
  return await_ready(n, host, p);
}

/* ---- an in-process peer (pn_start_direct) ---------------------------------- */

typedef struct direct_args {
  char game_dir[4096], state_dir[4096], catalog[4096], listen[64], name[32], log[4096];
  char peers[PN_MAX_HOSTS][64];
  const char *peer_list[PN_MAX_HOSTS];
  size_t npeers;
  char env[256];
} direct_args;

static bool write_all(int fd, const char *data, size_t len)
{
  while (len > 0) {
    ssize_t w = write(fd, data, len);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return false;
    data += w;
    len -= (size_t)w;
  }
  return true;
}

static void direct_print(const char *json)
{
  size_t len = strlen(json);
  char *line = malloc(len + 2);
  if (!line)
    return;
  memcpy(line, json, len);
  line[len] = '\n';
  write_all(1, line, len + 1);
  free(line);
}

/* One command line for the in-process peer; false for quit. */
static bool direct_command(ls_peer *peer, char *line, uint64_t *tag)
{
  char *words[4] = {0};
  size_t n = 0;
  for (char *w = strtok(line, " \t\r"); w && n < 4; w = strtok(NULL, " \t\r"))
    words[n++] = w;
  if (n == 0)
    return true;
  if (strcmp(words[0], "quit") == 0)
    return false;
  static const struct {
    const char *name;
    ls_command_type type;
  } names[] = {
    {"games", LS_CMD_LIST_GAMES},
    {"peers", LS_CMD_LIST_PEERS},
    {"download", LS_CMD_DOWNLOAD_GAME_FILES},
    {"pause", LS_CMD_PAUSE_DOWNLOAD},
    {"cancel", LS_CMD_CANCEL_DOWNLOAD},
    {"verify", LS_CMD_VERIFY_GAME},
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(words[0], names[i].name) == 0) {
      ls_command cmd = {.type = names[i].type, .id = words[1], .tag = ++*tag,
                        .repair = n > 2 && strcmp(words[2], "--repair") == 0};
      if (ls_peer_send(peer, &cmd) != LS_OK)
        fprintf(stderr, "direct peer: cannot send %s\n", words[0]);
      return true;
    }
  fprintf(stderr, "direct peer: unknown command %s\n", words[0]);
  return true;
}

static int direct_main(void *arg)
{
  direct_args *a = arg;
  signal(SIGPIPE, SIG_IGN); /* as lanspread-peer-cli does */
  if (a->log[0]) {
    int log = open(a->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (log >= 0) {
      dup2(log, 2);
      close(log);
    }
  }
  if (a->env[0]) {
    char *eq = strchr(a->env, '=');
    *eq = '\0';
    setenv(a->env, eq + 1, 1);
  }
  ls_peer_config cfg = {.game_dir = a->game_dir, .state_dir = a->state_dir,
                        .catalog_path = a->catalog, .listen = a->listen,
                        .static_peers = a->peer_list, .static_peer_count = a->npeers,
                        .mdns = false, .name = a->name};
  ls_peer *peer;
  ls_diag diag;
  if (ls_peer_start(&cfg, &peer, &diag) != LS_OK) {
    fprintf(stderr, "direct peer: %s\n", diag.text);
    return 1;
  }
  char ready[256];
  snprintf(ready, sizeof ready, "{\"type\":\"ready\",\"peer_id\":\"%s\",\"listen\":\"%s\"}",
           ls_peer_id(peer), ls_peer_listen_address(peer));
  direct_print(ready);
  static char buf[65536];
  size_t len = 0;
  uint64_t tag = 0;
  for (bool running = true; running;) {
    struct pollfd pfd[2] = {{.fd = ls_peer_event_fd(peer), .events = POLLIN},
                            {.fd = 0, .events = POLLIN}};
    if (poll(pfd, 2, -1) < 0 && errno != EINTR)
      break;
    for (ls_event *ev; (ev = ls_peer_next_event(peer)) != NULL; ls_event_free(ev))
      direct_print(ev->json);
    if (!(pfd[1].revents & (POLLIN | POLLHUP | POLLERR)))
      continue;
    ssize_t r = read(0, buf + len, sizeof buf - 1 - len);
    if (r <= 0) {
      running = r < 0 && errno == EINTR;
      continue;
    }
    len += (size_t)r;
    char *nl;
    while (running && (nl = memchr(buf, '\n', len)) != NULL) {
      *nl = '\0';
      running = direct_command(peer, buf, &tag);
      len -= (size_t)(nl + 1 - buf);
      memmove(buf, nl + 1, len);
    }
  }
  ls_peer_stop(peer); /* frees the peer and its queued events */
  return 0;
}

peerproc *pn_start_direct(pn_net *n, int host, pn_peer o)
{
  static direct_args a; /* the child's copy is what it reads */
  memset(&a, 0, sizeof a);
  snprintf(a.game_dir, sizeof a.game_dir, "%s", pn_game_dir(n, host));
  snprintf(a.state_dir, sizeof a.state_dir, "%s/s%d", n->root, host);
  snprintf(a.catalog, sizeof a.catalog, "%s", o.catalog ? o.catalog : n->catalog);
  snprintf(a.listen, sizeof a.listen, "%s", pn_endpoint(n, host));
  snprintf(a.name, sizeof a.name, "host%d", host);
  if (o.log)
    snprintf(a.log, sizeof a.log, "%s/h%d.log", n->root, host);
  if (o.env) {
    assert_non_null(strchr(o.env, '='));
    snprintf(a.env, sizeof a.env, "%s", o.env);
  }
  for (int i = 0; i < n->hosts; i++)
    if (o.static_peers & (1u << i)) {
      snprintf(a.peers[a.npeers], sizeof a.peers[0], "%s", pn_endpoint(n, i));
      a.peer_list[a.npeers] = a.peers[a.npeers];
      a.npeers++;
    }
  t_mkdir(n->root, t_path("h%d", host));
  peerproc *p = pp_fork_in_netns(ls_netns_name(n->ns, host), direct_main, &a);
  return await_ready(n, host, p);
}

/* A peer that logs to ROOT/hI.log (pn_peer.log) and exits with another
 * status than expected: its log goes to the test's output (a sanitizer
 * report is there), since ROOT is removed at exit. */
static void expect_exit(const pn_net *n, int host, int status, int expected)
{
  FILE *f = status == expected ? NULL : fopen(t_path("%s/h%d.log", n->root, host), "r");
  if (f) {
    fprintf(stderr, "--- host %d exited with %d, its log:\n", host, status);
    char buf[4096];
    size_t len;
    while ((len = fread(buf, 1, sizeof buf, f)) > 0)
      fwrite(buf, 1, len, stderr);
    fprintf(stderr, "--- end of the log of host %d\n", host);
    fclose(f);
  }
  assert_int_equal(status, expected);
}

void pn_stop(pn_net *n, int host)
{
  peerproc *p = n->peers[host];
  n->peers[host] = NULL;
  pp_send(p, "quit");
  expect_exit(n, host, pp_wait(p, PN_T_MS), 0);
}

void pn_kill(pn_net *n, int host)
{
  peerproc *p = n->peers[host];
  n->peers[host] = NULL;
  pp_signal(p, SIGKILL);
  expect_exit(n, host, pp_wait(p, PN_T_MS), 128 + SIGKILL);
}

bool pn_log_has(const pn_net *n, int host, const char *text)
{
  FILE *f = fopen(t_path("%s/h%d.log", n->root, host), "r");
  if (!f)
    return false;
  char *data = calloc(1, 4 << 20);
  size_t len = fread(data, 1, (4 << 20) - 1, f);
  fclose(f);
  data[len] = '\0';
  bool found = strstr(data, text) != NULL;
  free(data);
  return found;
}

/* ---- commands ----------------------------------------------------------- */

static json_t *vcommand(peerproc *p, const char *fmt, va_list ap, char *line, size_t size)
{
  vsnprintf(line, size, fmt, ap);
  return pp_command(p, line, PN_T_MS);
}

json_t *pn_ok(peerproc *p, const char *fmt, ...)
{
  char line[8192];
  va_list ap;
  va_start(ap, fmt);
  json_t *r = vcommand(p, fmt, ap, line, sizeof line);
  va_end(ap);
  if (!json_is_true(json_object_get(r, "ok")))
    fail_msg("'%s' failed: %s", line, json_string_value(json_object_get(r, "error")));
  return r;
}

void pn_refused(peerproc *p, const char *why, const char *fmt, ...)
{
  char line[8192];
  va_list ap;
  va_start(ap, fmt);
  json_t *r = vcommand(p, fmt, ap, line, sizeof line);
  va_end(ap);
  const char *error = json_string_value(json_object_get(r, "error"));
  const char *code = json_string_value(json_object_get(r, "code"));
  if (!json_is_false(json_object_get(r, "ok")) || !error || !strstr(error, why))
    fail_msg("'%s' should be refused with '%s', got ok=%s error=%s", line, why,
             json_is_true(json_object_get(r, "ok")) ? "true" : "false",
             error ? error : "(none)");
  /* Every refusal carries its LS_E* code, never LS_OK. */
  if (!code || strncmp(code, "LS_E", 4) != 0 || strcmp(code, "LS_EUNKNOWN") == 0)
    fail_msg("'%s' was refused without an error code: %s", line, code ? code : "(none)");
  json_decref(r);
}

json_t *pn_game_entry(peerproc *p, const char *id)
{
  json_t *r = pn_ok(p, "games");
  size_t i;
  json_t *g, *found = NULL;
  json_array_foreach(json_object_get(r, "games"), i, g) {
    if (strcmp(json_string_value(json_object_get(g, "id")), id) == 0)
      found = json_incref(g);
  }
  json_decref(r);
  return found;
}

const char *pn_field(json_t *entry, const char *field)
{
  char *b = rotating();
  json_t *v = entry ? json_object_get(entry, field) : NULL;
  if (!v || json_is_null(v))
    snprintf(b, 4096, "null");
  else if (json_is_string(v))
    snprintf(b, 4096, "%s", json_string_value(v));
  else if (json_is_integer(v))
    snprintf(b, 4096, "%lld", (long long)json_integer_value(v));
  else if (json_is_boolean(v))
    snprintf(b, 4096, "%s", json_is_true(v) ? "true" : "false");
  else {
    char *text = json_dumps(v, JSON_COMPACT);
    snprintf(b, 4096, "%s", text ? text : "?");
    free(text);
  }
  return b;
}

bool pn_poll_game(peerproc *p, const char *id, const char *field, const char *value,
                  double timeout_s)
{
  double t0 = pn_now();
  for (;;) {
    json_t *g = pn_game_entry(p, id);
    bool match = value ? g && strcmp(pn_field(g, field), value) == 0 : !g;
    json_decref(g);
    if (match)
      return true;
    if (pn_now() - t0 > timeout_s)
      return false;
    usleep(200000);
  }
}

/* ---- events ------------------------------------------------------------- */

void pn_expect_games_event(peerproc *p, const char *id, const char *field, const char *value,
                           int timeout_ms)
{
  double deadline = pn_now() + timeout_ms / 1000.0;
  for (;;) {
    int left = (int)((deadline - pn_now()) * 1000);
    json_t *ev = left > 0 ? pp_next(p, left) : NULL;
    if (!ev)
      fail_msg("no games-list-updated with %s %s=%s within %d ms", id, field,
               value ? value : "(absent)", timeout_ms);
    const char *type = json_string_value(json_object_get(ev, "type"));
    if (!type || strcmp(type, "games-list-updated") != 0) {
      json_decref(ev);
      continue;
    }
    json_t *entry = NULL, *g;
    size_t i;
    json_array_foreach(json_object_get(ev, "games"), i, g) {
      if (strcmp(json_string_value(json_object_get(g, "id")), id) == 0)
        entry = g;
    }
    bool match = value ? entry && strcmp(pn_field(entry, field), value) == 0 : !entry;
    json_decref(ev);
    if (match)
      return;
  }
}

json_t *pn_events_until(peerproc *p, const char *id, int timeout_ms, ...)
{
  const char *stops[16];
  int nstops = 0;
  va_list ap;
  va_start(ap, timeout_ms);
  for (const char *s; (s = va_arg(ap, const char *)) && nstops < 16;)
    stops[nstops++] = s;
  va_end(ap);
  json_t *events = json_array();
  double deadline = pn_now() + timeout_ms / 1000.0;
  for (;;) {
    int left = (int)((deadline - pn_now()) * 1000);
    json_t *ev = left > 0 ? pp_next(p, left) : NULL;
    if (!ev)
      fail_msg("no end event for %s within %d ms; saw: %s", id, timeout_ms, pn_types(events));
    const char *type = json_string_value(json_object_get(ev, "type"));
    const char *eid = json_string_value(json_object_get(ev, "id"));
    bool mine = eid && strcmp(eid, id) == 0;
    if (!type || (!mine && strcmp(type, "reply") != 0)) {
      json_decref(ev);
      continue;
    }
    json_array_append_new(events, ev);
    if (mine)
      for (int i = 0; i < nstops; i++)
        if (strcmp(type, stops[i]) == 0)
          return events;
  }
}

const char *pn_types(json_t *events)
{
  char *b = rotating();
  size_t len = 0, i;
  json_t *ev;
  b[0] = '\0';
  const char *prev = NULL;
  json_array_foreach(events, i, ev) {
    const char *t = json_string_value(json_object_get(ev, "type"));
    if (prev && strcmp(prev, t) == 0 && strcmp(t, "game-download-progress") == 0)
      continue; /* one progress stands for a run of them */
    prev = t;
    const char *cmd = json_string_value(json_object_get(ev, "cmd"));
    len += (size_t)snprintf(b + len, len < 4000 ? 4000 - len : 0, "%s%s%s%s", len ? " " : "",
                            t, cmd ? ":" : "", cmd ? cmd : "");
    if (len >= 4000)
      break;
  }
  return b;
}

int pn_find(json_t *events, const char *type, int from)
{
  for (size_t i = (size_t)(from < 0 ? 0 : from); i < json_array_size(events); i++)
    if (strcmp(json_string_value(json_object_get(json_array_get(events, i), "type")), type) ==
        0)
      return (int)i;
  return -1;
}

const char *pn_last_type(json_t *events)
{
  size_t n = json_array_size(events);
  return n ? json_string_value(json_object_get(json_array_get(events, n - 1), "type")) : "";
}

double pn_download_until(peerproc *p, const char *id, double at)
{
  char line[256];
  snprintf(line, sizeof line, "download %s", id);
  pp_send(p, line);
  for (;;) {
    json_t *ev = pp_next(p, PN_T_MS);
    if (!ev)
      fail_msg("the downloader went quiet");
    const char *type = json_string_value(json_object_get(ev, "type"));
    const char *eid = json_string_value(json_object_get(ev, "id"));
    bool mine = eid && strcmp(eid, id) == 0;
    double frac = -2;
    if (strcmp(type, "reply") == 0 && !json_is_true(json_object_get(ev, "ok")))
      fail_msg("download %s refused: %s", id, json_string_value(json_object_get(ev, "error")));
    if (mine && strcmp(type, "game-download-progress") == 0)
      frac = (double)json_integer_value(json_object_get(ev, "bytes")) /
             (double)json_integer_value(json_object_get(ev, "total_bytes"));
    bool ended = mine && (strcmp(type, "game-download-finished") == 0 ||
                          strcmp(type, "game-download-failed") == 0 ||
                          strcmp(type, "game-download-cancelled") == 0);
    json_decref(ev);
    if (ended)
      return -1;
    if (frac >= at)
      return frac;
  }
}

/* ---- files -------------------------------------------------------------- */

bool pn_exists(const char *path)
{
  struct stat st;
  return lstat(path, &st) == 0;
}

bool pn_same_file(const char *a, const char *b)
{
  FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
  bool same = fa && fb;
  static char ba[1 << 16], bb[1 << 16];
  while (same) {
    size_t na = fread(ba, 1, sizeof ba, fa), nb = fread(bb, 1, sizeof bb, fb);
    if (na != nb || memcmp(ba, bb, na) != 0)
      same = false;
    if (na == 0)
      break;
  }
  if (fa)
    fclose(fa);
  if (fb)
    fclose(fb);
  return same;
}

bool pn_same_tree(const char *a, const char *b)
{
  char *argv[] = {"diff", "-r", "-q", (char *)a, (char *)b, NULL};
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    execvp(argv[0], argv);
    _exit(127);
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}
