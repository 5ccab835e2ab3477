/* Tests the download engine's planner (download/download.h) with fake
 * sources: the test plays every source, deciding for each fetch the engine
 * starts whether it answers with the right bytes, corrupt bytes, a failure
 * or nothing at all, and when. The clock is the test's, the pool has one
 * thread and the loop runs until it is idle after every step, so every
 * decision is deterministic and no test sleeps. The storage is real: each
 * download writes a real game root, and the end state on disk is checked
 * with the engine's record of which source served which chunk. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testrun.h"

#include "testutil.h"

#include "download/download.h"
#include "library/hashing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#define CHUNK 65536u
#define DATA_CHUNKS 24
#define MAX_FETCHES 4096
#define GAME "game0001"
#define VERSION "1.0"

enum answer { GOOD, CORRUPT, FAIL, SILENT };

typedef struct fake_fetch {
  ls_fetch *fetch;
  size_t source, file;
  uint64_t offset;
  uint32_t length;
  bool stopped, answered;
} fake_fetch;

typedef struct harness {
  uv_loop_t loop;
  char *game_dir;
  uint8_t *data;               /* the payload file's content */
  ls_msg manifest;
  ls_download *d;
  uint64_t now;                /* the fake clock, ns */
  fake_fetch fetches[MAX_FETCHES];
  size_t nfetches;
  int begin_err, end_err, ends, progress_reports;
  char end_diag[LS_DIAG_MAX];
  int chunk_source[DATA_CHUNKS + 1];  /* copied at the end */
  ls_download_source_stats stats[4];
  size_t nsources;
} harness;

static const char *const file_paths[] = {"data/game.bin", "version.ini"};
static const char version_ini[] = VERSION "\n";

/* ---- the fake sources ----------------------------------------------------- */

static size_t file_index(const char *path)
{
  return strcmp(path, file_paths[0]) == 0 ? 0 : 1;
}

static int fake_start(void *user, ls_fetch *fetch, const ls_fetch_request *req, void **handle,
                      ls_diag *diag)
{
  harness *h = user;
  (void)diag;
  assert_true(h->nfetches < MAX_FETCHES);
  fake_fetch *f = &h->fetches[h->nfetches++];
  *f = (fake_fetch){.fetch = fetch, .source = req->source, .file = file_index(req->path),
                    .offset = req->offset, .length = req->length};
  *handle = f;
  return LS_OK;
}

static void fake_stop(void *user, void *handle)
{
  fake_fetch *f = handle;
  (void)user;
  assert_false(f->answered);
  assert_false(f->stopped);
  f->stopped = true;
}

static void on_begin(void *user, int err, const char *diag)
{
  (void)diag;
  ((harness *)user)->begin_err = err;
}

static void on_progress(void *user, const ls_download_progress *p)
{
  harness *h = user;
  assert_true(p->bytes <= p->total_bytes);
  h->progress_reports++;
}

static void on_end(void *user, int err, const char *diag)
{
  harness *h = user;
  h->end_err = err;
  h->ends++;
  snprintf(h->end_diag, sizeof h->end_diag, "%s", diag);
  size_t n = ls_download_chunk_count(h->d);
  assert_int_equal(n, DATA_CHUNKS + 1);
  for (size_t k = 0; k < n; k++)
    h->chunk_source[k] = ls_download_chunk_source(h->d, k);
  for (size_t s = 0; s < h->nsources; s++)
    h->stats[s] = ls_download_get_source_stats(h->d, s);
  h->d = NULL; /* freed when this returns */
}

static uint64_t fake_now(void *user)
{
  return ((harness *)user)->now;
}

static const ls_download_ops fake_ops = {
  .start_fetch = fake_start, .stop_fetch = fake_stop, .on_begin = on_begin,
  .on_progress = on_progress, .on_end = on_end, .now_ns = fake_now,
};

/* ---- the harness --------------------------------------------------------- */

