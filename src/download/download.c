/* Owns downloads (docs/ARCHITECTURE.md, "Downloads"): per download, the
 * chunk table, the sources (every connected peer with the latest version and
 * the same file list), the requests in flight, the verification and writing
 * of chunks on worker threads, progress, cancel, failure, and the terminal
 * sequence that refreshes the game's local state before the operation ends.
 *
 * Planner: one shared queue of chunks (1 MiB, the protocol's hash unit).
 * Each source keeps about INFLIGHT_SECONDS of its measured rate requested
 * (1 to MAX_INFLIGHT chunks) and takes the next chunk when one finishes, so
 * a faster peer takes more chunks, and a slow one holds few: its chunks,
 * which a seeder sends side by side, still finish in about a second. When the
 * queue is empty, an idle source duplicates the oldest chunk still in flight
 * elsewhere (end game); the first copy to arrive wins and the other request
 * is cancelled. Every chunk is hashed and compared with the manifest before
 * it is written; a mismatch counts against the peer and the chunk goes back
 * to the queue, preferably for another peer. A peer that fails
 * MAX_SOURCE_FAILURES times is dropped from this download; the download
 * fails only when no source is left for a missing chunk, or a chunk failed
 * MAX_CHUNK_ATTEMPTS times, or the disk refuses a write. */
#include "peer/runtime.h"

#include "core/error.h"
#include "download/storage.h"
#include "library/hashing.h"
#include "node/request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INFLIGHT 8
#define INFLIGHT_SECONDS 0.75 /* keep about this much of a peer's rate requested */
#define MAX_SOURCES 32
#define MAX_SOURCE_FAILURES 3
#define MAX_CHUNK_ATTEMPTS 6
#define PROGRESS_MS 250
#define APP_ERR_CANCEL 0x30

enum chunk_state { CH_TODO, CH_FETCHING, CH_CHECKING, CH_DONE };
enum phase { PH_PREPARING, PH_RUNNING, PH_ENDING };

typedef struct download download;

typedef struct chunk {
  uint32_t file;
  uint64_t offset;
  uint32_t len;
  const uint8_t *hash;   /* into the manifest */
  uint8_t state, copies, attempts;
  int8_t first_src;      /* source of the oldest copy in flight */
  int8_t failed_src;     /* last source that failed it, or -1 */
  uint64_t started_ns;
} chunk;

typedef struct source {
  char peer_id[LS_PROTO_PEER_ID_LEN + 1];
  unsigned inflight, failures;
  bool dropped;
  uint64_t bytes, rate_bytes; /* verified bytes from it; at the last tick */
  double rate;                /* smoothed bytes per second */
} source;

typedef struct fetch {
  download *d;
  int src;
  uint32_t chunk;
  uint8_t *buf;
  size_t got;
  bool is_data;          /* the answer was FileData */
  bool orphan;           /* the download ended without it: just free it */
  ls_request *req;
  struct fetch *next;
} fetch;

/* Worker job: begin, check (hash + write), end (commit or roll back). */
enum job_kind { JOB_BEGIN, JOB_CHECK, JOB_END };

typedef struct job {
  uv_work_t work;
  enum job_kind kind;
  download *d;
  fetch *f;              /* check jobs */
  int rc;
  bool hash_ok;
  ls_diag diag;
} job;

struct download {
  download *next;
  ls_peer *p;
  uint64_t tag;
  char *id, *version;
  ls_msg manifest;       /* LS_MSG_GAME_FILES */
  ls_storage *storage;
  chunk *chunks;
  size_t nchunks, next_todo;
  source sources[MAX_SOURCES];
  int nsources;
  fetch *fetches;        /* in flight */
  unsigned jobs;
  uint64_t total, done_bytes;
  enum phase phase;
  int end_err;           /* 0 success, LS_ECANCELED, or the failure */
  char end_diag[LS_DIAG_MAX];
  char drop_why[LS_DIAG_MAX / 2]; /* why the last source was dropped */
  bool closing;          /* the runtime is stopping */
  uv_timer_t progress;
  uint64_t rate_bytes, rate_ns;
  double rate;
};

