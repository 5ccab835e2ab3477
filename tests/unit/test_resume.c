/* Tests resume (download/download.h, download/storage.h) on real files:
 * a forked downloader killed at seeded random moments and at every step
 * boundary of the journal, a simulated power loss, a pause, a manifest
 * that changed, data already on disk reused by an update, and a
 * verification. After every crash the download is resumed here and must
 * end byte-exact, fetching no more than what was not durable.
 *
 * The source is in-process: a 1 ms timer answers the engine's fetches from
 * memory at a fixed rate, so a download takes a few hundred ms and a kill
 * can land anywhere in it. The downloader that is killed is this program
 * run again (fork and exec of "--downloader ..."): a fresh process, as a
 * restarted peer is, and ThreadSanitizer allows its threads. */
#include "testrun.h"
#include "testutil.h"

#include "core/teststep.h"
#include "download/download.h"
#include "download/storage.h"
#include "library/hashing.h"
#include "library/layout.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define CHUNK 65536u
#define GAME "game0001"
#define NFILES 3
#define BYTES_PER_MS (24 * 1024) /* the source's rate */
#define SYNC_BYTES (4 * CHUNK)   /* small batches: many syncs per download */
#define RANDOM_KILLS 50
#define MAX_FETCHES 64

/* One version of the game: its files and their bytes. */
typedef struct game {
  const char *version;
  unsigned seed_a, seed_b;
  const char *paths[NFILES];
  uint64_t sizes[NFILES];
  uint8_t *data[NFILES];
} game;

static uint8_t *pattern(uint64_t size, unsigned seed)
{
  uint8_t *p = malloc(size ? size : 1);
  uint32_t x = seed * 2654435761u + 1;
  for (uint64_t i = 0; i < size; i++) {
    x = x * 1103515245u + 12345u;
    p[i] = (uint8_t)(x >> 16);
  }
  return p;
}

/* a.bin and sub/b.bin (seeds chosen per version), and version.ini. */
static game make_game(const char *version, unsigned seed_a, unsigned seed_b)
{
  game g = {.version = version, .seed_a = seed_a, .seed_b = seed_b,
            .paths = {"a.bin", "sub/b.bin", "version.ini"},
            .sizes = {40 * CHUNK + 17, 24 * CHUNK, strlen(version) + 1}};
  g.data[0] = pattern(g.sizes[0], seed_a);
  g.data[1] = pattern(g.sizes[1], seed_b);
  g.data[2] = (uint8_t *)malloc(g.sizes[2] + 1);
  snprintf((char *)g.data[2], g.sizes[2] + 1, "%s\n", version);
  return g;
}

static void free_game(game *g)
{
  for (int i = 0; i < NFILES; i++)
    free(g->data[i]);
}

static uint64_t game_total(const game *g)
{
  return g->sizes[0] + g->sizes[1] + g->sizes[2];
}

static ls_msg manifest_of(const game *g)
{
  ls_msg m = {.type = LS_MSG_GAME_FILES};
  ls_msg_game_files *gf = &m.game_files;
  gf->id = strdup(GAME);
  gf->version = strdup(g->version);
  gf->chunk_size = CHUNK;
  gf->file_count = NFILES;
  gf->files = calloc(NFILES, sizeof *gf->files);
  for (int i = 0; i < NFILES; i++) {
    ls_msg_file_entry *e = &gf->files[i];
    e->path = strdup(g->paths[i]);
    e->size = g->sizes[i];
    e->chunk_count = (size_t)ls_proto_chunk_count(g->sizes[i], CHUNK);
    e->sha256 = malloc(e->chunk_count * LS_SHA256_LEN + 1);
    for (size_t c = 0; c < e->chunk_count; c++) {
      uint64_t off = c * CHUNK, len = g->sizes[i] - off < CHUNK ? g->sizes[i] - off : CHUNK;
      ls_sha256(g->data[i] + off, len, e->sha256 + c * LS_SHA256_LEN);
    }
  }
  return m;
}

/* ---- one download against the in-process source ---------------------------- */

typedef struct fake {
  ls_fetch *fetch;
  const uint8_t *data;
  uint32_t len, sent;
  bool live;
} fake;

