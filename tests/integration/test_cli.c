/* Tests the lanspread-peer-cli contract (docs/CLI.md) against the real
 * program: the ready line, reply shapes, error
 * replies, live library events, --serve, signals and exit codes, and the
 * default port with its fallback (in a network namespace of the test's). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testrun.h"

#include "netns.h"
#include "peerproc.h"
#include "testutil.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#define T_MS 5000

static const char *catalog_json =
  "{\"games\": [\n"
  "  {\"id\": \"alpha\", \"name\": \"Alpha\"},\n"
  "  {\"id\": \"beta\", \"name\": \"Beta\"},\n"
  "  {\"id\": \"gamma\", \"name\": \"Gamma\"}\n"
  "]}\n";

typedef struct env {
  char *root;
  const char *games, *state, *catalog;
} env;

static env make_env(void)
{
  env e;
  e.root = t_tempdir();
  e.games = strdup(t_path("%s/games", e.root));
  e.state = strdup(t_path("%s/state", e.root));
  e.catalog = strdup(t_path("%s/catalog.json", e.root));
  t_write(e.root, "catalog.json", catalog_json);
  t_write(e.root, "games/alpha/version.ini", "1.5");
  t_write(e.root, "games/alpha/alpha.eti", "0123456789");
  t_write(e.root, "games/beta/local/beta.exe", "exe");
  t_write(e.root, "games/notincatalog/version.ini", "9");
  return e;
}

static void free_env(env *e)
{
  free((char *)e->games);
  free((char *)e->state);
  free((char *)e->catalog);
}

static peerproc *start_cli(const env *e, bool serve)
{
  char *argv[] = {(char *)pp_program("lanspread-peer-cli"), "--game-dir", (char *)e->games,
                  "--state-dir", (char *)e->state, "--catalog", (char *)e->catalog,
                  serve ? "--serve" : NULL, NULL};
  return pp_start(argv);
}

static json_t *find_game(json_t *games, const char *id)
{
  size_t i;
  json_t *g;
  json_array_foreach(games, i, g) {
    if (strcmp(json_string_value(json_object_get(g, "id")), id) == 0)
      return g;
  }
  return NULL;
}

static void assert_game_shape(json_t *g)
{
  assert_true(json_is_string(json_object_get(g, "id")));
  assert_true(json_is_string(json_object_get(g, "name")));
  assert_true(json_is_boolean(json_object_get(g, "downloaded")));
  assert_true(json_is_boolean(json_object_get(g, "installed")));
  json_t *lv = json_object_get(g, "local_version"), *hv = json_object_get(g, "latest_version");
  assert_true(json_is_string(lv) || json_is_null(lv));
  assert_true(json_is_string(hv) || json_is_null(hv));
  assert_true(json_is_integer(json_object_get(g, "peers")));
  assert_true(json_is_integer(json_object_get(g, "size")));
}

static void ready_then_library(void **state)
{
  (void)state;
  env e = make_env();
  peerproc *p = start_cli(&e, false);
  json_t *ready = pp_expect(p, "ready", NULL, T_MS);
  const char *id = json_string_value(json_object_get(ready, "peer_id"));
  assert_non_null(id);
  assert_int_equal(strlen(id), 64);
  assert_int_equal(strspn(id, "0123456789abcdef"), 64);
  json_decref(ready);
  json_t *upd = pp_expect(p, "games-list-updated", NULL, T_MS);
  assert_int_equal(json_array_size(json_object_get(upd, "games")), 2);
  json_decref(upd);
  json_t *r = pp_command(p, "quit", T_MS);
  assert_true(json_is_true(json_object_get(r, "ok")));
  json_decref(r);
  assert_int_equal(pp_wait(p, T_MS), 0);
  free_env(&e);
}

static void games_reply_shape(void **state)
{
  (void)state;
  env e = make_env();
  peerproc *p = start_cli(&e, false);
  json_t *r = pp_command(p, "games", T_MS);
  assert_true(json_is_true(json_object_get(r, "ok")));
  json_t *games = json_object_get(r, "games");
  assert_int_equal(json_array_size(games), 2);
  size_t i;
  json_t *g;
  json_array_foreach(games, i, g) assert_game_shape(g);

  json_t *alpha = find_game(games, "alpha");
  assert_true(json_is_true(json_object_get(alpha, "downloaded")));
  assert_false(json_is_true(json_object_get(alpha, "installed")));
  assert_string_equal(json_string_value(json_object_get(alpha, "local_version")), "1.5");
  assert_string_equal(json_string_value(json_object_get(alpha, "latest_version")), "1.5");
  assert_int_equal(json_integer_value(json_object_get(alpha, "size")), 13);
  assert_string_equal(json_string_value(json_object_get(alpha, "name")), "Alpha");

  json_t *beta = find_game(games, "beta"); /* local-only install */
  assert_false(json_is_true(json_object_get(beta, "downloaded")));
  assert_true(json_is_true(json_object_get(beta, "installed")));
  assert_true(json_is_null(json_object_get(beta, "local_version")));
  assert_null(find_game(games, "notincatalog"));
  json_decref(r);

  r = pp_command(p, "peers", T_MS);
  assert_int_equal(json_array_size(json_object_get(r, "peers")), 0);
  json_decref(r);
  r = pp_command(p, "peer-count", T_MS);
  assert_int_equal(json_integer_value(json_object_get(r, "count")), 0);
  json_decref(r);
  r = pp_command(p, "loop-stats", T_MS); /* its figures: test_runtime */
  assert_true(json_is_true(json_object_get(r, "ok")));
  assert_true(json_is_integer(json_object_get(r, "lag_max_us")));
  assert_true(json_is_integer(json_object_get(r, "window_ms")));
  assert_int_equal(json_integer_value(json_object_get(r, "period_ms")), 10);
  json_decref(r);
  pp_close_stdin(p);
  assert_int_equal(pp_wait(p, T_MS), 0); /* end of stdin acts as quit */
  free_env(&e);
}