static void make_manifest(harness *h)
{
  static uint8_t data[DATA_CHUNKS * CHUNK];
  for (size_t i = 0; i < sizeof data; i++)
    data[i] = (uint8_t)(i * 2654435761u >> 13);
  h->data = data;
  ls_msg_game_files *gf = &h->manifest.game_files;
  h->manifest.type = LS_MSG_GAME_FILES;
  gf->id = strdup(GAME);
  gf->version = strdup(VERSION);
  gf->chunk_size = CHUNK;
  gf->file_count = 2;
  gf->files = calloc(2, sizeof *gf->files);
  const uint8_t *content[] = {data, (const uint8_t *)version_ini};
  uint64_t sizes[] = {sizeof data, sizeof version_ini - 1};
  for (size_t i = 0; i < 2; i++) {
    ls_msg_file_entry *e = &gf->files[i];
    e->path = strdup(file_paths[i]);
    e->size = sizes[i];
    e->chunk_count = (size_t)((sizes[i] + CHUNK - 1) / CHUNK);
    e->sha256 = malloc(e->chunk_count * LS_SHA256_LEN);
    for (size_t c = 0; c < e->chunk_count; c++) {
      uint64_t off = c * CHUNK, len = sizes[i] - off < CHUNK ? sizes[i] - off : CHUNK;
      ls_sha256(content[i] + off, len, e->sha256 + c * LS_SHA256_LEN);
    }
  }
}

/* Runs the loop until the pool is idle: the engine holds no handle, so
 * uv_run returns once every hashing, writing, begin or end job is done. */
static void settle(harness *h)
{
  uv_run(&h->loop, UV_RUN_DEFAULT);
}

static harness *start(size_t sources)
{
  harness *h = calloc(1, sizeof *h);
  uv_loop_init(&h->loop);
  h->game_dir = t_tempdir();
  h->now = 1000000000ull;
  h->nsources = sources;
  make_manifest(h);
  const char *names[] = {"source0", "source1", "source2", "source3"};
  ls_download_config c = {
    .loop = &h->loop, .game_dir = h->game_dir, .id = GAME, .manifest = &h->manifest,
    .sources = names, .source_count = sources, .ops = &fake_ops, .user = h,
  };
  ls_diag diag;
  assert_int_equal(ls_download_start(&c, &h->d, &diag), LS_OK);
  assert_int_equal(h->manifest.type, LS_MSG_NONE); /* taken */
  settle(h); /* the storage begins, the first fetches go out */
  assert_int_equal(h->begin_err, LS_OK);
  return h;
}

static void finish(harness *h)
{
  settle(h);
  assert_int_equal(uv_loop_close(&h->loop), 0);
  free(h);
}

static const uint8_t *content_of(const harness *h, const fake_fetch *f)
{
  return f->file == 0 ? h->data + f->offset : (const uint8_t *)version_ini + f->offset;
}

/* Answers one fetch, then lets the pool check it. */
static void answer(harness *h, fake_fetch *f, enum answer how)
{
  assert_false(f->stopped);
  assert_false(f->answered);
  if (how == SILENT)
    return;
  h->now += 1000000; /* 1 ms later: requests started after this are younger */
  f->answered = true;
  if (how == FAIL) {
    ls_fetch_done(f->fetch, LS_EIO, "connection lost");
  } else {
    uint8_t *buf = malloc(f->length);
    memcpy(buf, content_of(h, f), f->length);
    if (how == CORRUPT)
      buf[f->length / 2] ^= 0x5a;
    size_t half = f->length / 2; /* in two pieces, as a stream delivers it */
    if (ls_fetch_data(f->fetch, buf, half) == LS_OK &&
        ls_fetch_data(f->fetch, buf + half, f->length - half) == LS_OK)
      ls_fetch_done(f->fetch, LS_OK, "ok");
    free(buf);
  }
  settle(h);
}

/* The oldest fetch of source s still waiting for an answer, or NULL. */
static fake_fetch *waiting(harness *h, size_t s)
{
  for (size_t i = 0; i < h->nfetches; i++) {
    fake_fetch *f = &h->fetches[i];
    if (f->source == s && !f->stopped && !f->answered)
      return f;
  }
  return NULL;
}

static size_t waiting_count(harness *h, size_t s)
{
  size_t n = 0;
  for (size_t i = 0; i < h->nfetches; i++)
    n += h->fetches[i].source == s && !h->fetches[i].stopped && !h->fetches[i].answered;
  return n;
}

