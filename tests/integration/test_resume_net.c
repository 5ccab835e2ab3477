/* Tests resumable downloads (docs/CLI.md: pause, download of a paused
 * game, cancel of a paused game, verify, verify --repair) between
 * lanspread-peer-cli processes in network namespaces with tbf-shaped links
 * (tests/common/peernet.h): a downloader killed at 60% and restarted
 * fetches only what it lacks; a pause and a resume from the CLI; the
 * discard of a paused download (paused, or found by recovery after a kill;
 * fresh or an update of an installed game) leaves what a cancel leaves; an
 * update that changes one archive of four fetches only that one; a
 * verification finds one flipped byte and a repair fetches only its chunk;
 * a pause while `download` still waits for the file list (an in-process
 * peer, since the CLI runs one command at a time); `pause` with nothing to
 * pause. Every test prints its measured figures. Skipped where namespaces
 * cannot be made. */
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
#include <sys/stat.h>
#include <unistd.h>

#define T_MS PN_T_MS
#define PORT "47600"
#define ID "g0001"
#define ID2 "g0002"
#define GAME_SIZE "48M"  /* at 40 Mbit/s: about 10 s */
#define SMALL_SIZE "24M" /* about 5 s */
#define RATE_MBIT 40
#define MIB ((json_int_t)1 << 20)
#define INFLIGHT_ALLOWANCE (8 * MIB) /* requests in flight at a kill */

/* ---- helpers ------------------------------------------------------------- */

/* Game `number` VERSION in `archives` raw archives at host (or in dir):
 * the downloads are the subject, not the installs after them. The bytes
 * of archive k depend only on (seed, id, k), not on the version. */
static void generate_in(pn_net *n, int host, const char *dir, int number, const char *size,
                        const char *version, int archives, int seed, bool installed)
{
  pn_generate(n, host, (pn_game){.number = number, .size = size, .version = version,
                                 .format = "raw", .archives = archives, .seed = seed,
                                 .installed = installed, .game_dir = dir});
}

static void generate(pn_net *n, int host, int number, const char *size, const char *version,
                     int archives, int seed, bool installed)
{
  generate_in(n, host, NULL, number, size, version, archives, seed, installed);
}

/* host's peer, with static peers hosts 0 .. seeders-1. */
static peerproc *start(pn_net *n, int host, int seeders)
{
  peerproc *p = pn_start(n, host, (pn_peer){.static_peers = (1u << seeders) - 1});
  if (seeders)
    json_decref(pn_ok(p, "wait-peers %d 20", seeders));
  return p;
}

static const char *at(const pn_net *n, int host, const char *rel)
{
  return t_path("%s/h%d/%s", n->root, host, rel);
}

static json_int_t jint(json_t *obj, const char *key)
{
  json_t *v = json_object_get(obj, key);
  if (!json_is_integer(v))
    fail_msg("no integer '%s' in %s", key, pn_field(obj, key));
  return json_integer_value(v);
}

static const char *jstr(json_t *obj, const char *key)
{
  const char *s = json_string_value(json_object_get(obj, key));
  return s ? s : "(none)";
}

static long long file_size(const char *path)
{
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  return (long long)st.st_size;
}

/* The payload of game `number` (its `archives` archives and version.ini)
 * is byte-identical at both hosts. */
static void assert_same_payload(const pn_net *n, int host_a, int host_b, int number, int archives)
{
  for (int i = 0; i <= archives; i++) {
    char rel[64];
    if (i < archives)
      snprintf(rel, sizeof rel, "g%04d/g%04d.part%02d.eti", number, number, i + 1);
    else
      snprintf(rel, sizeof rel, "g%04d/version.ini", number);
    char *a = strdup(at(n, host_a, rel));
    const char *b = at(n, host_b, rel);
    if (!pn_same_file(a, b))
      fail_msg("%s and %s differ", a, b);
    free(a);
  }
}

/* The event of that type in events (it must be there). */
static json_t *event(json_t *events, const char *type)
{
  int i = pn_find(events, type, 0);
  if (i < 0)
    fail_msg("no %s; saw: %s", type, pn_types(events));
  return json_array_get(events, (size_t)i);
}

