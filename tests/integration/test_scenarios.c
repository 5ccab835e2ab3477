/* The headless scenario matrix of docs/PEER_CLI_SCENARIOS.md: real
 * lanspread-peer-cli processes, one per network namespace on one bridge
 * (tests/common/peernet.h), driven over stdin/stdout JSON lines, with real
 * game directories. The rows that live here: union library with versions,
 * download from one peer, auto install, update from a newer peer, corrupt
 * peer, remove-downloaded, uninstall, catalog gating, set-game-dir while idle
 * and while busy, unreachable static peer. The other rows are in
 * test_discovery.c and test_download_net.c. Skipped where namespaces cannot
 * be made. */
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

#define PORT "47500"
#define T_MS PN_T_MS
#define ID "g0001"

/* GAME_DIR-relative path of host's game directory. */
static const char *at(const pn_net *n, int host, const char *rel)
{
  return t_path("%s/h%d/%s", n->root, host, rel);
}

static const char *const payload[] = {"g0001.part01.eti", "g0001.part02.eti", "version.ini"};

/* The payload of g0001 (two archives and version.ini) is identical in both. */
static void assert_same_payload(const char *dir_a, const char *dir_b)
{
  for (size_t i = 0; i < sizeof payload / sizeof payload[0]; i++) {
    char a[4096], b[4096];
    snprintf(a, sizeof a, "%s/%s", dir_a, payload[i]);
    snprintf(b, sizeof b, "%s/%s", dir_b, payload[i]);
    if (!pn_same_file(a, b))
      fail_msg("%s differs from %s", a, b);
  }
}

/* No transient of a download or an install is left in the root. */
static void assert_settled(const char *root)
{
  static const char *const transients[] = {".version.ini.tmp", ".version.ini.discarded",
                                           ".lanspread.download", ".local.installing",
                                           ".local.backup", ".lanspread.json"};
  for (size_t i = 0; i < sizeof transients / sizeof transients[0]; i++)
    if (pn_exists(t_path("%s/%s", root, transients[i])))
      fail_msg("%s/%s is left behind", root, transients[i]);
}

static void expect_entry(peerproc *p, const char *id, const char *latest, const char *local,
                         int peers, bool downloaded, bool installed)
{
  json_t *g = pn_game_entry(p, id);
  if (!g)
    fail_msg("%s is not listed", id);
  assert_string_equal(pn_field(g, "latest_version"), latest);
  assert_string_equal(pn_field(g, "local_version"), local);
  assert_int_equal(json_integer_value(json_object_get(g, "peers")), peers);
  assert_int_equal(json_is_true(json_object_get(g, "downloaded")), downloaded);
  assert_int_equal(json_is_true(json_object_get(g, "installed")), installed);
  json_decref(g);
}

static void expect_absent(peerproc *p, const char *id)
{
  json_t *g = pn_game_entry(p, id);
  if (g)
    fail_msg("%s is listed but should not be", id);
}

static size_t games_count(peerproc *p)
{
  json_t *r = pn_ok(p, "games");
  size_t count = json_array_size(json_object_get(r, "games"));
  json_decref(r);
  return count;
}

/* Sends `line` (a command on game id), collects id's events until one of
 * the stop types (NULL-padded), and checks that the command's reply, which
 * may come before or after its events, was ok. */
static json_t *run(peerproc *p, const char *id, const char *line, const char *s1,
                   const char *s2, const char *s3, const char *s4)
{
  char cmd[64];
  snprintf(cmd, sizeof cmd, "%s", line);
  cmd[strcspn(cmd, " ")] = '\0';
  pp_send(p, line);
  json_t *ev = pn_events_until(p, id, T_MS, s1, s2, s3, s4, NULL);
  json_t *reply = NULL;
  size_t i;
  json_t *e;
  json_array_foreach(ev, i, e) {
    const char *c = json_string_value(json_object_get(e, "cmd"));
    if (c && strcmp(c, cmd) == 0)
      reply = json_incref(e);
  }
  if (!reply)
    reply = pp_expect(p, "reply", cmd, T_MS);
  if (!json_is_true(json_object_get(reply, "ok")))
    fail_msg("'%s' failed: %s", line, json_string_value(json_object_get(reply, "error")));
  json_decref(reply);
  return ev;
}

static void assert_order(json_t *ev, const char *const *types)
{
  int pos = -1;
  for (; *types; types++) {
    int i = pn_find(ev, *types, pos + 1);
    if (i < 0)
      fail_msg("expected %s after position %d; saw: %s", *types, pos, pn_types(ev));
    pos = i;
  }
}

static json_t *event_of(json_t *ev, const char *type)
{
  int i = pn_find(ev, type, 0);
  if (i < 0)
    fail_msg("no %s; saw: %s", type, pn_types(ev));
  return json_array_get(ev, (size_t)i);
}

