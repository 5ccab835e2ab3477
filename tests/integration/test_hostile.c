/* Hostile peers (issue "Hostile peers"): each test plays one attack with the
 * malicious peer of tests/common/evilpeer.h against a real victim
 * (lanspread-peer-cli on 127.0.0.1), checks that the victim refuses it the
 * way docs/PROTOCOL.md says, says so once in its log, and that it keeps
 * serving a well-behaved peer meanwhile: it downloads a game from a
 * seeder during the attack.
 *
 * - game lists: a GameList of more than LS_PROTO_MAX_GAMES entries, one
 *   over the GameList frame limit, and one of thousands of ids not in the
 *   catalog, re-sent at every refresh;
 * - file lists: one that claims more than the victim's disk holds (refused
 *   before a byte is written, with both figures), and a seeder that sends
 *   its file list and then never a byte (dropped after
 *   LS_DOWNLOAD_STALL_SECONDS: the download ends, kept, with the reason);
 * - descriptors: a game of 1500 archives downloads and installs between two
 *   peers whose descriptor limit is the usual soft limit, 1024;
 * - ghosts: 300 throwaway identities, each from its own loopback address,
 *   that say Hello and vanish; the victim dials each back at most
 *   LS_LINK_MAX_FAILURES times, links at most LS_MAX_LEARNED_LINKS of
 *   them, and then forgets them all;
 * - serving (the seeder is attacked, and must keep serving the victim):
 *   unfinished request frames on hundreds of streams (capped per
 *   connection, reset when stalled) and a flood of GetGames whose answers
 *   are never read (hashed once, one shared manifest). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testrun.h"

#include "evilpeer.h"
#include "gamelists.h"
#include "node/serve.h"
#include "peerproc.h"
#include "procfs.h"
#include "testutil.h"

#include <jansson.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define T_MS 30000

/* A sanitizer's shadow memory and quarantine make RSS no measure of what
 * the program holds: there the RSS bounds are printed, not checked. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RSS_CHECKED 0
#else
#define RSS_CHECKED 1
#endif


typedef struct party {
  char *root;
  char victim_addr[32], seeder_addr[32];
  peerproc *victim, *seeder;
} party;

static unsigned next_port(void)
{
  static unsigned port;
  if (!port)
    port = 46000 + (unsigned)(getpid() % 1000) * 8;
  return port++;
}

/* A peer with its stderr in ROOT/NAME.log (the victim's refusals are read
 * from there), under the descriptor limit LS_TEST_NOFILE when set. */
static peerproc *start_peer(party *pt, const char *name, const char *addr, const char *peer)
{
  const char *log = t_path("%s/%s.log", pt->root, name);
  const char *nofile = getenv("LS_TEST_NOFILE");
  char script[4200];
  snprintf(script, sizeof script, "%s%s%sexec \"$0\" \"$@\" 2>'%s'", nofile ? "ulimit -n " : "",
           nofile ? nofile : "", nofile ? " && " : "", log);
  char *argv[20] = {"/bin/sh", "-c", script, (char *)pp_program("lanspread-peer-cli"),
                    "--game-dir", strdup(t_path("%s/%s/games", pt->root, name)),
                    "--state-dir", strdup(t_path("%s/%s/state", pt->root, name)),
                    "--catalog", strdup(t_path("%s/catalog.json", pt->root)),
                    "--listen", (char *)addr, "--no-mdns", "--name", (char *)name, "--serve"};
  int n = 16;
  if (peer) {
    argv[n++] = "--peer";
    argv[n++] = (char *)peer;
  }
  argv[n] = NULL;
  peerproc *p = pp_start(argv);
  json_decref(pp_expect(p, "ready", NULL, T_MS));
  free(argv[5]);
  free(argv[7]);
  free(argv[9]);
  return p;
}

/* A seeder with three games (g0001..g0003, 8 MiB of tar archives each; the
 * catalog lists those only) and a victim that has it as a static peer. */
static party start_party(void)
{
  party pt = {.root = t_tempdir()};
  char *gen[] = {(char *)pp_program("lanspread-gen"), "--quiet", "--game-dir",
                 strdup(t_path("%s/seeder/games", pt.root)), "--games", "3", "--id-prefix", "g",
                 "--archives", "2", "--size", "8M", "--format", "tar", "--catalog",
                 strdup(t_path("%s/catalog.json", pt.root)), NULL};
  assert_int_equal(pp_run(gen, T_MS), 0);
  free(gen[3]);
  free(gen[15]);
  t_mkdir(pt.root, "victim/games");
  snprintf(pt.seeder_addr, sizeof pt.seeder_addr, "127.0.0.1:%u", next_port());
  snprintf(pt.victim_addr, sizeof pt.victim_addr, "127.0.0.1:%u", next_port());
  pt.seeder = start_peer(&pt, "seeder", pt.seeder_addr, NULL);
  pt.victim = start_peer(&pt, "victim", pt.victim_addr, pt.seeder_addr);
  json_t *r = pp_command(pt.victim, "wait-peers 1 20", T_MS);
  assert_true(json_is_true(json_object_get(r, "ok")));
  json_decref(r);
  return pt;
}

static void stop_party(party *pt)
{
  pp_send(pt->victim, "quit");
  pp_send(pt->seeder, "quit");
  assert_int_equal(pp_wait(pt->victim, T_MS), 0);
  assert_int_equal(pp_wait(pt->seeder, T_MS), 0);
  t_rmtree(pt->root); /* the directory; its name is testutil's */
}

/* How often `needle` occurs in the log of peer `name`. */
static size_t peer_log_count(const party *pt, const char *name, const char *needle)
{
  size_t len, n = 0;
  char *log = t_read(t_path("%s/%s.log", pt->root, name), &len);
  for (const char *at = log; (at = strstr(at, needle)); at += strlen(needle))
    n++;
  free(log);
  return n;
}

/* How often `needle` occurs in the victim's log. */
static size_t log_count(const party *pt, const char *needle)
{
  return peer_log_count(pt, "victim", needle);
}

/* The resident set of a process (VmRSS), in KiB. */
static long rss_kib(const peerproc *p)
{
  long kib = t_proc_number(pp_pid(p), "status", "VmRSS:");
  assert_true(kib > 0);
  return kib;
}

/* The victim downloads game id from the seeder and installs it, and its
 * archives are the seeder's. */