typedef struct run {
  uv_loop_t loop;
  uv_timer_t timer;
  const game *g;
  ls_download *d;
  fake fetches[MAX_FETCHES];
  int end_err;
  bool ended;
  ls_download_result result;
  ls_storage_resume resume;
  size_t chunks;
  int *chunk_source;          /* copied at the end */
  ls_download_chunk_info bad; /* a verification: the first bad chunk */
  char bad_path[64];
  uint64_t pause_at;          /* pause once this many bytes are in (0: never) */
  uint64_t cancel_at;
} run;

static int fake_start(void *user, ls_fetch *fetch, const ls_fetch_request *req, void **handle,
                      ls_diag *diag)
{
  run *r = user;
  (void)diag;
  int file = 0;
  while (file < NFILES && strcmp(r->g->paths[file], req->path) != 0)
    file++;
  assert_true(file < NFILES);
  for (int i = 0; i < MAX_FETCHES; i++) {
    if (r->fetches[i].live)
      continue;
    r->fetches[i] = (fake){fetch, r->g->data[file] + req->offset, req->length, 0, true};
    *handle = &r->fetches[i];
    return LS_OK;
  }
  return LS_EBUSY;
}

static void fake_stop(void *user, void *handle)
{
  (void)user;
  ((fake *)handle)->live = false;
}

static void on_begin(void *user, int err, const char *diag)
{
  run *r = user;
  if (err == LS_OK)
    r->resume = ls_download_get_resume(r->d);
  else
    fprintf(stderr, "begin failed: %s\n", diag);
}

static void on_end(void *user, int err, const char *diag)
{
  run *r = user;
  if (err != LS_OK && err != LS_EPAUSED && err != LS_ECANCELED)
    fprintf(stderr, "download ended: %s: %s\n", ls_error_name(err), diag);
  r->end_err = err;
  r->ended = true;
  r->result = ls_download_get_result(r->d);
  r->chunks = ls_download_chunk_count(r->d);
  r->chunk_source = calloc(r->chunks + 1, sizeof *r->chunk_source);
  for (size_t k = 0; k < r->chunks; k++) {
    r->chunk_source[k] = ls_download_chunk_source(r->d, k);
    ls_download_chunk_info c = ls_download_get_chunk(r->d, k);
    if (!c.done && !r->bad.path) {
      r->bad = c;
      snprintf(r->bad_path, sizeof r->bad_path, "%s", c.path);
    }
  }
  uv_timer_stop(&r->timer);
  uv_close((uv_handle_t *)&r->timer, NULL);
}

static const ls_download_ops ops = {
  .start_fetch = fake_start, .stop_fetch = fake_stop, .on_begin = on_begin, .on_end = on_end,
};

/* Every ms: BYTES_PER_MS of the oldest fetches, then pause or cancel when
 * asked to. */
static void serve(uv_timer_t *t)
{
  run *r = t->data;
  size_t budget = BYTES_PER_MS;
  for (int i = 0; i < MAX_FETCHES && budget > 0 && r->d; i++) {
    fake *f = &r->fetches[i];
    if (!f->live)
      continue;
    uint32_t n = f->len - f->sent < budget ? f->len - f->sent : (uint32_t)budget;
    if (n && ls_fetch_data(f->fetch, f->data + f->sent, n) != LS_OK)
      continue; /* stopped during the call */
    f->sent += n;
    budget -= n;
    if (f->sent == f->len) {
      f->live = false;
      ls_fetch_done(f->fetch, LS_OK, "");
    }
  }
  uint64_t bytes = r->d && !r->ended ? ls_download_get_progress(r->d).bytes : 0;
  if (r->pause_at && bytes >= r->pause_at) {
    r->pause_at = 0;
    ls_download_pause(r->d);
  }
  if (r->cancel_at && bytes >= r->cancel_at) {
    r->cancel_at = 0;
    ls_download_cancel(r->d);
  }
}

typedef struct run_opts {
  bool verify_only;
  uint64_t pause_at, cancel_at;
} run_opts;

/* Downloads (or verifies) g into dir and returns how it ended; *out (may
 * be NULL) gets the run, chunk_source included (free it). */
