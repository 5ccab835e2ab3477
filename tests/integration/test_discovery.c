/* Tests discovery and liveness of real lanspread-peer-cli processes, one per
 * network namespace on one bridge (tests/common/netns.h): three peers find
 * each other by mDNS alone, show the union of their libraries, notice a
 * peer killed with SIGKILL and its return, and refuse a peer that speaks
 * another protocol version. Skipped where namespaces cannot be made. The
 * scenario_* functions are rows of docs/PEER_CLI_SCENARIOS.md. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "netns.h"
#include "peerproc.h"
#include "testutil.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define T_MS 15000
#define PORT "47300"

static const char *catalog_json =
  "{\"games\": [{\"id\": \"quake3\", \"name\": \"Quake III Arena\"},"
  " {\"id\": \"ut2004\", \"name\": \"Unreal Tournament 2004\"},"
  " {\"id\": \"aoe2\", \"name\": \"Age of Empires II\"},"
  " {\"id\": \"wc3\", \"name\": \"Warcraft III\"}]}";

typedef struct lan {
  ls_netns *net;
  char *root;
  const char *catalog;
  peerproc *peers[4];
  char ids[4][65];
} lan;

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static lan *make_lan(int hosts)
{
  char why[256];
  ls_netns *net = ls_netns_create(hosts, why, sizeof why);
  if (!net) {
    print_message("skipped: %s\n", why);
    return NULL;
  }
  lan *l = calloc(1, sizeof *l);
  l->net = net;
  l->root = t_tempdir();
  t_write(l->root, "catalog.json", catalog_json);
  l->catalog = strdup(t_path("%s/catalog.json", l->root));
  /* Host 0 has quake3 1.2 and aoe2; host 1 quake3 1.10 (newer); host 2 ut2004. */
  t_write(l->root, "h0/quake3/version.ini", "1.2");
  t_write(l->root, "h0/quake3/q3.eti", "q3 data");
  t_write(l->root, "h0/aoe2/version.ini", "2.0");
  t_write(l->root, "h1/quake3/version.ini", "1.10");
  t_write(l->root, "h1/quake3/q3.eti", "q3 data, newer");
  t_write(l->root, "h2/ut2004/version.ini", "3369");
  t_write(l->root, "h3/wc3/version.ini", "1.26");
  return l;
}

/* Starts lanspread-peer-cli in host i; extra args after the common ones.
 * stderr goes to ROOT/hI.log. */
static peerproc *start_in(lan *l, int i, const char *const *extra)
{
  char *argv[24] = {(char *)pp_program("lanspread-peer-cli"), "--game-dir",
                    strdup(t_path("%s/h%d", l->root, i)), "--state-dir",
                    strdup(t_path("%s/s%d", l->root, i)), "--catalog", (char *)l->catalog,
                    "--listen", strdup(t_path("%s:" PORT, ls_netns_addr(l->net, i))),
                    "--name", strdup(t_path("host%d", i)), "--serve"};
  int n = 12;
  for (; extra && *extra; extra++)
    argv[n++] = (char *)*extra;
  argv[n] = NULL;
  int saved = dup(2);
  int log = open(t_path("%s/h%d.log", l->root, i), O_WRONLY | O_CREAT | O_APPEND, 0644);
  dup2(log, 2);
  peerproc *p = ls_netns_start(l->net, i, argv);
  dup2(saved, 2);
  close(saved);
  close(log);
  static const int owned[] = {2, 4, 8, 10}; /* the strdup'ed arguments */
  for (int k = 0; k < 4; k++)
    free(argv[owned[k]]);
  json_t *ready = pp_expect(p, "ready", NULL, T_MS);
  snprintf(l->ids[i], sizeof l->ids[i], "%s", json_string_value(json_object_get(ready, "peer_id")));
  json_decref(ready);
  l->peers[i] = p;
  return p;
}

