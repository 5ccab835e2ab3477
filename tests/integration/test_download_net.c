/* Tests downloads whose timing matters, between lanspread-peer-cli processes
 * in network namespaces with tbf-shaped links (tests/common/netns.h):
 * cancel at 5%, 50% and 95% of a fresh download, cancel of an update, a
 * seeder killed mid-download, the downloader killed and restarted, a
 * cancel while the only seeder's link is down, and the install life cycle
 * (automatic install, update, cancelled update, uninstall, remove). Skipped
 * where namespaces cannot be made. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "netns.h"
#include "peerproc.h"
#include "testutil.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define T_MS 60000
#define PORT "47400"
#define GAME_SIZE "48M"   /* at 40 Mbit/s: about 10 s */
#define RATE_MBIT 40

typedef struct net {
  ls_netns *ns;
  char *root;
  char catalog[4096];
  peerproc *peers[3];
} net;

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void generate_sized(net *n, int host, const char *size, const char *version,
                           bool installed)
{
  char *argv[] = {(char *)pp_program("lanspread-gen"), "--game-dir",
                  (char *)t_path("%s/h%d", n->root, host), "--games", "1", "--id-prefix", "g",
                  "--archives", "3", "--size", (char *)size, "--version", (char *)version,
                  "--catalog", n->catalog, "--quiet", installed ? "--installed" : NULL, NULL};
  assert_int_equal(pp_run(argv, T_MS), 0);
}

static void generate(net *n, int host, const char *version, bool installed)
{
  generate_sized(n, host, GAME_SIZE, version, installed);
}

static net *make_net(int hosts)
{
  char why[256];
  ls_netns *ns = ls_netns_create(hosts, why, sizeof why);
  if (!ns) {
    print_message("skipped: %s\n", why);
    return NULL;
  }
  net *n = calloc(1, sizeof *n);
  n->ns = ns;
  n->root = t_tempdir();
  snprintf(n->catalog, sizeof n->catalog, "%s/catalog.json", n->root);
  return n;
}

static peerproc *start(net *n, int host, int seeders)
{
  char listen[64], peer_args[2][64];
  snprintf(listen, sizeof listen, "%s:" PORT, ls_netns_addr(n->ns, host));
  char *argv[24] = {(char *)pp_program("lanspread-peer-cli"), "--game-dir",
                    strdup(t_path("%s/h%d", n->root, host)), "--state-dir",
                    strdup(t_path("%s/s%d", n->root, host)), "--catalog", n->catalog,
                    "--listen", listen, "--no-mdns", "--serve"};
  int k = 11;
  for (int i = 0; i < seeders; i++) {
    snprintf(peer_args[i], sizeof peer_args[i], "%s:" PORT, ls_netns_addr(n->ns, i));
    argv[k++] = "--peer";
    argv[k++] = peer_args[i];
  }
  argv[k] = NULL;
  t_mkdir(n->root, t_path("h%d", host));
  peerproc *p = ls_netns_start(n->ns, host, argv);
  free(argv[2]);
  free(argv[4]);
  json_decref(pp_expect(p, "ready", NULL, T_MS));
  n->peers[host] = p;
  return p;
}

static void stop_net(net *n)
{
  for (int i = 0; i < 3; i++)
    if (n->peers[i]) {
      pp_send(n->peers[i], "quit");
      assert_int_equal(pp_wait(n->peers[i], T_MS), 0);
    }
  ls_netns_destroy(n->ns);
  free(n);
}

static void assert_ok(json_t *r)
{
  if (!json_is_true(json_object_get(r, "ok")))
    fail_msg("failed: %s", json_string_value(json_object_get(r, "error")));
  json_decref(r);
}

/* Sends `download g0001` and reads events until progress reaches `at` (a
 * fraction of the total); returns the fraction seen, or -1 when the
 * download ended first. */