static int download(const char *dir, const game *g, run_opts o, run *out)
{
  run *r = calloc(1, sizeof *r);
  r->g = g;
  r->pause_at = o.pause_at;
  r->cancel_at = o.cancel_at;
  uv_loop_init(&r->loop);
  uv_timer_init(&r->loop, &r->timer);
  r->timer.data = r;
  ls_msg m = manifest_of(g);
  const char *names[] = {"source0"};
  ls_download_config c = {
    .loop = &r->loop, .game_dir = dir, .id = GAME, .manifest = &m, .sources = names,
    .source_count = o.verify_only ? 0 : 1, .verify_only = o.verify_only, .ops = &ops,
    .user = r, .sync_bytes = SYNC_BYTES, .sync_ms = 50,
  };
  ls_diag diag;
  assert_int_equal(ls_download_start(&c, &r->d, &diag), LS_OK);
  uv_timer_start(&r->timer, serve, 1, 1);
  uv_run(&r->loop, UV_RUN_DEFAULT);
  assert_true(r->ended);
  assert_int_equal(uv_loop_close(&r->loop), 0);
  int err = r->end_err;
  if (out)
    *out = *r;
  else
    free(r->chunk_source);
  free(r);
  return err;
}

/* ---- checks ------------------------------------------------------------------ */

static void assert_game_is(const char *dir, const game *g)
{
  for (int i = 0; i < NFILES; i++) {
    size_t len = 0;
    char *got = t_read(t_path("%s/%s/%s", dir, GAME, g->paths[i]), &len);
    if (!got || len != g->sizes[i] || memcmp(got, g->data[i], len) != 0)
      fail_msg("%s/%s/%s differs from version %s", dir, GAME, g->paths[i], g->version);
    free(got);
  }
  assert_false(t_exists(t_path("%s/%s/%s", dir, GAME, LS_DOWNLOAD_JOURNAL)));
  assert_false(t_exists(t_path("%s/%s/%s", dir, GAME, LS_CHUNK_MAP)));
}

/* What recovery found; *durable gets a paused download's durable bytes. */
static ls_storage_recovery recover(const char *dir, uint64_t *durable)
{
  ls_storage_recovery done = LS_RECOVERY_NONE;
  ls_storage_paused paused = {.bytes = 0};
  ls_diag diag = {""};
  if (ls_storage_recover(dir, GAME, &done, &paused, &diag) != LS_OK)
    fail_msg("recovery: %s", diag.text);
  *durable = done == LS_RECOVERY_PAUSED ? paused.bytes : 0;
  return done;
}

typedef struct crash_stats {
  int trials, killed, paused_with_data, completed_by_recovery;
  uint64_t durable, fetched_after;
} crash_stats;

/* After a crash: recovery, then (unless the commit had happened) the
 * resume, which must fetch at most the bytes that were not durable. */
static void resume_and_check(const char *dir, const game *g, crash_stats *s, const char *label)
{
  uint64_t durable = 0;
  ls_storage_recovery done = recover(dir, &durable);
  s->trials++;
  if (done == LS_RECOVERY_COMPLETED || (done == LS_RECOVERY_NONE &&
                                        t_exists(t_path("%s/%s/version.ini", dir, GAME)))) {
    s->completed_by_recovery++;
    assert_game_is(dir, g);
    return;
  }
  s->paused_with_data += durable > 0;
  s->durable += durable;
  run r;
  if (download(dir, g, (run_opts){0}, &r) != LS_OK)
    fail_msg("%s: the resumed download failed", label);
  uint64_t total = game_total(g);
  if (r.result.bytes_fetched > total - durable)
    fail_msg("%s: fetched %llu bytes after the restart, but only %llu were not durable", label,
             (unsigned long long)r.result.bytes_fetched, (unsigned long long)(total - durable));
  assert_int_equal(r.result.bytes_fetched + r.result.bytes_reused, total);
  s->fetched_after += r.result.bytes_fetched;
  free(r.chunk_source);
  assert_game_is(dir, g);
}

/* Runs a download in a child that dies at `step` (NULL: none) or is
 * killed from here after delay_us (< 0: not). True when it was killed. */