static void assert_error_reply(peerproc *p, const char *line, const char *cmd, const char *text)
{
  pp_send(p, line);
  json_t *r = pp_expect(p, "reply", cmd, T_MS);
  assert_true(json_is_false(json_object_get(r, "ok")));
  const char *err = json_string_value(json_object_get(r, "error"));
  assert_non_null(err);
  if (!strstr(err, text))
    fail_msg("error for '%s' is '%s', expected it to mention '%s'", line, err, text);
  json_decref(r);
}

static void bad_commands_get_error_replies(void **state)
{
  (void)state;
  env e = make_env();
  peerproc *p = start_cli(&e, false);
  pp_send(p, "");          /* blank lines are ignored */
  pp_send(p, "   \t ");
  assert_error_reply(p, "frobnicate", "frobnicate", "unknown command");
  assert_error_reply(p, "games extra", "games", "usage: games");
  assert_error_reply(p, "install gamma", "install", "not downloaded");
  assert_error_reply(p, "uninstall alpha", "uninstall", "not installed");
  assert_error_reply(p, "remove beta", "remove", "installed: uninstall it first");
  assert_error_reply(p, "download alpha", "download", "no connected peer has alpha");
  assert_error_reply(p, "cancel alpha", "cancel", "no download of alpha");
  assert_error_reply(p, "wait-peers 3 0.3", "wait-peers", "timed out");
  assert_error_reply(p, "wait game-download-finished alpha 0.2", "wait", "timed out");
  assert_error_reply(p, "wait peer-connected soon", "wait", "TIMEOUT_S");
  assert_error_reply(p, "get", "get", "usage: get ID");
  assert_error_reply(p, "get nosuchgame", "get", "not a game of the catalog");
  assert_error_reply(p, "get alpha", "get", "no connected peer has alpha");
  char longline[8000];
  memset(longline, 'x', sizeof longline - 1);
  longline[sizeof longline - 1] = '\0';
  pp_send(p, longline);
  json_t *r = pp_expect(p, "reply", NULL, T_MS);
  assert_true(json_is_false(json_object_get(r, "ok")));
  json_decref(r);
  r = pp_command(p, "games", T_MS); /* still alive and answering */
  assert_true(json_is_true(json_object_get(r, "ok")));
  json_decref(r);
  pp_send(p, "quit");
  assert_int_equal(pp_wait(p, T_MS), 0);
  free_env(&e);
}