/* The reply to `cmd` among the collected events (it must be there). */
static json_t *reply_of(json_t *events, const char *cmd)
{
  for (int i = pn_find(events, "reply", 0); i >= 0; i = pn_find(events, "reply", i + 1)) {
    json_t *r = json_array_get(events, (size_t)i);
    if (strcmp(jstr(r, "cmd"), cmd) == 0)
      return r;
  }
  fail_msg("no reply to %s; saw: %s", cmd, pn_types(events));
  return NULL;
}

/* Sends a command line and collects the events of id until one of the
 * download's ends; it must end with `end`. Caller decrefs. */
static json_t *run_until(peerproc *p, const char *line, const char *id, const char *end)
{
  pp_send(p, line);
  json_t *events = pn_events_until(p, id, T_MS, "game-download-finished", "game-download-failed",
                                   "game-download-cancelled", "game-download-paused",
                                   "game-verify-finished", "game-verify-failed", NULL);
  if (strcmp(pn_last_type(events), end) != 0) {
    json_t *last = json_array_get(events, json_array_size(events) - 1);
    fail_msg("'%s' ended with %s (%s), not %s; saw: %s", line, pn_last_type(events),
             jstr(last, "error"), end, pn_types(events));
  }
  return events;
}

/* The games entry of id with its "download" object (both must be there);
 * caller decrefs the entry. */
static json_t *entry_with_download(peerproc *p, const char *id, json_t **download)
{
  json_t *g = pn_game_entry(p, id);
  if (!g)
    fail_msg("%s is not listed", id);
  *download = json_object_get(g, "download");
  if (!json_is_object(*download))
    fail_msg("%s has no download object: %s", id, pn_field(g, "download"));
  return g;
}

/* The entry shows a paused download of version (bytes > 0, of total),
 * not downloaded; returns its bytes. */
static json_int_t assert_paused(peerproc *p, const char *id, const char *version,
                                json_int_t total)
{
  json_t *dl;
  json_t *g = entry_with_download(p, id, &dl);
  assert_string_equal(jstr(g, "state"), "paused");
  assert_false(json_is_true(json_object_get(g, "downloaded")));
  assert_true(json_is_null(json_object_get(g, "operation")));
  assert_string_equal(jstr(dl, "state"), "paused");
  assert_string_equal(jstr(dl, "version"), version);
  json_int_t bytes = jint(dl, "bytes");
  assert_true(bytes > 0);
  assert_true(bytes < total);
  assert_int_equal(jint(dl, "total_bytes"), total);
  json_decref(g);
  return bytes;
}

/* Sends `pause id` and waits for game-download-paused; returns it. */
static json_t *pause_download(peerproc *p, const char *id)
{
  json_t *r = pn_ok(p, "pause %s", id);
  assert_string_equal(jstr(r, "id"), id);
  json_decref(r);
  return pp_expect(p, "game-download-paused", NULL, T_MS);
}

static void cancel_paused(peerproc *p, const char *id)
{
  json_t *r = pn_ok(p, "cancel %s", id);
  assert_true(json_is_true(json_object_get(r, "paused"))); /* it was a discard */
  json_decref(r);
  json_decref(pp_expect(p, "game-download-cancelled", NULL, T_MS));
}

/* A command that must be refused with exactly that code. */
static void refused_with(peerproc *p, const char *line, const char *code)
{
  json_t *r = pp_command(p, line, T_MS);
  if (!json_is_false(json_object_get(r, "ok")) || strcmp(jstr(r, "code"), code) != 0)
    fail_msg("'%s' should be refused with %s, got ok=%s code=%s error=%s", line, code,
             pn_field(r, "ok"), jstr(r, "code"), jstr(r, "error"));
  printf("'%s' refused: %s (%s)\n", line, jstr(r, "error"), code);
  json_decref(r);
}

static void copy_file(const char *from, const char *to)
{
  FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
  assert_non_null(in);
  assert_non_null(out);
  static char buf[1 << 16];
  for (size_t len; (len = fread(buf, 1, sizeof buf, in)) > 0;)
    assert_int_equal(fwrite(buf, 1, len, out), len);
  fclose(in);
  assert_int_equal(fclose(out), 0);
}

/* ---- 1. killed at 60% and resumed ------------------------------------------ */

