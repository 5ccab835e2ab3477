/* Tests downloads whose timing matters, between lanspread-peer-cli processes
 * in network namespaces with tbf-shaped links (tests/common/peernet.h):
 * cancel at 5%, 50% and 95% of a fresh download, cancel of an update, a
 * seeder killed mid-download, the downloader killed and restarted (its
 * download is kept as paused; test_resume_net resumes such downloads), a
 * cancel while the only seeder's link is down, and a download from three
 * seeders. Skipped where namespaces cannot be made. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testrun.h"

#include "peernet.h"
#include "testutil.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T_MS PN_T_MS
#define PORT "47400"
#define ID "g0001"
#define GAME_SIZE "48M" /* at 40 Mbit/s: about 10 s */
#define RATE_MBIT 40

static const char *const payload[] = {ID ".part01.eti", ID ".part02.eti", ID ".part03.eti",
                                      "version.ini"};

/* g0001 VERSION in three raw archives at host (the downloads are the
 * subject here, not the installs that follow them). Each version has its
 * own bytes, so an update reuses nothing. */
static void generate(pn_net *n, int host, const char *size, const char *version,
                     bool installed)
{
  pn_generate(n, host, (pn_game){.size = size, .version = version, .format = "raw",
                                 .archives = 3, .installed = installed,
                                 .seed = version[0] - '0' + 1});
}

/* host's peer, with static peers hosts 0 .. seeders-1. */
static peerproc *start(pn_net *n, int host, int seeders)
{
  return pn_start(n, host, (pn_peer){.static_peers = (1u << seeders) - 1});
}

static const char *at(const pn_net *n, int host, const char *rel)
{
  return t_path("%s/h%d/%s", n->root, host, rel);
}

static void assert_same_payload(const pn_net *n, int host_a, int host_b)
{
  for (size_t i = 0; i < sizeof payload / sizeof payload[0]; i++) {
    const char *a = t_path("%s/h%d/" ID "/%s", n->root, host_a, payload[i]);
    const char *b = t_path("%s/h%d/" ID "/%s", n->root, host_b, payload[i]);
    if (!pn_same_file(a, b))
      fail_msg("%s and %s differ", a, b);
  }
}

static void cancel_and_wait(peerproc *d)
{
  json_decref(pn_ok(d, "cancel " ID));
  json_decref(pp_expect(d, "game-download-cancelled", NULL, T_MS));
}

static void scenario_cancel_fresh_download(void **state)
{
  (void)state;
  pn_net *n = pn_create(2, PORT);
  /* 5% must be more than the requests in flight (8 x 1 MiB), or the tail
   * of the download would finish before a cancel at 95% arrives. */
  generate(n, 0, "192M", "1.0", false);
  assert_int_equal(ls_netns_shape(n->ns, 0, 100, 0), 0);
  start(n, 0, 0);
  peerproc *d = start(n, 1, 1);
  json_decref(pn_ok(d, "wait-peers 1 20"));
  const double points[] = {0.05, 0.50, 0.95};
  for (int i = 0; i < 3; i++) {
    double seen = pn_download_until(d, ID, points[i]);
    if (seen < 0)
      fail_msg("the download ended before %.0f%%", points[i] * 100);
    if (i == 1) /* set-game-dir is refused while the download runs */
      pn_refused(d, "operation", "set-game-dir %s", n->root);
    double t0 = pn_now();
    cancel_and_wait(d);
    print_message("cancel at %.0f%%: done in %.3f s\n", seen * 100, pn_now() - t0);
    /* A fresh download cancelled leaves no game root at all. */
    assert_false(pn_exists(at(n, 1, ID)));
    json_t *g = pn_game_entry(d, ID);
    assert_false(json_is_true(json_object_get(g, "downloaded")));
    json_decref(g);
  }
  pn_destroy(n);
}

static void scenario_cancel_update(void **state)
{
  (void)state;
  pn_net *n = pn_create(2, PORT);
  generate(n, 0, GAME_SIZE, "2.0", false);
  generate(n, 1, GAME_SIZE, "1.0", true); /* installed 1.0 here, 2.0 at the seeder */
  assert_int_equal(ls_netns_shape(n->ns, 0, RATE_MBIT, 0), 0);
  start(n, 0, 0);
  peerproc *d = start(n, 1, 1);
  /* Written after start-up (whose recovery would settle it): the discard of
   * a cancelled download must keep the install state it finds. */
  t_write(n->root, "h1/" ID "/.lanspread.json", "{\"op\":\"none\"}");
  t_write(n->root, "h1/" ID "/.sync/state", "external tool");
  json_decref(pn_ok(d, "wait-peers 1 20"));
  assert_true(pn_download_until(d, ID, 0.5) > 0);
  cancel_and_wait(d);
  /* Settles as local-only: local/ and the install state stay, the rest goes. */
  assert_true(pn_exists(at(n, 1, ID "/local/README.txt")));
  assert_true(pn_exists(at(n, 1, ID "/.lanspread.json")));
  assert_true(pn_exists(at(n, 1, ID "/.sync/state")));
  assert_false(pn_exists(at(n, 1, ID "/version.ini")));
  assert_false(pn_exists(at(n, 1, ID "/" ID ".part01.eti")));
  assert_false(pn_exists(at(n, 1, ID "/.version.ini.discarded")));
  json_t *g = pn_game_entry(d, ID);
  assert_true(json_is_true(json_object_get(g, "installed")));
  assert_false(json_is_true(json_object_get(g, "downloaded")));
  json_decref(g);
  pn_destroy(n);
}