static void library_changes_are_events(void **state)
{
  (void)state;
  env e = make_env();
  peerproc *p = start_cli(&e, false);
  json_decref(pp_expect(p, "games-list-updated", NULL, T_MS));
  t_write(e.games, "gamma/version.ini", "3.0");
  json_t *upd = pp_expect(p, "games-list-updated", NULL, T_MS);
  json_t *changed = json_object_get(upd, "changed");
  assert_int_equal(json_array_size(changed), 1);
  assert_string_equal(json_string_value(json_array_get(changed, 0)), "gamma");
  json_t *gamma = find_game(json_object_get(upd, "games"), "gamma");
  assert_non_null(gamma);
  assert_string_equal(json_string_value(json_object_get(gamma, "local_version")), "3.0");
  json_decref(upd);
  pp_send(p, "quit");
  assert_int_equal(pp_wait(p, T_MS), 0);
  free_env(&e);
}

static void serve_survives_eof_and_stops_on_signals(void **state)
{
  (void)state;
  int sigs[] = {SIGTERM, SIGINT};
  for (int i = 0; i < 2; i++) {
    env e = make_env();
    peerproc *p = start_cli(&e, true);
    json_decref(pp_expect(p, "ready", NULL, T_MS));
    pp_close_stdin(p);
    t_write(e.games, "gamma/version.ini", "3.0"); /* still running: still watching */
    json_decref(pp_expect(p, "games-list-updated", NULL, T_MS));
    json_decref(pp_expect(p, "games-list-updated", NULL, T_MS));
    pp_signal(p, sigs[i]);
    assert_int_equal(pp_wait(p, T_MS), 0);
    free_env(&e);
  }
}

static void exit_codes(void **state)
{
  (void)state;
  env e = make_env();
  const char *cli = pp_program("lanspread-peer-cli");
  char *unknown[] = {(char *)cli, "--no-such-option", NULL};
  assert_int_equal(pp_run(unknown, T_MS), 2);
  char *extra[] = {(char *)cli, "stray", NULL};
  assert_int_equal(pp_run(extra, T_MS), 2);
  char *help[] = {(char *)cli, "--help", NULL};
  assert_int_equal(pp_run(help, T_MS), 0);
  char *nodir[] = {(char *)cli, "--game-dir", "/nonexistent/dir", "--state-dir",
                   (char *)e.state, NULL};
  assert_int_equal(pp_run(nodir, T_MS), 1);
  t_write(e.root, "bad.json", "{\"games\": [ {\"id\": \"../x\", \"name\": \"X\"} ]}");
  char *badcat[] = {(char *)cli, "--game-dir", (char *)e.games, "--catalog",
                    (char *)t_path("%s/bad.json", e.root), NULL};
  assert_int_equal(pp_run(badcat, T_MS), 1);
  free_env(&e);
}