static void pump(download *d);
static void maybe_end(download *d);

/* ---- lookup -------------------------------------------------------------- */

static download *find_download(ls_peer *p, const char *id)
{
  for (download *d = p->downloads; d; d = d->next)
    if (strcmp(d->id, id) == 0)
      return d;
  return NULL;
}

/* ---- events ---------------------------------------------------------------- */

static void emit(download *d, const char *type, json_t *fields)
{
  json_t *obj = json_pack("{s:s, s:s}", "type", type, "id", d->id);
  if (fields) {
    json_object_update(obj, fields);
    json_decref(fields);
  }
  ls_rt_emit(d->p, obj);
}

static double smooth(double old, uint64_t bytes, double secs)
{
  double sample = (double)bytes / secs;
  return old ? 0.7 * old + 0.3 * sample : sample;
}

static void on_progress(uv_timer_t *t)
{
  download *d = t->data;
  uint64_t now = uv_hrtime();
  double secs = (double)(now - d->rate_ns) / 1e9;
  if (secs > 0) {
    d->rate = smooth(d->rate, d->done_bytes - d->rate_bytes, secs);
    for (int s = 0; s < d->nsources; s++) {
      source *src = &d->sources[s];
      src->rate = smooth(src->rate, src->bytes - src->rate_bytes, secs);
      src->rate_bytes = src->bytes;
    }
  }
  d->rate_bytes = d->done_bytes;
  d->rate_ns = now;
  emit(d, "game-download-progress",
       json_pack("{s:I, s:I, s:I}", "bytes", (json_int_t)d->done_bytes, "total_bytes",
                 (json_int_t)d->total, "bytes_per_sec", (json_int_t)d->rate));
}

/* Ends every request in flight without waiting for them: a cancel must not
 * wait for a peer that no longer answers (its stream would close only when
 * the connection dies). Each request frees its own state when it ends. */
static void abandon_fetches(download *d)
{
  fetch *f = d->fetches;
  d->fetches = NULL;
  while (f) {
    fetch *next = f->next;
    f->orphan = true;
    ls_request_cancel(f->req);
    f = next;
  }
}

/* ---- worker jobs ------------------------------------------------------------ */

static void job_done_common(uv_work_t *work, int status);

static int queue_job(download *d, fetch *f, enum job_kind kind, uv_work_cb run)
{
  job *j = calloc(1, sizeof *j);
  if (!j)
    return LS_ENOMEM;
  j->work.data = j;
  j->kind = kind;
  j->d = d;
  j->f = f;
  d->jobs++;
  if (uv_queue_work(&d->p->loop, &j->work, run, job_done_common) != 0) {
    d->jobs--;
    free(j);
    return LS_EIO;
  }
  return LS_OK;
}

/* ---- chunk table ------------------------------------------------------------ */

static int build_chunks(download *d)
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
      ch->failed_src = ch->first_src = -1;
    }
  }
  d->nchunks = n;
  return LS_OK;
}

static bool all_done(const download *d)
{
  for (size_t i = 0; i < d->nchunks; i++)
    if (d->chunks[i].state != CH_DONE)
      return false;
  return true;
}

/* The next chunk for source s: a queued one (preferably one s has not
 * failed), else the oldest one in flight at another source (end game). */
static long pick_chunk(download *d, int s)
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

/* ---- requests ----------------------------------------------------------- */

static void unlink_fetch(download *d, fetch *f)
{
  for (fetch **q = &d->fetches; *q; q = &(*q)->next)
    if (*q == f) {
      *q = f->next;
      return;
    }
}

static void drop_source(download *d, int s, const char *why)
{
  if (d->sources[s].dropped)
    return;
  d->sources[s].dropped = true;
  snprintf(d->drop_why, sizeof d->drop_why, "%s", why);
  ls_rt_log("download of %s: dropping peer %.16s: %s", d->id, d->sources[s].peer_id, why);
}

