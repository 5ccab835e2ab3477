/* Owns one download (download/download.h): its chunk table, the sources
 * and what each has done, the fetches in flight, the pool jobs that hash
 * and write chunks, begin, commit and roll back the storage, the rates,
 * and the end. Everything here runs on the loop thread except the bodies
 * of the pool jobs, which touch only their own job and the storage. */
#include "download/download.h"

#include "core/error.h"
#include "download/storage.h"
#include "library/hashing.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A chunk is probed (its bytes on disk read and hashed) before it is
 * fetched when its file was on disk already. */
enum chunk_state { CH_TODO, CH_PROBE, CH_PROBING, CH_FETCHING, CH_CHECKING, CH_DONE };
enum phase { PH_PREPARING, PH_RUNNING, PH_ENDING };

typedef struct chunk {
  uint32_t file;
  uint64_t offset;
  uint32_t len;
  const uint8_t *hash;  /* into the manifest */
  uint8_t state, copies, attempts;
  int8_t first_src;     /* source of the oldest copy in flight */
  int8_t failed_src;    /* last source that failed it, or -1 */
  int8_t done_src;      /* source whose copy was written, or -1 */
  uint64_t started_ns;
} chunk;

typedef struct source {
  char *name;
  unsigned inflight, failures;
  bool dropped;
  uint64_t bytes, rate_bytes; /* verified bytes from it; at the last tick */
  double rate;                /* smoothed bytes per second */
} source;

struct ls_fetch {
  ls_download *d;
  int src;
  uint32_t chunk;
  uint8_t *buf;
  size_t got;
  void *handle;         /* the owner's */
  uint64_t last_ns;     /* started, or its last bytes arrived */
  ls_fetch *next;
};

/* Pool jobs: begin the storage, check (hash + write) a fetched chunk,
 * probe a chunk on disk, sync (make written chunks durable), end (commit,
 * roll back, or close a kept download). */
enum job_kind { JOB_BEGIN, JOB_CHECK, JOB_PROBE, JOB_SYNC, JOB_END };

typedef struct job {
  uv_work_t work;
  enum job_kind kind;
  ls_download *d;
  uint32_t chunk;       /* check and probe jobs: the chunk, its bytes and source */
  uint8_t *buf;         /* sync jobs: the bitmap being made durable */
  int src;
  int rc;
  bool hash_ok;         /* probe jobs: the bytes on disk match */
  ls_diag diag;
} job;

struct ls_download {
  uv_loop_t *loop;
  ls_download_ops ops;
  void *user;
  char *game_dir, *id;
  ls_msg manifest;
  ls_storage *storage;
  chunk *chunks;
  size_t nchunks, next_todo;
  size_t done_chunks, probe_chunks; /* CH_DONE; CH_PROBE or CH_PROBING */
  unsigned checking;    /* check jobs queued or running */
  source sources[LS_DOWNLOAD_MAX_SOURCES];
  int nsources;
  ls_fetch *fetches;    /* in flight */
  unsigned jobs;
  uint64_t total, done_bytes;
  enum phase phase;
  int end_err;          /* LS_OK, LS_ECANCELED or the failure */
  char end_diag[LS_DIAG_MAX];
  int drop_err;         /* why the last source was dropped */
  char drop_why[LS_DIAG_MAX / 2];
  bool abandoned;       /* the program is stopping: no callback */
  bool verify_only, keep_on_failure;
  uint64_t rate_bytes, rate_ns;
  double rate;
  /* resume */
  size_t next_probe;
  unsigned probe_jobs;
  uint64_t fetched_bytes, reused_bytes, probed_bytes;
  uint8_t *durable;     /* chunks recorded in the chunk map */
  uint8_t *pending;     /* done, but not yet synced */
  uint64_t unsynced_bytes, last_sync_ns;
  uint64_t sync_bytes, sync_ns; /* when a sync is due */
  uint64_t stall_ns;            /* a fetch silent this long fails */
  bool sync_running;
  ls_storage_resume resume;
};

static void pump(ls_download *d);
static void maybe_end(ls_download *d);
static void drop_source(ls_download *d, int s, int err, const char *why);
static void start_probes(ls_download *d);
static void maybe_sync(ls_download *d, bool force);

/* ---- small helpers --------------------------------------------------------- */

static uint64_t now_ns(const ls_download *d)
{
  return d->ops.now_ns ? d->ops.now_ns(d->user) : uv_hrtime();
}