/* ---- union library with versions --------------------------------------- */

static void scenario_union_library_with_versions(void **state)
{
  (void)state;
  pn_net *n = pn_create(3, PORT);
  const char *unused = t_path("%s/unused", n->root);
  /* h0: g0001 1.9, g0002 20231231, g0004 installed without version.ini
   * (local-only). h1: g0001 1.10, g0003 as "version=2.5". h2: g0001 1.10,
   * g0002 20240115. g0005 is in the catalog and nowhere. */
  pn_generate(n, 0, (pn_game){.number = 1, .version = "1.9", .size = "64K", .archives = 1});
  pn_generate(n, 0, (pn_game){.number = 2, .version = "20231231", .size = "64K", .archives = 1});
  pn_generate(n, 0, (pn_game){.number = 4, .size = "64K", .archives = 1, .installed = true});
  assert_int_equal(unlink(at(n, 0, "g0004/version.ini")), 0);
  pn_generate(n, 1, (pn_game){.number = 1, .version = "1.10", .size = "64K", .archives = 1});
  pn_generate(n, 1, (pn_game){.number = 3, .size = "64K", .archives = 1});
  t_write(n->root, "h1/g0003/version.ini", "name=Three\nversion=2.5\n");
  pn_generate(n, 2, (pn_game){.number = 2, .version = "20240115", .size = "64K", .archives = 1});
  pn_generate(n, 2, (pn_game){.number = 1, .version = "1.10", .size = "64K", .archives = 1});
  pn_generate(n, 0, (pn_game){.number = 5, .size = "64K", .archives = 1, .game_dir = unused});

  pn_start(n, 0, (pn_peer){0});
  pn_start(n, 1, (pn_peer){.static_peers = 1u << 0});
  pn_start(n, 2, (pn_peer){.static_peers = 1u << 0 | 1u << 1});
  for (int i = 0; i < 3; i++)
    json_decref(pn_ok(n->peers[i], "wait-peers 2 20"));

  peerproc *h0 = n->peers[0], *h1 = n->peers[1], *h2 = n->peers[2];
  /* latest = highest anywhere (natural order); local = this host's; peers =
   * remote holders of any version. */
  expect_entry(h0, "g0001", "1.10", "1.9", 2, true, false);
  expect_entry(h1, "g0001", "1.10", "1.10", 2, true, false);
  expect_entry(h2, "g0001", "1.10", "1.10", 2, true, false);
  expect_entry(h0, "g0002", "20240115", "20231231", 1, true, false);
  expect_entry(h1, "g0002", "20240115", "null", 2, false, false);
  expect_entry(h2, "g0002", "20240115", "20240115", 1, true, false);
  expect_entry(h0, "g0003", "2.5", "null", 1, false, false);
  expect_entry(h1, "g0003", "2.5", "2.5", 0, true, false);
  expect_entry(h2, "g0003", "2.5", "null", 1, false, false);
  /* Local-only: listed where it is, playable, never announced. */
  expect_entry(h0, "g0004", "null", "null", 0, false, true);
  expect_absent(h1, "g0004");
  expect_absent(h2, "g0004");
  for (int i = 0; i < 3; i++)
    expect_absent(n->peers[i], "g0005");
  assert_int_equal(games_count(h0), 4);
  assert_int_equal(games_count(h1), 3);
  assert_int_equal(games_count(h2), 3);

  /* peers: both others, by name, id and number of announced games. */
  json_t *r = pn_ok(h0, "peers");
  json_t *peers = json_object_get(r, "peers");
  assert_int_equal(json_array_size(peers), 2);
  size_t i;
  json_t *pe;
  json_array_foreach(peers, i, pe) {
    const char *name = json_string_value(json_object_get(pe, "name"));
    int host = strcmp(name, "host1") == 0 ? 1 : strcmp(name, "host2") == 0 ? 2 : -1;
    assert_true(host > 0);
    assert_string_equal(json_string_value(json_object_get(pe, "peer_id")), n->ids[host]);
    assert_int_equal(json_integer_value(json_object_get(pe, "games")), 2);
  }
  json_decref(r);

  /* A newer version appears on h1: the others see it as latest, by polling
   * (static peers, no mDNS revision). */
  t_write(n->root, "h1/g0002/version.ini", "20240201");
  assert_true(pn_poll_game(h0, "g0002", "latest_version", "20240201", 12));
  assert_true(pn_poll_game(h2, "g0002", "latest_version", "20240201", 12));
  expect_entry(h2, "g0002", "20240201", "20240115", 2, true, false);
  pn_destroy(n);
}

/* ---- download from one peer -------------------------------------------- */