static void victim_downloads(party *pt, const char *id)
{
  json_t *r = pp_command(pt->victim, t_path("download %s", id), T_MS);
  assert_true(json_is_true(json_object_get(r, "ok")));
  json_decref(r);
  r = pp_command(pt->victim, t_path("wait game-install-finished %s 90", id), 95000);
  if (!json_is_true(json_object_get(r, "ok")))
    fail_msg("the victim's download of %s failed during the attack: %s", id, json_dumps(r, 0));
  json_decref(r);
  for (int k = 1; k <= 2; k++) {
    size_t want_len, got_len;
    char *want = t_read(t_path("%s/seeder/games/%s/%s.part%02d.eti", pt->root, id, id, k),
                        &want_len);
    char *got = t_read(t_path("%s/victim/games/%s/%s.part%02d.eti", pt->root, id, id, k),
                       &got_len);
    assert_int_equal(got_len, want_len);
    assert_memory_equal(got, want, want_len);
    free(want);
    free(got);
  }
}

/* The ids the victim's library lists, as one comma-separated string. */
static char *library_ids(party *pt)
{
  json_t *r = pp_command(pt->victim, "games", T_MS);
  json_t *games = json_object_get(r, "games");
  char *ids = calloc(1, 4096);
  size_t i;
  json_t *g;
  json_array_foreach(games, i, g) {
    if (i)
      strcat(ids, ",");
    strncat(ids, json_string_value(json_object_get(g, "id")), 64);
  }
  json_decref(r);
  return ids;
}

typedef struct attack {
  evil_config cfg;
  char *body, *files; /* GameList and GameFiles bodies */
} attack;

static int run_evil(void *arg)
{
  return evil_run(&((attack *)arg)->cfg);
}

/* Starts the malicious peer in a child; its report lines come on stdout. */
static peerproc *start_evil(party *pt, attack *a, unsigned ghosts, unsigned run_ms,
                            unsigned quiet_ms)
{
  a->cfg.victim = pt->victim_addr;
  a->cfg.bind_host = "127.0.0.1";
  static unsigned attacks;
  const char *dir = t_path("evil%u", ++attacks); /* a new identity each time */
  a->cfg.state_dir = strdup(t_path("%s/%s", pt->root, dir));
  t_mkdir(pt->root, dir);
  a->cfg.game_list = a->body;
  a->cfg.game_list_len = a->body ? strlen(a->body) : 0;
  a->cfg.game_files = a->files;
  a->cfg.game_files_len = a->files ? strlen(a->files) : 0;
  a->cfg.ghosts = ghosts;
  a->cfg.run_ms = run_ms;
  a->cfg.quiet_ms = quiet_ms;
  return pp_fork_in_netns(NULL, run_evil, a);
}

/* Starts a client attack on the seeder (the process that must keep
 * serving the victim's downloads meanwhile). */
static peerproc *start_client_attack(party *pt, attack *a, unsigned run_ms)
{
  a->cfg.victim = pt->seeder_addr;
  if (!a->cfg.bind_host)
    a->cfg.bind_host = "127.0.0.1";
  static unsigned attacks;
  const char *dir = t_path("client%u", ++attacks);
  a->cfg.state_dir = strdup(t_path("%s/%s", pt->root, dir));
  t_mkdir(pt->root, dir);
  a->cfg.run_ms = run_ms;
  return pp_fork_in_netns(NULL, run_evil, a);
}

/* Reads the malicious peer's lines until one has "evil" == what. */
static json_t *evil_expect(peerproc *e, const char *what, int timeout_ms)
{
  for (;;) {
    json_t *line = pp_next(e, timeout_ms);
    if (!line)
      fail_msg("the malicious peer never reported \"%s\"", what);
    const char *got = json_string_value(json_object_get(line, "evil"));
    if (got && strcmp(got, what) == 0)
      return line;
    if (got && (strcmp(got, "closed") == 0 || strstr(got, "failed"))) {
      const char *diag = json_string_value(json_object_get(line, "diag"));
      print_message("malicious peer: %s %s\n", got, diag ? diag : "");
    }
    json_decref(line);
  }
}

/* One malicious peer, one game list: the victim refuses it with `reason`
 * in its log (once, whatever the number of refreshes) and disconnects. */
static void refused_list(party *pt, char *body, const char *reason, const char *id)
{
  attack a = {.body = body};
  size_t before = log_count(pt, "sent a game list this peer refuses");
  peerproc *e = start_evil(pt, &a, 0, 8000, 0);
  json_decref(evil_expect(e, "hello-acked", T_MS));
  json_decref(evil_expect(e, "list-sent", T_MS));
  json_t *closed = evil_expect(e, "closed", T_MS); /* the victim hung up */
  json_decref(closed);
  victim_downloads(pt, id);
  pp_send(e, "stop");
  json_decref(evil_expect(e, "done", T_MS));
  assert_int_equal(pp_wait(e, T_MS), 0);
  if (log_count(pt, "sent a game list this peer refuses") != before + 1)
    fail_msg("log: %s", t_read(t_path("%s/victim.log", pt->root), &(size_t){0}));
  if (log_count(pt, reason) < 1)
    fail_msg("no \"%s\" in: %s", reason, t_read(t_path("%s/victim.log", pt->root), &(size_t){0}));
  char *ids = library_ids(pt);
  assert_string_equal(ids, "g0001,g0002,g0003");
  free(ids);
  free(body);
  free((char *)a.cfg.state_dir);
}

static void game_list_attacks(void **state)
{
  (void)state;
  party pt = start_party();
  /* 4097 games (catalog ids among them): over LS_PROTO_MAX_GAMES */
  refused_list(&pt, evil_game_list_body("g000", 4097, 1), "at most 4096", "g0001");
  /* 2200 games of 2000-byte names: a 4.5 MB frame, over the GameList limit */
  refused_list(&pt, evil_game_list_body("g", 2200, 2000), "exceeds the limit of 4194304",
               "g0002");

  /* 3000 ids not in the catalog, re-sent at every refresh: kept out of the
   * library, said once. */
  attack a = {.body = evil_game_list_body("foreign", 3000, 8)};
  peerproc *e = start_evil(&pt, &a, 0, 12000, 0);
  json_decref(evil_expect(e, "hello-acked", T_MS));
  json_decref(evil_expect(e, "list-sent", T_MS));
  victim_downloads(&pt, "g0003");
  json_t *second = evil_expect(e, "list-sent", T_MS); /* the victim's next refresh */
  json_decref(second);
  char *ids = library_ids(&pt);
  assert_string_equal(ids, "g0001,g0002,g0003");
  free(ids);
  json_t *r = pp_command(pt.victim, "peers", T_MS);
  if (json_array_size(json_object_get(r, "peers")) != 2) /* still connected */
    fail_msg("peers: %s\nlog: %s", json_dumps(r, 0),
             t_read(t_path("%s/victim.log", pt.root), &(size_t){0}));
  json_decref(r);
  pp_send(e, "stop");
  json_decref(evil_expect(e, "done", T_MS));
  assert_int_equal(pp_wait(e, T_MS), 0);
  assert_int_equal(log_count(&pt, "lists 3000 games that are not in the catalog"), 1);
  free(a.body);
  free((char *)a.cfg.state_dir);
  stop_party(&pt);
}