/* A copy of chunk c failed at source s. */
static void chunk_failed(download *d, int s, chunk *c, const char *why)
{
  source *src = &d->sources[s];
  c->failed_src = (int8_t)s;
  c->attempts++;
  if (c->copies == 0 && c->state == CH_FETCHING)
    c->state = CH_TODO;
  if (++src->failures >= MAX_SOURCE_FAILURES)
    drop_source(d, s, why);
  if (c->attempts >= MAX_CHUNK_ATTEMPTS && !d->end_err) {
    d->end_err = LS_EIO;
    snprintf(d->end_diag, sizeof d->end_diag, "chunk at %llu of %s failed %d times: %s",
             (unsigned long long)c->offset, d->manifest.game_files.files[c->file].path,
             MAX_CHUNK_ATTEMPTS, why);
  }
}

static void on_chunk_response(ls_request *req, const ls_msg *msg, void *user)
{
  fetch *f = user;
  (void)req;
  if (f->orphan)
    return;
  f->is_data = msg->type == LS_MSG_FILE_DATA &&
               msg->range.length == f->d->chunks[f->chunk].len;
}

static int on_chunk_bytes(ls_request *req, const uint8_t *data, size_t len, void *user)
{
  fetch *f = user;
  if (f->orphan)
    return 0;
  chunk *c = &f->d->chunks[f->chunk];
  if (c->state != CH_FETCHING || f->got + len > c->len) {
    ls_request_cancel(req); /* another copy won, or too many bytes */
    return 0;
  }
  memcpy(f->buf + f->got, data, len);
  f->got += len;
  return 0;
}

static void check_run(uv_work_t *work);

static void on_chunk_done(ls_request *req, int err, const char *diag, void *user)
{
  fetch *f = user;
  if (f->orphan) {
    free(f->buf);
    free(f);
    return;
  }
  download *d = f->d;
  chunk *c = &d->chunks[f->chunk];
  (void)req;
  unlink_fetch(d, f);
  d->sources[f->src].inflight--;
  c->copies--;
  bool complete = err == LS_OK && f->is_data && f->got == c->len;
  if (c->state == CH_FETCHING && complete && !d->end_err && d->phase == PH_RUNNING) {
    c->state = CH_CHECKING; /* the first complete copy wins */
    for (fetch *o = d->fetches; o; o = o->next)
      if (o->chunk == f->chunk)
        ls_request_cancel(o->req); /* ends later, through on_chunk_done */
    if (queue_job(d, f, JOB_CHECK, check_run) == LS_OK) {
      pump(d);
      return;
    }
    c->state = CH_TODO;
  } else if (c->state == CH_FETCHING && !complete && err != LS_ECANCELED) {
    chunk_failed(d, f->src, c, err == LS_OK ? "wrong answer to a chunk request" : diag);
  } else if (c->state == CH_FETCHING && c->copies == 0) {
    c->state = CH_TODO; /* cancelled copy of a chunk nobody else has */
  }
  free(f->buf);
  free(f);
  pump(d);
  maybe_end(d);
}

static bool start_fetch(download *d, int s, long idx)
{
  static const ls_request_callbacks cb = {on_chunk_response, on_chunk_bytes, on_chunk_done};
  ls_quic_conn *conn = ls_links_conn_of(d->p, d->sources[s].peer_id);
  chunk *c = &d->chunks[idx];
  if (!conn) {
    drop_source(d, s, "not connected");
    return false;
  }
  fetch *f = calloc(1, sizeof *f);
  if (!f || !(f->buf = malloc(c->len ? c->len : 1))) {
    free(f);
    return false;
  }
  f->d = d;
  f->src = s;
  f->chunk = (uint32_t)idx;
  ls_msg msg = {.type = LS_MSG_GET_GAME_FILE_CHUNK};
  msg.range = (ls_msg_file_range){d->id, d->manifest.game_files.files[c->file].path, c->offset,
                                  c->len};
  if (c->len == 0 || ls_request_start(conn, &msg, &cb, f, &f->req, NULL) != LS_OK) {
    free(f->buf);
    free(f);
    return false;
  }
  f->next = d->fetches;
  d->fetches = f;
  if (c->copies++ == 0) {
    c->started_ns = uv_hrtime();
    c->first_src = (int8_t)s;
  }
  c->state = CH_FETCHING;
  d->sources[s].inflight++;
  return true;
}