static void scenario_download_from_one_peer(void **state)
{
  (void)state;
  pn_net *n = pn_create(2, PORT);
  pn_generate(n, 0, (pn_game){.size = "16M"});
  pn_start(n, 0, (pn_peer){0});
  peerproc *d = pn_start(n, 1, (pn_peer){.static_peers = 1u << 0});
  json_decref(pn_ok(d, "wait-peers 1 20"));
  expect_entry(d, ID, "1.0", "null", 1, false, false);

  double t0 = pn_now();
  json_t *ev = run(d, ID, "download " ID, "game-download-finished", "game-download-failed",
                   "game-download-cancelled", NULL);
  print_message("16 MiB from one peer in %.2f s: %s\n", pn_now() - t0, pn_types(ev));
  assert_string_equal(pn_last_type(ev), "game-download-finished");
  assert_order(ev, (const char *const[]){"game-files", "game-download-begin",
                                         "game-download-progress", "game-download-finished",
                                         NULL});
  assert_string_equal(json_string_value(json_object_get(event_of(ev, "game-files"), "version")),
                      "1.0");
  json_t *fin = event_of(ev, "game-download-finished");
  assert_string_equal(json_string_value(json_object_get(fin, "version")), "1.0");
  /* The last progress is 100%, and the sizes agree with the seeder's files. */
  json_t *last = json_array_get(ev, (size_t)pn_find(ev, "game-download-finished", 0) - 1);
  assert_string_equal(json_string_value(json_object_get(last, "type")),
                      "game-download-progress");
  assert_int_equal(json_integer_value(json_object_get(last, "bytes")),
                   json_integer_value(json_object_get(last, "total_bytes")));
  assert_int_equal(json_integer_value(json_object_get(fin, "bytes")),
                   json_integer_value(json_object_get(last, "total_bytes")));
  assert_true(json_integer_value(json_object_get(fin, "bytes")) >= 16 << 20);
  json_decref(ev);

  char *mine = strdup(at(n, 1, ID));
  assert_same_payload(at(n, 0, ID), mine);
  expect_entry(d, ID, "1.0", "1.0", 1, true, false);
  /* The automatic install follows; then nothing transient is left. */
  json_decref(pn_ok(d, "wait game-install-finished " ID " 60"));
  assert_settled(mine);
  free(mine);
  /* The seeder learns that the downloader holds it now (library poll). */
  assert_true(pn_poll_game(n->peers[0], ID, "peers", "1", 12));
  pn_destroy(n);
}

/* ---- auto install ------------------------------------------------------- */

/* The last game-install-progress event says every archive byte was
 * extracted. */
static void assert_install_progress_complete(json_t *events)
{
  json_t *last = NULL;
  size_t i;
  json_t *e;
  json_array_foreach(events, i, e)
    if (strcmp(json_string_value(json_object_get(e, "type")), "game-install-progress") == 0)
      last = e;
  if (!last)
    fail_msg("no game-install-progress in: %s", pn_types(events));
  json_int_t total = json_integer_value(json_object_get(last, "total_bytes"));
  assert_true(total > 0);
  assert_int_equal(json_integer_value(json_object_get(last, "bytes")), total);
}

static void scenario_auto_install(void **state)
{
  (void)state;
  pn_net *n = pn_create(2, PORT);
  char *expect = strdup(t_path("%s/expect", n->root));
  pn_generate(n, 0, (pn_game){.format = "zip", .size = "8M", .expect_dir = expect});
  /* g0002: raw archives that no unpacker reads. */
  pn_generate(n, 0, (pn_game){.number = 2, .format = "raw", .size = "1M"});
  pn_start(n, 0, (pn_peer){0});
  peerproc *d = pn_start(n, 1, (pn_peer){.static_peers = 1u << 0});
  json_decref(pn_ok(d, "wait-peers 1 20"));

  json_t *ev = run(d, ID, "download " ID, "game-install-finished",
           "game-install-failed", "game-download-failed", "game-download-cancelled");
  print_message("download + install: %s\n", pn_types(ev));
  assert_string_equal(pn_last_type(ev), "game-install-finished");
  assert_order(ev, (const char *const[]){"game-download-finished", "game-install-begin",
                                         "game-install-finished", NULL});
  assert_install_progress_complete(ev);
  json_decref(ev);
  assert_true(pn_same_tree(at(n, 1, ID "/local"), t_path("%s/" ID, expect)));
  assert_settled(at(n, 1, ID));
  expect_entry(d, ID, "1.0", "1.0", 1, true, true);
  /* The runtime's view says what the game is and what can be done. */
  json_t *g = pn_game_entry(d, ID);
  assert_string_equal(pn_field(g, "state"), "installed");
  assert_string_equal(pn_field(g, "actions"), "[\"uninstall\",\"verify\",\"repair\"]");
  assert_string_equal(pn_field(g, "download"), "null");
  assert_string_equal(pn_field(g, "operation"), "null");
  assert_string_equal(pn_field(g, "update_available"), "false");
  json_decref(g);

  /* An install that cannot work fails after a good download: the game stays
   * downloaded, not installed, with no install state left. */
  ev = run(d, "g0002", "download g0002", "game-install-finished",
           "game-install-failed", "game-download-failed", "game-download-cancelled");
  print_message("download + failed install: %s\n", pn_types(ev));
  assert_string_equal(pn_last_type(ev), "game-install-failed");
  assert_true(pn_find(ev, "game-download-finished", 0) >= 0);
  const char *why = json_string_value(json_object_get(json_array_get(ev, json_array_size(ev) - 1),
                                                      "error"));
  assert_true(why && *why);
  print_message("install failure reads: %s\n", why);
  const char *code = json_string_value(json_object_get(json_array_get(ev, json_array_size(ev) - 1),
                                                       "code"));
  assert_true(code && strncmp(code, "LS_E", 4) == 0);
  json_decref(ev);
  assert_false(pn_exists(at(n, 1, "g0002/local")));
  assert_settled(at(n, 1, "g0002"));
  expect_entry(d, "g0002", "1.0", "1.0", 1, true, false);
  free(expect);
  pn_destroy(n);
}