static void log_line(ls_download *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void log_line(ls_download *d, const char *fmt, ...)
{
  if (!d->ops.log)
    return;
  char line[LS_DIAG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  d->ops.log(d->user, line);
}

/* The first failure decides how the download ends. */
static void fail(ls_download *d, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void fail(ls_download *d, int err, const char *fmt, ...)
{
  if (d->end_err)
    return;
  d->end_err = err;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->end_diag, sizeof d->end_diag, fmt, ap);
  va_end(ap);
}

static const char *chunk_path(const ls_download *d, const chunk *c)
{
  return d->manifest.game_files.files[c->file].path;
}

/* Counted, not scanned: these are asked after every chunk. */
static bool all_done(const ls_download *d)
{
  return d->done_chunks == d->nchunks;
}

static bool probes_left(const ls_download *d)
{
  return d->probe_chunks > 0;
}

/* Some chunk is still to be fetched (not merely to be probed). */
static bool needs_fetch(const ls_download *d)
{
  return d->done_chunks + d->probe_chunks < d->nchunks;
}

static void mark_done(ls_download *d, chunk *c)
{
  c->state = CH_DONE;
  d->done_chunks++;
  d->done_bytes += c->len;
}

/* A download keeps its storage (for a resume) after a pause, a stop of
 * the program, or when no source was left; anything else discards. */
static bool keeps(const ls_download *d)
{
  if (d->verify_only || d->end_err == LS_OK)
    return false;
  return d->end_err == LS_EPAUSED || d->end_err == LS_ENOPEER ||
         (d->keep_on_failure && d->end_err != LS_ECANCELED);
}

static double smooth(double old, uint64_t bytes, double secs)
{
  double sample = (double)bytes / secs;
  return old ? 0.7 * old + 0.3 * sample : sample;
}

static void report_progress(ls_download *d)
{
  if (!d->ops.on_progress || d->abandoned)
    return;
  ls_download_progress p = ls_download_get_progress(d);
  d->ops.on_progress(d->user, &p);
}

/* Chunk k is on disk and verified: it goes into the next sync. */
static void chunk_written(ls_download *d, chunk *c, size_t k)
{
  mark_done(d, c);
  if (d->pending) {
    ls_chunk_bit_set(d->pending, k);
    d->unsynced_bytes += c->len;
  }
}

/* ---- pool jobs ----------------------------------------------------------------- */

static void job_done(uv_work_t *work, int status);

/* Queues j (filled by the caller: the pool may run it at once). */
static int submit_job(ls_download *d, job *j, uv_work_cb run)
{
  j->work.data = j;
  j->d = d;
  d->jobs++;
  if (uv_queue_work(d->loop, &j->work, run, job_done) != 0) {
    d->jobs--;
    return LS_EIO;
  }
  return LS_OK;
}

static int queue_job(ls_download *d, enum job_kind kind, uv_work_cb run)
{
  job *j = calloc(1, sizeof *j);
  if (!j)
    return LS_ENOMEM;
  j->kind = kind;
  int rc = submit_job(d, j, run);
  if (rc != LS_OK)
    free(j);
  return rc;
}

/* ---- the chunk table ------------------------------------------------------------ */

static int build_chunks(ls_download *d)
{
  const ls_msg_game_files *gf = &d->manifest.game_files;
  size_t n = 0;
  for (size_t i = 0; i < gf->file_count; i++)
    n += gf->files[i].chunk_count;
  d->chunks = calloc(n ? n : 1, sizeof *d->chunks);
  if (!d->chunks)
    return LS_ENOMEM;
  size_t k = 0;
  for (size_t i = 0; i < gf->file_count; i++) {
    const ls_msg_file_entry *f = &gf->files[i];
    d->total += f->size;
    for (size_t c = 0; c < f->chunk_count; c++, k++) {
      uint64_t off = (uint64_t)c * gf->chunk_size;
      chunk *ch = &d->chunks[k];
      ch->file = (uint32_t)i;
      ch->offset = off;
      ch->len = (uint32_t)(f->size - off < gf->chunk_size ? f->size - off : gf->chunk_size);
      ch->hash = f->sha256 + c * LS_SHA256_LEN;
      ch->failed_src = ch->first_src = ch->done_src = -1;
    }
  }
  d->nchunks = n;
  return LS_OK;
}

/* The next chunk for source s: a queued one (preferably one s has not
 * failed), else the oldest one in flight at another source (end game). */
static long pick_chunk(ls_download *d, int s)
{
  long fallback = -1, oldest = -1;
  for (size_t k = 0; k < d->nchunks; k++) {
    size_t i = (d->next_todo + k) % d->nchunks;
    chunk *c = &d->chunks[i];
    if (c->state == CH_TODO && c->failed_src != s) {
      d->next_todo = i + 1;
      return (long)i;
    }
    if (c->state == CH_TODO && fallback < 0)
      fallback = (long)i;
  }
  if (fallback >= 0)
    return fallback;
  for (size_t i = 0; i < d->nchunks; i++) {
    chunk *c = &d->chunks[i];
    if (c->state == CH_FETCHING && c->copies == 1 && c->first_src != s &&
        (oldest < 0 || c->started_ns < d->chunks[oldest].started_ns))
      oldest = (long)i;
  }
  return oldest;
}

/* ---- sources ------------------------------------------------------------------- */

static bool any_source(const ls_download *d)
{
  for (int s = 0; s < d->nsources; s++)
    if (!d->sources[s].dropped)
      return true;
  return false;
}

/* How many chunks a source may have in flight: about
 * LS_DOWNLOAD_INFLIGHT_SECONDS of its measured rate, half the maximum until
 * there is a measurement. */
static unsigned inflight_limit(const ls_download *d, const source *src)
{
  if (src->rate <= 0)
    return LS_DOWNLOAD_MAX_INFLIGHT / 2;
  double chunk_size = d->manifest.game_files.chunk_size;
  unsigned n = (unsigned)(src->rate * LS_DOWNLOAD_INFLIGHT_SECONDS / chunk_size) + 1;
  return n > LS_DOWNLOAD_MAX_INFLIGHT ? LS_DOWNLOAD_MAX_INFLIGHT : n;
}

/* A copy of chunk c failed at source s (err, why). */
static void chunk_failed(ls_download *d, int s, chunk *c, int err, const char *why)
{
  source *src = &d->sources[s];
  c->failed_src = (int8_t)s;
  c->attempts++;
  if (c->copies == 0 && (c->state == CH_FETCHING || c->state == CH_CHECKING))
    c->state = CH_TODO;
  if (++src->failures >= LS_DOWNLOAD_MAX_SOURCE_FAILURES)
    drop_source(d, s, err, why);
  if (c->attempts >= LS_DOWNLOAD_MAX_CHUNK_ATTEMPTS)
    fail(d, err, "chunk at %llu of %s failed %d times: %s", (unsigned long long)c->offset,
         chunk_path(d, c), LS_DOWNLOAD_MAX_CHUNK_ATTEMPTS, why);
}

/* ---- fetches ----------------------------------------------------------------- */

static void unlink_fetch(ls_download *d, ls_fetch *f)
{
  for (ls_fetch **q = &d->fetches; *q; q = &(*q)->next)
    if (*q == f) {
      *q = f->next;
      return;
    }
}

/* Forgets a fetch: its chunk loses a copy, its source a slot. */
static void release_fetch(ls_download *d, ls_fetch *f)
{
  chunk *c = &d->chunks[f->chunk];
  unlink_fetch(d, f);
  d->sources[f->src].inflight--;
  c->copies--;
  if (c->state == CH_FETCHING && c->copies == 0)
    c->state = CH_TODO;
}

/* The engine no longer wants f: the owner stops it and never calls back. */
static void stop_fetch(ls_download *d, ls_fetch *f)
{
  release_fetch(d, f);
  d->ops.stop_fetch(d->user, f->handle);
  free(f->buf);
  free(f);
}

static void stop_all_fetches(ls_download *d)
{
  while (d->fetches)
    stop_fetch(d, d->fetches);
}

/* A dropped source gets no more requests, and those it holds stop: their
 * chunks go back to the queue for the others. */
static void drop_source(ls_download *d, int s, int err, const char *why)
{
  if (d->sources[s].dropped)
    return;
  d->sources[s].dropped = true;
  d->drop_err = err;
  snprintf(d->drop_why, sizeof d->drop_why, "%.*s", (int)sizeof d->drop_why - 1, why);
  log_line(d, "download of %s: dropping peer %.16s: %s", d->id, d->sources[s].name, why);
  for (ls_fetch *f = d->fetches, *next; f; f = next) {
    next = f->next;
    if (f->src == s)
      stop_fetch(d, f);
  }
}

static bool start_fetch(ls_download *d, int s, long idx)
{
  chunk *c = &d->chunks[idx];
  ls_fetch *f = calloc(1, sizeof *f);
  if (!f || !(f->buf = malloc(c->len ? c->len : 1))) {
    free(f);
    return false;
  }
  f->d = d;
  f->src = s;
  f->chunk = (uint32_t)idx;
  ls_fetch_request req = {(size_t)s, chunk_path(d, c), c->offset, c->len};
  ls_diag diag = {{0}};
  int rc = d->ops.start_fetch(d->user, f, &req, &f->handle, &diag);
  if (rc != LS_OK) {
    free(f->buf);
    free(f);
    if (rc != LS_EBUSY)
      drop_source(d, s, rc, diag.text[0] ? diag.text : ls_strerror(rc));
    return false;
  }
  f->next = d->fetches;
  d->fetches = f;
  f->last_ns = now_ns(d);
  if (c->copies++ == 0) {
    c->started_ns = now_ns(d);
    c->first_src = (int8_t)s;
  }
  c->state = CH_FETCHING;
  d->sources[s].inflight++;
  return true;
}

static void check_run(uv_work_t *work);

int ls_fetch_data(ls_fetch *f, const void *data, size_t len)
{
  ls_download *d = f->d;
  chunk *c = &d->chunks[f->chunk];
  bool won_elsewhere = c->state != CH_FETCHING;
  if (won_elsewhere || f->got + len > c->len) {
    int s = f->src;
    stop_fetch(d, f);
    if (!won_elsewhere) /* more bytes than asked for: the source's fault */
      chunk_failed(d, s, c, LS_EPROTO, "more bytes than requested for a chunk");
    pump(d);
    maybe_end(d);
    return LS_ECANCELED;
  }
  memcpy(f->buf + f->got, data, len);
  f->got += len;
  if (len)
    f->last_ns = now_ns(d);
  return LS_OK;
}

/* The first complete copy of a chunk: the other copies stop, and a pool
 * job hashes and writes it. */
static bool begin_check(ls_download *d, ls_fetch *f)
{
  chunk *c = &d->chunks[f->chunk];
  c->state = CH_CHECKING;
  for (ls_fetch *o = d->fetches, *next; o; o = next) {
    next = o->next;
    if (o->chunk == f->chunk)
      stop_fetch(d, o);
  }
  job *j = calloc(1, sizeof *j);
  if (j) {
    *j = (job){.kind = JOB_CHECK, .chunk = f->chunk, .buf = f->buf, .src = f->src};
    if (submit_job(d, j, check_run) == LS_OK) {
      d->checking++;
      return true;
    }
    free(j);
  }
  c->state = CH_TODO;
  return false;
}

void ls_fetch_done(ls_fetch *f, int err, const char *diag)
{
  ls_download *d = f->d;
  chunk *c = &d->chunks[f->chunk];
  bool fetching = c->state == CH_FETCHING; /* not yet won by another copy */
  release_fetch(d, f);
  bool complete = err == LS_OK && f->got == c->len;
  if (fetching && complete && !d->end_err && d->phase == PH_RUNNING) {
    if (begin_check(d, f))
      f->buf = NULL; /* the check job's now */
  } else if (fetching && !complete && err != LS_ECANCELED) {
    int code = err == LS_OK ? LS_EPROTO : err;
    chunk_failed(d, f->src, c, code, err == LS_OK ? "short answer to a chunk request" : diag);
  }
  free(f->buf);
  free(f);
  pump(d);
  maybe_end(d);
}

static void pump(ls_download *d)
{
  if (d->phase != PH_RUNNING || d->end_err)
    return;
  start_probes(d);
  maybe_sync(d, false);
  for (int s = 0; s < d->nsources && d->checking < LS_DOWNLOAD_MAX_CHECKING; s++) {
    source *src = &d->sources[s];
    while (!src->dropped && src->inflight < inflight_limit(d, src) &&
           d->checking < LS_DOWNLOAD_MAX_CHECKING) {
      long idx = pick_chunk(d, s);
      if (idx < 0 || !start_fetch(d, s, idx))
        break;
    }
  }
  if (!d->verify_only && !any_source(d) && needs_fetch(d))
    fail(d, d->drop_err == LS_ECORRUPT ? LS_ECORRUPT : LS_ENOPEER,
         "no peer can supply the rest of %s %s (%llu of %llu bytes done; last peer dropped: "
         "%s)",
         d->id, d->manifest.game_files.version, (unsigned long long)d->done_bytes,
         (unsigned long long)d->total, d->drop_why);
}

/* ---- check jobs (pool: hash, then write) ------------------------------------ */

static void check_run(uv_work_t *work)
{
  job *j = work->data;
  const chunk *c = &j->d->chunks[j->chunk];
  uint8_t digest[LS_SHA256_LEN];
  ls_sha256(j->buf, c->len, digest);
  j->hash_ok = memcmp(digest, c->hash, LS_SHA256_LEN) == 0;
  if (j->hash_ok)
    j->rc = ls_storage_write(j->d->storage, c->file, c->offset, j->buf, c->len, &j->diag);
}

static void check_done(job *j)
{
  ls_download *d = j->d;
  chunk *c = &d->chunks[j->chunk];
  d->checking--;
  if (!j->hash_ok) {
    log_line(d, "download of %s: chunk at %llu of %s from peer %.16s failed its hash", d->id,
             (unsigned long long)c->offset, chunk_path(d, c), d->sources[j->src].name);
    chunk_failed(d, j->src, c, LS_ECORRUPT, "corrupt chunk (SHA-256 mismatch)");
  } else if (j->rc != LS_OK) {
    c->state = CH_TODO;
    fail(d, j->rc, "%s", j->diag.text);
  } else {
    chunk_written(d, c, j->chunk);
    c->done_src = (int8_t)j->src;
    d->fetched_bytes += c->len;
    d->sources[j->src].bytes += c->len;
  }
  free(j->buf);
}

/* ---- probe jobs (pool: read and hash the bytes on disk) ---------------- */

static void probe_run(uv_work_t *work)
{
  job *j = work->data;
  const chunk *c = &j->d->chunks[j->chunk];
  j->rc = ls_storage_probe(j->d->storage, c->file, c->offset, c->len, c->hash, j->buf,
                           &j->hash_ok, &j->diag);
}

static void probe_done(job *j)
{
  ls_download *d = j->d;
  chunk *c = &d->chunks[j->chunk];
  d->probe_jobs--;
  d->probe_chunks--;
  d->probed_bytes += c->len;
  if (j->rc != LS_OK)
    log_line(d, "%s of %s: %s (the chunk is fetched again)",
             d->verify_only ? "verification" : "download", d->id, j->diag.text);
  if (j->rc == LS_OK && j->hash_ok) {
    if (d->verify_only) {
      mark_done(d, c);
    } else {
      chunk_written(d, c, j->chunk);
    }
    d->reused_bytes += c->len;
  } else {
    c->state = CH_TODO;
  }
  free(j->buf);
}

/* Keeps LS_DOWNLOAD_PROBE_JOBS probes queued, in file order. */
static void start_probes(ls_download *d)
{
  while (d->probe_jobs < LS_DOWNLOAD_PROBE_JOBS && !d->end_err) {
    while (d->next_probe < d->nchunks && d->chunks[d->next_probe].state != CH_PROBE)
      d->next_probe++;
    if (d->next_probe >= d->nchunks)
      return;
    chunk *c = &d->chunks[d->next_probe];
    job *j = calloc(1, sizeof *j);
    if (!j || !(j->buf = malloc(c->len ? c->len : 1))) {
      free(j);
      return; /* retried at the next pump */
    }
    j->kind = JOB_PROBE;
    j->chunk = (uint32_t)d->next_probe;
    if (submit_job(d, j, probe_run) != LS_OK) {
      free(j->buf);
      free(j);
      return;
    }
    c->state = CH_PROBING;
    d->probe_jobs++;
  }
}

/* ---- sync jobs (pool: make written chunks durable) --------------------- */

static void sync_run(uv_work_t *work)
{
  job *j = work->data;
  j->rc = ls_storage_sync(j->d->storage, j->buf, &j->diag);
}

static void sync_done(job *j)
{
  ls_download *d = j->d;
  d->sync_running = false;
  d->last_sync_ns = now_ns(d);
  if (j->rc == LS_OK) {
    memcpy(d->durable, j->buf, ls_chunk_bits_size(d->nchunks));
  } else {
    log_line(d, "download of %s: %s", d->id, j->diag.text);
    fail(d, j->rc, "%s", j->diag.text);
  }
  free(j->buf);
}

/* Starts a sync of the chunks written so far: with `force` whenever some
 * are unsynced, otherwise once enough bytes or time have gone by. */
static void maybe_sync(ls_download *d, bool force)
{
  if (!d->pending || !d->storage || d->sync_running || d->unsynced_bytes == 0)
    return;
  uint64_t age = now_ns(d) - d->last_sync_ns;
  if (!force && d->unsynced_bytes < d->sync_bytes && age < d->sync_ns)
    return;
  size_t nbits = ls_chunk_bits_size(d->nchunks);
  job *j = calloc(1, sizeof *j);
  if (!j || !(j->buf = malloc(nbits + 1))) {
    free(j);
    return;
  }
  for (size_t i = 0; i < nbits; i++)
    j->buf[i] = d->durable[i] | d->pending[i];
  j->kind = JOB_SYNC;
  if (submit_job(d, j, sync_run) != LS_OK) {
    free(j->buf);
    free(j);
    return;
  }
  memset(d->pending, 0, nbits);
  d->unsynced_bytes = 0;
  d->sync_running = true;
}

/* ---- begin and end -------------------------------------------------------- */

static void free_download(ls_download *d)
{
  ls_storage_free(d->storage);
  ls_msg_clear(&d->manifest);
  for (int s = 0; s < d->nsources; s++)
    free(d->sources[s].name);
  free(d->chunks);
  free(d->durable);
  free(d->pending);
  free(d->game_dir);
  free(d->id);
  free(d);
}

static void begin_run(uv_work_t *work)
{
  job *j = work->data;
  ls_download *d = j->d;
  const ls_msg_game_files *gf = &d->manifest.game_files;
  ls_storage_file *files = calloc(gf->file_count ? gf->file_count : 1, sizeof *files);
  if (!files) {
    j->rc = ls_diag_set(&j->diag, LS_ENOMEM, "out of memory");
    return;
  }
  for (size_t i = 0; i < gf->file_count; i++)
    files[i] = (ls_storage_file){gf->files[i].path, gf->files[i].size, gf->files[i].sha256};
  if (d->verify_only)
    j->rc = ls_storage_open_readonly(d->game_dir, d->id, gf->chunk_size, files, gf->file_count,
                                     &d->storage, &j->diag);
  else
    j->rc = ls_storage_begin(d->game_dir, d->id, gf->version, gf->chunk_size, files,
                             gf->file_count, &d->storage, &j->diag);
  free(files);
}

/* What the storage kept is done; chunks of files that were on disk are
 * probed first; the rest is fetched. */
static void init_chunk_states(ls_download *d)
{
  d->resume = ls_storage_get_resume(d->storage);
  for (size_t k = 0; k < d->nchunks; k++) {
    chunk *c = &d->chunks[k];
    if (!d->verify_only && ls_storage_chunk_kept(d->storage, k)) {
      mark_done(d, c);
      d->reused_bytes += c->len;
      ls_chunk_bit_set(d->durable, k);
    } else if (d->verify_only || !ls_storage_file_fresh(d->storage, c->file)) {
      c->state = CH_PROBE;
      d->probe_chunks++;
    }
  }
}

static void begin_done(job *j)
{
  ls_download *d = j->d;
  d->phase = PH_RUNNING;
  if (d->abandoned)
    return;
  if (j->rc != LS_OK) {
    fail(d, j->rc, "%s", j->diag.text);
    d->ops.on_begin(d->user, j->rc, j->diag.text);
    return;
  }
  init_chunk_states(d);
  d->rate_bytes = ls_download_get_progress(d).bytes;
  d->rate_ns = d->last_sync_ns = now_ns(d);
  d->ops.on_begin(d->user, LS_OK, "");
}

static void end_run(uv_work_t *work)
{
  job *j = work->data;
  ls_download *d = j->d;
  if (!d->storage || d->verify_only || keeps(d))
    return; /* begin failed and rolled itself back; nothing to write; kept */
  if (d->end_err == LS_OK) {
    j->rc = ls_storage_commit(d->storage, &j->diag);
    if (j->rc != LS_OK)
      ls_storage_abort(d->storage, LS_ROLLBACK_FAILED, NULL);
  } else {
    j->rc = ls_storage_abort(d->storage, d->end_err == LS_ECANCELED ? LS_ROLLBACK_CANCELLED
                                                                    : LS_ROLLBACK_FAILED,
                             &j->diag);
  }
}

static void end_done(job *j)
{
  ls_download *d = j->d;
  if (d->end_err == LS_OK && j->rc != LS_OK) {
    fail(d, j->rc, "%s", j->diag.text);
  } else if (d->end_err != LS_OK && j->rc != LS_OK) {
    log_line(d, "download of %s: cleanup failed: %s", d->id, j->diag.text);
  }
  if (!d->abandoned)
    d->ops.on_end(d->user, d->end_err, d->end_err ? d->end_diag : "");
  free_download(d);
}

/* The download has nothing left to do: every chunk in (a verification:
 * every chunk probed), or an end decided. */
static bool finished(const ls_download *d)
{
  if (d->end_err)
    return true;
  return d->verify_only ? !probes_left(d) : all_done(d);
}

/* Ends once nothing is in flight: commit, roll back, or (kept) a last sync,
 * on the pool, then on_end. The losing copies of the last chunks, like
 * every fetch at a cancel, pause or failure, are not waited for: a silent
 * source must not hold the end. */
static void maybe_end(ls_download *d)
{
  bool complete = !d->verify_only && d->done_bytes == d->total;
  if (d->phase == PH_RUNNING && (d->end_err || complete) && d->fetches)
    stop_all_fetches(d);
  if (d->phase != PH_RUNNING || d->fetches || d->jobs || !finished(d))
    return;
  if (keeps(d) && d->unsynced_bytes > 0) {
    maybe_sync(d, true); /* its job_done comes back here */
    if (d->sync_running)
      return;
  }
  d->phase = PH_ENDING;
  if (!d->end_err && !d->abandoned)
    report_progress(d); /* a last progress report at 100% */
  if (queue_job(d, JOB_END, end_run) != LS_OK) {
    job j = {.d = d, .rc = LS_EIO}; /* the journal stays for startup recovery */
    snprintf(j.diag.text, sizeof j.diag.text, "cannot start a worker to finish the download");
    end_done(&j);
  }
}

static void job_done(uv_work_t *work, int status)
{
  job *j = work->data;
  ls_download *d = j->d;
  (void)status;
  d->jobs--;
  enum job_kind kind = j->kind;
  if (kind == JOB_BEGIN)
    begin_done(j);
  else if (kind == JOB_CHECK)
    check_done(j);
  else if (kind == JOB_PROBE)
    probe_done(j);
  else if (kind == JOB_SYNC)
    sync_done(j);
  else
    end_done(j); /* frees d */
  free(j);
  if (kind != JOB_END) {
    pump(d);
    maybe_end(d);
  }
}

/* ---- the interface ---------------------------------------------------------- */

static int check_config(const ls_download_config *c, ls_diag *diag)
{
  if (!c->loop || !c->game_dir || !c->id || !c->manifest || !c->ops ||
      !c->ops->start_fetch || !c->ops->stop_fetch || !c->ops->on_begin || !c->ops->on_end)
    return ls_diag_set(diag, LS_EINVAL, "incomplete download configuration");
  if (c->manifest->type != LS_MSG_GAME_FILES || !c->manifest->game_files.chunk_size)
    return ls_diag_set(diag, LS_EINVAL, "the manifest is not a file list");
  if ((c->source_count < 1 && !c->verify_only) || c->source_count > LS_DOWNLOAD_MAX_SOURCES)
    return ls_diag_set(diag, LS_EINVAL, "%zu sources (1 to %d)", c->source_count,
                       LS_DOWNLOAD_MAX_SOURCES);
  return LS_OK;
}

int ls_download_start(const ls_download_config *c, ls_download **out, ls_diag *diag)
{
  *out = NULL;
  int rc = check_config(c, diag);
  if (rc != LS_OK)
    return rc;
  ls_download *d = calloc(1, sizeof *d);
  if (!d || !(d->game_dir = strdup(c->game_dir)) || !(d->id = strdup(c->id)))
    goto nomem;
  d->loop = c->loop;
  d->verify_only = c->verify_only;
  d->keep_on_failure = c->keep_on_failure;
  d->sync_bytes = c->sync_bytes ? c->sync_bytes : LS_DOWNLOAD_SYNC_BYTES;
  d->sync_ns = (c->sync_ms ? c->sync_ms : LS_DOWNLOAD_SYNC_SECONDS * 1000u) * (uint64_t)1000000;
  d->stall_ns = (c->stall_ms ? c->stall_ms : LS_DOWNLOAD_STALL_SECONDS * 1000u) * (uint64_t)1000000;
  d->ops = *c->ops;
  d->user = c->user;
  d->manifest = *c->manifest; /* taken below, once nothing can fail */
  for (size_t s = 0; s < c->source_count; s++, d->nsources++)
    if (!(d->sources[s].name = strdup(c->sources[s] ? c->sources[s] : "?")))
      goto nomem;
  if (build_chunks(d) != LS_OK)
    goto nomem;
  if (!d->verify_only && (!(d->durable = calloc(1, ls_chunk_bits_size(d->nchunks) + 1)) ||
                          !(d->pending = calloc(1, ls_chunk_bits_size(d->nchunks) + 1))))
    goto nomem;
  if (queue_job(d, JOB_BEGIN, begin_run) != LS_OK)
    goto nomem;
  *c->manifest = (ls_msg){.type = LS_MSG_NONE};
  *out = d;
  return LS_OK;
nomem:
  if (d) {
    d->manifest = (ls_msg){.type = LS_MSG_NONE}; /* still the caller's */
    free_download(d);
  }
  return ls_diag_set(diag, LS_ENOMEM, "out of memory");
}

void ls_download_cancel(ls_download *d)
{
  if (d->phase == PH_ENDING)
    return;
  fail(d, LS_ECANCELED, "cancelled");
  stop_all_fetches(d);
  maybe_end(d);
}

void ls_download_pause(ls_download *d)
{
  if (d->phase == PH_ENDING)
    return;
  fail(d, d->verify_only ? LS_ECANCELED : LS_EPAUSED, "paused");
  stop_all_fetches(d);
  maybe_end(d);
}

void ls_download_abandon(ls_download *d)
{
  d->abandoned = true;
  if (d->phase == PH_ENDING)
    return; /* the end job frees it */
  fail(d, d->verify_only ? LS_ECANCELED : LS_EPAUSED, "the program is stopping");
  stop_all_fetches(d);
  maybe_end(d);
}

/* Fetches that got no byte for stall_ns fail: their chunks go back to the
 * queue, their sources take a failure each. */
static void fail_stalled_fetches(ls_download *d, uint64_t now)
{
  char why[64];
  snprintf(why, sizeof why, "no data for %llu s", (unsigned long long)(d->stall_ns / 1000000000u));
  for (ls_fetch *f = d->fetches, *next; f; f = next) {
    next = f->next;
    if (now - f->last_ns < d->stall_ns)
      continue;
    int s = f->src;
    chunk *c = &d->chunks[f->chunk];
    stop_fetch(d, f);
    chunk_failed(d, s, c, LS_ETIMEDOUT, why);
    next = d->fetches; /* a dropped source stopped others too: start over */
    if (d->end_err)
      return;
  }
}

void ls_download_tick(ls_download *d)
{
  if (d->phase != PH_RUNNING)
    return;
  uint64_t now = now_ns(d);
  if (!d->end_err) {
    fail_stalled_fetches(d, now);
    pump(d);
    maybe_end(d);
    if (d->phase != PH_RUNNING)
      return;
  }
  double secs = (double)(now - d->rate_ns) / 1e9;
  uint64_t bytes = ls_download_get_progress(d).bytes;
  if (secs > 0) {
    d->rate = smooth(d->rate, bytes - d->rate_bytes, secs);
    for (int s = 0; s < d->nsources; s++) {
      source *src = &d->sources[s];
      src->rate = smooth(src->rate, src->bytes - src->rate_bytes, secs);
      src->rate_bytes = src->bytes;
    }
  }
  d->rate_bytes = bytes;
  d->rate_ns = now;
  if (!d->end_err)
    maybe_sync(d, false);
  report_progress(d);
}

bool ls_download_is_ending(const ls_download *d)
{
  return d->phase == PH_ENDING || d->abandoned;
}

ls_download_progress ls_download_get_progress(const ls_download *d)
{
  uint64_t bytes = d->verify_only ? d->probed_bytes : d->done_bytes;
  return (ls_download_progress){bytes, d->total, (uint64_t)d->rate};
}

ls_storage_resume ls_download_get_resume(const ls_download *d)
{
  return d->resume;
}

ls_download_result ls_download_get_result(const ls_download *d)
{
  ls_download_result r = {d->fetched_bytes, d->reused_bytes, 0, 0, keeps(d) && d->storage};
  if (d->verify_only)
    for (size_t k = 0; k < d->nchunks; k++)
      if (d->chunks[k].state != CH_DONE) {
        r.bad_chunks++;
        r.bad_bytes += d->chunks[k].len;
      }
  return r;
}

ls_download_chunk_info ls_download_get_chunk(const ls_download *d, size_t k)
{
  if (k >= d->nchunks)
    return (ls_download_chunk_info){0};
  const chunk *c = &d->chunks[k];
  return (ls_download_chunk_info){chunk_path(d, c), c->offset, c->len, c->state == CH_DONE};
}

ls_download_source_stats ls_download_get_source_stats(const ls_download *d, size_t s)
{
  if (s >= (size_t)d->nsources)
    return (ls_download_source_stats){0};
  const source *src = &d->sources[s];
  return (ls_download_source_stats){src->bytes, src->failures, src->dropped};
}

size_t ls_download_chunk_count(const ls_download *d)
{
  return d->nchunks;
}

int ls_download_chunk_source(const ls_download *d, size_t k)
{
  return k < d->nchunks ? d->chunks[k].done_src : -1;
}