static void scenario_seeder_killed_mid_download(void **state)
{
  (void)state;
  pn_net *n = pn_create(3, PORT);
  generate(n, 0, GAME_SIZE, "1.0", false);
  generate(n, 1, GAME_SIZE, "1.0", false);
  assert_int_equal(ls_netns_shape(n->ns, 0, RATE_MBIT, 0), 0);
  assert_int_equal(ls_netns_shape(n->ns, 1, RATE_MBIT, 0), 0);
  start(n, 0, 0);
  start(n, 1, 0);
  peerproc *d = start(n, 2, 2);
  json_decref(pn_ok(d, "wait-peers 2 20"));
  assert_true(pn_download_until(d, ID, 0.3) > 0);
  pn_kill(n, 0);
  json_decref(pn_ok(d, "wait game-download-finished " ID " 60"));
  assert_same_payload(n, 1, 2);
  pn_destroy(n);
}

static void scenario_downloader_killed_and_restarted(void **state)
{
  (void)state;
  pn_net *n = pn_create(2, PORT);
  generate(n, 0, GAME_SIZE, "1.0", false);
  assert_int_equal(ls_netns_shape(n->ns, 0, RATE_MBIT, 0), 0);
  start(n, 0, 0);
  peerproc *d = start(n, 1, 1);
  json_decref(pn_ok(d, "wait-peers 1 20"));
  assert_true(pn_download_until(d, ID, 0.4) > 0);
  pn_kill(n, 1);
  assert_true(pn_exists(at(n, 1, ID "/.lanspread.download"))); /* mid-download */
  assert_true(pn_exists(at(n, 1, ID "/.lanspread.chunks")));
  d = start(n, 1, 1); /* startup recovery runs before the first scan */
  /* It keeps the download as paused: journal, chunk map and payload stay,
   * nothing is committed. */
  assert_true(pn_exists(at(n, 1, ID "/.lanspread.download")));
  assert_true(pn_exists(at(n, 1, ID "/.lanspread.chunks")));
  assert_true(pn_exists(at(n, 1, ID "/" ID ".part01.eti")));
  assert_false(pn_exists(at(n, 1, ID "/version.ini")));
  json_decref(pn_ok(d, "wait-peers 1 20"));
  json_t *g = pn_game_entry(d, ID);
  assert_non_null(g);
  assert_false(json_is_true(json_object_get(g, "downloaded")));
  assert_string_equal(pn_field(g, "state"), "paused");
  assert_string_equal(pn_field(g, "actions"), "[\"download\",\"cancel\"]");
  json_t *dl = json_object_get(g, "download");
  assert_string_equal(pn_field(dl, "state"), "paused");
  assert_string_equal(pn_field(dl, "version"), "1.0");
  json_int_t bytes = json_integer_value(json_object_get(dl, "bytes"));
  json_int_t total = json_integer_value(json_object_get(dl, "total_bytes"));
  print_message("recovered as paused: %lld of %lld bytes durable\n", (long long)bytes,
                (long long)total);
  assert_true(bytes > 0 && bytes < total);
  assert_int_equal(total, (48 << 20) + 4); /* the archives and "1.0\n" */
  json_decref(g);
  pn_destroy(n);
}

static void scenario_cancel_with_the_seeder_unreachable(void **state)
{
  (void)state;
  pn_net *n = pn_create(2, PORT);
  generate(n, 0, GAME_SIZE, "1.0", false);
  assert_int_equal(ls_netns_shape(n->ns, 0, RATE_MBIT, 0), 0);
  start(n, 0, 0);
  peerproc *d = start(n, 1, 1);
  json_decref(pn_ok(d, "wait-peers 1 20"));
  assert_true(pn_download_until(d, ID, 0.2) > 0);
  assert_int_equal(ls_netns_link(n->ns, 0, false), 0); /* the cable is pulled */
  double t0 = pn_now();
  cancel_and_wait(d);
  double took = pn_now() - t0;
  print_message("cancel with the seeder unreachable took %.3f s\n", took);
  assert_true(took < 1.0);
  assert_false(pn_exists(at(n, 1, ID)));
  assert_int_equal(ls_netns_link(n->ns, 0, true), 0);
  pn_destroy(n);
}

static void scenario_download_from_three_peers(void **state)
{
  (void)state;
  pn_net *n = pn_create(4, PORT);
  for (int i = 0; i < 3; i++) {
    generate(n, i, GAME_SIZE, "1.0", false);
    start(n, i, 0);
  }
  peerproc *d = start(n, 3, 3); /* host 3 downloads from the three others */
  json_decref(pn_ok(d, "wait-peers 3 20"));
  json_decref(pn_ok(d, "download " ID));
  json_decref(pn_ok(d, "wait game-download-finished " ID " 60"));
  assert_same_payload(n, 0, 3);
  pn_destroy(n);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(scenario_download_from_three_peers),
    cmocka_unit_test(scenario_cancel_fresh_download),
    cmocka_unit_test(scenario_cancel_update),
    cmocka_unit_test(scenario_seeder_killed_mid_download),
    cmocka_unit_test(scenario_downloader_killed_and_restarted),
    cmocka_unit_test(scenario_cancel_with_the_seeder_unreachable),
  };
  return ls_run_tests(tests, NULL, NULL);
}