/* ---- update from a newer peer ------------------------------------------ */

static void scenario_update_from_newer_peer(void **state)
{
  (void)state;
  pn_net *n = pn_create(2, PORT);
  char *e1 = strdup(t_path("%s/e1", n->root)), *e2 = strdup(t_path("%s/e2", n->root));
  /* 1.0: three archives; 2.0: two, of other content. */
  pn_generate(n, 1, (pn_game){.version = "1.0", .seed = 1, .archives = 3, .expect_dir = e1});
  pn_generate(n, 0, (pn_game){.version = "2.0", .seed = 2, .size = "8M", .expect_dir = e2});
  pn_start(n, 0, (pn_peer){0});
  peerproc *d = pn_start(n, 1, (pn_peer){.static_peers = 1u << 0});
  /* 1.0 installed here for real. */
  json_t *ev = run(d, ID, "install " ID, "game-install-finished", "game-install-failed", NULL,
                   NULL);
  assert_string_equal(pn_last_type(ev), "game-install-finished");
  json_decref(ev);
  assert_true(pn_same_tree(at(n, 1, ID "/local"), t_path("%s/" ID, e1)));
  json_decref(pn_ok(d, "wait-peers 1 20"));
  expect_entry(d, ID, "2.0", "1.0", 1, true, true);

  /* fetch-latest asks the peers, not the local archives. */
  ev = run(d, ID, "fetch-latest " ID, "game-files", NULL, NULL, NULL);
  assert_string_equal(json_string_value(json_object_get(event_of(ev, "game-files"), "version")),
                      "2.0");
  json_decref(ev);

  /* A cancelled update leaves the installed 1.0 as it was. */
  assert_int_equal(ls_netns_shape(n->ns, 0, 20, 0), 0); /* 8 MiB: about 3.5 s */
  assert_true(pn_download_until(d, ID, 0.3) > 0);
  json_decref(pn_ok(d, "cancel " ID));
  json_decref(pp_expect(d, "game-download-cancelled", NULL, T_MS));
  assert_true(pn_same_tree(at(n, 1, ID "/local"), t_path("%s/" ID, e1)));
  assert_false(pn_exists(at(n, 1, ID "/version.ini")));
  assert_settled(at(n, 1, ID));
  assert_int_equal(ls_netns_shape(n->ns, 0, 0, 0), 0);

  ev = run(d, ID, "download " ID, "game-install-finished",
           "game-install-failed", "game-download-failed", "game-download-cancelled");
  print_message("update: %s\n", pn_types(ev));
  assert_string_equal(pn_last_type(ev), "game-install-finished");
  assert_order(ev, (const char *const[]){"game-download-begin", "game-download-finished",
                                         "game-install-begin", "game-install-finished", NULL});
  assert_string_equal(
    json_string_value(json_object_get(event_of(ev, "game-download-finished"), "version")),
    "2.0");
  json_decref(ev);
  char *mine = strdup(at(n, 1, ID));
  assert_same_payload(at(n, 0, ID), mine);
  assert_true(pn_same_tree(t_path("%s/local", mine), t_path("%s/" ID, e2)));
  /* 1.0 had a third archive that 2.0 has not: it is not kept. */
  assert_false(pn_exists(t_path("%s/g0001.part03.eti", mine)));
  assert_settled(mine);
  expect_entry(d, ID, "2.0", "2.0", 1, true, true);
  free(mine);
  free(e1);
  free(e2);
  pn_destroy(n);
}