static bool any_source(const download *d)
{
  for (int s = 0; s < d->nsources; s++)
    if (!d->sources[s].dropped)
      return true;
  return false;
}

/* How many requests a source may have in flight: about INFLIGHT_SECONDS of
 * its measured rate, half the maximum until there is a measurement. */
static unsigned inflight_limit(const source *src)
{
  if (src->rate <= 0)
    return MAX_INFLIGHT / 2;
  unsigned n = (unsigned)(src->rate * INFLIGHT_SECONDS / LS_CHUNK_SIZE) + 1;
  return n > MAX_INFLIGHT ? MAX_INFLIGHT : n;
}

static void pump(download *d)
{
  if (d->phase != PH_RUNNING || d->end_err)
    return;
  for (int s = 0; s < d->nsources; s++) {
    source *src = &d->sources[s];
    while (!src->dropped && src->inflight < inflight_limit(src)) {
      long idx = pick_chunk(d, s);
      if (idx < 0 || !start_fetch(d, s, idx))
        break;
    }
  }
  if (!any_source(d) && !all_done(d) && !d->end_err) {
    d->end_err = LS_EIO;
    snprintf(d->end_diag, sizeof d->end_diag,
             "no peer can supply the rest of %s %s (%llu of %llu bytes done; last peer "
             "dropped: %s)",
             d->id, d->version, (unsigned long long)d->done_bytes,
             (unsigned long long)d->total, d->drop_why);
  }
}

/* ---- check jobs (worker: hash, then write) ------------------------------- */

static void check_run(uv_work_t *work)
{
  job *j = work->data;
  fetch *f = j->f;
  chunk *c = &j->d->chunks[f->chunk];
  uint8_t digest[LS_SHA256_LEN];
  ls_sha256(f->buf, c->len, digest);
  j->hash_ok = memcmp(digest, c->hash, LS_SHA256_LEN) == 0;
  if (j->hash_ok)
    j->rc = ls_storage_write(j->d->storage, c->file, c->offset, f->buf, c->len, &j->diag);
}

static void check_done(job *j)
{
  download *d = j->d;
  fetch *f = j->f;
  chunk *c = &d->chunks[f->chunk];
  if (!j->hash_ok) {
    ls_rt_log("download of %s: chunk at %llu of %s from peer %.16s failed its hash", d->id,
              (unsigned long long)c->offset, d->manifest.game_files.files[c->file].path,
              d->sources[f->src].peer_id);
    c->state = CH_FETCHING; /* so chunk_failed re-queues it */
    chunk_failed(d, f->src, c, "corrupt chunk (SHA-256 mismatch)");
    c->state = c->copies ? CH_FETCHING : CH_TODO;
  } else if (j->rc != LS_OK) {
    c->state = CH_TODO;
    if (!d->end_err) {
      d->end_err = j->rc;
      snprintf(d->end_diag, sizeof d->end_diag, "%s", j->diag.text);
    }
  } else {
    c->state = CH_DONE;
    d->done_bytes += c->len;
    d->sources[f->src].bytes += c->len;
  }
  free(f->buf);
  free(f);
}

/* ---- the terminal sequence --------------------------------------------- */

static void begin_run(uv_work_t *work);
static void end_run(uv_work_t *work);

static void free_download(download *d)
{
  for (download **q = &d->p->downloads; *q; q = &(*q)->next)
    if (*q == d) {
      *q = d->next;
      break;
    }
  ls_storage_free(d->storage);
  ls_msg_clear(&d->manifest);
  free(d->chunks);
  free(d->id);
  free(d->version);
  free(d);
}