static void scenario_killed_at_60_percent_and_resumed(void **state)
{
  (void)state;
  pn_net *n = pn_create(3, PORT);
  generate(n, 0, 1, GAME_SIZE, "1.0", 3, 1, false);
  assert_int_equal(ls_netns_shape(n->ns, 0, RATE_MBIT, 0), 0);
  start(n, 0, 0);

  /* The whole download, for comparison: host 1, stopped once done (so it
   * never seeds host 2). */
  peerproc *w = start(n, 1, 1);
  double t0 = pn_now();
  json_t *ev = run_until(w, "download " ID, ID, "game-download-finished");
  double whole = pn_now() - t0;
  json_int_t total = jint(event(ev, "game-download-finished"), "bytes");
  json_decref(ev);
  assert_same_payload(n, 0, 1, 1, 3);
  pn_stop(n, 1);

  peerproc *d = start(n, 2, 1);
  double seen = pn_download_until(d, ID, 0.6);
  assert_true(seen >= 0.6);
  pn_kill(n, 2);
  assert_true(pn_exists(at(n, 2, ID "/.lanspread.download")));
  assert_true(pn_exists(at(n, 2, ID "/.lanspread.chunks")));
  assert_false(pn_exists(at(n, 2, ID "/version.ini")));

  d = start(n, 2, 1); /* startup recovery keeps it as paused */
  json_int_t kept = assert_paused(d, ID, "1.0", total);
  json_int_t missing = total - kept;

  t0 = pn_now();
  ev = run_until(d, "download " ID, ID, "game-download-finished");
  double rest = pn_now() - t0;
  assert_true(json_is_true(json_object_get(reply_of(ev, "download"), "ok")));
  json_t *begin = event(ev, "game-download-begin");
  assert_true(json_is_true(json_object_get(begin, "resumed")));
  assert_false(json_is_true(json_object_get(begin, "manifest_changed")));
  assert_true(jint(begin, "kept_chunks") > 0);
  assert_int_equal(jint(begin, "kept_bytes"), kept);
  json_t *fin = event(ev, "game-download-finished");
  json_int_t fetched = jint(fin, "bytes_fetched"), reused = jint(fin, "bytes_reused");
  printf("resume after kill at 60%%: rest %.2f s vs whole %.2f s -> ratio %.2f; fetched %lld of "
         "%lld bytes (reused %lld; %lld durable at the restart, killed at %.0f%%)\n",
         rest, whole, rest / whole, (long long)fetched, (long long)total, (long long)reused,
         (long long)kept, seen * 100);
  fflush(stdout);
  assert_int_equal(fetched + reused, total);
  assert_true(fetched <= missing + INFLIGHT_ALLOWANCE);
  assert_true(rest <= 0.5 * whole);
  json_decref(ev);
  assert_same_payload(n, 0, 2, 1, 3);
  assert_false(pn_exists(at(n, 2, ID "/.lanspread.download")));
  assert_false(pn_exists(at(n, 2, ID "/.lanspread.chunks")));
  pn_destroy(n);
}

/* ---- 2. pause and resume from the CLI --------------------------------------- */