static void default_game_dir_is_created(void **state)
{
  (void)state;
  char *home = t_tempdir();
  setenv("HOME", home, 1);
  unsetenv("XDG_DATA_HOME");
  unsetenv("XDG_STATE_HOME");
  char *argv[] = {(char *)pp_program("lanspread-peer-cli"), NULL};
  peerproc *p = pp_start(argv);
  json_t *ready = pp_expect(p, "ready", NULL, T_MS);
  const char *dir = json_string_value(json_object_get(ready, "game_dir"));
  assert_string_equal(dir, t_path("%s/.local/share/lanspread/games", home));
  struct stat st;
  assert_int_equal(stat(dir, &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  assert_int_equal(stat(t_path("%s/.local/state/lanspread/node.key", home), &st), 0);
  json_decref(ready);
  pp_send(p, "quit");
  assert_int_equal(pp_wait(p, T_MS), 0);
}

/* ---- two peers over loopback ------------------------------------------- */

static unsigned next_port(void)
{
  static unsigned port;
  if (!port)
    port = 42000 + (unsigned)(getpid() % 2000) * 8;
  return port++;
}

static peerproc *start_peer_at(const env *e, const char *games, const char *state,
                               unsigned port, const char *peer_addr, const char *name)
{
  char listen[32];
  snprintf(listen, sizeof listen, "127.0.0.1:%u", port);
  char *argv[16] = {(char *)pp_program("lanspread-peer-cli"), "--game-dir", (char *)games,
                    "--state-dir", (char *)state, "--catalog", (char *)e->catalog,
                    "--listen", listen, "--no-mdns", "--name", (char *)name, "--serve"};
  int n = 13;
  if (peer_addr) {
    argv[n++] = "--peer";
    argv[n++] = (char *)peer_addr;
  }
  argv[n] = NULL;
  peerproc *p = pp_start(argv);
  json_decref(pp_expect(p, "ready", NULL, T_MS));
  return p;
}

static void static_peers_share_their_libraries(void **state)
{
  (void)state;
  env e = make_env();
  unsigned port_a = next_port(), port_b = next_port();
  char *games_b = strdup(t_path("%s/games_b", e.root));
  t_write(e.root, "games_b/gamma/version.ini", "7");
  t_write(e.root, "games_b/alpha/version.ini", "1.10"); /* newer than A's 1.5 */
  t_write(e.root, "games_b/alpha/a.eti", "newer");
  peerproc *a = start_peer_at(&e, e.games, e.state, port_a, NULL, "alice");
  char addr_a[32];
  snprintf(addr_a, sizeof addr_a, "127.0.0.1:%u", port_a);
  peerproc *b = start_peer_at(&e, games_b, t_path("%s/state_b", e.root), port_b, addr_a, "bob");

  json_t *r = pp_command(b, "wait-peers 1 10", T_MS);
  assert_true(json_is_true(json_object_get(r, "ok")));
  json_decref(r);
  r = pp_command(b, "peers", T_MS);
  json_t *peers = json_object_get(r, "peers");
  assert_int_equal(json_array_size(peers), 1);
  json_t *pa = json_array_get(peers, 0);
  assert_string_equal(json_string_value(json_object_get(pa, "name")), "alice");
  assert_string_equal(json_string_value(json_object_get(pa, "addr")), addr_a);
  assert_int_equal(strlen(json_string_value(json_object_get(pa, "peer_id"))), 64);
  assert_int_equal(json_integer_value(json_object_get(pa, "games")), 1); /* beta is local-only */
  json_decref(r);

  /* A learned of B from B's Hello and connected back. */
  r = pp_command(a, "wait-peers 1 10", T_MS);
  assert_true(json_is_true(json_object_get(r, "ok")));
  json_decref(r);
  r = pp_command(a, "games", T_MS);
  json_t *games = json_object_get(r, "games");
  json_t *alpha = find_game(games, "alpha"), *gamma = find_game(games, "gamma");
  assert_string_equal(json_string_value(json_object_get(alpha, "local_version")), "1.5");
  assert_string_equal(json_string_value(json_object_get(alpha, "latest_version")), "1.10");
  assert_int_equal(json_integer_value(json_object_get(alpha, "peers")), 1);
  assert_false(json_is_true(json_object_get(gamma, "downloaded")));
  assert_string_equal(json_string_value(json_object_get(gamma, "latest_version")), "7");
  assert_non_null(find_game(games, "beta")); /* local-only install is listed too */
  json_decref(r);

  pp_send(a, "get alpha");
  json_t *files = pp_expect(a, "game-files", NULL, T_MS); /* printed before the reply */
  assert_string_equal(json_string_value(json_object_get(files, "id")), "alpha");
  assert_string_equal(json_string_value(json_object_get(files, "version")), "1.10");
  assert_int_equal(json_array_size(json_object_get(files, "files")), 2);
  json_decref(files);
  r = pp_expect(a, "reply", "get", T_MS);
  assert_true(json_is_true(json_object_get(r, "ok")));
  assert_int_equal(json_integer_value(json_object_get(r, "files")), 2);
  json_decref(r);
  r = pp_command(a, "wait game-files alpha 1", T_MS); /* already printed: consumed now */
  assert_true(json_is_true(json_object_get(r, "ok")));
  json_decref(r);
  assert_error_reply(a, "wait game-files alpha 0.2", "wait", "timed out"); /* consumed */

  /* Each printed event answers one wait, however many came before it. */
  enum { GETS = 4200 };
  for (int i = 0; i < GETS; i++)
    pp_send(a, "get alpha");
  for (int i = 0; i < GETS; i++)
    json_decref(pp_expect(a, "reply", "get", T_MS));
  r = pp_command(a, "wait game-files", T_MS); /* any id */
  assert_true(json_is_true(json_object_get(r, "ok")));
  json_decref(r);
  for (int i = 1; i < GETS; i++) {
    r = pp_command(a, "wait game-files alpha 1", T_MS);
    assert_true(json_is_true(json_object_get(r, "ok")));
    json_decref(r);
  }
  assert_error_reply(a, "wait game-files alpha 0.2", "wait", "timed out");

  /* B vanishes without a word: A notices within the liveness bound. */
  pp_signal(b, SIGKILL);
  assert_int_equal(pp_wait(b, T_MS), 128 + SIGKILL);
  r = pp_command(a, "wait peer-disconnected 8", T_MS);
  assert_true(json_is_true(json_object_get(r, "ok")));
  json_decref(r);
  r = pp_command(a, "games", T_MS);
  assert_null(find_game(json_object_get(r, "games"), "gamma"));
  json_decref(r);

  /* B comes back with the same identity on another port: A links to it
   * where it speaks from now, not where it was. */
  unsigned port_b2 = next_port();
  b = start_peer_at(&e, games_b, t_path("%s/state_b", e.root), port_b2, addr_a, "bob");
  r = pp_command(a, "wait-peers 1 10", 2 * T_MS);
  assert_true(json_is_true(json_object_get(r, "ok")));
  json_decref(r);
  r = pp_command(a, "peers", T_MS);
  char addr_b2[32];
  snprintf(addr_b2, sizeof addr_b2, "127.0.0.1:%u", port_b2);
  assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(r, "peers"), 0),
                                                        "addr")),
                      addr_b2);
  json_decref(r);
  pp_send(b, "quit");
  assert_int_equal(pp_wait(b, T_MS), 0);
  pp_send(a, "quit");
  assert_int_equal(pp_wait(a, T_MS), 0);
  free(games_b);
  free_env(&e);
}