/* A GameFiles body for g0001 version 2.0: one file of `chunks` chunks of
 * 1 MiB (hashes of nothing the evil peer will ever send) and version.ini. */
static char *files_body(size_t chunks)
{
  static const char hash[] = "\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"";
  size_t cap = chunks * (sizeof hash + 1) + 512, len = 0;
  char *body = malloc(cap);
  len += (size_t)snprintf(body, cap, "{\"type\":\"GameFiles\",\"id\":\"g0001\",\"version\":\"2.0\","
                          "\"chunk_size\":1048576,\"files\":[{\"path\":\"big.eti\",\"size\":%zu,"
                          "\"sha256\":[", chunks << 20);
  for (size_t i = 0; i < chunks; i++)
    len += (size_t)snprintf(body + len, cap - len, "%s%s", i ? "," : "", hash);
  snprintf(body + len, cap - len, "]},{\"path\":\"version.ini\",\"size\":4,\"sha256\":[%s]}]}",
           hash);
  return body;
}

/* Waits (20 s at most) until the victim's library says the latest version
 * of game id is `version`. */
static void wait_latest(party *pt, const char *id, const char *version)
{
  for (int i = 0; i < 100; i++) {
    json_t *r = pp_command(pt->victim, "games", T_MS);
    size_t k;
    json_t *g;
    bool seen = false;
    json_array_foreach(json_object_get(r, "games"), k, g)
      seen = seen || (strcmp(json_string_value(json_object_get(g, "id")), id) == 0 &&
                      json_string_value(json_object_get(g, "latest_version")) &&
                      strcmp(json_string_value(json_object_get(g, "latest_version")), version) == 0);
    json_decref(r);
    if (seen)
      return;
    usleep(200 * 1000);
  }
  fail_msg("the victim's library never showed %s %s", id, version);
}

/* A malicious peer that claims g0001 in version 2.0 (newer than the
 * seeder's, so the victim's download of g0001 goes to it alone) and serves
 * a file list of `chunks` chunks; the victim was told to download it, and
 * *reply (when not NULL) gets the answer. */
static peerproc *evil_download(party *pt, attack *a, size_t chunks, json_t **reply)
{
  a->body = strdup("{\"type\":\"GameList\",\"games\":[{\"id\":\"g0001\",\"name\":\"G\","
                   "\"version\":\"2.0\",\"size\":1}]}");
  a->files = files_body(chunks);
  peerproc *e = start_evil(pt, a, 0, 60000, 0);
  json_decref(evil_expect(e, "list-sent", T_MS));
  wait_latest(pt, "g0001", "2.0"); /* the victim has read the list */
  json_t *r = pp_command(pt->victim, "download g0001", T_MS);
  if (reply) {
    *reply = r;
    return e;
  }
  if (!json_is_true(json_object_get(r, "ok")))
    fail_msg("download g0001: %s", json_dumps(r, 0));
  json_decref(r);
  return e;
}

static void evil_done(peerproc *e, attack *a)
{
  pp_signal(e, SIGKILL);
  pp_wait(e, T_MS);
  free(a->body);
  free(a->files);
  free((char *)a->cfg.state_dir);
}

/* Waits (20 s at most) until the victim is connected to n peers. */
static void wait_peer_count(party *pt, size_t n)
{
  for (int i = 0; i < 100; i++) {
    json_t *r = pp_command(pt->victim, "peers", T_MS);
    size_t have = json_array_size(json_object_get(r, "peers"));
    json_decref(r);
    if (have == n)
      return;
    usleep(200 * 1000);
  }
  fail_msg("the victim is not connected to %zu peers after 20 s", n);
}

/* The state the victim's library gives game id. */
/* The victim's games entry of id (a new reference), or NULL. */
static json_t *game_of(party *pt, const char *id)
{
  json_t *r = pp_command(pt->victim, "games", T_MS), *found = NULL;
  size_t i;
  json_t *g;
  json_array_foreach(json_object_get(r, "games"), i, g)
    if (strcmp(json_string_value(json_object_get(g, "id")), id) == 0)
      found = json_incref(g);
  json_decref(r);
  return found;
}

static char *state_of(party *pt, const char *id)
{
  json_t *g = game_of(pt, id);
  char *state = g ? strdup(json_string_value(json_object_get(g, "state"))) : NULL;
  json_decref(g);
  return state;
}

static void file_list_attacks(void **state)
{
  (void)state;
  party pt = start_party();
  /* More than the disk holds: the claim is bounded by the frame (16 MiB of
   * hashes, about 240 GiB), so a disk with more free space cannot be
   * tested this way. */
  struct statvfs sv;
  assert_int_equal(statvfs(t_path("%s/victim/games", pt.root), &sv), 0);
  uint64_t free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
  size_t chunks = (size_t)(free_bytes >> 20) / 4 * 5 + 4096; /* others write too */
  if (chunks > 200000)
    ls_skip("the disk has %llu GiB free, more than one file list can claim",
            (unsigned long long)(free_bytes >> 30));
  attack a = {0};
  json_t *ev;
  peerproc *e = evil_download(&pt, &a, chunks, &ev);
  if (json_is_true(json_object_get(ev, "ok"))) /* refused at once */
    fail_msg("a claim of %zu MiB was accepted", chunks);
  const char *error = json_string_value(json_object_get(ev, "error"));
  print_message("a claim of %zu MiB: %s\n", chunks, error);
  assert_string_equal(json_string_value(json_object_get(ev, "code")), "LS_ENOSPC");
  assert_non_null(strstr(error, "more on disk"));
  assert_non_null(strstr(error, "is free"));
  json_decref(ev);
  assert_false(t_exists(t_path("%s/victim/games/g0001/big.eti", pt.root)));
  assert_false(t_exists(t_path("%s/victim/games/g0001/.lanspread.download", pt.root)));
  victim_downloads(&pt, "g0002");
  evil_done(e, &a);
  wait_peer_count(&pt, 1); /* the pings tell it the malicious peer is gone */

  /* A seeder that never sends a byte: dropped after the stall timeout, the
   * download kept as paused; the seeder serves the victim meanwhile. */
  attack b = {0};
  e = evil_download(&pt, &b, 4, NULL);
  json_decref(evil_expect(e, "chunk-asked", T_MS));
  victim_downloads(&pt, "g0003");
  json_t *r = pp_expect(pt.victim, "game-download-failed", NULL, 45000);
  char *text = json_dumps(r, 0);
  print_message("a silent seeder: %s\n", text);
  free(text);
  assert_string_equal(json_string_value(json_object_get(r, "code")), "LS_ENOPEER");
  assert_non_null(strstr(json_string_value(json_object_get(r, "error")), "no data for 15 s"));
  json_decref(r);
  if (log_count(&pt, "no data for 15 s") < 1)
    fail_msg("no stall in: %s", t_read(t_path("%s/victim.log", pt.root), &(size_t){0}));
  char *g0001 = state_of(&pt, "g0001");
  assert_string_equal(g0001, "paused");
  free(g0001);
  assert_true(t_exists(t_path("%s/victim/games/g0001/.lanspread.download", pt.root)));
  evil_done(e, &b);
  stop_party(&pt);
}