static void on_progress_closed(uv_handle_t *h)
{
  free_download(h->data);
}

/* After the refresh: the operation ends and the last event goes out. */
static void after_refresh(void *user)
{
  download *d = user;
  ls_peer *p = d->p;
  if (p->monitor)
    ls_monitor_end_operation(p->monitor, d->id);
  if (d->end_err == LS_OK) {
    emit(d, "game-download-finished", json_pack("{s:s, s:I}", "version", d->version,
                                                "bytes", (json_int_t)d->total));
    ls_installs_after_download(p, d->id); /* install, or update when installed */
  }
  else if (d->end_err == LS_ECANCELED)
    emit(d, "game-download-cancelled", NULL);
  else
    emit(d, "game-download-failed", json_pack("{s:s}", "error", d->end_diag));
  uv_close((uv_handle_t *)&d->progress, on_progress_closed);
}

/* Ends once nothing is in flight: commit or roll back on a worker, refresh
 * the game's local state, end the operation, report. */
static void maybe_end(download *d)
{
  /* The losing copies of the last chunks, like every request at a cancel
   * or failure, are not waited for: a silent peer must not hold the end. */
  bool complete = d->done_bytes == d->total;
  if (d->phase == PH_RUNNING && (d->end_err || complete) && d->fetches)
    abandon_fetches(d);
  if (d->phase != PH_RUNNING || d->fetches || d->jobs)
    return;
  if (!d->end_err && !all_done(d))
    return;
  d->phase = PH_ENDING;
  uv_timer_stop(&d->progress);
  if (d->closing) {
    /* Stopping: leave the journal; startup recovery discards the payload. */
    uv_close((uv_handle_t *)&d->progress, on_progress_closed);
    return;
  }
  if (!d->end_err)
    on_progress(&d->progress); /* a last progress event at 100% */
  if (queue_job(d, NULL, JOB_END, end_run) != LS_OK)
    after_refresh(d);
}

static void end_run(uv_work_t *work)
{
  job *j = work->data;
  download *d = j->d;
  if (!d->storage)
    return; /* begin failed and rolled itself back */
  if (d->end_err == LS_OK) {
    j->rc = ls_storage_commit(d->storage, &j->diag);
    if (j->rc != LS_OK)
      ls_storage_abort(d->storage, true, NULL);
  } else {
    j->rc = ls_storage_abort(d->storage, true, &j->diag);
  }
}

static void end_done(job *j)
{
  download *d = j->d;
  if (d->end_err == LS_OK && j->rc != LS_OK) {
    d->end_err = j->rc;
    snprintf(d->end_diag, sizeof d->end_diag, "%s", j->diag.text);
  } else if (d->end_err != LS_OK && j->rc != LS_OK) {
    ls_rt_log("download of %s: cleanup failed: %s", d->id, j->diag.text);
  }
  if (!d->p->monitor || ls_monitor_refresh(d->p->monitor, d->id, after_refresh, d) != LS_OK)
    after_refresh(d);
}

static void begin_run(uv_work_t *work)
{
  job *j = work->data;
  download *d = j->d;
  const ls_msg_game_files *gf = &d->manifest.game_files;
  ls_storage_file *files = calloc(gf->file_count ? gf->file_count : 1, sizeof *files);
  if (!files) {
    j->rc = ls_diag_set(&j->diag, LS_ENOMEM, "out of memory");
    return;
  }
  for (size_t i = 0; i < gf->file_count; i++)
    files[i] = (ls_storage_file){gf->files[i].path, gf->files[i].size};
  j->rc = ls_storage_begin(d->p->game_dir, d->id, d->version, files, gf->file_count,
                           &d->storage, &j->diag);
  free(files);
}