static void set_game_dir_validates(void **state)
{
  (void)state;
  env e = make_env();
  peerproc *p = start_cli(&e, false);
  assert_error_reply(p, "set-game-dir /nonexistent/place", "set-game-dir", "/nonexistent/place");
  assert_error_reply(p, t_path("set-game-dir %s", e.catalog), "set-game-dir", "not a directory");
  t_write(e.root, "other dir/gamma/version.ini", "3");
  json_t *r = pp_command(p, t_path("set-game-dir %s/other dir", e.root), T_MS);
  assert_true(json_is_true(json_object_get(r, "ok")));
  json_decref(r);
  for (;;) { /* the new library arrives from a background scan */
    json_t *upd = pp_expect(p, "games-list-updated", NULL, T_MS);
    json_t *games = json_object_get(upd, "games");
    bool done = find_game(games, "gamma") != NULL;
    if (done) {
      assert_null(find_game(games, "alpha"));
      json_decref(upd);
      break;
    }
    json_decref(upd);
  }
  pp_send(p, "quit");
  assert_int_equal(pp_wait(p, T_MS), 0);
  free_env(&e);
}

/* Without --listen a peer serves on UDP 8361; a second one on the same host
 * finds it taken, takes a free port and says so on stderr. In a namespace
 * of its own, so that nothing else holds 8361 and nothing else is reached. */