/* The game root's tree: every path below it with its size, one a line,
 * sorted. */
static char *tree_of(const char *root)
{
  FILE *f = popen(t_path("cd '%s' && find . -printf '%%P %%s\\n' | sort", root), "r");
  char *text = calloc(1, 1 << 16);
  size_t n = fread(text, 1, (1 << 16) - 1, f);
  text[n] = '\0';
  pclose(f);
  return text;
}

/* The catalog of ROOT/catalog.json with game id's version pinned. */
static void pin_version(party *pt, const char *id, const char *version, const char *digest)
{
  const char *path = t_path("%s/catalog.json", pt->root);
  json_t *catalog = json_load_file(path, 0, NULL);
  size_t i;
  json_t *g;
  json_array_foreach(json_object_get(catalog, "games"), i, g)
    if (strcmp(json_string_value(json_object_get(g, "id")), id) == 0)
      json_object_set_new(g, "versions", json_pack("{s:s}", version, digest));
  assert_int_equal(json_dump_file(catalog, path, JSON_INDENT(2)), 0);
  json_decref(catalog);
}

/* The victim's offer of game id in `version` (its "offers" entry), or NULL. */
static json_t *offer_of(party *pt, const char *id, const char *version)
{
  json_t *g = game_of(pt, id), *found = NULL, *o;
  size_t k;
  json_array_foreach(json_object_get(g, "offers"), k, o)
    if (strcmp(json_string_value(json_object_get(o, "version")), version) == 0)
      found = json_incref(o);
  json_decref(g);
  return found;
}

/* The reply to cmd; fails when a line of type `not` comes before it. */
static json_t *reply_without(peerproc *p, const char *cmd, const char *not)
{
  for (;;) {
    json_t *line = pp_next(p, T_MS);
    if (!line)
      fail_msg("no reply to %s", cmd);
    const char *type = json_string_value(json_object_get(line, "type"));
    if (type && strcmp(type, not) == 0)
      fail_msg("%s before the reply to %s: %s", not, cmd, json_dumps(line, 0));
    if (type && strcmp(type, "reply") == 0 &&
        strcmp(json_string_value(json_object_get(line, "cmd")), cmd) == 0)
      return line;
    json_decref(line);
  }
}

/* After the refusal: g0001 2.0 is no offer of evil (not in offers, not the
 * latest version, no update), and the entry says why (code and peer). */
static void assert_refused_offer(party *pt, const char *version, const char *latest)
{
  json_t *g = game_of(pt, "g0001");
  assert_non_null(g);
  assert_string_equal(json_string_value(json_object_get(g, "latest_version")), latest);
  json_t *o, *refused = json_object_get(g, "refused_offers");
  size_t k;
  json_array_foreach(json_object_get(g, "offers"), k, o) {
    if (strcmp(json_string_value(json_object_get(o, "version")), version) != 0)
      continue;
    json_t *by;
    size_t n;
    json_array_foreach(json_object_get(o, "peers"), n, by)
      assert_string_not_equal(json_string_value(json_object_get(by, "name")), "evil");
  }
  assert_int_equal(json_array_size(refused), 1);
  json_t *r = json_array_get(refused, 0);
  assert_string_equal(json_string_value(json_object_get(r, "version")), version);
  assert_string_equal(json_string_value(json_object_get(r, "name")), "evil");
  assert_string_equal(json_string_value(json_object_get(r, "code")), "LS_EPIN");
  assert_int_equal(strlen(json_string_value(json_object_get(r, "peer_id"))), 64);
  assert_non_null(strstr(json_string_value(json_object_get(r, "error")), "g0001 2.0"));
  json_decref(g);
}

/* Version pins: the organiser pins g0001 2.0 with the digest manifest-digest
 * prints on the honest seeder. A malicious peer offering 2.0 with another
 * file list is refused (LS_EPIN) before anything is written: the victim's
 * root stays as it was, 1.0 installed, and evil's 2.0 is no offer any more
 * (not in offers, not the latest version, no update; refused_offers says
 * why), so a second download is refused without asking it. Once the honest
 * seeder is there too, 2.0 downloads from it alone and installs by itself,
 * and 1.0's third archive, stale, goes only then. A newer 3.0 that only a new peer offers is shown as such
 * (not pinned, "new_peers_only") and nothing downloads or installs it;
 * after a restart the seeder is a peer of an earlier session. */
