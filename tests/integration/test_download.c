/* Tests downloads between real lanspread-peer-cli processes over loopback
 * (static peers): from one and from three seeders with byte-for-byte
 * comparison, a seeder whose file changed under it (its chunks fail their
 * hashes and come from the others), and the files a download leaves. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testrun.h"

#include "peerproc.h"
#include "testutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define T_MS 60000

typedef struct swarm {
  char *root;
  char catalog[4096];
  peerproc *peers[4];
  char addr[4][32];
  int n;
} swarm;

static unsigned next_port(void)
{
  static unsigned port;
  if (!port)
    port = 44000 + (unsigned)(getpid() % 1000) * 8;
  return port++;
}

/* Game g0001 of `size` in 3 archives, identical in every seeder. */
static void generate(swarm *s, int host, const char *size)
{
  char *argv[] = {(char *)pp_program("lanspread-gen"), "--game-dir",
                  (char *)t_path("%s/h%d", s->root, host), "--games", "1", "--id-prefix", "g",
                  "--archives", "3", "--size", (char *)size, "--game-version", "2.5", "--catalog",
                  s->catalog, "--quiet", NULL};
  assert_int_equal(pp_run(argv, T_MS), 0);
}

static peerproc *start(swarm *s, int host, int npeers)
{
  snprintf(s->addr[host], sizeof s->addr[host], "127.0.0.1:%u", next_port());
  char *argv[32] = {(char *)pp_program("lanspread-peer-cli"), "--game-dir",
                    strdup(t_path("%s/h%d", s->root, host)), "--state-dir",
                    strdup(t_path("%s/s%d", s->root, host)), "--catalog", s->catalog,
                    "--listen", s->addr[host], "--no-mdns", "--serve"};
  int n = 11;
  for (int i = 0; i < npeers; i++) {
    argv[n++] = "--peer";
    argv[n++] = s->addr[i];
  }
  argv[n] = NULL;
  t_mkdir(s->root, t_path("h%d", host));
  peerproc *p = pp_start(argv);
  free(argv[2]);
  free(argv[4]);
  json_decref(pp_expect(p, "ready", NULL, T_MS));
  s->peers[host] = p;
  return p;
}

static swarm *make_swarm(int seeders, const char *size)
{
  swarm *s = calloc(1, sizeof *s);
  s->root = t_tempdir();
  snprintf(s->catalog, sizeof s->catalog, "%s/catalog.json", s->root);
  for (int i = 0; i < seeders; i++) {
    generate(s, i, size);
    start(s, i, 0);
  }
  s->n = seeders;
  return s;
}

static void stop_all(swarm *s)
{
  for (int i = 0; i < 4; i++)
    if (s->peers[i]) {
      pp_send(s->peers[i], "quit");
      assert_int_equal(pp_wait(s->peers[i], T_MS), 0);
    }
  free(s);
}

static void assert_ok(json_t *r)
{
  if (!json_is_true(json_object_get(r, "ok")))
    fail_msg("failed: %s", json_string_value(json_object_get(r, "error")));
  json_decref(r);
}

static void assert_same_file(const char *a, const char *b)
{
  FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
  assert_non_null(fa);
  if (!fb)
    fail_msg("%s is missing", b);
  char x[65536], y[65536];
  size_t n, m;
  do {
    n = fread(x, 1, sizeof x, fa);
    m = fread(y, 1, sizeof y, fb);
    assert_int_equal(n, m);
    assert_memory_equal(x, y, n);
  } while (n > 0);
  fclose(fa);
  fclose(fb);
}

static void assert_downloaded(swarm *s, int from, int to)
{
  const char *names[] = {"g0001.part01.eti", "g0001.part02.eti", "g0001.part03.eti",
                         "version.ini"};
  for (int i = 0; i < 4; i++)
    assert_same_file(t_path("%s/h%d/g0001/%s", s->root, from, names[i]),
                     t_path("%s/h%d/g0001/%s", s->root, to, names[i]));
  struct stat st;
  const char *gone[] = {".lanspread.download", ".version.ini.tmp", ".version.ini.discarded"};
  for (int i = 0; i < 3; i++)
    assert_int_equal(stat(t_path("%s/h%d/g0001/%s", s->root, to, gone[i]), &st), -1);
}

/* Starts the downloader with every seeder as a static peer, downloads g0001
 * and waits for the end; returns how many progress events it saw. */