/* The clock moves on and the engine measures its rates. */
static void tick(harness *h, unsigned ms)
{
  h->now += (uint64_t)ms * 1000000u;
  if (h->d)
    ls_download_tick(h->d);
}

/* Whether source s is fetching the chunk g asks for. */
static bool held_by(harness *h, size_t s, const fake_fetch *g)
{
  for (size_t i = 0; i < h->nfetches; i++) {
    fake_fetch *f = &h->fetches[i];
    if (f->source == s && !f->stopped && !f->answered && f->file == g->file &&
        f->offset == g->offset)
      return true;
  }
  return false;
}

static int chunks_from(const harness *h, int s)
{
  int n = 0;
  for (int k = 0; k <= DATA_CHUNKS; k++)
    n += h->chunk_source[k] == s;
  return n;
}

static bool exists(const char *path)
{
  struct stat st;
  return lstat(path, &st) == 0;
}

/* The game root holds exactly the manifest's bytes and no transient. */
static void assert_downloaded(harness *h)
{
  assert_int_equal(h->ends, 1);
  assert_int_equal(h->end_err, LS_OK);
  size_t len = 0;
  FILE *f = fopen(t_path("%s/%s/%s", h->game_dir, GAME, file_paths[0]), "rb");
  assert_non_null(f);
  uint8_t *buf = malloc(DATA_CHUNKS * CHUNK + 1);
  len = fread(buf, 1, DATA_CHUNKS * CHUNK + 1, f);
  fclose(f);
  assert_int_equal(len, DATA_CHUNKS * CHUNK);
  assert_memory_equal(buf, h->data, len);
  free(buf);
  assert_true(exists(t_path("%s/%s/version.ini", h->game_dir, GAME)));
  assert_false(exists(t_path("%s/%s/.lanspread.download", h->game_dir, GAME)));
  for (int k = 0; k <= DATA_CHUNKS; k++)
    assert_true(h->chunk_source[k] >= 0);
}

/* Nothing of a cancelled or failed fresh download is left. */
static void assert_rolled_back(harness *h, int err)
{
  assert_int_equal(h->ends, 1);
  assert_int_equal(h->end_err, err);
  assert_false(exists(t_path("%s/%s", h->game_dir, GAME)));
  for (size_t i = 0; i < h->nfetches; i++)
    assert_true(h->fetches[i].stopped || h->fetches[i].answered); /* none left running */
}

/* ---- tests ----------------------------------------------------------------- */

/* A source answering four times as often as the other: once the rates are
 * measured it holds more requests and serves most chunks. */
static void uneven_sources_share_by_rate(void **state)
{
  (void)state;
  harness *h = start(2);
  assert_int_equal(waiting_count(h, 0), LS_DOWNLOAD_MAX_INFLIGHT / 2); /* before any rate */
  assert_int_equal(waiting_count(h, 1), LS_DOWNLOAD_MAX_INFLIGHT / 2);
  size_t most_fast = 0, most_slow = 0;
  for (int round = 0; h->d && round < 400; round++) {
    fake_fetch *f;
    for (int i = 0; i < 4 && h->d && (f = waiting(h, 0)); i++)
      answer(h, f, GOOD);
    if (h->d && round % 4 == 0 && (f = waiting(h, 1)))
      answer(h, f, GOOD);
    tick(h, 250);
    if (h->d && waiting_count(h, 0) > most_fast)
      most_fast = waiting_count(h, 0);
    if (h->d && round > 8 && waiting_count(h, 1) > most_slow)
      most_slow = waiting_count(h, 1);
  }
  assert_downloaded(h);
  assert_true(chunks_from(h, 0) > 3 * chunks_from(h, 1));
  assert_true(chunks_from(h, 1) >= 1);
  assert_true(most_fast > most_slow); /* the fast one was given more in flight */
  assert_true(h->stats[0].bytes > h->stats[1].bytes);
  assert_true(h->progress_reports > 0);
  finish(h);
}

/* One source goes silent while it holds chunks: once the queue is empty
 * the other duplicates them (end game), the first copy wins, the silent
 * copies are stopped, and the download ends without waiting for it. */