static double download_until(peerproc *d, double at)
{
  pp_send(d, "download g0001");
  for (;;) {
    json_t *ev = pp_next(d, T_MS);
    if (!ev)
      fail_msg("the downloader went quiet");
    const char *type = json_string_value(json_object_get(ev, "type"));
    double frac = -2;
    if (strcmp(type, "game-download-progress") == 0)
      frac = (double)json_integer_value(json_object_get(ev, "bytes")) /
             (double)json_integer_value(json_object_get(ev, "total_bytes"));
    bool ended = strcmp(type, "game-download-finished") == 0 ||
                 strcmp(type, "game-download-failed") == 0;
    json_decref(ev);
    if (ended)
      return -1;
    if (frac >= at)
      return frac;
  }
}

static bool exists(const char *path)
{
  struct stat st;
  return lstat(path, &st) == 0;
}

/* lanspread-gen with real tar archives; the tree they extract to goes to
 * ROOT/expect-VERSION. */
static void generate_tar(net *n, int host, const char *size, const char *version,
                         const char *seed)
{
  char *argv[] = {(char *)pp_program("lanspread-gen"), "--game-dir",
                  strdup(t_path("%s/h%d", n->root, host)), "--games", "1", "--id-prefix", "g",
                  "--archives", "3", "--size", (char *)size, "--version", (char *)version,
                  "--format", "tar", "--seed", (char *)seed, "--expect-dir",
                  strdup(t_path("%s/expect-%s", n->root, version)), "--catalog", n->catalog,
                  "--quiet", NULL};
  assert_int_equal(pp_run(argv, T_MS), 0);
  free(argv[2]);
  free(argv[18]);
}

static void assert_tree_equal(const char *a, const char *b)
{
  char cmd[9000];
  snprintf(cmd, sizeof cmd, "diff -r '%s' '%s' >&2", a, b);
  if (system(cmd) != 0)
    fail_msg("%s and %s differ", a, b);
}

/* Reads events until WHAT-finished (returned) and fails on WHAT-failed. */
static json_t *expect_end(peerproc *d, const char *what)
{
  char ok[64], bad[64];
  snprintf(ok, sizeof ok, "%s-finished", what);
  snprintf(bad, sizeof bad, "%s-failed", what);
  for (;;) {
    json_t *ev = pp_next(d, T_MS);
    if (!ev)
      fail_msg("no %s", ok);
    const char *type = json_string_value(json_object_get(ev, "type"));
    if (strcmp(type, bad) == 0)
      fail_msg("%s: %s", bad, json_string_value(json_object_get(ev, "error")));
    if (strcmp(type, ok) == 0)
      return ev;
    json_decref(ev);
  }
}

/* Reads events until game-install-finished; the last progress event before
 * it must say that every archive byte was extracted. */
static void expect_install_with_progress(peerproc *d)
{
  json_int_t bytes = -1, total = -2;
  for (;;) {
    json_t *ev = pp_next(d, T_MS);
    if (!ev)
      fail_msg("no game-install-finished");
    const char *type = json_string_value(json_object_get(ev, "type"));
    if (strcmp(type, "game-install-failed") == 0)
      fail_msg("install failed: %s", json_string_value(json_object_get(ev, "error")));
    if (strcmp(type, "game-install-progress") == 0) {
      bytes = json_integer_value(json_object_get(ev, "bytes"));
      total = json_integer_value(json_object_get(ev, "total_bytes"));
    }
    bool end = strcmp(type, "game-install-finished") == 0;
    json_decref(ev);
    if (end)
      break;
  }
  assert_true(total > 0);
  assert_int_equal(bytes, total);
}

static void assert_refused(peerproc *d, const char *cmd, const char *why)
{
  json_t *r = pp_command(d, cmd, T_MS);
  assert_true(json_is_false(json_object_get(r, "ok")));
  const char *error = json_string_value(json_object_get(r, "error"));
  if (!error || !strstr(error, why))
    fail_msg("'%s': expected an error about '%s', got '%s'", cmd, why, error ? error : "");
  json_decref(r);
}