static void scenario_pause_and_resume(void **state)
{
  (void)state;
  pn_net *n = pn_create(2, PORT);
  generate(n, 0, 1, GAME_SIZE, "1.0", 3, 1, false);
  assert_int_equal(ls_netns_shape(n->ns, 0, RATE_MBIT, 0), 0);
  peerproc *s = start(n, 0, 0);
  peerproc *d = start(n, 1, 1);
  refused_with(d, "pause " ID, "LS_ESTATE"); /* nothing runs */

  double seen = pn_download_until(d, ID, 0.4);
  assert_true(seen > 0);
  double t0 = pn_now();
  json_t *pe = pause_download(d, ID);
  double pause_took = pn_now() - t0;
  assert_string_equal(jstr(pe, "version"), "1.0");
  json_int_t bytes = jint(pe, "bytes"), total = jint(pe, "total_bytes");
  assert_true(bytes > 0 && bytes < total);
  json_decref(pe);
  assert_int_equal(assert_paused(d, ID, "1.0", total), bytes);
  json_t *dl;
  json_t *g = entry_with_download(d, ID, &dl);
  assert_string_equal(pn_field(g, "actions"), "[\"download\",\"cancel\"]");
  json_decref(g);
  assert_true(pn_exists(at(n, 1, ID "/.lanspread.download")));
  assert_true(pn_exists(at(n, 1, ID "/.lanspread.chunks")));
  assert_false(pn_exists(at(n, 1, ID "/version.ini")));
  refused_with(d, "pause " ID, "LS_ESTATE"); /* paused is not running */

  /* Paused stays paused: nothing more arrives. The seeder serves on: its
   * game is as it was, and it answers a file-list request. */
  usleep(1000 * 1000);
  assert_int_equal(assert_paused(d, ID, "1.0", total), bytes);
  g = pn_game_entry(s, ID);
  assert_string_equal(jstr(g, "state"), "downloaded");
  json_decref(g);
  json_t *r = pn_ok(d, "get " ID);
  assert_int_equal(jint(r, "peers"), 1);
  json_decref(r);

  t0 = pn_now();
  json_t *ev = run_until(d, "download " ID, ID, "game-download-finished");
  double rest = pn_now() - t0;
  assert_true(json_is_true(json_object_get(reply_of(ev, "download"), "resumed")));
  json_t *begin = event(ev, "game-download-begin");
  assert_true(json_is_true(json_object_get(begin, "resumed")));
  assert_false(json_is_true(json_object_get(begin, "manifest_changed")));
  assert_true(jint(begin, "kept_chunks") > 0);
  assert_int_equal(jint(begin, "dropped_chunks"), 0);
  assert_int_equal(jint(begin, "kept_bytes"), bytes); /* a pause makes everything durable */
  json_t *fin = event(ev, "game-download-finished");
  json_int_t fetched = jint(fin, "bytes_fetched"), reused = jint(fin, "bytes_reused");
  printf("pause at %.0f%% (took %.3f s): %lld of %lld bytes kept, %lld chunks; resumed in "
         "%.2f s fetching %lld bytes (reused %lld)\n",
         seen * 100, pause_took, (long long)bytes, (long long)total,
         (long long)jint(begin, "kept_chunks"), rest, (long long)fetched, (long long)reused);
  fflush(stdout);
  assert_int_equal(fetched + reused, total);
  assert_true(fetched <= total - bytes);
  json_decref(ev);
  assert_same_payload(n, 0, 1, 1, 3);
  assert_false(pn_exists(at(n, 1, ID "/.lanspread.download")));
  assert_false(pn_exists(at(n, 1, ID "/.lanspread.chunks")));
  pn_destroy(n);
}

/* ---- 3. discard of a paused download ----------------------------------------- */

/* What a cancel of a fresh download leaves: no root, nothing paused. */
static void assert_fresh_discarded(pn_net *n, peerproc *d, const char *id)
{
  assert_false(pn_exists(at(n, 1, id)));
  json_t *g = pn_game_entry(d, id);
  assert_non_null(g);
  assert_false(json_is_true(json_object_get(g, "downloaded")));
  assert_string_equal(jstr(g, "state"), "available");
  assert_true(json_is_null(json_object_get(g, "download")));
  json_decref(g);
}

/* What a cancel of an update leaves (scenario_cancel_update of
 * test_download_net): local/ and the install state, nothing else. */
static void assert_update_discarded(pn_net *n, peerproc *d, const char *id)
{
  char rel[256];
  static const char *const stay[] = {"local/README.txt", ".lanspread.json", ".sync/state"};
  static const char *const gone[] = {"version.ini", ".version.ini.discarded",
                                     ".lanspread.download", ".lanspread.chunks", "part01.eti"};
  for (size_t i = 0; i < sizeof stay / sizeof stay[0]; i++) {
    snprintf(rel, sizeof rel, "%s/%s", id, stay[i]);
    if (!pn_exists(at(n, 1, rel)))
      fail_msg("%s should stay", rel);
  }
  for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++) {
    if (strcmp(gone[i], "part01.eti") == 0)
      snprintf(rel, sizeof rel, "%s/%s.%s", id, id, gone[i]);
    else
      snprintf(rel, sizeof rel, "%s/%s", id, gone[i]);
    if (pn_exists(at(n, 1, rel)))
      fail_msg("%s should be gone", rel);
  }
  json_t *g = pn_game_entry(d, id);
  assert_true(json_is_true(json_object_get(g, "installed")));
  assert_false(json_is_true(json_object_get(g, "downloaded")));
  assert_true(json_is_null(json_object_get(g, "download")));
  assert_string_not_equal(jstr(g, "state"), "paused");
  json_decref(g);
}

/* The install state a discard must keep, written after start-up (whose
 * recovery would settle it). */