static void silent_source_at_the_end_is_overtaken(void **state)
{
  (void)state;
  harness *h = start(2);
  size_t held = waiting_count(h, 1);
  assert_true(held > 0);
  fake_fetch *f;
  while (h->d && (f = waiting(h, 0)))
    answer(h, f, GOOD); /* source 1 never answers */
  assert_downloaded(h);
  assert_int_equal(chunks_from(h, 1), 0);
  assert_int_equal(chunks_from(h, 0), DATA_CHUNKS + 1);
  size_t stopped = 0;
  for (size_t i = 0; i < h->nfetches; i++)
    stopped += h->fetches[i].source == 1 && h->fetches[i].stopped;
  assert_int_equal(stopped, held);
  assert_false(h->stats[1].dropped); /* silence is not a failure */
  finish(h);
}

/* A source that sends nothing for LS_DOWNLOAD_STALL_SECONDS loses its
 * chunks to the others and is dropped; a slow one that sends a byte now
 * and then is not; a lone silent source ends the download, kept for a
 * resume, with the reason. */
static void stalled_fetches_fail(void **state)
{
  (void)state;
  harness *h = start(2);
  size_t held = waiting_count(h, 1);
  assert_true(held >= LS_DOWNLOAD_MAX_SOURCE_FAILURES);
  answer(h, waiting(h, 0), GOOD);
  tick(h, (LS_DOWNLOAD_STALL_SECONDS - 1) * 1000);
  assert_int_equal(waiting_count(h, 1), held); /* not yet */
  /* Source 0 trickles: one byte of each of its fetches before the deadline. */
  size_t first = h->nfetches;
  for (size_t i = 0; i < h->nfetches; i++) {
    fake_fetch *f = &h->fetches[i];
    if (f->source == 0 && !f->stopped && !f->answered) {
      assert_int_equal(ls_fetch_data(f->fetch, content_of(h, f), 1), LS_OK);
      f->file |= 2; /* one byte is in */
      first = i < first ? i : first;
    }
  }
  tick(h, 2000);
  settle(h);
  assert_int_equal(waiting_count(h, 1), 0); /* source 1's fetches failed */
  size_t stopped = 0;
  for (size_t i = 0; i < h->nfetches; i++)
    stopped += h->fetches[i].source == 1 && h->fetches[i].stopped;
  assert_int_equal(stopped, held);
  assert_false(h->fetches[first].stopped); /* a byte 2 s ago: alive */
  fake_fetch *f;
  while (h->d && (f = waiting(h, 0))) {
    if (f->file & 2) { /* the rest of a trickled chunk */
      f->file &= 1;
      f->answered = true;
      ls_fetch_data(f->fetch, content_of(h, f) + 1, f->length - 1);
      ls_fetch_done(f->fetch, LS_OK, "ok");
      settle(h);
    } else {
      answer(h, f, GOOD);
    }
  }
  assert_downloaded(h);
  assert_true(h->stats[1].dropped);
  assert_false(h->stats[0].dropped);
  assert_int_equal(chunks_from(h, 0), DATA_CHUNKS + 1);
  finish(h);

  h = start(1);
  tick(h, (LS_DOWNLOAD_STALL_SECONDS + 1) * 1000);
  settle(h);
  assert_int_equal(h->ends, 1);
  assert_int_equal(h->end_err, LS_ENOPEER);
  assert_non_null(strstr(h->end_diag, "no data for 15 s"));
  assert_true(exists(t_path("%s/%s/.lanspread.download", h->game_dir, GAME)));
  finish(h);
}

/* A slow source at the end: its last chunk is duplicated by an idle source
 * and the copy that arrives first wins, whichever it is. */