/* ---- corrupt peer -------------------------------------------------------- */

static void scenario_corrupt_peer(void **state)
{
  (void)state;
#ifndef LS_TEST_HOOKS
  ls_skip("needs a build with LS_TEST_HOOKS (the corrupt-serve switch)");
#else
  pn_net *n = pn_create(3, PORT);
  /* h0 flips the first byte of everything it serves; h1 is honest. */
  /* 24 chunks: enough that the corrupt peer is asked for 3 of them even
   * when the honest one is much faster (a loaded machine, a sanitizer). */
  pn_generate(n, 0, (pn_game){.size = "24M"});
  pn_generate(n, 0, (pn_game){.number = 2, .size = "2M"});
  pn_generate(n, 1, (pn_game){.size = "24M"});
  /* g0003: h2 has 1.0 installed, the corrupt peer alone offers 2.0 (files
   * of the same names and sizes); a copy of 1.0 to compare with. */
  char *before = strdup(t_path("%s/before", n->root));
  t_mkdir(n->root, "before");
  pn_generate(n, 2, (pn_game){.number = 3, .size = "2M", .installed = true});
  pn_generate(n, 2, (pn_game){.number = 3, .size = "2M", .installed = true, .game_dir = before});
  pn_generate(n, 0, (pn_game){.number = 3, .size = "2M", .version = "2.0", .seed = 2});
  pn_start(n, 0, (pn_peer){.env = "LS_TEST_CORRUPT_SERVE=1"});
  pn_start(n, 1, (pn_peer){0});
  peerproc *d = pn_start(n, 2, (pn_peer){.static_peers = 3u, .log = true});
  json_decref(pn_ok(d, "wait-peers 2 20"));

  /* Both have g0001: every corrupt chunk is rejected and fetched again from
   * the honest peer; the result is exact. */
  json_t *ev = run(d, ID, "download " ID, "game-install-finished",
           "game-install-failed", "game-download-failed", "game-download-cancelled");
  print_message("with one corrupt seeder: %s\n", pn_types(ev));
  assert_true(pn_find(ev, "game-download-finished", 0) >= 0);
  assert_string_equal(pn_last_type(ev), "game-install-finished");
  json_decref(ev);
  assert_same_payload(at(n, 1, ID), at(n, 2, ID));
  /* The downloader says whom it dropped and why. */
  assert_true(pn_log_has(n, 2, t_path("dropping peer %.16s: corrupt chunk (SHA-256 mismatch)",
                                      n->ids[0])));
  assert_false(pn_log_has(n, 2, t_path("dropping peer %.16s", n->ids[1])));

  /* Only the corrupt peer has g0002: the download fails and leaves nothing. */
  ev = run(d, "g0002", "download g0002", "game-install-finished",
           "game-install-failed", "game-download-failed", "game-download-cancelled");
  print_message("from the corrupt seeder alone: %s\n", pn_types(ev));
  assert_string_equal(pn_last_type(ev), "game-download-failed");
  const char *why = json_string_value(json_object_get(json_array_get(ev, json_array_size(ev) - 1),
                                                      "error"));
  print_message("failure reads: %s\n", why ? why : "(none)");
  assert_non_null(why);
  assert_non_null(strstr(why, "SHA-256 mismatch")); /* the reason, not just the outcome */
  assert_string_equal(json_string_value(json_object_get(json_array_get(ev, json_array_size(ev) - 1),
                                                        "code")),
                      "LS_ECORRUPT");
  json_decref(ev);
  assert_false(pn_exists(at(n, 2, "g0002")));
  json_t *g = pn_game_entry(d, "g0002");
  assert_non_null(g);
  assert_false(json_is_true(json_object_get(g, "downloaded")));
  json_decref(g);

  /* An update that fails keeps the old version whole: downloaded and
   * installed as before, every byte as it was. */
  ev = run(d, "g0003", "download g0003", "game-install-finished", "game-install-failed",
           "game-download-failed", "game-download-cancelled");
  print_message("an update from the corrupt seeder alone: %s\n", pn_types(ev));
  assert_string_equal(pn_last_type(ev), "game-download-failed");
  json_decref(ev);
  assert_true(pn_same_tree(at(n, 2, "g0003"), t_path("%s/g0003", before)));
  expect_entry(d, "g0003", "2.0", "1.0", 1, true, true);
  free(before);
  pn_destroy(n);
#endif
}

/* ---- remove-downloaded --------------------------------------------------- */

