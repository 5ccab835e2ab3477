/* Tests the party key (docs/PROTOCOL.md "Party key") with real
 * lanspread-peer-cli processes in network namespaces that find each other
 * by mDNS: two peers with key A link, list and download from each other; a
 * peer with key B gets nothing from them and each side shows the other as
 * "other party"; a raw QUIC client without the key gets no answer but
 * InvalidRequest, before or after its Hello. Skipped where namespaces
 * cannot be made. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testrun.h"

#include "evilpeer.h"
#include "peernet.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T_MS 20000
#define PORT "47420"

/* How many of p's `peers` are of another party, and whether `id` is one. */
static size_t other_party_peers(peerproc *p, const char *id, bool *has_id)
{
  json_t *r = pp_command(p, "peers", T_MS);
  json_t *peers = json_object_get(r, "peers");
  size_t n = 0, i;
  json_t *e;
  *has_id = false;
  json_array_foreach(peers, i, e) {
    const char *party = json_string_value(json_object_get(e, "party"));
    if (!party || strcmp(party, "other") != 0)
      continue;
    n++;
    if (id && strcmp(json_string_value(json_object_get(e, "peer_id")), id) == 0)
      *has_id = true;
  }
  json_decref(r);
  return n;
}

/* Waits until p shows `want` peers of another party, `id` among them. */
static void wait_other_party(peerproc *p, size_t want, const char *id)
{
  double t0 = pn_now();
  bool has_id = false;
  size_t n = 0;
  while (pn_now() - t0 < 15 && !((n = other_party_peers(p, id, &has_id)) >= want && has_id))
    usleep(200 * 1000);
  if (n < want || !has_id)
    fail_msg("%zu peer(s) of another party shown (wanted %zu, with %.16s)", n, want, id);
}

static int run_probe(void *arg)
{
  return evil_run(arg);
}

/* A raw client (the malicious peer's probe) asks host 0 for a list, a file
 * list and a chunk, says Hello proving `proof` of the key in key_file, and
 * asks again: everything is refused but, with the right proof, what
 * follows its Hello. */
static void probe_party(pn_net *n, enum evil_proof proof, const char *key_file, const char *what)
{
  evil_config probe = {.attack = EVIL_PROBE, .victim = pn_endpoint(n, 0),
                       .bind_host = "0.0.0.0", .state_dir = t_tempdir(), .game_id = "g0001",
                       .file_path = "g0001.part01.eti", .run_ms = 10000,
                       .party_key_file = key_file, .proof = proof};
  peerproc *e = pp_fork_in_netns(ls_netns_name(n->ns, 3), run_probe, &probe);
  json_t *line = NULL;
  while ((line = pp_next(e, T_MS)) &&
         strcmp(json_string_value(json_object_get(line, "evil")), "probe") != 0)
    json_decref(line);
  assert_non_null(line);
  char *text = json_dumps(line, JSON_COMPACT);
  print_message("raw client %s: %s\n", what, text);
  bool member = proof == EVIL_PROOF_RIGHT;
  assert_string_equal(json_string_value(json_object_get(line, "hello")),
                      member ? "HelloAck" : "InvalidRequest");
  for (int k = 0; k < 2; k++) {
    json_t *answers = json_object_get(line, k ? "after" : "before");
    size_t i;
    json_t *g;
    assert_int_equal(json_array_size(answers), 3);
    json_array_foreach(answers, i, g) {
      if (member && k == 1)
        assert_string_not_equal(json_string_value(g), "InvalidRequest");
      else
        assert_string_equal(json_string_value(g), "InvalidRequest");
    }
  }
  free(text);
  json_decref(line);
  pp_send(e, "stop");
  assert_int_equal(pp_wait(e, T_MS), 0);
}

static void party_key_splits_the_lan(void **state)
{
  (void)state;
  pn_net *n = pn_create(4, PORT);
  pn_generate(n, 0, (pn_game){.number = 1, .size = "256K", .archives = 1});
  t_write(n->root, "a.key", "  the key of party A, handed out\n");
  t_write(n->root, "b.key", "the key of party B, another one\n");
  const char *a = strdup(t_path("%s/a.key", n->root)), *b = strdup(t_path("%s/b.key", n->root));
  pn_start(n, 0, (pn_peer){.mdns = true, .log = true, .party_key_file = a});
  pn_start(n, 1, (pn_peer){.mdns = true, .log = true, .party_key_file = a});
  pn_start(n, 2, (pn_peer){.mdns = true, .log = true, .party_key_file = b});

  /* A and A: linked, listed, downloaded. */
  json_decref(pn_ok(n->peers[1], "wait-peers 1 15"));
  json_decref(pn_ok(n->peers[1], "download g0001"));
  json_decref(pn_ok(n->peers[1], "wait game-install-finished g0001 60"));

  /* B: no link, no game list, and both sides say why. */
  wait_other_party(n->peers[2], 2, n->ids[0]);
  wait_other_party(n->peers[0], 1, n->ids[2]);
  wait_other_party(n->peers[1], 1, n->ids[2]);
  json_t *r = pp_command(n->peers[2], "peer-count", T_MS);
  assert_int_equal(json_integer_value(json_object_get(r, "count")), 0);
  json_decref(r);
  r = pp_command(n->peers[2], "games", T_MS);
  size_t i;
  json_t *g;
  json_array_foreach(json_object_get(r, "games"), i, g)
    assert_int_equal(json_integer_value(json_object_get(g, "peers")), 0);
  json_decref(r);
  assert_true(pn_log_has(n, 0, "it proves another party key"));

  /* A raw client without the key: InvalidRequest before and after Hello.
   * With the key, a proof replayed from its other connection or reflected
   * (the answering side's proof) fares the same; the right proof is
   * answered (so the probe can tell). */
  probe_party(n, EVIL_PROOF_NONE, NULL, "without the key");
  probe_party(n, EVIL_PROOF_REPLAYED, a, "with a replayed proof");
  probe_party(n, EVIL_PROOF_REFLECTED, a, "with a reflected proof");
  probe_party(n, EVIL_PROOF_RIGHT, a, "with the right proof");
  free((char *)a);
  free((char *)b);
  pn_destroy(n);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(party_key_splits_the_lan),
  };
  return ls_run_tests(tests, NULL, NULL);
}