static void write_install_state(pn_net *n, const char *id)
{
  t_write(n->root, t_path("h1/%s/.lanspread.json", id), "{\"op\":\"none\"}");
  t_write(n->root, t_path("h1/%s/.sync/state", id), "external tool");
}

static void scenario_discard_paused(void **state)
{
  (void)state;
  pn_net *n = pn_create(2, PORT);
  generate(n, 0, 1, SMALL_SIZE, "1.0", 3, 1, false);
  generate(n, 0, 2, SMALL_SIZE, "2.0", 3, 3, false);
  generate(n, 1, 2, SMALL_SIZE, "1.0", 3, 2, true); /* installed 1.0 here, 2.0 there */
  assert_int_equal(ls_netns_shape(n->ns, 0, RATE_MBIT, 0), 0);
  start(n, 0, 0);
  peerproc *d = start(n, 1, 1);

  /* A fresh download, paused, then cancelled. */
  assert_true(pn_download_until(d, ID, 0.3) > 0);
  json_decref(pause_download(d, ID));
  double t0 = pn_now();
  cancel_paused(d, ID);
  printf("discard of a paused fresh download: %.3f s\n", pn_now() - t0);
  assert_fresh_discarded(n, d, ID);

  /* The same, paused by a kill and found by recovery. */
  assert_true(pn_download_until(d, ID, 0.3) > 0);
  pn_kill(n, 1);
  d = start(n, 1, 1);
  json_t *g = pn_game_entry(d, ID);
  assert_string_equal(jstr(g, "state"), "paused");
  json_decref(g);
  t0 = pn_now();
  cancel_paused(d, ID);
  printf("discard of a fresh download paused by recovery: %.3f s\n", pn_now() - t0);
  assert_fresh_discarded(n, d, ID);

  /* An update of the installed game, paused, then cancelled. */
  write_install_state(n, ID2);
  assert_true(pn_download_until(d, ID2, 0.5) > 0);
  json_decref(pause_download(d, ID2));
  g = pn_game_entry(d, ID2);
  assert_string_equal(jstr(g, "state"), "paused");
  assert_true(json_is_true(json_object_get(g, "installed")));
  json_decref(g);
  cancel_paused(d, ID2);
  assert_update_discarded(n, d, ID2);

  /* The update again (of the local-only game now), killed, found paused by
   * recovery, then cancelled. */
  assert_true(pn_download_until(d, ID2, 0.5) > 0);
  pn_kill(n, 1);
  d = start(n, 1, 1);
  g = pn_game_entry(d, ID2);
  assert_string_equal(jstr(g, "state"), "paused");
  assert_true(json_is_true(json_object_get(g, "installed")));
  json_decref(g);
  write_install_state(n, ID2);
  cancel_paused(d, ID2);
  assert_update_discarded(n, d, ID2);
  refused_with(d, "cancel " ID2, "LS_ESTATE"); /* nothing left to cancel */
  pn_destroy(n);
}

/* ---- 4. an update that changes one archive of four ------------------------ */