static void scenario_remove_downloaded(void **state)
{
  (void)state;
  pn_net *n = pn_create(2, PORT);
  pn_generate(n, 0, (pn_game){.installed = true});
  peerproc *h0 = pn_start(n, 0, (pn_peer){0});
  peerproc *h1 = pn_start(n, 1, (pn_peer){.static_peers = 1u << 0});
  json_decref(pn_ok(h1, "wait-peers 1 20"));
  expect_entry(h1, ID, "1.0", "null", 1, false, false);

  /* Installed: refused, nothing touched. */
  pn_refused(h0, "installed", "remove " ID);
  assert_true(pn_exists(at(n, 0, ID "/version.ini")));
  assert_true(pn_exists(at(n, 0, ID "/g0001.part01.eti")));
  assert_true(pn_exists(at(n, 0, ID "/local/README.txt")));

  json_t *ev = run(h0, ID, "uninstall " ID, "game-uninstall-finished", "game-uninstall-failed",
                   NULL, NULL);
  assert_string_equal(pn_last_type(ev), "game-uninstall-finished");
  json_decref(ev);
  assert_false(pn_exists(at(n, 0, ID "/local")));

  /* Downloaded, not installed: allowed; the whole root goes. */
  ev = run(h0, ID, "remove " ID, "game-remove-finished", "game-remove-failed", NULL, NULL);
  print_message("remove: %s\n", pn_types(ev));
  assert_string_equal(pn_last_type(ev), "game-remove-finished");
  json_decref(ev);
  assert_false(pn_exists(at(n, 0, ID)));
  expect_absent(h0, ID);
  pn_refused(h0, "not downloaded", "remove " ID);
  /* The other peer stops seeing it. */
  assert_true(pn_poll_game(h1, ID, "peers", NULL, 12));
  pn_destroy(n);
}

/* ---- uninstall ----------------------------------------------------------- */

static void scenario_uninstall(void **state)
{
  (void)state;
  pn_net *n = pn_create(2, PORT);
  char *expect = strdup(t_path("%s/expect", n->root));
  pn_generate(n, 0, (pn_game){.expect_dir = expect});
  peerproc *h0 = pn_start(n, 0, (pn_peer){0});
  peerproc *h1 = pn_start(n, 1, (pn_peer){.static_peers = 1u << 0});
  pn_refused(h0, "not installed", "uninstall " ID);
  json_t *ev = run(h0, ID, "install " ID, "game-install-finished", "game-install-failed", NULL,
                   NULL);
  assert_string_equal(pn_last_type(ev), "game-install-finished");
  json_decref(ev);
  assert_true(pn_same_tree(at(n, 0, ID "/local"), t_path("%s/" ID, expect)));
  /* Not ours: must survive. */
  t_write(n->root, "h0/" ID "/.softlan_game_installed", "external");
  t_write(n->root, "h0/" ID "/.sync/state", "external tool");

  ev = run(h0, ID, "uninstall " ID, "game-uninstall-finished", "game-uninstall-failed", NULL,
           NULL);
  print_message("uninstall: %s\n", pn_types(ev));
  assert_order(ev, (const char *const[]){"game-uninstall-begin", "game-uninstall-finished",
                                         NULL});
  json_decref(ev);
  assert_false(pn_exists(at(n, 0, ID "/local")));
  assert_settled(at(n, 0, ID));
  assert_true(pn_exists(at(n, 0, ID "/version.ini")));
  assert_true(pn_exists(at(n, 0, ID "/g0001.part01.eti")));
  assert_true(pn_exists(at(n, 0, ID "/g0001.part02.eti")));
  assert_true(pn_exists(at(n, 0, ID "/.softlan_game_installed")));
  assert_true(pn_exists(at(n, 0, ID "/.sync/state")));
  expect_entry(h0, ID, "1.0", "1.0", 0, true, false);
  pn_refused(h0, "not installed", "uninstall " ID);

  /* Still served: the other peer gets its file list. */
  json_decref(pn_ok(h1, "wait-peers 1 20"));
  ev = run(h1, ID, "get " ID, "game-files", NULL, NULL, NULL);
  assert_string_equal(json_string_value(json_object_get(event_of(ev, "game-files"), "version")),
                      "1.0");
  json_decref(ev);

  /* And it installs again from the kept archives. */
  ev = run(h0, ID, "install " ID, "game-install-finished", "game-install-failed", NULL, NULL);
  assert_string_equal(pn_last_type(ev), "game-install-finished");
  json_decref(ev);
  assert_true(pn_same_tree(at(n, 0, ID "/local"), t_path("%s/" ID, expect)));
  free(expect);
  pn_destroy(n);
}

/* ---- catalog gating ------------------------------------------------------ */