static void begin_done(job *j)
{
  download *d = j->d;
  if (j->rc != LS_OK) {
    d->end_err = j->rc;
    snprintf(d->end_diag, sizeof d->end_diag, "%s", j->diag.text);
    ls_rt_reply_error(d->p, d->tag, "download", "%s", j->diag.text);
    d->phase = PH_RUNNING;
    maybe_end(d); /* rolls back what begin left */
    return;
  }
  d->phase = PH_RUNNING;
  d->rate_ns = uv_hrtime();
  emit(d, "game-download-begin",
       json_pack("{s:s, s:I, s:I, s:i}", "version", d->version, "total_bytes",
                 (json_int_t)d->total, "files", (json_int_t)d->manifest.game_files.file_count,
                 "peers", d->nsources));
  ls_rt_reply_ok(d->p, d->tag, "download",
                 json_pack("{s:s, s:s, s:I, s:i}", "id", d->id, "version", d->version,
                           "total_bytes", (json_int_t)d->total, "peers", d->nsources));
  uv_timer_start(&d->progress, on_progress, PROGRESS_MS, PROGRESS_MS);
  pump(d);
  maybe_end(d);
}

static void job_done_common(uv_work_t *work, int status)
{
  job *j = work->data;
  download *d = j->d;
  (void)status;
  d->jobs--;
  enum job_kind kind = j->kind;
  if (kind == JOB_BEGIN)
    begin_done(j);
  else if (kind == JOB_CHECK)
    check_done(j);
  else
    end_done(j);
  bool ending = kind == JOB_END;
  free(j);
  if (!ending) {
    pump(d);
    maybe_end(d);
  }
}

/* ---- starting ------------------------------------------------------------ */

/* The sources: connected peers with the latest version whose file list
 * equals the first one found; the manifest is copied from it. */
static int choose_sources(download *d, ls_diag *diag)
{
  const char *ids[MAX_SOURCES];
  size_t n = ls_peerdb_peers_with(d->p->peerdb, d->id, d->version, ids, MAX_SOURCES);
  const ls_msg_game_files *ref = NULL;
  for (size_t i = 0; i < n; i++) {
    const ls_msg_game_files *gf = ls_peerdb_files(d->p->peerdb, ids[i], d->id);
    if (!gf || strcmp(gf->version, d->version) != 0 || !ls_links_conn_of(d->p, ids[i]))
      continue;
    ls_msg a = {.type = LS_MSG_GAME_FILES, .game_files = *gf};
    ls_msg b = {.type = LS_MSG_GAME_FILES, .game_files = ref ? *ref : *gf};
    if (ref && !ls_msg_equal(&a, &b))
      continue;
    ref = gf;
    snprintf(d->sources[d->nsources++].peer_id, LS_PROTO_PEER_ID_LEN + 1, "%s", ids[i]);
  }
  if (!ref)
    return ls_diag_set(diag, LS_ENOENT, "no file list of %s %s; run get %s first", d->id,
                       d->version, d->id);
  char *json;
  size_t len;
  ls_msg m = {.type = LS_MSG_GAME_FILES, .game_files = *ref};
  int rc = ls_msg_encode(&m, &json, &len, diag);
  if (rc == LS_OK) {
    rc = ls_msg_decode(json, len, LS_DIR_RESPONSE, &d->manifest, diag);
    free(json);
  }
  return rc;
}

/* DownloadGameFiles with chosen files: keep those (and version.ini, the
 * sentinel a download always commits). Unknown paths are refused. */
static int keep_chosen_files(download *d, const ls_command *cmd, ls_diag *diag)
{
  ls_msg_game_files *gf = &d->manifest.game_files;
  for (size_t i = 0; i < cmd->file_count; i++) {
    bool known = false;
    for (size_t k = 0; k < gf->file_count && !known; k++)
      known = strcmp(gf->files[k].path, cmd->files[i]) == 0;
    if (!known)
      return ls_diag_set(diag, LS_ENOENT, "%s is not a file of %s %s", cmd->files[i], d->id,
                         d->version);
  }
  size_t n = 0;
  for (size_t k = 0; k < gf->file_count; k++) {
    bool keep = strcmp(gf->files[k].path, "version.ini") == 0;
    for (size_t i = 0; i < cmd->file_count && !keep; i++)
      keep = strcmp(gf->files[k].path, cmd->files[i]) == 0;
    if (keep) {
      ls_msg_file_entry tmp = gf->files[n];
      gf->files[n++] = gf->files[k];
      gf->files[k] = tmp;
    }
  }
  for (size_t k = n; k < gf->file_count; k++) {
    free(gf->files[k].path);
    free(gf->files[k].sha256);
  }
  gf->file_count = n;
  return LS_OK;
}