static void scenario_update_reuses_unchanged_archives(void **state)
{
  (void)state;
  pn_net *n = pn_create(2, PORT);
  /* 2.0 at the seeder: 1.0's archives, but a new part03 (another seed) and
   * its own version.ini. */
  generate(n, 0, 1, GAME_SIZE, "2.0", 4, 1, false);
  char *other = t_tempdir();
  generate_in(n, 0, other, 1, GAME_SIZE, "2.0", 4, 9, false);
  copy_file(t_path("%s/" ID "/" ID ".part03.eti", other), at(n, 0, ID "/" ID ".part03.eti"));
  generate(n, 1, 1, GAME_SIZE, "1.0", 4, 1, false); /* 1.0 downloaded here */
  static const char *const unchanged[] = {ID ".part01.eti", ID ".part02.eti", ID ".part04.eti"};
  long long unchanged_bytes = 0;
  for (size_t i = 0; i < 3; i++) {
    char rel[64];
    snprintf(rel, sizeof rel, ID "/%s", unchanged[i]);
    char *a = strdup(at(n, 0, rel));
    assert_true(pn_same_file(a, at(n, 1, rel)));
    unchanged_bytes += file_size(a);
    free(a);
  }
  char *changed = strdup(at(n, 0, ID "/" ID ".part03.eti"));
  assert_false(pn_same_file(changed, at(n, 1, ID "/" ID ".part03.eti")));
  long long changed_bytes = file_size(changed);
  long long ini_bytes = file_size(at(n, 0, ID "/version.ini"));
  free(changed);

  assert_int_equal(ls_netns_shape(n->ns, 0, RATE_MBIT, 0), 0);
  start(n, 0, 0);
  peerproc *d = start(n, 1, 1);
  assert_true(pn_poll_game(d, ID, "latest_version", "2.0", 20));
  json_t *g = pn_game_entry(d, ID);
  assert_true(json_is_true(json_object_get(g, "update_available")));
  json_decref(g);

  double t0 = pn_now();
  json_t *ev = run_until(d, "download " ID, ID, "game-download-finished");
  double took = pn_now() - t0;
  json_t *begin = event(ev, "game-download-begin");
  assert_false(json_is_true(json_object_get(begin, "resumed"))); /* no journal: a probe */
  json_t *fin = event(ev, "game-download-finished");
  assert_string_equal(jstr(fin, "version"), "2.0");
  json_int_t fetched = jint(fin, "bytes_fetched"), reused = jint(fin, "bytes_reused");
  printf("update with 3 of 4 archives unchanged: fetched %lld bytes (changed archive %lld + "
         "version.ini %lld), reused %lld (unchanged archives %lld), in %.2f s\n",
         (long long)fetched, changed_bytes, ini_bytes, (long long)reused, unchanged_bytes, took);
  fflush(stdout);
  assert_true(fetched <= changed_bytes + ini_bytes);
  assert_true(reused >= unchanged_bytes);
  assert_int_equal(fetched + reused, jint(fin, "bytes"));
  json_decref(ev);
  assert_same_payload(n, 0, 1, 1, 4);
  pn_destroy(n);
}

/* ---- 5. verify and repair ------------------------------------------------ */

static json_t *verify(peerproc *d, const char *line)
{
  json_t *ev = run_until(d, line, ID, "game-verify-finished");
  json_t *fin = json_incref(event(ev, "game-verify-finished"));
  assert_true(json_is_true(json_object_get(reply_of(ev, "verify"), "ok")));
  assert_true(pn_find(ev, "game-verify-begin", 0) >= 0);
  assert_true(pn_find(ev, "game-download-begin", 0) < 0); /* it fetches nothing */
  json_decref(ev);
  return fin;
}