static bool crash_trial(const char *dir, const game *g, const char *step, long delay_us,
                        run_opts o)
{
  char seed_a[16], seed_b[16], cancel_at[32];
  snprintf(seed_a, sizeof seed_a, "%u", g->seed_a);
  snprintf(seed_b, sizeof seed_b, "%u", g->seed_b);
  snprintf(cancel_at, sizeof cancel_at, "%llu", (unsigned long long)o.cancel_at);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    if (step)
      setenv("LS_TEST_CRASH_AT", step, 1);
    execl("/proc/self/exe", "test_resume", "--downloader", dir, g->version, seed_a, seed_b,
          cancel_at, (char *)NULL);
    _exit(127);
  }
  return t_wait_child(pid, delay_us, step ? step : "the downloader");
}

/* A fresh game directory under base (one t_tempdir per test). */
static const char *trial_dir(const char *base, int i)
{
  static char path[16][4096];
  char *p = path[i % 16];
  snprintf(p, sizeof path[0], "%s/trial%d", base, i);
  t_mkdir(base, p + strlen(base) + 1);
  return p;
}

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* How long a whole download takes in a child, start-up included: the
 * span in which kills are aimed (a sanitizer makes it several times
 * longer). */
static long child_download_us(const char *base, const game *g)
{
  const char *dir = trial_dir(base, 999);
  double t0 = now_s();
  assert_false(crash_trial(dir, g, NULL, -1, (run_opts){0}));
  long us = (long)((now_s() - t0) * 1e6);
  assert_game_is(dir, g);
  t_rmtree(dir);
  return us;
}

/* ---- tests ---------------------------------------------------------------------- */

static void killed_at_random_moments_resumes_byte_exact(void **state)
{
  (void)state;
  game g = make_game("1.0", 1, 2);
  const char *base = t_tempdir();
  long whole_us = child_download_us(base, &g);
  const char *env = getenv("LS_TEST_SEED"); /* to replay a failure */
  unsigned seed = env ? (unsigned)strtoul(env, NULL, 0) : (unsigned)time(NULL);
  srand(seed);
  crash_stats s = {0};
  for (int i = 0; i < RANDOM_KILLS; i++) {
    const char *trial = trial_dir(base, i);
    long delay = (long)((double)rand() / RAND_MAX * (double)whole_us * 1.1);
    char label[64];
    snprintf(label, sizeof label, "kill %d after %ld us (seed %u)", i, delay, seed);
    s.killed += crash_trial(trial, &g, NULL, delay, (run_opts){0});
    resume_and_check(trial, &g, &s, label);
    t_rmtree(trial);
  }
  printf("random kills: %d trials (seed %u, a download takes %ld us), %d killed, %d resumed "
         "with durable data (%llu bytes in all), %d completed by recovery; fetched after the "
         "restarts %llu bytes\n",
         s.trials, seed, whole_us, s.killed, s.paused_with_data, (unsigned long long)s.durable,
         s.completed_by_recovery, (unsigned long long)s.fetched_after);
  assert_true(s.killed >= RANDOM_KILLS / 2);
  assert_true(s.paused_with_data > 0); /* the chunk map did keep data */
  free_game(&g);
}

#ifdef LS_TEST_HOOKS
typedef struct step_list {
  char names[32][64];
  int count;
} step_list;

static void record_step(void *user, const char *step)
{
  step_list *l = user;
  for (int i = 0; i < l->count; i++)
    if (strcmp(l->names[i], step) == 0)
      return;
  if (l->count < 32)
    snprintf(l->names[l->count++], 64, "%s", step);
}

/* The steps of one download, and of one cancel, as the hook reports them. */
static step_list steps_of(const game *g, run_opts o)
{
  step_list l = {.count = 0};
  ls_test_set_step_hook(record_step, &l);
  download(t_tempdir(), g, o, NULL);
  ls_test_set_step_hook(NULL, NULL);
  return l;
}
#endif