static void pinned_version_refuses_other_lists(void **state)
{
  (void)state;
  party pt = {.root = t_tempdir()};
  char *dirs[] = {strdup(t_path("%s/seeder/games", pt.root)), strdup(t_path("%s/victim/games", pt.root)),
                  strdup(t_path("%s/catalog.json", pt.root))};
  char *gen[] = {(char *)pp_program("lanspread-gen"), "--quiet", "--game-dir", dirs[0],
                 "--id-prefix", "g", "--archives", "2", "--size", "2M", "--format", "tar",
                 "--game-version", "2.0", "--catalog", dirs[2], NULL};
  assert_int_equal(pp_run(gen, T_MS), 0);
  gen[3] = dirs[1]; /* the game in 1.0, installed, with a third archive 2.0 drops */
  gen[7] = "3";
  gen[13] = "1.0";
  gen[14] = "--installed";
  gen[15] = NULL;
  assert_int_equal(pp_run(gen, T_MS), 0);
  snprintf(pt.seeder_addr, sizeof pt.seeder_addr, "127.0.0.1:%u", next_port());
  snprintf(pt.victim_addr, sizeof pt.victim_addr, "127.0.0.1:%u", next_port());

  /* The organiser's step: the digest of the seeder's 2.0, pinned. */
  pt.seeder = start_peer(&pt, "seeder", pt.seeder_addr, NULL);
  json_t *r = pp_command(pt.seeder, "manifest-digest g0001", T_MS);
  const char *text = json_string_value(json_object_get(r, "digest"));
  if (!text || strncmp(text, "sha256:", 7) != 0 || strlen(text) != 71)
    fail_msg("manifest-digest: %s", json_dumps(r, 0));
  char digest[72];
  snprintf(digest, sizeof digest, "%s", text);
  assert_string_equal(json_string_value(json_object_get(r, "version")), "2.0");
  pin_version(&pt, "g0001", "2.0", digest);
  json_decref(r);
  pp_send(pt.seeder, "quit");
  assert_int_equal(pp_wait(pt.seeder, T_MS), 0);

  /* Only the malicious peer offers 2.0: refused, nothing written. */
  pt.victim = start_peer(&pt, "victim", pt.victim_addr, NULL);
  char *root = strdup(t_path("%s/victim/games/g0001", pt.root));
  char *before = tree_of(root);
  attack a = {.body = strdup("{\"type\":\"GameList\",\"games\":[{\"id\":\"g0001\",\"name\":\"G\","
                             "\"version\":\"2.0\",\"size\":1}]}"),
              .files = files_body(2)};
  peerproc *e = start_evil(&pt, &a, 0, 60000, 0);
  json_decref(evil_expect(e, "list-sent", T_MS));
  wait_latest(&pt, "g0001", "2.0");
  pp_send(pt.victim, "download g0001");
  json_t *ev = pp_expect(pt.victim, "game-manifest-refused", NULL, T_MS);
  const char *error = json_string_value(json_object_get(ev, "error"));
  print_message("refused: %s\n", error);
  assert_string_equal(json_string_value(json_object_get(ev, "code")), "LS_EPIN");
  assert_string_equal(json_string_value(json_object_get(ev, "version")), "2.0");
  assert_non_null(strstr(error, "g0001 2.0"));
  assert_non_null(strstr(error, digest));
  json_decref(ev);
  r = pp_expect(pt.victim, "reply", "download", T_MS);
  assert_false(json_is_true(json_object_get(r, "ok")));
  assert_string_equal(json_string_value(json_object_get(r, "code")), "LS_EPIN");
  json_decref(r);
  char *after = tree_of(root);
  assert_string_equal(after, before);
  free(after);
  /* The refused 2.0 is no offer: no update to it, and asking again is
   * refused by what the victim remembers, without asking evil. */
  char *st = state_of(&pt, "g0001");
  assert_string_equal(st, "installed");
  free(st);
  assert_refused_offer(&pt, "2.0", "1.0");
  assert_null(offer_of(&pt, "g0001", "2.0"));
  pp_send(pt.victim, "download g0001");
  r = reply_without(pt.victim, "download", "game-manifest-refused");
  assert_false(json_is_true(json_object_get(r, "ok")));
  assert_string_equal(json_string_value(json_object_get(r, "code")), "LS_EPIN");
  assert_non_null(strstr(json_string_value(json_object_get(r, "error")), digest));
  json_decref(r);
  assert_true(t_exists(t_path("%s/local/README.txt", root)));
  assert_true(t_exists(t_path("%s/g0001.part03.eti", root))); /* 1.0's payload is whole */
  size_t len;
  char *version = t_read(t_path("%s/version.ini", root), &len);
  assert_string_equal(version, "1.0\n");
  free(version);

  /* The honest seeder joins: 2.0 comes from it alone and installs. */
  pt.seeder = start_peer(&pt, "seeder", pt.seeder_addr, pt.victim_addr);
  wait_peer_count(&pt, 2);
  wait_latest(&pt, "g0001", "2.0");
  assert_refused_offer(&pt, "2.0", "2.0");
  st = state_of(&pt, "g0001"); /* 2.0 from the seeder */
  assert_string_equal(st, "update_available");
  free(st);
  pp_send(pt.victim, "download g0001"); /* evil is no source: not asked */
  r = reply_without(pt.victim, "download", "game-manifest-refused");
  if (!json_is_true(json_object_get(r, "ok")))
    fail_msg("download g0001 from the honest seeder: %s", json_dumps(r, 0));
  assert_int_equal(json_integer_value(json_object_get(r, "peers")), 1);
  json_decref(r);
  r = pp_command(pt.victim, "wait game-install-finished g0001 60", 65000);
  assert_true(json_is_true(json_object_get(r, "ok")));
  json_decref(r);
  version = t_read(t_path("%s/version.ini", root), &len);
  assert_string_equal(version, "2.0\n");
  free(version);
  assert_false(t_exists(t_path("%s/g0001.part03.eti", root))); /* stale once 2.0 committed */

  /* An unpinned 3.0 from a new peer: shown with who offers it, never
   * fetched by itself. */
  attack b = {.body = strdup("{\"type\":\"GameList\",\"games\":[{\"id\":\"g0001\",\"name\":\"G\","
                             "\"version\":\"3.0\",\"size\":1}]}")};
  peerproc *e3 = start_evil(&pt, &b, 0, 60000, 0);
  json_decref(evil_expect(e3, "list-sent", T_MS));
  wait_latest(&pt, "g0001", "3.0");
  json_t *o = offer_of(&pt, "g0001", "3.0");
  assert_non_null(o);
  assert_false(json_is_true(json_object_get(o, "pinned")));
  assert_true(json_is_true(json_object_get(o, "new_peers_only")));
  json_t *by = json_array_get(json_object_get(o, "peers"), 0);
  assert_int_equal(json_array_size(json_object_get(o, "peers")), 1);
  assert_string_equal(json_string_value(json_object_get(by, "name")), "evil");
  assert_int_equal(strlen(json_string_value(json_object_get(by, "peer_id"))), 64);
  json_decref(o);
  o = offer_of(&pt, "g0001", "2.0");
  assert_true(json_is_true(json_object_get(o, "pinned")));
  assert_int_equal(json_array_size(json_object_get(o, "peers")), 1); /* the seeder: evil refused */
  assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(o, "peers"), 0),
                                                        "name")), "seeder");
  json_decref(o);
  assert_refused_offer(&pt, "2.0", "3.0");
  usleep(1500 * 1000);
  st = state_of(&pt, "g0001");
  assert_string_equal(st, "update_available");
  free(st);
  version = t_read(t_path("%s/version.ini", root), &len);
  assert_string_equal(version, "2.0\n");
  free(version);
  assert_false(t_exists(t_path("%s/.lanspread.download", root)));
  evil_done(e3, &b);
  evil_done(e, &a);

  /* Restarted, the victim knows the seeder from its last session. */
  pp_send(pt.victim, "quit");
  assert_int_equal(pp_wait(pt.victim, T_MS), 0);
  pt.victim = start_peer(&pt, "victim", pt.victim_addr, pt.seeder_addr);
  r = pp_command(pt.victim, "wait-peers 1 20", T_MS);
  assert_true(json_is_true(json_object_get(r, "ok")));
  json_decref(r);
  o = offer_of(&pt, "g0001", "2.0");
  assert_non_null(o);
  assert_false(json_is_true(json_object_get(o, "new_peers_only")));
  json_decref(o);
  free(before);
  free(root);
  for (int k = 0; k < 3; k++)
    free(dirs[k]);
  stop_party(&pt);
}