static void scenario_verify_and_repair(void **state)
{
  (void)state;
  pn_net *n = pn_create(2, PORT);
  generate(n, 0, 1, SMALL_SIZE, "1.0", 3, 1, false);
  generate(n, 1, 1, SMALL_SIZE, "1.0", 3, 1, true); /* the same, installed */
  assert_int_equal(ls_netns_shape(n->ns, 0, RATE_MBIT, 0), 0);
  start(n, 0, 0);
  peerproc *d = start(n, 1, 1);
  assert_true(pn_poll_game(d, ID, "peers", "1", 20));
  json_t *g = pn_game_entry(d, ID);
  assert_string_equal(jstr(g, "state"), "installed");
  json_decref(g);

  /* A snapshot of local/ (file list and contents) to compare at the end. */
  const char *snapshot = t_path("%s/local-before", n->root);
  char *snap = strdup(snapshot);
  char *local = strdup(at(n, 1, ID "/local"));
  char *cp[] = {"/bin/cp", "-a", local, snap, NULL};
  assert_int_equal(pp_run(cp, T_MS), 0);

  /* One byte flipped in the middle of part02 (size kept). */
  const char *victim = at(n, 1, ID "/" ID ".part02.eti");
  long long size = file_size(victim);
  FILE *f = fopen(victim, "r+b");
  assert_non_null(f);
  assert_int_equal(fseek(f, (long)(size / 2), SEEK_SET), 0);
  int c = fgetc(f);
  assert_int_equal(fseek(f, (long)(size / 2), SEEK_SET), 0);
  assert_int_not_equal(fputc(c ^ 0x5a, f), EOF);
  assert_int_equal(fclose(f), 0);

  double t0 = pn_now();
  json_t *fin = verify(d, "verify " ID);
  double took = pn_now() - t0;
  char *files = strdup(pn_field(fin, "files"));
  printf("verify after one flipped byte: %.2f s, ok=%s chunks=%lld bad_chunks=%lld "
         "bad_bytes=%lld files_bad=%lld files=%s\n",
         took, pn_field(fin, "ok"), (long long)jint(fin, "chunks"),
         (long long)jint(fin, "bad_chunks"), (long long)jint(fin, "bad_bytes"),
         (long long)jint(fin, "files_bad"), files);
  fflush(stdout);
  free(files);
  assert_false(json_is_true(json_object_get(fin, "ok")));
  assert_string_equal(jstr(fin, "version"), "1.0");
  assert_int_equal(jint(fin, "bad_chunks"), 1);
  assert_int_equal(jint(fin, "bad_bytes"), MIB);
  assert_int_equal(jint(fin, "files_bad"), 1);
  json_t *bad = json_object_get(fin, "files");
  assert_int_equal(json_array_size(bad), 1);
  assert_string_equal(jstr(json_array_get(bad, 0), "path"), ID ".part02.eti");
  assert_int_equal(jint(json_array_get(bad, 0), "bad_chunks"), 1);
  assert_int_equal(jint(json_array_get(bad, 0), "bad_bytes"), MIB);
  json_decref(fin);

  long long ini_bytes = file_size(at(n, 1, ID "/version.ini"));
  t0 = pn_now();
  json_t *ev = run_until(d, "verify " ID " --repair", ID, "game-download-finished");
  took = pn_now() - t0;
  assert_true(json_is_true(json_object_get(event(ev, "game-download-begin"), "repair")));
  json_t *rf = event(ev, "game-download-finished");
  assert_true(json_is_true(json_object_get(rf, "repair")));
  json_int_t fetched = jint(rf, "bytes_fetched");
  printf("repair: fetched %lld bytes (one chunk %lld + version.ini %lld), reused %lld, in "
         "%.2f s\n",
         (long long)fetched, (long long)MIB, ini_bytes, (long long)jint(rf, "bytes_reused"),
         took);
  fflush(stdout);
  assert_true(fetched <= MIB + ini_bytes);
  assert_true(pn_find(ev, "game-install-begin", 0) < 0); /* a repair installs nothing */
  json_decref(ev);

  fin = verify(d, "verify " ID);
  assert_true(json_is_true(json_object_get(fin, "ok")));
  assert_int_equal(jint(fin, "bad_chunks"), 0);
  assert_int_equal(jint(fin, "files_bad"), 0);
  json_decref(fin);
  g = pn_game_entry(d, ID);
  assert_true(json_is_true(json_object_get(g, "installed")));
  assert_true(json_is_true(json_object_get(g, "downloaded")));
  assert_string_equal(jstr(g, "state"), "installed");
  json_decref(g);

  /* A cancelled repair keeps the game's files: part02 overwritten whole
   * (every chunk of it to fetch again), cancel mid-repair, and the repair
   * is paused, the other archives intact; `download` resumes it as a
   * repair (no install follows). */
  f = fopen(victim, "r+b");
  assert_non_null(f);
  for (long long i = 0; i < size; i++)
    fputc(0xa5, f);
  assert_int_equal(fclose(f), 0);
  pp_send(d, "verify " ID " --repair");
  json_decref(pp_expect(d, "game-download-progress", NULL, T_MS));
  json_decref(pn_ok(d, "cancel " ID));
  json_t *paused = pp_expect(d, "game-download-paused", NULL, T_MS);
  printf("repair cancelled at %lld of %lld bytes: kept as paused\n",
         (long long)jint(paused, "bytes"), (long long)jint(paused, "total_bytes"));
  json_decref(paused);
  g = pn_game_entry(d, ID);
  assert_string_equal(jstr(g, "state"), "paused");
  assert_true(json_is_true(json_object_get(g, "installed")));
  json_decref(g);
  assert_true(pn_same_file(at(n, 0, ID "/" ID ".part01.eti"), at(n, 1, ID "/" ID ".part01.eti")));
  assert_true(pn_same_file(at(n, 0, ID "/" ID ".part03.eti"), at(n, 1, ID "/" ID ".part03.eti")));
  ev = run_until(d, "download " ID, ID, "game-download-finished");
  rf = event(ev, "game-download-finished");
  assert_true(json_is_true(json_object_get(rf, "repair")));
  assert_true(jint(rf, "bytes_fetched") <= size + ini_bytes);
  json_decref(ev);
  json_decref(pn_ok(d, "games")); /* after the finished event: no install began */
  g = pn_game_entry(d, ID);
  assert_string_equal(jstr(g, "state"), "installed");
  json_decref(g);

  assert_true(pn_same_tree(local, snap)); /* local/ untouched throughout */
  assert_same_payload(n, 0, 1, 1, 3);
  free(local);
  free(snap);
  pn_destroy(n);
}