static void end_game_first_copy_wins(void **state)
{
  (void)state;
  harness *h = start(2);
  /* Source 1 answers one chunk; source 0 every chunk source 1 does not
   * hold, until only source 1's are left. */
  answer(h, waiting(h, 1), GOOD);
  for (bool more = true; more;) {
    more = false;
    for (size_t i = 0; i < h->nfetches; i++) {
      fake_fetch *g = &h->fetches[i];
      if (g->source != 0 || g->stopped || g->answered || held_by(h, 1, g))
        continue;
      answer(h, g, GOOD);
      more = true;
    }
  }
  /* Now source 0 duplicates what source 1 still holds; source 1 answers
   * first this time. */
  fake_fetch *slow = waiting(h, 1);
  assert_non_null(slow);
  fake_fetch *dup = NULL;
  for (size_t i = 0; i < h->nfetches; i++)
    if (h->fetches[i].source == 0 && !h->fetches[i].answered && !h->fetches[i].stopped &&
        held_by(h, 1, &h->fetches[i]) && h->fetches[i].offset == slow->offset &&
        h->fetches[i].file == slow->file)
      dup = &h->fetches[i];
  assert_non_null(dup); /* the oldest chunk in flight at source 1 */
  answer(h, slow, GOOD);
  assert_true(dup->stopped); /* the losing copy is stopped at once */
  fake_fetch *f;
  while (h->d && ((f = waiting(h, 0)) || (f = waiting(h, 1))))
    answer(h, f, GOOD);
  assert_downloaded(h);
  assert_true(chunks_from(h, 1) >= 2);
  finish(h);
}

/* A source sending corrupt data: each chunk fails its hash, goes back to
 * the queue for the other source, and after three failures the source is
 * dropped. */
static void corrupt_source_is_dropped(void **state)
{
  (void)state;
  harness *h = start(2);
  fake_fetch *f;
  int corrupt = 0;
  while (h->d && ((f = waiting(h, 1)) || (f = waiting(h, 0)))) {
    bool bad = f->source == 1;
    corrupt += bad;
    answer(h, f, bad ? CORRUPT : GOOD);
  }
  assert_downloaded(h);
  assert_int_equal(corrupt, LS_DOWNLOAD_MAX_SOURCE_FAILURES);
  assert_true(h->stats[1].dropped);
  assert_int_equal(h->stats[1].failures, LS_DOWNLOAD_MAX_SOURCE_FAILURES);
  assert_int_equal(h->stats[1].bytes, 0);
  assert_int_equal(chunks_from(h, 0), DATA_CHUNKS + 1);
  finish(h);
}

/* A failing source is dropped and the other finishes the download. */
static void failing_source_is_dropped(void **state)
{
  (void)state;
  harness *h = start(2);
  fake_fetch *f;
  while (h->d && ((f = waiting(h, 1)) || (f = waiting(h, 0))))
    answer(h, f, f->source == 1 ? FAIL : GOOD);
  assert_downloaded(h);
  assert_true(h->stats[1].dropped);
  assert_int_equal(chunks_from(h, 0), DATA_CHUNKS + 1);
  finish(h);
}

/* What a hostile source can send the engine: more bytes than it was asked
 * for, an answer that ends short, and the right length with wrong bytes.
 * Each counts against it; it is dropped after three, nothing it sent is
 * written, and the honest source finishes the download byte for byte. */
static void hostile_answers_count_against_their_source(void **state)
{
  (void)state;
  harness *h = start(2);
  static uint8_t junk[2 * CHUNK];
  int sent = 0;
  fake_fetch *f;
  while (h->d && ((f = waiting(h, 1)) || (f = waiting(h, 0)))) {
    if (f->source == 0) {
      answer(h, f, GOOD);
      continue;
    }
    if (sent % 3 == 0) { /* too many bytes: stopped during the call */
      assert_int_equal(ls_fetch_data(f->fetch, junk, f->length + 1), LS_ECANCELED);
      assert_true(f->stopped);
    } else {
      f->answered = true;
      size_t len = sent % 3 == 1 ? f->length / 2 : f->length; /* short; or wrong bytes */
      assert_int_equal(ls_fetch_data(f->fetch, junk, len), LS_OK);
      ls_fetch_done(f->fetch, LS_OK, "ok");
    }
    sent++;
    settle(h);
  }
  assert_downloaded(h);
  assert_true(h->stats[1].dropped);
  assert_int_equal(h->stats[1].failures, LS_DOWNLOAD_MAX_SOURCE_FAILURES);
  assert_int_equal(sent, LS_DOWNLOAD_MAX_SOURCE_FAILURES); /* nothing more was asked of it */
  assert_int_equal(chunks_from(h, 1), 0);
  finish(h);
}

