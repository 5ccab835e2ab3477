/* Tests the local game monitor on a real libuv loop with real inotify:
 * latency of changes, debouncing, quiet names, operation gating, the
 * fallback scan and a clean close. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testrun.h"

#include "testutil.h"

#include "core/fs.h"
#include "library/index.h"
#include "library/monitor.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEBOUNCE_MS 100

typedef struct fixture {
  uv_loop_t loop;
  char *dir, *state;
  ls_catalog *catalog;
  ls_monitor *monitor;
  unsigned changes;          /* on_change calls */
  char last_ids[256];        /* ids of the last call, space-separated */
  bool closed;
} fixture;

static void on_change(void *user, const ls_library *lib, const char *const *ids, size_t n)
{
  fixture *f = user;
  (void)lib;
  f->changes++;
  f->last_ids[0] = '\0';
  for (size_t i = 0; i < n; i++) {
    strncat(f->last_ids, ids[i], sizeof f->last_ids - strlen(f->last_ids) - 2);
    strcat(f->last_ids, " ");
  }
}

static void on_timeout(uv_timer_t *t)
{
  *(bool *)t->data = true;
}

/* Runs the loop until *cond becomes true or timeout_ms pass; returns the
 * elapsed milliseconds. */
static uint64_t run_until(fixture *f, const unsigned *counter, unsigned target, unsigned timeout_ms)
{
  bool timed_out = false;
  uv_timer_t timer;
  uv_timer_init(&f->loop, &timer);
  timer.data = &timed_out;
  uv_timer_start(&timer, on_timeout, timeout_ms, 0);
  uint64_t start = uv_hrtime();
  while (!timed_out && (!counter || *counter < target))
    uv_run(&f->loop, UV_RUN_ONCE);
  uint64_t elapsed = (uv_hrtime() - start) / 1000000;
  uv_close((uv_handle_t *)&timer, NULL);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  return elapsed;
}