static void default_port_then_a_free_one(void **state)
{
  (void)state;
  char why[256];
  ls_netns *topo = ls_netns_create(1, why, sizeof why);
  if (!topo)
    ls_skip("%s", why);
  env e = make_env();
  const char *listen[2];
  peerproc *peer[2];
  for (int i = 0; i < 2; i++) {
    char script[4200];
    snprintf(script, sizeof script, "exec \"$0\" \"$@\" 2>'%s'", t_path("%s/%d.log", e.root, i));
    char *argv[] = {"/bin/sh", "-c", script, (char *)pp_program("lanspread-peer-cli"),
                    "--game-dir", (char *)e.games, "--state-dir",
                    strdup(t_path("%s/state%d", e.root, i)), "--catalog", (char *)e.catalog,
                    "--no-mdns", "--serve", NULL};
    peerproc *p = peer[i] = pp_start_in_netns(ls_netns_name(topo, 0), argv);
    json_t *ready = pp_expect(p, "ready", NULL, T_MS);
    listen[i] = strdup(json_string_value(json_object_get(ready, "listen")));
    json_decref(ready);
    free(argv[7]);
  }
  assert_string_equal(listen[0], "0.0.0.0:8361");
  assert_true(strncmp(listen[1], "0.0.0.0:", 8) == 0);
  assert_string_not_equal(listen[1], "0.0.0.0:8361");
  size_t len;
  char *log = t_read(t_path("%s/1.log", e.root), &len);
  assert_non_null(strstr(log, "UDP port 8361 is taken"));
  assert_non_null(strstr(log, t_path("serving on UDP port %s instead", listen[1] + 8)));
  free(log);
  for (int i = 0; i < 2; i++) {
    pp_send(peer[i], "quit");
    assert_int_equal(pp_wait(peer[i], T_MS), 0);
    free((char *)listen[i]);
  }
  ls_netns_destroy(topo);
  free_env(&e);
}

static void taken_port_and_unreachable_peer(void **state)
{
  (void)state;
  env e = make_env();
  unsigned port = next_port();
  peerproc *a = start_peer_at(&e, e.games, e.state, port, NULL, "alice");
  char listen[32];
  snprintf(listen, sizeof listen, "127.0.0.1:%u", port);
  char *taken[] = {(char *)pp_program("lanspread-peer-cli"), "--game-dir", (char *)e.games,
                   "--state-dir", (char *)t_path("%s/s2", e.root), "--catalog", (char *)e.catalog,
                   "--listen", listen, "--no-mdns", NULL};
  assert_int_equal(pp_run(taken, T_MS), 1);
  pp_send(a, "quit");
  assert_int_equal(pp_wait(a, T_MS), 0);

  /* A static peer where nobody listens: the peer runs, answers, and quits. */
  char nobody[32];
  snprintf(nobody, sizeof nobody, "127.0.0.1:%u", next_port());
  peerproc *b = start_peer_at(&e, e.games, t_path("%s/s3", e.root), next_port(), nobody, "b");
  json_t *r = pp_command(b, "wait-peers 1 2", T_MS);
  assert_true(json_is_false(json_object_get(r, "ok")));
  json_decref(r);
  r = pp_command(b, "peer-count", T_MS);
  assert_int_equal(json_integer_value(json_object_get(r, "count")), 0);
  json_decref(r);
  char *bad_peer[] = {(char *)pp_program("lanspread-peer-cli"), "--game-dir", (char *)e.games,
                      "--state-dir", (char *)t_path("%s/s4", e.root), "--no-mdns",
                      "--peer", "not-an-address", NULL};
  assert_int_equal(pp_run(bad_peer, T_MS), 1);
  pp_send(b, "quit");
  assert_int_equal(pp_wait(b, T_MS), 0);
  free_env(&e);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(ready_then_library),
    cmocka_unit_test(games_reply_shape),
    cmocka_unit_test(bad_commands_get_error_replies),
    cmocka_unit_test(library_changes_are_events),
    cmocka_unit_test(serve_survives_eof_and_stops_on_signals),
    cmocka_unit_test(exit_codes),
    cmocka_unit_test(default_game_dir_is_created),
    cmocka_unit_test(static_peers_share_their_libraries),
    cmocka_unit_test(set_game_dir_validates),
    cmocka_unit_test(taken_port_and_unreachable_peer),
    cmocka_unit_test(default_port_then_a_free_one),
  };
  return ls_run_tests(tests, NULL, NULL);
}