static void scenario_cancel_fresh_download(void **state)
{
  (void)state;
  net *n = make_net(2);
  if (!n)
    skip();
  /* 5% must be more than the requests in flight (8 x 1 MiB), or the tail
   * of the download would finish before a cancel at 95% arrives. */
  generate_sized(n, 0, "192M", "1.0", false);
  assert_int_equal(ls_netns_shape(n->ns, 0, 100, 0), 0);
  start(n, 0, 0);
  peerproc *d = start(n, 1, 1);
  assert_ok(pp_command(d, "wait-peers 1 20", T_MS));
  const double points[] = {0.05, 0.50, 0.95};
  for (int i = 0; i < 3; i++) {
    double seen = download_until(d, points[i]);
    if (seen < 0)
      fail_msg("the download ended before %.0f%%", points[i] * 100);
    if (i == 1) { /* set-game-dir is refused while the download runs */
      json_t *r = pp_command(d, t_path("set-game-dir %s", n->root), T_MS);
      assert_true(json_is_false(json_object_get(r, "ok")));
      assert_non_null(strstr(json_string_value(json_object_get(r, "error")), "operation"));
      json_decref(r);
    }
    double t0 = now_s();
    assert_ok(pp_command(d, "cancel g0001", T_MS));
    json_decref(pp_expect(d, "game-download-cancelled", NULL, T_MS));
    print_message("cancel at %.0f%%: done in %.3f s\n", seen * 100, now_s() - t0);
    /* A fresh download cancelled leaves no game root at all. */
    assert_false(exists(t_path("%s/h1/g0001", n->root)));
    json_t *r = pp_command(d, "games", T_MS);
    json_t *g = json_array_get(json_object_get(r, "games"), 0);
    assert_false(json_is_true(json_object_get(g, "downloaded")));
    json_decref(r);
  }
  stop_net(n);
}

static void scenario_cancel_update(void **state)
{
  (void)state;
  net *n = make_net(2);
  if (!n)
    skip();
  generate(n, 0, "2.0", false);
  generate(n, 1, "1.0", true); /* installed 1.0 here, 2.0 at the seeder */
  assert_int_equal(ls_netns_shape(n->ns, 0, RATE_MBIT, 0), 0);
  start(n, 0, 0);
  peerproc *d = start(n, 1, 1);
  /* Written after start-up (whose recovery would settle it): the discard of
   * a cancelled download must keep the install state it finds. */
  t_write(n->root, "h1/g0001/.lanspread.json", "{\"op\":\"none\"}");
  t_write(n->root, "h1/g0001/.sync/state", "external tool");
  assert_ok(pp_command(d, "wait-peers 1 20", T_MS));
  assert_true(download_until(d, 0.5) > 0);
  assert_ok(pp_command(d, "cancel g0001", T_MS));
  json_decref(pp_expect(d, "game-download-cancelled", NULL, T_MS));
  /* Settles as local-only: local/ and the install state stay, the rest goes. */
  assert_true(exists(t_path("%s/h1/g0001/local/README.txt", n->root)));
  assert_true(exists(t_path("%s/h1/g0001/.lanspread.json", n->root)));
  assert_true(exists(t_path("%s/h1/g0001/.sync/state", n->root)));
  assert_false(exists(t_path("%s/h1/g0001/version.ini", n->root)));
  assert_false(exists(t_path("%s/h1/g0001/g0001.part01.eti", n->root)));
  assert_false(exists(t_path("%s/h1/g0001/.version.ini.discarded", n->root)));
  json_t *r = pp_command(d, "games", T_MS);
  json_t *g = json_array_get(json_object_get(r, "games"), 0);
  assert_true(json_is_true(json_object_get(g, "installed")));
  assert_false(json_is_true(json_object_get(g, "downloaded")));
  json_decref(r);
  stop_net(n);
}