static void stop_lan(lan *l)
{
  for (int i = 0; i < 4; i++)
    if (l->peers[i]) {
      pp_send(l->peers[i], "quit");
      assert_int_equal(pp_wait(l->peers[i], T_MS), 0);
    }
  ls_netns_destroy(l->net);
  free((char *)l->catalog);
  free(l);
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

static void assert_ok(json_t *reply)
{
  if (!json_is_true(json_object_get(reply, "ok")))
    fail_msg("command failed: %s", json_string_value(json_object_get(reply, "error")));
  json_decref(reply);
}

static void expect_game(json_t *games, const char *id, const char *latest, int peers,
                        bool downloaded)
{
  json_t *g = find_game(games, id);
  if (!g)
    fail_msg("game %s missing", id);
  assert_string_equal(json_string_value(json_object_get(g, "latest_version")), latest);
  assert_int_equal(json_integer_value(json_object_get(g, "peers")), peers);
  assert_int_equal(json_is_true(json_object_get(g, "downloaded")), downloaded);
}

static void scenario_discovery_of_three_peers(void **state)
{
  (void)state;
  lan *l = make_lan(3);
  if (!l)
    skip();
  double t0 = now_s();
  for (int i = 0; i < 3; i++)
    start_in(l, i, NULL);
  for (int i = 0; i < 3; i++)
    assert_ok(pp_command(l->peers[i], "wait-peers 2 5", T_MS));
  print_message("3 peers found each other by mDNS in %.2f s\n", now_s() - t0);

  /* Everyone sees the union, with the latest versions and peer counts. */
  for (int i = 0; i < 3; i++) {
    json_t *r = pp_command(l->peers[i], "games", T_MS);
    json_t *games = json_object_get(r, "games");
    assert_int_equal(json_array_size(games), 3);
    expect_game(games, "quake3", "1.10", i == 2 ? 2 : 1, i != 2);
    expect_game(games, "ut2004", "3369", i == 2 ? 0 : 1, i == 2);
    expect_game(games, "aoe2", "2.0", i == 0 ? 0 : 1, i == 0);
    json_decref(r);
  }
  json_t *r = pp_command(l->peers[0], "peers", T_MS);
  assert_int_equal(json_array_size(json_object_get(r, "peers")), 2);
  json_decref(r);

  /* Host 0 gets a newer quake3: the others learn it without asking. */
  t0 = now_s();
  t_write(l->root, "h0/quake3/version.ini", "1.20");
  bool seen = false;
  while (!seen && now_s() - t0 < 10) {
    usleep(200000);
    r = pp_command(l->peers[2], "games", T_MS);
    json_t *q3 = find_game(json_object_get(r, "games"), "quake3");
    seen = q3 && strcmp(json_string_value(json_object_get(q3, "latest_version")), "1.20") == 0;
    json_decref(r);
  }
  assert_true(seen);
  print_message("a library change reached another peer in %.2f s\n", now_s() - t0);

  /* Host 2 is killed: the others prune it within the liveness bound. */
  t0 = now_s();
  pp_signal(l->peers[2], SIGKILL);
  assert_int_equal(pp_wait(l->peers[2], T_MS), 128 + SIGKILL);
  l->peers[2] = NULL;
  for (int i = 0; i < 2; i++) {
    r = pp_command(l->peers[i], "wait peer-disconnected 10", T_MS);
    assert_ok(r);
    r = pp_command(l->peers[i], "games", T_MS);
    assert_null(find_game(json_object_get(r, "games"), "ut2004"));
    json_decref(r);
  }
  print_message("killed peer pruned by both others after %.2f s\n", now_s() - t0);

  /* It comes back (same identity): found and connected again. */
  t0 = now_s();
  start_in(l, 2, NULL);
  for (int i = 0; i < 3; i++)
    assert_ok(pp_command(l->peers[i], "wait-peers 2 10", T_MS));
  print_message("restarted peer back in %.2f s\n", now_s() - t0);
  r = pp_command(l->peers[0], "games", T_MS);
  expect_game(json_object_get(r, "games"), "ut2004", "3369", 1, false);
  json_decref(r);
  stop_lan(l);
}

static void scenario_static_peers_without_mdns(void **state)
{
  (void)state;
  lan *l = make_lan(2);
  if (!l)
    skip();
  const char *a[] = {"--no-mdns", NULL};
  start_in(l, 0, a);
  char peer0[64];
  snprintf(peer0, sizeof peer0, "%s:" PORT, ls_netns_addr(l->net, 0));
  const char *b[] = {"--no-mdns", "--peer", peer0, NULL};
  start_in(l, 1, b);
  assert_ok(pp_command(l->peers[1], "wait-peers 1 10", T_MS));
  assert_ok(pp_command(l->peers[0], "wait-peers 1 10", T_MS)); /* it learned of host 1 */
  json_t *r = pp_command(l->peers[0], "games", T_MS);
  expect_game(json_object_get(r, "games"), "quake3", "1.10", 1, true);
  json_decref(r);
  stop_lan(l);
}

static bool log_has(const lan *l, int host, const char *text)
{
  char *data = NULL;
  size_t len = 0;
  FILE *f = fopen(t_path("%s/h%d.log", l->root, host), "r");
  if (!f)
    return false;
  data = calloc(1, 1 << 20);
  len = fread(data, 1, (1 << 20) - 1, f);
  fclose(f);
  (void)len;
  bool found = strstr(data, text) != NULL;
  free(data);
  return found;
}

static void scenario_unknown_protocol_version(void **state)
{
  (void)state;
  lan *l = make_lan(2);
  if (!l)
    skip();
  start_in(l, 0, NULL);
  setenv("LS_TEST_PROTOCOL_VERSION", "2", 1); /* honoured by test-hook builds only */
  char peer0[64];
  snprintf(peer0, sizeof peer0, "%s:" PORT, ls_netns_addr(l->net, 0));
  const char *b[] = {"--peer", peer0, NULL};
  start_in(l, 1, b);
  unsetenv("LS_TEST_PROTOCOL_VERSION");
  json_t *r = pp_command(l->peers[0], "wait-peers 1 4", T_MS);
  assert_true(json_is_false(json_object_get(r, "ok")));
  json_decref(r);
  r = pp_command(l->peers[1], "peer-count", T_MS);
  assert_int_equal(json_integer_value(json_object_get(r, "count")), 0);
  json_decref(r);
#ifdef LS_TEST_HOOKS
  /* Both sides say why, in words. */
  assert_true(log_has(l, 0, "protocol version 2 not supported") ||
              log_has(l, 0, "it speaks protocol version 2"));
  assert_true(log_has(l, 1, "this peer speaks 2"));
#else
  (void)log_has;
#endif
  stop_lan(l);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(scenario_discovery_of_three_peers),
    cmocka_unit_test(scenario_static_peers_without_mdns),
    cmocka_unit_test(scenario_unknown_protocol_version),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
