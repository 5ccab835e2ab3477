/* Tests discovery and liveness of real lanspread-peer-cli processes, one per
 * network namespace on one bridge (tests/common/peernet.h): three peers find
 * each other by mDNS alone, show the union of their libraries, notice a
 * peer killed with SIGKILL and its return, and refuse a peer that speaks
 * another protocol version. Skipped where namespaces cannot be made. The
 * scenario_* functions are rows of docs/PEER_CLI_SCENARIOS.md. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testrun.h"

#include "peernet.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T_MS 15000
#define PORT "47300"

static const char *catalog_json =
  "{\"games\": [{\"id\": \"quake3\", \"name\": \"Quake III Arena\"},"
  " {\"id\": \"ut2004\", \"name\": \"Unreal Tournament 2004\"},"
  " {\"id\": \"aoe2\", \"name\": \"Age of Empires II\"},"
  " {\"id\": \"wc3\", \"name\": \"Warcraft III\"}]}";

/* A LAN whose catalog is catalog_json. Host 0 has quake3 1.2 and aoe2;
 * host 1 quake3 1.10 (newer); host 2 ut2004; host 3 wc3. */
static pn_net *make_lan(int hosts)
{
  pn_net *n = pn_create(hosts, PORT);
  t_write(n->root, "catalog.json", catalog_json);
  t_write(n->root, "h0/quake3/version.ini", "1.2");
  t_write(n->root, "h0/quake3/q3.eti", "q3 data");
  t_write(n->root, "h0/aoe2/version.ini", "2.0");
  t_write(n->root, "h1/quake3/version.ini", "1.10");
  t_write(n->root, "h1/quake3/q3.eti", "q3 data, newer");
  t_write(n->root, "h2/ut2004/version.ini", "3369");
  t_write(n->root, "h3/wc3/version.ini", "1.26");
  return n;
}

/* stderr of every peer goes to ROOT/hI.log (pn_log_has). */
static peerproc *start(pn_net *n, int host, pn_peer o)
{
  o.log = true;
  return pn_start(n, host, o);
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
  pn_net *l = make_lan(3);
  double t0 = pn_now();
  for (int i = 0; i < 3; i++)
    start(l, i, (pn_peer){.mdns = true});
  for (int i = 0; i < 3; i++)
    json_decref(pn_ok(l->peers[i], "wait-peers 2 5"));
  print_message("3 peers found each other by mDNS in %.2f s\n", pn_now() - t0);

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
  t0 = pn_now();
  t_write(l->root, "h0/quake3/version.ini", "1.20");
  bool seen = false;
  while (!seen && pn_now() - t0 < 10) {
    usleep(200000);
    r = pp_command(l->peers[2], "games", T_MS);
    json_t *q3 = find_game(json_object_get(r, "games"), "quake3");
    seen = q3 && strcmp(json_string_value(json_object_get(q3, "latest_version")), "1.20") == 0;
    json_decref(r);
  }
  assert_true(seen);
  print_message("a library change reached another peer in %.2f s\n", pn_now() - t0);

  /* Host 2 is killed: the others prune it within the liveness bound. */
  t0 = pn_now();
  pn_kill(l, 2);
  for (int i = 0; i < 2; i++) {
    json_decref(pn_ok(l->peers[i], "wait peer-disconnected 10"));
    r = pp_command(l->peers[i], "games", T_MS);
    assert_null(find_game(json_object_get(r, "games"), "ut2004"));
    json_decref(r);
  }
  print_message("killed peer pruned by both others after %.2f s\n", pn_now() - t0);

  /* It comes back (same identity): found and connected again. */
  t0 = pn_now();
  start(l, 2, (pn_peer){.mdns = true});
  for (int i = 0; i < 3; i++)
    json_decref(pn_ok(l->peers[i], "wait-peers 2 10"));
  print_message("restarted peer back in %.2f s\n", pn_now() - t0);
  r = pp_command(l->peers[0], "games", T_MS);
  expect_game(json_object_get(r, "games"), "ut2004", "3369", 1, false);
  json_decref(r);
  pn_destroy(l);
}

static void scenario_static_peers_without_mdns(void **state)
{
  (void)state;
  pn_net *l = make_lan(2);
  start(l, 0, (pn_peer){0});
  start(l, 1, (pn_peer){.static_peers = 1u << 0});
  json_decref(pn_ok(l->peers[1], "wait-peers 1 10"));
  json_decref(pn_ok(l->peers[0], "wait-peers 1 10")); /* it learned of host 1 */
  json_t *r = pp_command(l->peers[0], "games", T_MS);
  expect_game(json_object_get(r, "games"), "quake3", "1.10", 1, true);
  json_decref(r);
  pn_destroy(l);
}

static void scenario_unknown_protocol_version(void **state)
{
  (void)state;
  pn_net *l = make_lan(2);
  start(l, 0, (pn_peer){.mdns = true});
  start(l, 1, (pn_peer){.mdns = true, .static_peers = 1u << 0,
                        .env = "LS_TEST_PROTOCOL_VERSION=2"}); /* test-hook builds only */
  json_t *r = pp_command(l->peers[0], "wait-peers 1 4", T_MS);
  assert_true(json_is_false(json_object_get(r, "ok")));
  json_decref(r);
  r = pp_command(l->peers[1], "peer-count", T_MS);
  assert_int_equal(json_integer_value(json_object_get(r, "count")), 0);
  json_decref(r);
#ifdef LS_TEST_HOOKS
  /* Both sides say why, in words. */
  assert_true(pn_log_has(l, 0, "protocol version 2 not supported") ||
              pn_log_has(l, 0, "it speaks protocol version 2"));
  assert_true(pn_log_has(l, 1, "this peer speaks 2"));
#endif
  pn_destroy(l);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(scenario_discovery_of_three_peers),
    cmocka_unit_test(scenario_static_peers_without_mdns),
    cmocka_unit_test(scenario_unknown_protocol_version),
  };
  return ls_run_tests(tests, NULL, NULL);
}