static void scenario_seeder_killed_mid_download(void **state)
{
  (void)state;
  net *n = make_net(3);
  if (!n)
    skip();
  generate(n, 0, "1.0", false);
  generate(n, 1, "1.0", false);
  assert_int_equal(ls_netns_shape(n->ns, 0, RATE_MBIT, 0), 0);
  assert_int_equal(ls_netns_shape(n->ns, 1, RATE_MBIT, 0), 0);
  start(n, 0, 0);
  start(n, 1, 0);
  n->peers[2] = NULL;
  peerproc *d = start(n, 2, 2);
  assert_ok(pp_command(d, "wait-peers 2 20", T_MS));
  assert_true(download_until(d, 0.3) > 0);
  pp_signal(n->peers[0], SIGKILL);
  assert_int_equal(pp_wait(n->peers[0], T_MS), 128 + SIGKILL);
  n->peers[0] = NULL;
  json_t *r = pp_command(d, "wait game-download-finished g0001 60", T_MS);
  assert_ok(r);
  const char *names[] = {"g0001.part01.eti", "g0001.part02.eti", "g0001.part03.eti",
                         "version.ini"};
  for (int i = 0; i < 4; i++) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cmp -s '%s/h1/g0001/%s' '%s/h2/g0001/%s'", n->root, names[i],
             n->root, names[i]);
    assert_int_equal(system(cmd), 0);
  }
  stop_net(n);
}

static void scenario_downloader_killed_and_restarted(void **state)
{
  (void)state;
  net *n = make_net(2);
  if (!n)
    skip();
  generate(n, 0, "1.0", false);
  assert_int_equal(ls_netns_shape(n->ns, 0, RATE_MBIT, 0), 0);
  start(n, 0, 0);
  peerproc *d = start(n, 1, 1);
  assert_ok(pp_command(d, "wait-peers 1 20", T_MS));
  assert_true(download_until(d, 0.4) > 0);
  pp_signal(d, SIGKILL);
  assert_int_equal(pp_wait(d, T_MS), 128 + SIGKILL);
  assert_true(exists(t_path("%s/h1/g0001/.lanspread.download", n->root))); /* mid-download */
  d = start(n, 1, 1); /* startup recovery runs before the first scan */
  assert_false(exists(t_path("%s/h1/g0001", n->root)));
  json_t *r = pp_command(d, "games", T_MS);
  json_t *g = json_array_get(json_object_get(r, "games"), 0);
  assert_true(!g || !json_is_true(json_object_get(g, "downloaded")));
  json_decref(r);
  stop_net(n);
}

static void scenario_cancel_with_the_seeder_unreachable(void **state)
{
  (void)state;
  net *n = make_net(2);
  if (!n)
    skip();
  generate(n, 0, "1.0", false);
  assert_int_equal(ls_netns_shape(n->ns, 0, RATE_MBIT, 0), 0);
  start(n, 0, 0);
  peerproc *d = start(n, 1, 1);
  assert_ok(pp_command(d, "wait-peers 1 20", T_MS));
  assert_true(download_until(d, 0.2) > 0);
  assert_int_equal(ls_netns_link(n->ns, 0, false), 0); /* the cable is pulled */
  double t0 = now_s();
  assert_ok(pp_command(d, "cancel g0001", T_MS));
  json_decref(pp_expect(d, "game-download-cancelled", NULL, T_MS));
  double took = now_s() - t0;
  print_message("cancel with the seeder unreachable took %.3f s\n", took);
  assert_true(took < 1.0);
  assert_false(exists(t_path("%s/h1/g0001", n->root)));
  assert_int_equal(ls_netns_link(n->ns, 0, true), 0);
  stop_net(n);
}