static void killed_at_every_step_resumes_byte_exact(void **state)
{
  (void)state;
#ifndef LS_TEST_HOOKS
  ls_skip("step boundaries need a test build (LS_TEST_HOOKS)");
#else
  game g = make_game("1.0", 3, 4);
  step_list l = steps_of(&g, (run_opts){0});
  const char *expected[] = {"download:journal-written", "download:map-written",
                            "download:sentinel-parked", "download:payload-created",
                            "download:data-synced",     "download:map-synced",
                            "download:payload-synced",  "download:committed",
                            "download:stale-removed",   "download:map-dropped"};
  for (size_t e = 0; e < sizeof expected / sizeof expected[0]; e++) {
    bool seen = false;
    for (int i = 0; i < l.count; i++)
      seen |= strcmp(l.names[i], expected[e]) == 0;
    if (!seen)
      fail_msg("step %s never happened", expected[e]);
  }
  crash_stats s = {0};
  const char *base = t_tempdir();
  for (int i = 0; i < l.count; i++) {
    const char *dir = trial_dir(base, i);
    if (!crash_trial(dir, &g, l.names[i], -1, (run_opts){0}))
      fail_msg("the downloader did not die at %s", l.names[i]);
    resume_and_check(dir, &g, &s, l.names[i]);
  }
  printf("step kills: %d steps, %d resumed with durable data, %d completed by recovery\n",
         s.trials, s.paused_with_data, s.completed_by_recovery);
  free_game(&g);
#endif
}

/* A cancel killed mid-discard: recovery finishes the discard, the root is
 * gone (a fresh download), never resumed. */
static void killed_during_a_cancel_is_discarded(void **state)
{
  (void)state;
#ifndef LS_TEST_HOOKS
  ls_skip("step boundaries need a test build (LS_TEST_HOOKS)");
#else
  game g = make_game("1.0", 5, 6);
  run_opts cancel = {.cancel_at = game_total(&g) / 2};
  step_list l = steps_of(&g, cancel);
  int discards = 0;
  const char *base = t_tempdir();
  for (int i = 0; i < l.count; i++) {
    if (strncmp(l.names[i], "discard:", 8) != 0)
      continue;
    discards++;
    const char *dir = trial_dir(base, i);
    if (!crash_trial(dir, &g, l.names[i], -1, cancel))
      fail_msg("the downloader did not die at %s", l.names[i]);
    uint64_t durable = 0;
    ls_storage_recovery done = recover(dir, &durable);
    assert_true(done == LS_RECOVERY_DISCARDED || done == LS_RECOVERY_NONE);
    assert_false(t_exists(t_path("%s/%s", dir, GAME)));
  }
  assert_int_equal(discards, 2);
  free_game(&g);
#endif
}

/* Zeroes every chunk the map does not mark, as a power loss loses the
 * writes that were not synced; returns how many bytes that hit. */
static uint64_t lose_unsynced_writes(const char *dir, const game *g, uint8_t *durable_bits)
{
  size_t jlen = 0, mlen = 0;
  char *text = t_read(t_path("%s/%s/%s", dir, GAME, LS_DOWNLOAD_JOURNAL), &jlen);
  char *map = t_read(t_path("%s/%s/%s", dir, GAME, LS_CHUNK_MAP), &mlen);
  assert_non_null(text);
  assert_non_null(map);
  ls_storage_journal j;
  assert_int_equal(ls_storage_journal_parse(text, jlen, &j, NULL), LS_OK);
  assert_int_equal(ls_chunk_map_decode((uint8_t *)map, mlen, j.digest, j.chunk_count,
                                       durable_bits, NULL),
                   LS_OK);
  uint64_t lost = 0;
  uint8_t zeros[CHUNK] = {0};
  for (int i = 0, k = 0; i < NFILES; i++) {
    uint64_t n = ls_proto_chunk_count(g->sizes[i], CHUNK);
    int fd = open(t_path("%s/%s/%s", dir, GAME, g->paths[i]), O_WRONLY);
    for (uint64_t c = 0; c < n; c++, k++) {
      uint64_t off = c * CHUNK, len = g->sizes[i] - off < CHUNK ? g->sizes[i] - off : CHUNK;
      if (ls_chunk_bit(durable_bits, (size_t)k) || fd < 0)
        continue;
      assert_int_equal(pwrite(fd, zeros, len, (off_t)off), (ssize_t)len);
      lost += len;
    }
    if (fd >= 0)
      close(fd);
  }
  ls_storage_journal_free(&j);
  free(text);
  free(map);
  return lost;
}