/* The only source fails: the download ends with LS_ENOPEER, says why the
 * last source was dropped, and is kept for a resume (journal and chunk
 * map, no version.ini); only corrupt data discards it. */
static void last_source_failing_fails_the_download(void **state)
{
  (void)state;
  harness *h = start(1);
  answer(h, waiting(h, 0), GOOD);
  fake_fetch *f;
  while (h->d && (f = waiting(h, 0)))
    answer(h, f, FAIL);
  assert_int_equal(h->ends, 1);
  assert_int_equal(h->end_err, LS_ENOPEER);
  assert_true(exists(t_path("%s/%s/.lanspread.download", h->game_dir, GAME)));
  assert_true(exists(t_path("%s/%s/.lanspread.chunks", h->game_dir, GAME)));
  assert_false(exists(t_path("%s/%s/version.ini", h->game_dir, GAME)));
  assert_non_null(strstr(h->end_diag, "connection lost"));
  finish(h);

  h = start(1);
  while (h->d && (f = waiting(h, 0)))
    answer(h, f, CORRUPT);
  assert_rolled_back(h, LS_ECORRUPT);
  assert_non_null(strstr(h->end_diag, "SHA-256"));
  finish(h);
}

/* Cancel at every point: before the storage began, after 0, 1, ... all but
 * one chunk, and with a silent source holding requests. The end comes at
 * once (no source is waited for), every fetch is stopped, the root is
 * gone. */
static void cancel_at_any_point(void **state)
{
  (void)state;
  for (int served = -1; served <= DATA_CHUNKS; served++) {
    harness *h;
    if (served < 0) {
      h = calloc(1, sizeof *h);
      uv_loop_init(&h->loop);
      h->game_dir = t_tempdir();
      h->nsources = 2;
      make_manifest(h);
      const char *names[] = {"a", "b"};
      ls_download_config c = {.loop = &h->loop, .game_dir = h->game_dir, .id = GAME,
                              .manifest = &h->manifest, .sources = names, .source_count = 2,
                              .ops = &fake_ops, .user = h};
      assert_int_equal(ls_download_start(&c, &h->d, NULL), LS_OK);
      ls_download_cancel(h->d); /* the storage has not begun yet */
    } else {
      h = start(2);
      for (int i = 0; i < served; i++)
        answer(h, waiting(h, (size_t)i % 2) ? waiting(h, (size_t)i % 2) : waiting(h, 0), GOOD);
      assert_non_null(h->d);
      assert_false(ls_download_is_ending(h->d));
      ls_download_cancel(h->d);
      assert_true(h->d == NULL || ls_download_is_ending(h->d));
    }
    settle(h);
    assert_rolled_back(h, LS_ECANCELED);
    finish(h);
  }
}

/* Stopping the program: fetches stop, no callback, the journal stays for
 * startup recovery. */
static void abandon_keeps_the_journal(void **state)
{
  (void)state;
  harness *h = start(2);
  answer(h, waiting(h, 0), GOOD);
  ls_download_abandon(h->d);
  settle(h);
  assert_int_equal(h->ends, 0);
  for (size_t i = 0; i < h->nfetches; i++)
    assert_true(h->fetches[i].stopped || h->fetches[i].answered);
  assert_true(exists(t_path("%s/%s/.lanspread.download", h->game_dir, GAME)));
  finish(h);
}

int main(void)
{
  /* One pool thread: check jobs finish in the order they were queued. */
  setenv("UV_THREADPOOL_SIZE", "1", 1);
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(uneven_sources_share_by_rate),
    cmocka_unit_test(silent_source_at_the_end_is_overtaken),
    cmocka_unit_test(stalled_fetches_fail),
    cmocka_unit_test(end_game_first_copy_wins),
    cmocka_unit_test(corrupt_source_is_dropped),
    cmocka_unit_test(failing_source_is_dropped),
    cmocka_unit_test(hostile_answers_count_against_their_source),
    cmocka_unit_test(last_source_failing_fails_the_download),
    cmocka_unit_test(cancel_at_any_point),
    cmocka_unit_test(abandon_keeps_the_journal),
  };
  return ls_run_tests(tests, NULL, NULL);
}