static void scenario_download_from_three_peers(void **state)
{
  (void)state;
  net *n = make_net(4);
  if (!n)
    skip();
  for (int i = 0; i < 3; i++)
    generate(n, i, "1.0", false);
  for (int i = 0; i < 3; i++)
    start(n, i, 0);
  char *root_d = strdup(t_path("%s/h3", n->root));
  /* host 3 downloads from the three others */
  char listen[64], peers[3][64];
  snprintf(listen, sizeof listen, "%s:" PORT, ls_netns_addr(n->ns, 3));
  for (int i = 0; i < 3; i++)
    snprintf(peers[i], sizeof peers[i], "%s:" PORT, ls_netns_addr(n->ns, i));
  char *argv[] = {(char *)pp_program("lanspread-peer-cli"), "--game-dir", root_d,
                  "--state-dir", (char *)t_path("%s/s3", n->root), "--catalog", n->catalog,
                  "--listen", listen, "--no-mdns", "--peer", peers[0], "--peer", peers[1],
                  "--peer", peers[2], NULL};
  t_mkdir(n->root, "h3");
  peerproc *d = ls_netns_start(n->ns, 3, argv);
  json_decref(pp_expect(d, "ready", NULL, T_MS));
  assert_ok(pp_command(d, "wait-peers 3 20", T_MS));
  assert_ok(pp_command(d, "download g0001", T_MS));
  assert_ok(pp_command(d, "wait game-download-finished g0001 60", T_MS));
  const char *names[] = {"g0001.part01.eti", "g0001.part02.eti", "g0001.part03.eti",
                         "version.ini"};
  for (int i = 0; i < 4; i++) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cmp -s '%s/h0/g0001/%s' '%s/g0001/%s'", n->root, names[i],
             root_d, names[i]);
    assert_int_equal(system(cmd), 0);
  }
  pp_send(d, "quit");
  assert_int_equal(pp_wait(d, T_MS), 0);
  free(root_d);
  stop_net(n);
}

/* The install life cycle: download, automatic install, update from a newer
 * peer (first cancelled, then completed), uninstall, remove. */
static void download_install_update_uninstall_remove(void **state)
{
  (void)state;
  net *n = make_net(3);
  if (!n)
    skip();
  generate_tar(n, 0, "6M", "1.0", "11");
  generate_tar(n, 1, GAME_SIZE, "2.0", "22");
  assert_int_equal(ls_netns_shape(n->ns, 1, RATE_MBIT, 0), 0);
  start(n, 0, 0);
  peerproc *d = start(n, 2, 2); /* knows both seeders; host 1 is not up yet */
  char *game = strdup(t_path("%s/h2/g0001", n->root));
  assert_ok(pp_command(d, "wait-peers 1 20", T_MS));

  /* Download, then the automatic install: local/ is what the archives hold. */
  assert_refused(d, "install g0001", "not downloaded");
  pp_send(d, "download g0001");
  json_decref(expect_end(d, "game-download"));
  expect_install_with_progress(d);
  assert_tree_equal(t_path("%s/expect-1.0/g0001", n->root), t_path("%s/local", game));
  assert_false(exists(t_path("%s/.lanspread.json", game)));
  assert_false(exists(t_path("%s/.local.installing", game)));
  assert_refused(d, "remove g0001", "uninstall it first");

  /* A newer version appears; cancelling its download keeps the install. */
  start(n, 1, 0);
  assert_ok(pp_command(d, "wait-peers 2 30", T_MS));
  assert_true(download_until(d, 0.5) > 0);
  assert_ok(pp_command(d, "cancel g0001", T_MS));
  json_decref(pp_expect(d, "game-download-cancelled", NULL, T_MS));
  assert_tree_equal(t_path("%s/expect-1.0/g0001", n->root), t_path("%s/local", game));
  assert_false(exists(t_path("%s/version.ini", game)));
  assert_false(exists(t_path("%s/g0001.part01.eti", game)));

  /* Downloading it again updates the install. */
  pp_send(d, "download g0001");
  json_decref(expect_end(d, "game-download"));
  json_decref(expect_end(d, "game-install"));
  assert_tree_equal(t_path("%s/expect-2.0/g0001", n->root), t_path("%s/local", game));
  assert_false(exists(t_path("%s/.local.backup", game)));

  /* Uninstall keeps the download; remove then deletes the root. */
  assert_ok(pp_command(d, "uninstall g0001", T_MS));
  json_decref(expect_end(d, "game-uninstall"));
  assert_false(exists(t_path("%s/local", game)));
  assert_true(exists(t_path("%s/version.ini", game)));
  assert_refused(d, "uninstall g0001", "not installed");
  assert_refused(d, "remove nosuchgame", "not a game of the catalog");
  assert_ok(pp_command(d, "remove g0001", T_MS));
  json_decref(expect_end(d, "game-remove"));
  assert_false(exists(game));
  assert_refused(d, "remove g0001", "not downloaded");
  free(game);
  stop_net(n);
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
    cmocka_unit_test(download_install_update_uninstall_remove),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