static void power_loss_refetches_exactly_the_unsynced_chunks(void **state)
{
  (void)state;
  game g = make_game("1.0", 7, 8);
  const char *base = t_tempdir();
  long whole_us = child_download_us(base, &g);
  int checked = 0;
  for (int i = 1; i <= 19; i++) { /* kills at 5%, 10%, ... 95% of a whole download */
    const char *dir = trial_dir(base, i);
    if (!crash_trial(dir, &g, NULL, whole_us * i / 20, (run_opts){0}) ||
        !t_exists(t_path("%s/%s/%s", dir, GAME, LS_CHUNK_MAP)) ||
        t_exists(t_path("%s/%s/%s", dir, GAME, LS_VERSION_FILE)))
      continue; /* it finished, died before the map, or died after the commit
                   (which syncs every file first): nothing to lose */
    uint8_t durable_bits[64] = {0};
    lose_unsynced_writes(dir, &g, durable_bits);
    uint64_t durable = 0;
    assert_int_equal(recover(dir, &durable), LS_RECOVERY_PAUSED);
    run r;
    assert_int_equal(download(dir, &g, (run_opts){0}, &r), LS_OK);
    assert_int_equal(r.result.bytes_fetched, game_total(&g) - durable);
    for (size_t k = 0; k < r.chunks; k++) /* fetched exactly the chunks not marked */
      assert_int_equal(r.chunk_source[k] >= 0, !ls_chunk_bit(durable_bits, k));
    free(r.chunk_source);
    assert_game_is(dir, &g);
    checked++;
  }
  printf("power loss: %d kills checked\n", checked);
  assert_true(checked >= 3);
  free_game(&g);
}

static void pause_keeps_and_resume_fetches_only_the_rest(void **state)
{
  (void)state;
  game g = make_game("1.0", 9, 10);
  const char *dir = t_tempdir();
  assert_int_equal(download(dir, &g, (run_opts){.pause_at = game_total(&g) / 2}, NULL),
                   LS_EPAUSED);
  assert_false(t_exists(t_path("%s/%s/version.ini", dir, GAME)));
  uint64_t durable = 0;
  assert_int_equal(recover(dir, &durable), LS_RECOVERY_PAUSED);
  assert_true(durable >= game_total(&g) / 2); /* the pause synced everything written */
  run r;
  assert_int_equal(download(dir, &g, (run_opts){0}, &r), LS_OK);
  assert_true(r.resume.resumed);
  assert_false(r.resume.manifest_changed);
  assert_int_equal(r.result.bytes_fetched, game_total(&g) - durable);
  assert_int_equal(r.result.bytes_reused, durable);
  free(r.chunk_source);
  assert_game_is(dir, &g);
  free_game(&g);
}

/* Paused under one file list, resumed under another: the chunks that still
 * match are kept, the others dropped, and the begin says so. */
static void a_changed_manifest_keeps_what_still_matches(void **state)
{
  (void)state;
  game v1 = make_game("1.0", 11, 12);
  game v2 = make_game("2.0", 11, 13); /* a.bin unchanged, sub/b.bin new */
  const char *dir = t_tempdir();
  assert_int_equal(download(dir, &v1, (run_opts){.pause_at = game_total(&v1) * 9 / 10}, NULL),
                   LS_EPAUSED);
  run r;
  assert_int_equal(download(dir, &v2, (run_opts){0}, &r), LS_OK);
  assert_true(r.resume.resumed);
  assert_true(r.resume.manifest_changed);
  assert_true(r.resume.kept_chunks > 0);
  assert_true(r.resume.dropped_chunks > 0); /* b.bin's chunks of 1.0 */
  assert_true(r.result.bytes_fetched >= v2.sizes[1]);
  free(r.chunk_source);
  assert_game_is(dir, &v2);
  free_game(&v1);
  free_game(&v2);
}