static void scenario_catalog_gating(void **state)
{
  (void)state;
  pn_net *n = pn_create(2, PORT);
  /* The shared catalog has g0001 and g0002; h0's own catalog only g0001. */
  pn_generate(n, 0, (pn_game){0});
  pn_generate(n, 0, (pn_game){.number = 2, .installed = true});
  t_write(n->root, "catalog0.json", "{\"games\": [{\"id\": \"g0001\", \"name\": \"One\"}]}");
  /* Things that are not catalog games of h0, some looking like ours. */
  t_write(n->root, "h0/g0002/.lanspread.download", "a journal-looking file");
  t_write(n->root, "h0/g0002/.local.installing/x", "an install-looking leftover");
  t_write(n->root, "h0/notes/version.ini", "1.0");
  t_write(n->root, "h0/notes/data.eti", "not a game");
  t_write(n->root, "h0/readme.txt", "a file");
  char *ref = strdup(t_path("%s/ref", n->root));
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp -a '%s/h0/g0002' '%s/h0/notes' '%s/'", ref,
           n->root, n->root, ref);
  assert_int_equal(system(cmd), 0);

  char *cat0 = strdup(t_path("%s/catalog0.json", n->root));
  peerproc *h0 = pn_start(n, 0, (pn_peer){.catalog = cat0});
  peerproc *h1 = pn_start(n, 1, (pn_peer){.static_peers = 1u << 0});
  json_decref(pn_ok(h1, "wait-peers 1 20"));

  /* Never listed nor announced. */
  assert_int_equal(games_count(h0), 1);
  expect_entry(h0, ID, "1.0", "1.0", 0, true, false);
  expect_entry(h1, ID, "1.0", "null", 1, false, false);
  expect_absent(h1, "g0002");
  json_t *r = pn_ok(h1, "peers");
  assert_int_equal(json_integer_value(json_object_get(json_array_get(json_object_get(r, "peers"),
                                                                     0),
                                                      "games")),
                   1);
  json_decref(r);
  pn_refused(h1, "no connected peer has g0002", "get g0002");
  pn_refused(h1, "no connected peer has g0002", "download g0002");

  /* Never operated on. */
  pn_refused(h0, "not a game of the catalog", "remove g0002");
  pn_refused(h0, "not a game of the catalog", "uninstall g0002");
  pn_refused(h0, "not a game of the catalog", "install g0002");
  pn_refused(h0, "not a game of the catalog", "remove notes");
  pn_refused(h0, "not a game of the catalog", "download g0002");

  /* A catalog game next to them is removed alone. */
  json_t *ev = run(h0, ID, "remove " ID, "game-remove-finished", "game-remove-failed", NULL,
                   NULL);
  assert_string_equal(pn_last_type(ev), "game-remove-finished");
  json_decref(ev);
  assert_false(pn_exists(at(n, 0, ID)));

  /* A restart runs startup recovery: it looks at catalog roots only. */
  pn_stop(n, 0);
  h0 = pn_start(n, 0, (pn_peer){.catalog = cat0});
  assert_int_equal(games_count(h0), 0);
  pn_stop(n, 0);

  assert_true(pn_same_tree(at(n, 0, "g0002"), t_path("%s/g0002", ref)));
  assert_true(pn_same_tree(at(n, 0, "notes"), t_path("%s/notes", ref)));
  assert_true(pn_exists(at(n, 0, "readme.txt")));
  free(cat0);
  free(ref);
  pn_destroy(n);
}

/* ---- set-game-dir while idle and while busy ------------------------------ */

