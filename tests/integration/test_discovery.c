/* Tests discovery and liveness of real lanspread-peer-cli processes, one per
 * network namespace on one bridge (tests/common/peernet.h): three peers find
 * each other by mDNS alone, show the union of their libraries, notice a
 * peer killed with SIGKILL and its return, refuse a peer that speaks
 * another protocol version, and retry a peer mDNS announces but that never
 * lets anyone connect only slowly. Skipped where namespaces cannot be made. The
 * scenario_* functions are rows of docs/PEER_CLI_SCENARIOS.md. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testrun.h"

#include "peernet.h"
#include "testutil.h"

#include "net/identity.h"
#include "net/mdns.h"
#include "net/quic.h"
#include "proto/proto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
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

/* ---- a fake peer announced by mDNS ---- */

#define FAKE_PORT 47399
#define FAKE_RUN_MS 20000

typedef struct fake_args {
  const char *state_dir;
} fake_args;

static void fake_stop(uv_timer_t *t)
{
  uv_stop(t->loop);
}

static void fake_closed(void *user)
{
  (void)user;
}

/* In its own namespace: announces a peer by mDNS whose QUIC endpoint
 * refuses every connection at once (no incoming slot: max_conns 1, the one
 * reserved for dialling out), for FAKE_RUN_MS, then prints how many
 * connection attempts it refused. */
static int fake_child(void *arg)
{
  const fake_args *a = arg;
  uv_loop_t loop;
  ls_identity *id = NULL;
  ls_quic *q = NULL;
  ls_mdns *m = NULL;
  ls_diag diag = {{0}};
  struct sockaddr_in bind = {.sin_family = AF_INET, .sin_port = htons(FAKE_PORT)};
  if (uv_loop_init(&loop) != 0 || ls_identity_load_or_create(a->state_dir, &id, &diag) != 0)
    return 2;
  ls_quic_config qc = {.bind_addr = (struct sockaddr *)&bind, .identity = id,
                       .tuning = {.max_conns = 1, .reserved_outgoing = 1}};
  ls_mdns_config mc = {.loop = &loop, .peer_id = ls_identity_peer_id(id), .name = "fake",
                       .port = FAKE_PORT, .protocol_version = LS_PROTO_VERSION};
  if (ls_quic_new(&loop, &qc, &q, &diag) != 0 || ls_mdns_start(&mc, &m, &diag) != 0) {
    fprintf(stderr, "fake peer: %s\n", diag.text);
    return 2;
  }
  uv_timer_t stop;
  uv_timer_init(&loop, &stop);
  uv_timer_start(&stop, fake_stop, FAKE_RUN_MS, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  printf("refused %llu\n", (unsigned long long)ls_quic_get_stats(q).refused);
  fflush(stdout);
  ls_mdns_stop(m);
  ls_quic_close(q, fake_closed, NULL);
  uv_close((uv_handle_t *)&stop, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  ls_identity_free(id);
  return 0;
}

static size_t count_in(const char *text, const char *needle)
{
  size_t n = 0;
  for (const char *p = text; p && (p = strstr(p, needle)); p += strlen(needle))
    n++;
  return n;
}

/* A peer announced by mDNS that never lets anyone connect (gone, or a
 * fake): after LS_LINK_MAX_FAILURES refused connections in a row it is
 * tried once every LS_LINK_SLOW_RETRY_TICKS seconds while mDNS announces
 * it (not forgotten: a LAN outage must not split the party), so in 20 s
 * it is dialled exactly 3 times, where the normal backoff would go on
 * every 2, 4, 8, 10 s. */
static void scenario_mdns_fake_is_retried_slowly(void **state)
{
  (void)state;
  pn_net *l = make_lan(2);
  start(l, 0, (pn_peer){.mdns = true});
  fake_args a = {.state_dir = t_tempdir()};
  int from = -1;
  pid_t pid = ls_netns_fork(l->ns, 1, fake_child, &a, NULL, &from);
  assert_true(pid > 0);
  assert_int_equal(ls_netns_wait(l->ns, pid, FAKE_RUN_MS + 15000), 0);
  char out[128] = {0};
  ssize_t n = read(from, out, sizeof out - 1);
  close(from);
  unsigned long long refused = 0;
  assert_true(n > 0 && sscanf(out, "refused %llu", &refused) == 1);
  size_t len = 0;
  char *log = t_read(t_path("%s/h0.log", l->root), &len);
  size_t slow = count_in(log, "while mDNS announces it");
  print_message("a peer announced by mDNS that refuses every connection: dialled %llu times "
                "in %d s; \"retrying slowly\" said %zu time(s)\n", refused, FAKE_RUN_MS / 1000,
                slow);
  assert_int_equal(refused, 3);
  assert_int_equal(slow, 1);
  free(log);
  pn_destroy(l);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(scenario_discovery_of_three_peers),
    cmocka_unit_test(scenario_static_peers_without_mdns),
    cmocka_unit_test(scenario_unknown_protocol_version),
    cmocka_unit_test(scenario_mdns_fake_is_retried_slowly),
  };
  return ls_run_tests(tests, NULL, NULL);
}