/* The soft descriptor limit of a process (/proc/PID/limits), or -1. */
static long open_files_limit(const peerproc *p)
{
  return t_proc_number(pp_pid(p), "limits", "Max open files");
}

/* Finding 9: one descriptor per payload file made a 1500-file game fail
 * under the usual soft limit of 1024 ("Too many open files"). And finding
 * 4's answer budget: the game's manifest asked for and never read while
 * the victim downloads it. */
static void many_files_under_the_usual_descriptor_limit(void **state)
{
  (void)state;
  party pt = {.root = t_tempdir()};
  char *gen[] = {(char *)pp_program("lanspread-gen"), "--quiet", "--game-dir",
                 strdup(t_path("%s/seeder/games", pt.root)), "--id-prefix", "g", "--archives",
                 "1500", "--size", "30M", "--format", "tar", "--catalog",
                 strdup(t_path("%s/catalog.json", pt.root)), "--expect-dir",
                 strdup(t_path("%s/want", pt.root)), NULL};
  assert_int_equal(pp_run(gen, T_MS), 0);
  free(gen[3]);
  free(gen[13]);
  free(gen[15]);
  t_mkdir(pt.root, "victim/games");
  snprintf(pt.seeder_addr, sizeof pt.seeder_addr, "127.0.0.1:%u", next_port());
  snprintf(pt.victim_addr, sizeof pt.victim_addr, "127.0.0.1:%u", next_port());
  setenv("LS_TEST_NOFILE", "1024", 1);
  pt.seeder = start_peer(&pt, "seeder", pt.seeder_addr, NULL);
  pt.victim = start_peer(&pt, "victim", pt.victim_addr, pt.seeder_addr);
  unsetenv("LS_TEST_NOFILE");
  assert_int_equal(open_files_limit(pt.seeder), 1024); /* the limit did take effect */
  assert_int_equal(open_files_limit(pt.victim), 1024);
  json_decref(pp_command(pt.victim, "wait-peers 1 20", T_MS));
  /* Meanwhile a client asks for the manifest of 1500 files on 256 streams
   * and reads none of it: past LS_SERVE_ANSWER_BYTES_PER_CONN of answers
   * not acknowledged, the seeder answers it "busy" (said once), and the
   * victim's own GetGame, on its own connection, is answered. */
  attack a = {.cfg = {.attack = EVIL_GET_GAME_FLOOD, .conns = 1, .streams = 256,
                      .game_id = "g0001", .recv_window = 16u << 10}};
  peerproc *e = start_client_attack(&pt, &a, 8000);
  json_decref(evil_expect(e, "attack-sent", T_MS));
  json_t *r = pp_command(pt.victim, "download g0001", T_MS);
  assert_true(json_is_true(json_object_get(r, "ok")));
  json_decref(r);
  r = pp_command(pt.victim, "wait game-install-finished g0001 300", 305000);
  if (!json_is_true(json_object_get(r, "ok")))
    fail_msg("no install: %s", t_read(t_path("%s/victim.log", pt.root), &(size_t){0}));
  json_decref(r);
  json_decref(evil_expect(e, "done", 2 * T_MS));
  assert_int_equal(pp_wait(e, T_MS), 0);
  free((char *)a.cfg.state_dir);
  assert_int_equal(peer_log_count(&pt, "seeder", "of answers unread"), 1);
  assert_int_equal(log_count(&pt, "Too many open files"), 0);
  char *diff[] = {"/usr/bin/diff", "-r", strdup(t_path("%s/want/g0001", pt.root)),
                  strdup(t_path("%s/victim/games/g0001/local", pt.root)), NULL};
  assert_int_equal(pp_run(diff, T_MS), 0);
  free(diff[2]);
  free(diff[3]);
  stop_party(&pt);
}

static void ghost_peers_are_forgotten(void **state)
{
  (void)state;
  enum { GHOSTS = 300, LINKED = 256, RUN_MS = 240000, QUIET_MS = 10000 };
  party pt = start_party();
  attack a = {.cfg = {.ghost_hosts = true}}; /* the per-address cap is not what this tests */
  peerproc *e = start_evil(&pt, &a, GHOSTS, RUN_MS, 0);
  for (int i = 0; i < GHOSTS; i++)
    json_decref(evil_expect(e, "ghost-hello", T_MS));
  victim_downloads(&pt, "g0001"); /* during the flood */
  /* Once the victim has forgotten every ghost it linked (the cap: all 300
   * say Hello within a few seconds, long before the first is forgotten),
   * nothing more may reach any ghost. */
  for (int i = 0; i < 1800 && log_count(&pt, "forgetting peer") < LINKED; i++)
    usleep(100 * 1000);
  pp_send(e, "quiet");
  usleep(QUIET_MS * 1000);
  pp_send(e, "stop");
  json_t *report = evil_expect(e, "ghosts", T_MS);
  json_t *datagrams = json_object_get(report, "datagrams"), *late = json_object_get(report, "late");
  assert_int_equal(json_array_size(datagrams), GHOSTS);
  size_t dialled = 0, max = 0, late_total = 0;
  for (size_t i = 0; i < GHOSTS; i++) {
    size_t d = (size_t)json_integer_value(json_array_get(datagrams, i));
    dialled += d > 0;
    max = d > max ? d : max;
    late_total += (size_t)json_integer_value(json_array_get(late, i));
  }
  print_message("ghosts dialled back: %zu of %d, at most %zu datagrams each, %zu in the last "
                "%d s\n", dialled, GHOSTS, max, late_total, QUIET_MS / 1000);
  json_decref(report);
  json_decref(evil_expect(e, "done", T_MS));
  assert_int_equal(pp_wait(e, T_MS), 0);
  /* Bounded: no more links than the cap, a few attempts each, then silence. */
  assert_true(dialled >= 1);
  assert_true(dialled <= LINKED);
  assert_true(max <= 60);
  assert_int_equal(late_total, 0);
  size_t forgotten = log_count(&pt, "forgetting peer");
  print_message("forgotten: %zu\n", forgotten);
  assert_true(forgotten >= dialled);
  assert_int_equal(log_count(&pt, "not linking to more until some are gone"), 1);
  free((char *)a.cfg.state_dir);
  /* The seeder is still there, and the victim still downloads from it. */
  victim_downloads(&pt, "g0002");
  json_t *r = pp_command(pt.victim, "peers", T_MS);
  assert_int_equal(json_array_size(json_object_get(r, "peers")), 1);
  json_decref(r);
  stop_party(&pt);
}