static int download(swarm *s, int seeders)
{
  peerproc *d = start(s, 3, seeders);
  char cmd[64];
  snprintf(cmd, sizeof cmd, "wait-peers %d 20", seeders);
  assert_ok(pp_command(d, cmd, T_MS));
  pp_send(d, "download g0001");
  int progress = 0;
  for (;;) {
    json_t *ev = pp_next(d, T_MS);
    if (!ev)
      fail_msg("the downloader went quiet");
    const char *type = json_string_value(json_object_get(ev, "type"));
    if (strcmp(type, "reply") == 0)
      assert_true(json_is_true(json_object_get(ev, "ok")));
    if (strcmp(type, "game-download-progress") == 0)
      progress++;
    bool end = strcmp(type, "game-download-finished") == 0 ||
               strcmp(type, "game-download-failed") == 0;
    if (strcmp(type, "game-download-failed") == 0)
      fail_msg("download failed: %s", json_string_value(json_object_get(ev, "error")));
    json_decref(ev);
    if (end)
      break;
  }
  json_t *r = pp_command(d, "games", T_MS);
  json_t *g = json_array_get(json_object_get(r, "games"), 0);
  assert_true(json_is_true(json_object_get(g, "downloaded")));
  assert_string_equal(json_string_value(json_object_get(g, "local_version")), "2.5");
  json_decref(r);
  return progress;
}

static void from_one_seeder(void **state)
{
  (void)state;
  swarm *s = make_swarm(1, "24M");
  int progress = download(s, 1);
  print_message("%d progress events\n", progress);
  assert_downloaded(s, 0, 3);
  stop_all(s);
}

static void from_three_seeders(void **state)
{
  (void)state;
  swarm *s = make_swarm(3, "48M");
  download(s, 3);
  assert_downloaded(s, 0, 3);
  stop_all(s);
}

static void corrupt_seeder_is_caught(void **state)
{
  (void)state;
#ifndef LS_TEST_HOOKS
  ls_skip("needs a build with LS_TEST_HOOKS (the corrupt-serve switch)");
#endif
  swarm *s = calloc(1, sizeof *s);
  s->root = t_tempdir();
  snprintf(s->catalog, sizeof s->catalog, "%s/catalog.json", s->root);
  generate(s, 0, "24M");
  generate(s, 1, "24M");
  setenv("LS_TEST_CORRUPT_SERVE", "1", 1); /* host 0 flips a byte of every chunk */
  start(s, 0, 0);
  unsetenv("LS_TEST_CORRUPT_SERVE");
  start(s, 1, 0);
  download(s, 2);
  assert_downloaded(s, 1, 3);
  stop_all(s);
}

static void full_disk_fails_cleanly(void **state)
{
  (void)state;
  swarm *s = make_swarm(1, "24M");
  /* The downloader's game directory is a 4 MiB tmpfs. */
  t_mkdir(s->root, "h3");
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "mount -t tmpfs -o size=4m lanspread-test '%s/h3' 2>/dev/null",
           s->root);
  if (system(cmd) != 0) {
    stop_all(s);
    ls_skip("cannot mount a tmpfs here (needs CAP_SYS_ADMIN)");
  }
  peerproc *d = start(s, 3, 1);
  assert_ok(pp_command(d, "wait-peers 1 20", T_MS));
  pp_send(d, "download g0001");
  json_t *failed = pp_expect(d, "game-download-failed", NULL, T_MS);
  const char *error = json_string_value(json_object_get(failed, "error"));
  print_message("full disk: %s\n", error);
  /* refused before a byte is written: 24 MiB cannot fit in 4 */
  assert_non_null(strstr(error, "needs 24.0 MiB more on disk"));
  assert_string_equal(json_string_value(json_object_get(failed, "code")), "LS_ENOSPC");
  json_decref(failed);
  struct stat st;
  assert_int_equal(stat(t_path("%s/h3/g0001", s->root), &st), -1); /* nothing left */
  pp_send(d, "quit");
  assert_int_equal(pp_wait(d, T_MS), 0);
  s->peers[3] = NULL;
  snprintf(cmd, sizeof cmd, "umount '%s/h3'", s->root);
  assert_int_equal(system(cmd), 0);
  stop_all(s);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(from_one_seeder),
    cmocka_unit_test(from_three_seeders),
    cmocka_unit_test(corrupt_seeder_is_caught),
    cmocka_unit_test(full_disk_fails_cleanly),
  };
  return ls_run_tests(tests, NULL, NULL);
}