/* ---- 6. a pause while the file list is asked for ------------------------------ */

/* Sends download and pause at once to the in-process peer while the
 * seeder's link is down, so the file list cannot have come; returns the
 * events up to the end (`end`). */
static json_t *pause_while_listing(pn_net *n, peerproc *d, const char *end)
{
  assert_int_equal(ls_netns_link(n->ns, 0, false), 0);
  pp_send(d, "download " ID);
  pp_send(d, "pause " ID);
  json_t *ev = pn_events_until(d, ID, T_MS, "game-download-cancelled", "game-download-paused",
                               "game-download-failed", "game-download-finished", NULL);
  assert_int_equal(ls_netns_link(n->ns, 0, true), 0);
  if (strcmp(pn_last_type(ev), end) != 0)
    fail_msg("a pause while listing ended with %s, not %s: %s", pn_last_type(ev), end,
             pn_types(ev));
  json_t *r = reply_of(ev, "pause");
  assert_true(json_is_true(json_object_get(r, "ok")));
  r = reply_of(ev, "download");
  assert_false(json_is_true(json_object_get(r, "ok")));
  assert_string_equal(jstr(r, "code"), "LS_EPAUSED");
  assert_true(pn_find(ev, "game-download-begin", 0) < 0);
  assert_true(pn_find(ev, "game-files", 0) < 0);
  printf("pause while listing: %s\n", pn_types(ev));
  fflush(stdout);
  return ev;
}

static void scenario_pause_while_listing(void **state)
{
  (void)state;
  pn_net *n = pn_create(2, PORT);
  generate(n, 0, 1, SMALL_SIZE, "1.0", 3, 1, false);
  assert_int_equal(ls_netns_shape(n->ns, 0, RATE_MBIT, 0), 0);
  start(n, 0, 0);
  peerproc *d = pn_start_direct(n, 1, (pn_peer){.static_peers = 1});
  assert_true(pn_poll_game(d, ID, "peers", "1", 20));

  /* Nothing was on disk yet: nothing is kept. */
  json_decref(pause_while_listing(n, d, "game-download-cancelled"));
  assert_false(pn_exists(at(n, 1, ID)));
  json_t *g = pn_game_entry(d, ID);
  assert_string_equal(jstr(g, "state"), "available");
  assert_true(json_is_null(json_object_get(g, "download")));
  json_decref(g);

  /* A paused download whose resume is paused while listing stays paused,
   * as it was. */
  assert_true(pn_poll_game(d, ID, "peers", "1", 20));
  assert_true(pn_download_until(d, ID, 0.3) > 0);
  json_t *pe = pause_download(d, ID);
  json_int_t bytes = jint(pe, "bytes"), total = jint(pe, "total_bytes");
  json_decref(pe);
  json_t *ev = pause_while_listing(n, d, "game-download-paused");
  pe = json_array_get(ev, json_array_size(ev) - 1);
  assert_string_equal(jstr(pe, "version"), "1.0");
  assert_int_equal(jint(pe, "bytes"), bytes);
  assert_int_equal(jint(pe, "total_bytes"), total);
  json_decref(ev);
  assert_int_equal(assert_paused(d, ID, "1.0", total), bytes);
  assert_true(pn_exists(at(n, 1, ID "/.lanspread.download")));
  assert_true(pn_exists(at(n, 1, ID "/.lanspread.chunks")));

  /* And resumes from there. */
  assert_true(pn_poll_game(d, ID, "peers", "1", 20));
  ev = run_until(d, "download " ID, ID, "game-download-finished");
  assert_int_equal(jint(event(ev, "game-download-begin"), "kept_bytes"), bytes);
  json_decref(ev);
  assert_same_payload(n, 0, 1, 1, 3);
  pn_destroy(n);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(scenario_killed_at_60_percent_and_resumed),
    cmocka_unit_test(scenario_pause_and_resume),
    cmocka_unit_test(scenario_discard_paused),
    cmocka_unit_test(scenario_update_reuses_unchanged_archives),
    cmocka_unit_test(scenario_verify_and_repair),
    cmocka_unit_test(scenario_pause_while_listing),
  };
  return ls_run_tests(tests, NULL, NULL);
}