/* Unfinished request frames: 4 connections of 128 streams, each announcing
 * 60 KiB and sending 32 KiB (half a frame buffer of 32 KiB each: 16 MiB
 * without the cap). The seeder holds at most LS_SERVE_REQUEST_BYTES_PER_CONN
 * per connection (1 MiB here) and resets the streams over it at once and
 * the stalled rest after LS_SERVE_REQUEST_STALL_MS, says both once per
 * connection, and keeps serving the victim's download meanwhile. */
static void half_frames_are_capped(void **state)
{
  (void)state;
  enum { CONNS = 4, STREAMS = 128, RUN_MS = 16000 };
  party pt = start_party();
  victim_downloads(&pt, "g0001"); /* the seeder's buffers and threads exist */
  long before = rss_kib(pt.seeder);
  attack a = {.cfg = {.attack = EVIL_HALF_FRAMES, .conns = CONNS, .streams = STREAMS,
                      .announce = 60 * 1024, .send = 32 * 1024}};
  peerproc *e = start_client_attack(&pt, &a, RUN_MS);
  for (int i = 0; i < CONNS; i++) {
    json_t *sent = evil_expect(e, "attack-sent", T_MS);
    assert_int_equal(json_integer_value(json_object_get(sent, "streams")), STREAMS);
    json_decref(sent);
  }
  usleep(1500 * 1000); /* the half frames arrive */
  long during = rss_kib(pt.seeder);
  size_t capped = peer_log_count(&pt, "seeder", "in unfinished requests");
  victim_downloads(&pt, "g0002"); /* during the attack */
  json_t *report = evil_expect(e, "attack", RUN_MS + T_MS);
  long opened = (long)json_integer_value(json_object_get(report, "opened"));
  long reset = (long)json_integer_value(json_object_get(report, "reset"));
  json_decref(report);
  json_decref(evil_expect(e, "done", T_MS));
  assert_int_equal(pp_wait(e, T_MS), 0);
  print_message("half frames: seeder RSS %ld KiB before, %ld KiB during (+%ld KiB); %ld of %ld "
                "streams reset\n", before, during, during - before, reset, opened);
  assert_int_equal(opened, CONNS * STREAMS);
  assert_int_equal(reset, opened); /* over the cap at once, the rest stalled */
  assert_int_equal(capped, CONNS); /* said at once, once per connection */
  assert_int_equal(peer_log_count(&pt, "seeder", "in unfinished requests"), CONNS);
  assert_int_equal(peer_log_count(&pt, "seeder", "left a request unfinished"), CONNS);
  /* the cap of every connection, plus 7 MiB for the QUIC state of 4
   * connections and 512 streams */
  long bound = CONNS * (long)(LS_SERVE_REQUEST_BYTES_PER_CONN / 1024) + 7 * 1024;
  if (RSS_CHECKED && during - before > bound)
    fail_msg("the seeder grew by %ld KiB, over %ld KiB", during - before, bound);
  victim_downloads(&pt, "g0003"); /* and after it */
  free((char *)a.cfg.state_dir);
  stop_party(&pt);
}

/* GetGame flood: 64 GetGames of one game on 2 connections, never read. One
 * hashing job runs (the seeder says "hashing g0001" once), every stream is
 * answered from the one shared manifest, the seeder's memory stays flat,
 * and the victim downloads from it meanwhile. */
static void get_game_flood_hashes_once(void **state)
{
  (void)state;
  enum { CONNS = 2, STREAMS = 32, RUN_MS = 8000 };
  party pt = start_party();
  victim_downloads(&pt, "g0003"); /* the seeder's buffers and threads exist */
  long before = rss_kib(pt.seeder);
  attack a = {.cfg = {.attack = EVIL_GET_GAME_FLOOD, .conns = CONNS, .streams = STREAMS,
                      .game_id = "g0001"}};
  peerproc *e = start_client_attack(&pt, &a, RUN_MS);
  for (int i = 0; i < CONNS; i++)
    json_decref(evil_expect(e, "attack-sent", T_MS));
  victim_downloads(&pt, "g0002"); /* during the flood */
  json_t *report = evil_expect(e, "attack", RUN_MS + T_MS);
  long opened = (long)json_integer_value(json_object_get(report, "opened"));
  long answered = (long)json_integer_value(json_object_get(report, "answered"));
  long reset = (long)json_integer_value(json_object_get(report, "reset"));
  json_decref(report);
  long after = rss_kib(pt.seeder);
  json_decref(evil_expect(e, "done", T_MS));
  assert_int_equal(pp_wait(e, T_MS), 0);
  print_message("GetGame flood: seeder RSS %ld KiB before, %ld KiB after (+%ld KiB); %ld of %ld "
                "streams answered, %ld reset; hashed %zu time(s)\n", before, after,
                after - before, answered, opened, reset,
                peer_log_count(&pt, "seeder", "hashing g0001:"));
  assert_int_equal(opened, CONNS * STREAMS);
  assert_int_equal(answered, opened);
  assert_int_equal(reset, 0);
  assert_int_equal(peer_log_count(&pt, "seeder", "hashing g0001:"), 1);
  if (RSS_CHECKED && after - before > 8 * 1024)
    fail_msg("the seeder grew by %ld KiB during the flood", after - before);
  victim_downloads(&pt, "g0001"); /* from the cached manifest: no second hashing */
  assert_int_equal(peer_log_count(&pt, "seeder", "hashing g0001:"), 1);
  free((char *)a.cfg.state_dir);
  stop_party(&pt);
}