static fixture *start(unsigned fallback_ms)
{
  fixture *f = calloc(1, sizeof *f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  f->dir = t_tempdir();
  f->state = t_tempdir();
  const char *ids[] = {"g1", "g2", "g3", "g4"};
  f->catalog = t_catalog(ids, 4);
  t_write(f->dir, "g2/version.ini", "1.0");
  t_write(f->dir, "g2/a.eti", "aa");
  t_write(f->dir, "g4/version.ini", "4.0");
  ls_monitor_config cfg = {
    .loop = &f->loop, .game_dir = f->dir, .state_dir = f->state, .catalog = f->catalog,
    .debounce_ms = DEBOUNCE_MS, .fallback_scan_ms = fallback_ms,
    .on_change = on_change, .user = f,
  };
  ls_diag diag;
  int rc = ls_monitor_start(&cfg, &f->monitor, &diag);
  if (rc != 0)
    fail_msg("monitor did not start: %s", diag.text);
  return f;
}

static void on_closed(void *user)
{
  ((fixture *)user)->closed = true;
}

static void stop(fixture *f)
{
  ls_monitor_close(f->monitor, on_closed, f);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_true(f->closed);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  ls_catalog_free(f->catalog);
  free(f);
}

static const ls_local_game *game(fixture *f, const char *id)
{
  return ls_library_find(ls_monitor_library(f->monitor), id);
}

static void first_scan_is_complete_at_start(void **state)
{
  (void)state;
  fixture *f = start(0);
  assert_int_equal(ls_monitor_library(f->monitor)->count, 2);
  assert_string_equal(game(f, "g2")->version, "1.0");
  stop(f);
}

static void new_root_shows_up_within_a_second(void **state)
{
  (void)state;
  fixture *f = start(0);
  t_write(f->dir, "g1/version.ini", "0.9");
  t_write(f->dir, "g1/x.eti", "x");
  uint64_t ms = run_until(f, &f->changes, 1, 3000);
  print_message("new game root seen after %llu ms\n", (unsigned long long)ms);
  assert_int_equal(f->changes, 1);
  assert_true(ms < 1000);
  assert_string_equal(f->last_ids, "g1 ");
  assert_true(game(f, "g1")->downloaded);
  assert_string_equal(game(f, "g1")->version, "0.9");
  stop(f);
}

static void sentinel_and_local_changes_show_up(void **state)
{
  (void)state;
  fixture *f = start(0);
  assert_int_equal(unlink(t_path("%s/g2/version.ini", f->dir)), 0);
  assert_true(run_until(f, &f->changes, 1, 3000) < 1000);
  assert_false(game(f, "g2")->downloaded);

  t_mkdir(f->dir, "g2/local");
  assert_true(run_until(f, &f->changes, 2, 3000) < 1000);
  assert_true(game(f, "g2")->installed);

  assert_int_equal(ls_rmtree_at(AT_FDCWD, t_path("%s/g2/local", f->dir), NULL), 0);
  assert_true(run_until(f, &f->changes, 3, 3000) < 1000);
  assert_false(game(f, "g2")->installed);

  assert_int_equal(ls_rmtree_at(AT_FDCWD, t_path("%s/g2", f->dir), NULL), 0);
  assert_true(run_until(f, &f->changes, 4, 3000) < 1000);
  assert_null(game(f, "g2"));
  stop(f);
}

static void bursts_are_debounced(void **state)
{
  (void)state;
  fixture *f = start(0);
  t_write(f->dir, "g3/first.eti", "1"); /* the root exists and is watched */
  run_until(f, &f->changes, 1, 3000);
  unsigned scans_before = ls_monitor_get_stats(f->monitor).scans;
  unsigned events_before = ls_monitor_get_stats(f->monitor).events;
  f->changes = 0;
  for (int i = 0; i < 200; i++)
    t_write(f->dir, t_path("g3/part%03d.eti", i), "data");
  run_until(f, &f->changes, 1, 3000);
  run_until(f, NULL, 0, 3 * DEBOUNCE_MS); /* let any straggler scan happen */
  ls_monitor_stats st = ls_monitor_get_stats(f->monitor);
  print_message("200 file creations: %u events, %u scans, %u change callbacks\n",
                st.events - events_before, st.scans - scans_before, f->changes);
  assert_true(st.events - events_before >= 200);
  assert_true(st.scans - scans_before <= 2);
  assert_int_equal(game(f, "g3")->file_count, 201);
  stop(f);
}

static void quiet_names_and_strangers_trigger_nothing(void **state)
{
  (void)state;
  fixture *f = start(0);
  unsigned scans_before = ls_monitor_get_stats(f->monitor).scans;
  t_write(f->dir, "g4/.lanspread.json", "{}");
  t_write(f->dir, "g4/.version.ini.tmp", "5.0");
  t_write(f->dir, "g4/.version.ini.discarded", "3.0");
  t_write(f->dir, "g4/.softlan_game_installed", "");
  t_mkdir(f->dir, "g4/.sync");
  t_mkdir(f->dir, "g4/.local.installing");
  t_mkdir(f->dir, "notacatalogid");
  t_write(f->dir, "notacatalogid/version.ini", "1");
  t_write(f->dir, "stray.txt", "x");
  run_until(f, NULL, 0, 4 * DEBOUNCE_MS);
  ls_monitor_stats st = ls_monitor_get_stats(f->monitor);
  assert_true(st.events > 0);
  assert_int_equal(st.events_ignored, st.events);
  assert_int_equal(st.scans, scans_before);
  assert_int_equal(f->changes, 0);
  stop(f);
}

static void operations_hold_rescans_back(void **state)
{
  (void)state;
  fixture *f = start(0);
  ls_monitor_begin_operation(f->monitor, "g2");
  assert_true(ls_monitor_is_busy(f->monitor, "g2"));
  unsigned scans_before = ls_monitor_get_stats(f->monitor).scans;
  for (int i = 0; i < 20; i++)
    t_write(f->dir, t_path("g2/chunk%02d.eti", i), "payload");
  assert_int_equal(unlink(t_path("%s/g2/version.ini", f->dir)), 0);
  run_until(f, NULL, 0, 4 * DEBOUNCE_MS);
  assert_int_equal(ls_monitor_get_stats(f->monitor).scans, scans_before);
  assert_int_equal(f->changes, 0);
  assert_true(game(f, "g2")->downloaded); /* the snapshot did not move */

  ls_monitor_end_operation(f->monitor, "g2");
  assert_false(ls_monitor_is_busy(f->monitor, "g2"));
  run_until(f, &f->changes, 1, 3000);
  assert_int_equal(f->changes, 1);
  assert_string_equal(f->last_ids, "g2 ");
  assert_false(game(f, "g2")->downloaded);
  assert_int_equal(game(f, "g2")->file_count, 21);
  stop(f);
}

static void fallback_scan_catches_missed_changes(void **state)
{
  (void)state;
  fixture *f = start(300);
  /* A nested payload directory is not watched: only the fallback sees it. */
  t_write(f->dir, "g4/disc/one.eti", "1");
  /* Create disc first, then the scan; the new file inside disc is invisible
   * to the root watch. */
  run_until(f, &f->changes, 1, 3000);
  unsigned before = f->changes;
  t_write(f->dir, "g4/disc/two.eti", "22");
  run_until(f, &f->changes, before + 1, 3000);
  assert_int_equal(f->changes, before + 1);
  assert_int_equal(game(f, "g4")->file_count, 3);
  stop(f);
}

static void close_while_scanning_is_clean(void **state)
{
  (void)state;
  fixture *f = start(0);
  t_write(f->dir, "g1/version.ini", "1");
  ls_monitor_rescan(f->monitor, NULL);
  uv_run(&f->loop, UV_RUN_NOWAIT); /* the job is queued or running */
  stop(f);
}

static void count_call(void *user)
{
  (*(unsigned *)user)++;
}

static void refresh_runs_while_busy(void **state)
{
  (void)state;
  fixture *f = start(0);
  ls_monitor_begin_operation(f->monitor, "g2");
  for (int i = 0; i < 5; i++)
    t_write(f->dir, t_path("g2/new%d.eti", i), "x");
  unsigned refreshed = 0;
  assert_int_equal(ls_monitor_refresh(f->monitor, "g2", count_call, &refreshed), 0);
  run_until(f, &refreshed, 1, 3000);
  assert_int_equal(refreshed, 1);
  assert_int_equal(game(f, "g2")->file_count, 7); /* seen although still busy */
  assert_true(ls_monitor_is_busy(f->monitor, "g2"));
  assert_int_equal(f->changes, 1);
  ls_monitor_end_operation(f->monitor, "g2");
  unsigned at_close = 0;
  ls_monitor_refresh(f->monitor, "g4", count_call, &at_close);
  stop(f);
  assert_int_equal(at_close, 1); /* closing calls it back too */
}

typedef struct index_use {
  unsigned calls;
  bool had_index;
  unsigned scans_seen;
  ls_monitor *monitor;
} index_use;

/* Holds libuv's one pool thread (main sets UV_THREADPOOL_SIZE=1) so that a
 * scan job queued meanwhile cannot finish until the test releases it. */
typedef struct pool_hold {
  uv_work_t work;
  uv_sem_t started, release;
} pool_hold;

static void pool_hold_run(uv_work_t *w)
{
  pool_hold *h = w->data;
  uv_sem_post(&h->started);
  uv_sem_wait(&h->release);
}

static void pool_hold_done(uv_work_t *w, int status)
{
  pool_hold *h = w->data;
  (void)status;
  uv_sem_destroy(&h->started);
  uv_sem_destroy(&h->release);
}

static void pool_hold_start(fixture *f, pool_hold *h)
{
  uv_sem_init(&h->started, 0);
  uv_sem_init(&h->release, 0);
  h->work.data = h;
  assert_int_equal(uv_queue_work(&f->loop, &h->work, pool_hold_run, pool_hold_done), 0);
  uv_sem_wait(&h->started);
}

static void pool_hold_release(pool_hold *h)
{
  uv_sem_post(&h->release);
}

static void use_index(void *user, ls_index *index)
{
  index_use *u = user;
  u->calls++;
  u->had_index = index != NULL;
  u->scans_seen = u->monitor ? ls_monitor_get_stats(u->monitor).scans : 0;
}

static void grab_index(void *user, ls_index *index)
{
  *(ls_index **)user = index;
}

static void index_is_handed_out_between_jobs(void **state)
{
  (void)state;
  fixture *f = start(0);
  index_use now = {0};
  assert_int_equal(ls_monitor_with_index(f->monitor, use_index, &now), 0);
  assert_int_equal(now.calls, 1); /* idle: at once */
  assert_true(now.had_index);

  unsigned scans = ls_monitor_get_stats(f->monitor).scans;
  pool_hold hold;
  pool_hold_start(f, &hold);
  ls_monitor_rescan(f->monitor, NULL);
  uv_run(&f->loop, UV_RUN_NOWAIT); /* the job is queued behind the hold */
  index_use later = {.monitor = f->monitor};
  assert_int_equal(ls_monitor_with_index(f->monitor, use_index, &later), 0);
  assert_int_equal(later.calls, 0); /* waits for the job */
  pool_hold_release(&hold);
  run_until(f, &later.calls, 1, 3000);
  assert_int_equal(later.calls, 1);
  assert_true(later.had_index);
  assert_true(later.scans_seen > scans); /* only after the job finished */

  pool_hold_start(f, &hold);
  ls_monitor_rescan(f->monitor, NULL);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  index_use at_close = {0};
  assert_int_equal(ls_monitor_with_index(f->monitor, use_index, &at_close), 0);
  assert_int_equal(at_close.calls, 0);
  pool_hold_release(&hold);
  stop(f);
  assert_int_equal(at_close.calls, 1);
  assert_false(at_close.had_index); /* closed first: told so */
}

/* SetGameDir's order: a monitor of another game directory sharing the
 * state directory reads the index only once the old monitor has saved it
 * (on close, with what it stored last) and is gone; one owner at a time. */
static void index_passes_to_the_next_monitor_after_the_old_closed(void **state)
{
  (void)state;
  fixture *f = start(0);
  /* What the old monitor stores after its last job goes out in its final save. */
  index_use old_use = {0};
  const uint8_t hash[32] = {1, 2, 3};
  ls_monitor_with_index(f->monitor, use_index, &old_use);
  assert_true(old_use.had_index);
  ls_index *old_index = NULL;
  ls_monitor_with_index(f->monitor, grab_index, &old_index);
  assert_non_null(old_index);
  struct stat st;
  assert_int_equal(stat(t_path("%s/g2/a.eti", f->dir), &st), 0);
  ls_stamp stamp = ls_stamp_of(&st);
  assert_int_equal(ls_index_set_hashes(old_index, "g2", "a.eti", stamp, 4, hash, 1), LS_OK);

  fixture next = {0}; /* counts the new monitor's changes */
  char *dir2 = t_tempdir();
  t_write(dir2, "g1/version.ini", "7.0");
  ls_monitor_config cfg = {
    .loop = &f->loop, .game_dir = dir2, .state_dir = f->state, .catalog = f->catalog,
    .debounce_ms = DEBOUNCE_MS, .scan_in_background = true, .defer_first_scan = true,
    .on_change = on_change, .user = &next,
  };
  ls_monitor *m2;
  ls_diag diag;
  assert_int_equal(ls_monitor_start(&cfg, &m2, &diag), LS_OK);
  index_use early = {0};
  assert_int_equal(ls_monitor_with_index(m2, use_index, &early), LS_OK);
  run_until(f, NULL, 0, 300);
  assert_int_equal(ls_monitor_get_stats(m2).scans, 0); /* deferred: nothing read */
  assert_int_equal(early.calls, 0);                    /* no index yet */
  assert_int_equal(ls_monitor_library(m2)->count, 0);

  ls_monitor_close(f->monitor, on_closed, f);
  while (!f->closed)
    uv_run(&f->loop, UV_RUN_ONCE);
  ls_index *saved;
  assert_int_equal(ls_index_open(f->state, &saved, &diag), LS_OK);
  const uint8_t *got;
  uint32_t count;
  assert_int_equal(ls_index_get_hashes(saved, "g2", "a.eti", stamp, 4, &got, &count), LS_OK);
  ls_index_free(saved);

  ls_monitor_start_scanning(m2);
  f->monitor = m2;
  run_until(f, &next.changes, 1, 3000);
  assert_int_equal(next.changes, 1);
  assert_string_equal(ls_library_find(ls_monitor_library(m2), "g1")->version, "7.0");
  run_until(f, &early.calls, 1, 3000);
  assert_int_equal(early.calls, 1);
  assert_true(early.had_index); /* the opened index, after the first job */
  f->closed = false;
  stop(f);
}

static void unusable_game_dir_is_refused(void **state)
{
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  const char *ids[] = {"g1"};
  ls_catalog *catalog = t_catalog(ids, 1);
  char *sdir = t_tempdir();
  ls_monitor_config cfg = {.loop = &loop, .game_dir = "/nonexistent/games", .state_dir = sdir,
                           .catalog = catalog};
  ls_monitor *m = NULL;
  ls_diag diag;
  assert_int_equal(ls_monitor_start(&cfg, &m, &diag), LS_ENOENT);
  assert_null(m);
  assert_non_null(strstr(diag.text, "/nonexistent/games"));
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  ls_catalog_free(catalog);
}

int main(void)
{
  setenv("UV_THREADPOOL_SIZE", "1", 1); /* read at the pool's first use: see pool_hold */
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(first_scan_is_complete_at_start),
    cmocka_unit_test(new_root_shows_up_within_a_second),
    cmocka_unit_test(sentinel_and_local_changes_show_up),
    cmocka_unit_test(bursts_are_debounced),
    cmocka_unit_test(quiet_names_and_strangers_trigger_nothing),
    cmocka_unit_test(operations_hold_rescans_back),
    cmocka_unit_test(fallback_scan_catches_missed_changes),
    cmocka_unit_test(close_while_scanning_is_clean),
    cmocka_unit_test(index_is_handed_out_between_jobs),
    cmocka_unit_test(refresh_runs_while_busy),
    cmocka_unit_test(index_passes_to_the_next_monitor_after_the_old_closed),
    cmocka_unit_test(unusable_game_dir_is_refused),
  };
  return ls_run_tests(tests, NULL, NULL);
}