static void scenario_set_game_dir_idle_and_busy(void **state)
{
  (void)state;
  pn_net *n = pn_create(2, PORT);
  char *alt = strdup(t_path("%s/alt1", n->root)), *orig = strdup(pn_game_dir(n, 1));
  pn_generate(n, 0, (pn_game){.size = "16M"});
  pn_generate(n, 1, (pn_game){.number = 2, .version = "3.0", .size = "1M", .game_dir = alt});
  t_write(n->root, "afile", "x");
  /* 16 MiB at 40 Mbit/s: about 3.4 s, time enough to be busy. */
  assert_int_equal(ls_netns_shape(n->ns, 0, 40, 0), 0);
  peerproc *h0 = pn_start(n, 0, (pn_peer){0});
  peerproc *d = pn_start(n, 1, (pn_peer){.static_peers = 1u << 0});
  json_decref(pn_ok(d, "wait-peers 1 20"));

  pn_refused(d, "nonexistent", "set-game-dir %s/nonexistent", n->root);
  pn_refused(d, "not a directory", "set-game-dir %s/afile", n->root);

  /* Idle: the library follows the new directory, here and at the peer. */
  json_t *r = pn_ok(d, "set-game-dir %s", alt);
  char *real = realpath(alt, NULL);
  assert_string_equal(json_string_value(json_object_get(r, "game_dir")), real);
  free(real);
  json_decref(r);
  pn_expect_games_event(d, "g0002", "local_version", "3.0", 5000);
  expect_entry(d, "g0002", "3.0", "3.0", 0, true, false);
  expect_entry(d, ID, "1.0", "null", 1, false, false);
  assert_true(pn_poll_game(h0, "g0002", "peers", "1", 12));

  /* Busy: refused while a download runs; the download lands in the new
   * directory and nothing in the old one. */
  double seen = pn_download_until(d, ID, 0.1);
  assert_true(seen > 0);
  pn_refused(d, "operation", "set-game-dir %s", orig);
  /* The view reports the running download, and that only cancel is open. */
  json_t *g = pn_game_entry(d, ID);
  assert_string_equal(pn_field(g, "state"), "downloading");
  assert_string_equal(pn_field(g, "actions"), "[\"pause\",\"cancel\"]");
  json_t *dl = json_object_get(g, "download");
  assert_string_equal(json_string_value(json_object_get(dl, "state")), "running");
  assert_true(json_integer_value(json_object_get(dl, "total_bytes")) > 0);
  json_t *op = json_object_get(g, "operation");
  assert_string_equal(json_string_value(json_object_get(op, "kind")), "download");
  assert_true(json_integer_value(json_object_get(op, "total_bytes")) >= 16 << 20);
  json_decref(g);
  pn_refused(d, "busy", "install %s", ID); /* one exclusive operation per game */
  json_decref(pn_ok(d, "wait game-install-finished " ID " 60"));
  char *landed = strdup(t_path("%s/" ID, alt));
  assert_same_payload(at(n, 0, ID), landed);
  free(landed);
  assert_false(pn_exists(t_path("%s/" ID, orig)));

  /* Idle again: back to the first directory, which is empty. */
  json_decref(pn_ok(d, "set-game-dir %s", orig));
  pn_expect_games_event(d, "g0002", "peers", NULL, 5000);
  expect_absent(d, "g0002");
  expect_entry(d, ID, "1.0", "null", 1, false, false);
  free(alt);
  free(orig);
  pn_destroy(n);
}

/* ---- unreachable static peer --------------------------------------------- */

static void scenario_unreachable_static_peer(void **state)
{
  (void)state;
  pn_net *n = pn_create(2, PORT);
  pn_generate(n, 0, (pn_game){.size = "1M"});
  /* h1 knows h0 (not running yet). */
  double t0 = pn_now();
  peerproc *d = pn_start(n, 1, (pn_peer){.static_peers = 1u << 0});
  double took = pn_now() - t0;
  print_message("ready with an unreachable static peer after %.2f s\n", took);
  assert_true(took < 5);
  json_t *r = pn_ok(d, "peer-count");
  assert_int_equal(json_integer_value(json_object_get(r, "count")), 0);
  json_decref(r);
  r = pp_command(d, "wait-peers 1 2", T_MS);
  assert_true(json_is_false(json_object_get(r, "ok")));
  json_decref(r);
  assert_int_equal(games_count(d), 0);
  pn_refused(d, "no connected peer has " ID, "download " ID);

  /* It comes up: the link retries and connects on its own. */
  t0 = pn_now();
  peerproc *h0 = pn_start(n, 0, (pn_peer){0});
  json_decref(pn_ok(d, "wait-peers 1 20"));
  print_message("connected %.2f s after the peer came up\n", pn_now() - t0);
  expect_entry(d, ID, "1.0", "null", 1, false, false);
  json_decref(pn_ok(h0, "wait-peers 1 10"));

  /* It goes away again (link down): pruned, and quit stays prompt. */
  assert_int_equal(ls_netns_link(n->ns, 0, false), 0);
  json_decref(pn_ok(d, "wait peer-disconnected 15"));
  assert_true(pn_poll_game(d, ID, "peers", NULL, 5));
  t0 = pn_now();
  pn_stop(n, 1);
  took = pn_now() - t0;
  print_message("quit with the static peer unreachable took %.2f s\n", took);
  assert_true(took < 3);
  assert_int_equal(ls_netns_link(n->ns, 0, true), 0);
  pn_destroy(n);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(scenario_union_library_with_versions),
    cmocka_unit_test(scenario_download_from_one_peer),
    cmocka_unit_test(scenario_auto_install),
    cmocka_unit_test(scenario_update_from_newer_peer),
    cmocka_unit_test(scenario_corrupt_peer),
    cmocka_unit_test(scenario_remove_downloaded),
    cmocka_unit_test(scenario_uninstall),
    cmocka_unit_test(scenario_catalog_gating),
    cmocka_unit_test(scenario_set_game_dir_idle_and_busy),
    cmocka_unit_test(scenario_unreachable_static_peer),
  };
  return ls_run_tests(tests, NULL, NULL);
}