/* An update that leaves a.bin unchanged moves only b.bin and version.ini. */
static void an_update_fetches_only_the_changed_file(void **state)
{
  (void)state;
  game v1 = make_game("1.0", 14, 15);
  game v2 = make_game("2.0", 14, 16);
  const char *dir = t_tempdir();
  assert_int_equal(download(dir, &v1, (run_opts){0}, NULL), LS_OK);
  run r;
  assert_int_equal(download(dir, &v2, (run_opts){0}, &r), LS_OK);
  printf("update: fetched %llu, reused %llu bytes\n",
         (unsigned long long)r.result.bytes_fetched, (unsigned long long)r.result.bytes_reused);
  assert_int_equal(r.result.bytes_fetched, v2.sizes[1] + v2.sizes[2]);
  assert_int_equal(r.result.bytes_reused, v2.sizes[0]);
  free(r.chunk_source);
  assert_game_is(dir, &v2);
  free_game(&v1);
  free_game(&v2);
}

static void verify_finds_a_flipped_byte_and_a_missing_file(void **state)
{
  (void)state;
  game g = make_game("1.0", 17, 18);
  const char *dir = t_tempdir();
  assert_int_equal(download(dir, &g, (run_opts){0}, NULL), LS_OK);
  run r;
  assert_int_equal(download(dir, &g, (run_opts){.verify_only = true}, &r), LS_OK);
  assert_int_equal(r.result.bad_chunks, 0);
  free(r.chunk_source);
  int fd = open(t_path("%s/%s/a.bin", dir, GAME), O_RDWR);
  uint8_t b = (uint8_t)~g.data[0][5 * CHUNK + 100];
  assert_int_equal(pwrite(fd, &b, 1, 5 * CHUNK + 100), 1);
  close(fd);
  assert_int_equal(download(dir, &g, (run_opts){.verify_only = true}, &r), LS_OK);
  assert_int_equal(r.result.bad_chunks, 1);
  assert_int_equal(r.result.bad_bytes, CHUNK);
  assert_string_equal(r.bad_path, "a.bin");
  assert_int_equal(r.bad.offset, 5 * CHUNK);
  free(r.chunk_source);
  /* Repair: a download of the same version fetches that chunk (and the
   * sentinel) only. */
  assert_int_equal(download(dir, &g, (run_opts){0}, &r), LS_OK);
  assert_int_equal(r.result.bytes_fetched, CHUNK + g.sizes[2]);
  free(r.chunk_source);
  assert_game_is(dir, &g);
  assert_int_equal(unlink(t_path("%s/%s/sub/b.bin", dir, GAME)), 0);
  assert_int_equal(download(dir, &g, (run_opts){.verify_only = true}, &r), LS_OK);
  assert_int_equal(r.result.bad_chunks, 24);
  free(r.chunk_source);
  /* Nothing was written by the verifications. */
  assert_false(t_exists(t_path("%s/%s/%s", dir, GAME, LS_DOWNLOAD_JOURNAL)));
  assert_true(t_exists(t_path("%s/%s/version.ini", dir, GAME)));
  free_game(&g);
}

/* The child of crash_trial: test_resume --downloader DIR VERSION SEED_A
 * SEED_B CANCEL_AT. Exits 0 when the download ended as asked. */
static int downloader_main(char **argv)
{
  game g = make_game(argv[1], (unsigned)atoi(argv[2]), (unsigned)atoi(argv[3]));
  run_opts o = {.cancel_at = strtoull(argv[4], NULL, 10)};
  int err = download(argv[0], &g, o, NULL);
  free_game(&g);
  return err == LS_OK || err == LS_ECANCELED ? 0 : 1;
}

int main(int argc, char **argv)
{
  if (argc == 7 && strcmp(argv[1], "--downloader") == 0)
    return downloader_main(argv + 2);
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(killed_at_random_moments_resumes_byte_exact),
    cmocka_unit_test(killed_at_every_step_resumes_byte_exact),
    cmocka_unit_test(killed_during_a_cancel_is_discarded),
    cmocka_unit_test(power_loss_refetches_exactly_the_unsynced_chunks),
    cmocka_unit_test(pause_keeps_and_resume_fetches_only_the_rest),
    cmocka_unit_test(a_changed_manifest_keeps_what_still_matches),
    cmocka_unit_test(an_update_fetches_only_the_changed_file),
    cmocka_unit_test(verify_finds_a_flipped_byte_and_a_missing_file),
  };
  return ls_run_tests(tests, NULL, NULL);
}