/* File chunk requests never read: one connection of 256 streams, each
 * asking for a 4 MiB archive and granting 64 KiB of credit, then reading
 * nothing. Before the send budgets the seeder read 4 MiB ahead on every
 * stream (1 GiB) and held a descriptor for each. Now it sends
 * LS_SERVE_FILES_PER_CONN files at once while the rest wait, reads no
 * further than the credit (one hostile connection adds at most 32 MiB),
 * resets the answers nobody reads after LS_SERVE_FILE_STALL_MS (the next
 * ones then start), says each once, and the victim downloads meanwhile. */
static void unread_chunks_hold_little_memory(void **state)
{
  (void)state;
  enum { STREAMS = 256, RUN_MS = LS_SERVE_FILE_STALL_MS + 3500 };
  party pt = start_party();
  victim_downloads(&pt, "g0001"); /* the seeder's buffers and threads exist */
  long before = rss_kib(pt.seeder);
  attack a = {.cfg = {.attack = EVIL_UNREAD_CHUNKS, .conns = 1, .streams = STREAMS,
                      .game_id = "g0002", .file_path = "g0002.part01.eti",
                      .chunk_length = 4u << 20, .recv_window = 64u << 10}};
  peerproc *e = start_client_attack(&pt, &a, RUN_MS);
  json_t *sent = evil_expect(e, "attack-sent", T_MS);
  assert_int_equal(json_integer_value(json_object_get(sent, "streams")), STREAMS);
  json_decref(sent);
  usleep(1500 * 1000); /* the answers start and stall */
  long during = rss_kib(pt.seeder);
  victim_downloads(&pt, "g0003"); /* during the attack */
  json_t *report = evil_expect(e, "attack", RUN_MS + T_MS);
  long opened = (long)json_integer_value(json_object_get(report, "opened"));
  long answered = (long)json_integer_value(json_object_get(report, "answered"));
  long reset = (long)json_integer_value(json_object_get(report, "reset"));
  json_decref(report);
  json_decref(evil_expect(e, "done", T_MS));
  assert_int_equal(pp_wait(e, T_MS), 0);
  print_message("unread chunks: seeder RSS %ld KiB before, %ld KiB during (+%ld KiB); %ld of "
                "%ld streams answered, %ld reset when stalled\n", before, during,
                during - before, answered, opened, reset);
  assert_int_equal(opened, STREAMS);
  assert_int_equal(reset, LS_SERVE_FILES_PER_CONN); /* the first ones, once stalled */
  assert_int_equal(answered, 2 * LS_SERVE_FILES_PER_CONN); /* and the next ones began */
  assert_int_equal(peer_log_count(&pt, "seeder", "asks for more files at once"), 1);
  assert_int_equal(peer_log_count(&pt, "seeder", "read nothing of a file answer"), 1);
  if (RSS_CHECKED && during - before > 32 * 1024)
    fail_msg("the seeder grew by %ld KiB, over 32 MiB", during - before);
  free((char *)a.cfg.state_dir);
  stop_party(&pt);
}

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 512 connections from one UDP port of 127.0.0.2: the seeder admits its
 * share per address (16) and refuses the rest at once, says so once, and a
 * new well-behaved peer on 127.0.0.1 still links with it within 2 s while
 * the victim keeps downloading. */
static void connection_flood_from_one_address(void **state)
{
  (void)state;
  enum { CONNS = 512, RUN_MS = 12000 };
  party pt = start_party();
  long before = rss_kib(pt.seeder);
  attack a = {.cfg = {.attack = EVIL_CONN_FLOOD, .conns = CONNS, .bind_host = "127.0.0.2"}};
  peerproc *e = start_client_attack(&pt, &a, RUN_MS);
  json_t *settled = evil_expect(e, "flood-settled", T_MS);
  long ready = (long)json_integer_value(json_object_get(settled, "ready"));
  long refused = (long)json_integer_value(json_object_get(settled, "refused"));
  long failed = (long)json_integer_value(json_object_get(settled, "failed"));
  json_decref(settled);
  long during = rss_kib(pt.seeder);
  char late_addr[32];
  snprintf(late_addr, sizeof late_addr, "127.0.0.1:%u", next_port());
  t_mkdir(pt.root, "late/games");
  peerproc *late = start_peer(&pt, "late", late_addr, pt.seeder_addr);
  double t0 = now_s(); /* it is ready: it dials the seeder now */
  json_t *r = pp_command(late, "wait-peers 1 10", T_MS);
  double linked_s = now_s() - t0;
  assert_true(json_is_true(json_object_get(r, "ok")));
  json_decref(r);
  victim_downloads(&pt, "g0001"); /* during the flood */
  print_message("connection flood: %ld ready, %ld refused, %ld failed; seeder RSS +%ld KiB; a "
                "new peer linked in %.2f s\n", ready, refused, failed,
                during - before, linked_s);
  assert_int_equal(ready, 16); /* LS_QUIC max_conns_per_addr */
  assert_int_equal(refused, CONNS - 16);
  assert_int_equal(failed, 0);
  assert_int_equal(peer_log_count(&pt, "seeder", "refused connections from 127.0.0.2"), 1);
  assert_true(linked_s < 2.0);
  if (RSS_CHECKED && during - before > 64 * 1024)
    fail_msg("the seeder grew by %ld KiB, over 64 MiB", during - before);
  pp_send(e, "stop");
  json_decref(evil_expect(e, "done", RUN_MS + T_MS));
  assert_int_equal(pp_wait(e, T_MS), 0);
  pp_send(late, "quit");
  assert_int_equal(pp_wait(late, T_MS), 0);
  free((char *)a.cfg.state_dir);
  stop_party(&pt);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(game_list_attacks),
    cmocka_unit_test(file_list_attacks),
    cmocka_unit_test(pinned_version_refuses_other_lists),
    cmocka_unit_test(many_files_under_the_usual_descriptor_limit),
    cmocka_unit_test(ghost_peers_are_forgotten),
    cmocka_unit_test(half_frames_are_capped),
    cmocka_unit_test(get_game_flood_hashes_once),
    cmocka_unit_test(unread_chunks_hold_little_memory),
    cmocka_unit_test(connection_flood_from_one_address),
  };
  return ls_run_tests(tests, NULL, NULL);
}