static void start_download(ls_peer *p, const ls_command *cmd, const char *version)
{
  ls_diag diag;
  download *d = calloc(1, sizeof *d);
  if (!d || !(d->id = strdup(cmd->id)) || !(d->version = strdup(version))) {
    if (d) {
      free(d->id);
      free(d);
    }
    ls_rt_reply_error(p, cmd->tag, "download", "out of memory");
    return;
  }
  d->p = p;
  d->tag = cmd->tag;
  int rc = choose_sources(d, &diag);
  if (rc == LS_OK && cmd->files)
    rc = keep_chosen_files(d, cmd, &diag);
  if (rc == LS_OK)
    rc = build_chunks(d) == LS_OK ? LS_OK : ls_diag_set(&diag, LS_ENOMEM, "out of memory");
  if (rc != LS_OK) {
    ls_rt_reply_error(p, cmd->tag, "download", "%s", diag.text);
    ls_msg_clear(&d->manifest);
    free(d->chunks);
    free(d->id);
    free(d->version);
    free(d);
    return;
  }
  d->next = p->downloads;
  p->downloads = d;
  uv_timer_init(&p->loop, &d->progress);
  d->progress.data = d;
  ls_monitor_begin_operation(p->monitor, d->id);
  if (queue_job(d, NULL, JOB_BEGIN, begin_run) != LS_OK) {
    d->phase = PH_RUNNING;
    d->end_err = LS_EIO;
    snprintf(d->end_diag, sizeof d->end_diag, "cannot start a worker");
    ls_rt_reply_error(p, cmd->tag, "download", "%s", d->end_diag);
    maybe_end(d);
  }
}

void ls_downloads_start(ls_peer *p, const ls_command *cmd)
{
  if (!cmd->id || !ls_catalog_find(p->catalog, cmd->id)) {
    ls_rt_reply_error(p, cmd->tag, "download", "'%s' is not a game of the catalog",
                      cmd->id ? cmd->id : "");
    return;
  }
  if (ls_monitor_is_busy(p->monitor, cmd->id)) {
    ls_rt_reply_error(p, cmd->tag, "download", "%s is busy: an operation is already running",
                      cmd->id);
    return;
  }
  ls_peerdb_game_view view = ls_peerdb_view(p->peerdb, cmd->id);
  if (!view.latest_version) {
    ls_rt_reply_error(p, cmd->tag, "download", "no connected peer has %s", cmd->id);
    return;
  }
  start_download(p, cmd, view.latest_version);
}

void ls_downloads_cancel(ls_peer *p, const ls_command *cmd)
{
  download *d = cmd->id ? find_download(p, cmd->id) : NULL;
  if (!d || d->phase == PH_ENDING) {
    ls_rt_reply_error(p, cmd->tag, "cancel", "no download of %s is running",
                      cmd->id ? cmd->id : "");
    return;
  }
  if (!d->end_err) {
    d->end_err = LS_ECANCELED;
    snprintf(d->end_diag, sizeof d->end_diag, "cancelled");
  }
  abandon_fetches(d);
  ls_rt_reply_ok(p, cmd->tag, "cancel", json_pack("{s:s}", "id", d->id));
  maybe_end(d);
}

void ls_downloads_close_all(ls_peer *p)
{
  for (download *d = p->downloads; d; d = d->next) {
    d->closing = true;
    if (!d->end_err)
      d->end_err = LS_ECANCELED;
    abandon_fetches(d);
    maybe_end(d);
  }
}
