/* Owns the request server (node/serve.h): per-stream request state, the
 * per-connection accounts (bad requests, bytes of unfinished request frames,
 * bytes of answers not yet acknowledged), the sweep that resets stalled
 * requests, the GetGame jobs (merged, queued for the pool) and the cache of
 * encoded manifests. File answers are node/serve_files.c's. */
#include "node/serve_int.h"

#include "core/error.h"
#include "core/fs.h"
#include "library/hashing.h"
#include "library/index.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_MAX_BAD_REQUESTS 8
#define MAX_IGNORED_BYTES (64 * 1024) /* after an answer, before we reset */
#define SWEEP_MS 1000u                /* how often stalled requests are looked for */

/* One encoded GameFiles frame, shared by every stream that sends it and by
 * the cache; freed with its last reference. */
typedef struct manifest_file {
  char *path;
  ls_stamp stamp;            /* what was hashed or checked */
} manifest_file;

struct manifest {
  manifest *next;            /* in the cache */
  char *id, *version;
  unsigned generation;
  size_t count;
  manifest_file *files;
  uint8_t *frame;
  size_t len;
  unsigned refs;
};

/* ---- connection accounts ----------------------------------------------- */

static conn_record *find_conn_record(const ls_serve *s, const ls_quic_conn *conn)
{
  for (conn_record *c = s->conns; c; c = c->next)
    if (c->conn == conn)
      return c;
  return NULL;
}

static conn_record *conn_record_of(ls_serve *s, ls_quic_conn *conn)
{
  conn_record *c = find_conn_record(s, conn);
  if (c)
    return c;
  c = calloc(1, sizeof *c);
  if (c) {
    c->conn = conn;
    c->next = s->conns;
    s->conns = c;
  }
  return c;
}

const char *ls_serve_peer_of(const conn_record *c)
{
  const char *id = ls_quic_conn_peer_id(c->conn);
  return id ? id : "?";
}

/* ---- answering ---------------------------------------------------------- */

/* One buffer written to a stream, counted against its connection until the
 * peer has acknowledged it. */
typedef struct answer {
  ls_serve *serve;
  ls_quic_conn *conn;
  size_t len;
  void (*release)(void *arg);
  void *arg;
} answer;

static void answer_released(void *arg)
{
  answer *a = arg;
  conn_record *c = find_conn_record(a->serve, a->conn);
  if (c)
    c->answer_bytes -= a->len;
  a->release(a->arg);
  free(a);
}

/* Writes len bytes of data (released with release(arg)); fin ends the
 * stream. Every byte the server writes from memory goes through here. */
void ls_serve_write_answer(request *r, const void *data, size_t len, int fin,
                         void (*release)(void *arg), void *arg)
{
  answer *a = r->conn ? malloc(sizeof *a) : NULL;
  if (!a) {
    release(arg);
    if (r->stream)
      ls_quic_stream_reset(r->stream, APP_ERR_REFUSED);
    return;
  }
  *a = (answer){r->serve, r->conn->conn, len, release, arg};
  r->conn->answer_bytes += len;
  ls_quic_stream_write(r->stream, data, len, fin, answer_released, a);
}

/* The one rule of the answer budget: may a large answer of len bytes be
 * written on r's connection now? */
static bool answer_fits(const request *r, size_t len)
{
  return r->conn && r->conn->answer_bytes + len <= LS_SERVE_ANSWER_BYTES_PER_CONN;
}

void ls_serve_release_frame(void *frame)
{
  free(frame);
}

/* Writes one response frame; fin ends the stream. */
void ls_serve_send_msg(request *r, const ls_msg *msg, int fin)
{
  uint8_t *frame;
  size_t len;
  ls_diag diag;
  r->answered = true;
  if (!r->stream)
    return;
  if (ls_msg_encode_frame(msg, &frame, &len, &diag) != LS_OK) {
    fprintf(stderr, "lanspread: cannot encode %s: %s\n", ls_msg_type_name(msg->type), diag.text);
    ls_quic_stream_reset(r->stream, APP_ERR_REFUSED);
    return;
  }
  ls_serve_write_answer(r, frame, len, fin, ls_serve_release_frame, frame);
}

/* Answers InvalidRequest. garbage: the request could not be decoded at
 * all; a connection that keeps sending garbage is closed. (A well-formed
 * request refused for its content, such as a stale path, does not count.) */
void ls_serve_send_invalid(request *r, const char *reason, bool garbage)
{
  ls_msg msg = {.type = LS_MSG_INVALID_REQUEST};
  char text[LS_PROTO_MAX_REASON + 1];
  snprintf(text, sizeof text, "%s", reason);
  msg.invalid.reason = text;
  ls_serve_send_msg(r, &msg, 1);
  if (r->stream)
    ls_quic_stream_stop_sending(r->stream, APP_ERR_REFUSED); /* no more of this request */
  ls_serve *s = r->serve;
  s->stats.bad_requests++;
  conn_record *c = r->conn;
  if (!garbage || !r->stream || !c)
    return;
  if (++c->bad >= s->max_bad) {
    fprintf(stderr, "lanspread: closing connection from peer %.16s: %u bad requests\n",
            ls_serve_peer_of(c), c->bad);
    s->stats.conns_dropped++;
    ls_quic_conn_close(c->conn, APP_ERR_GARBAGE);
  }
}

/* A large answer over the connection's budget: refused, said once. */
static void send_busy(request *r)
{
  conn_record *c = r->conn;
  r->serve->stats.answers_refused++;
  if (c && !c->said_busy) {
    c->said_busy = true;
    fprintf(stderr, "lanspread: peer %.16s leaves over %u MiB of answers unread: refusing "
            "its large requests until it reads them\n", ls_serve_peer_of(c),
            LS_SERVE_ANSWER_BYTES_PER_CONN >> 20);
  }
  char reason[160];
  snprintf(reason, sizeof reason, "busy: %u MiB of answers on this connection are not "
           "acknowledged yet; ask again later", LS_SERVE_ANSWER_BYTES_PER_CONN >> 20);
  ls_serve_send_invalid(r, reason, false);
}

void ls_serve_send_not_found(request *r, const char *id)
{
  ls_msg msg = {.type = LS_MSG_GAME_NOT_FOUND};
  msg.game.id = (char *)id;
  ls_serve_send_msg(r, &msg, 1);
}

/* The library entry of a servable game: catalog, downloaded, versioned. */
const ls_local_game *ls_serve_find_game(const ls_serve *s, const char *id)
{
  const ls_local_game *g = ls_library_find(ls_monitor_library(s->monitor), id);
  if (!g || !g->downloaded || !g->version || !ls_catalog_find(s->catalog, id))
    return NULL;
  return g;
}

static int compare_file_path(const void *key, const void *elem)
{
  return strcmp(key, ((const ls_file_info *)elem)->path);
}

bool ls_serve_is_payload_file(const ls_local_game *g, const char *path)
{
  return bsearch(path, g->files, g->file_count, sizeof *g->files, compare_file_path) != NULL;
}

/* ---- Hello, Ping, ListGames --------------------------------------------- */

/* A Hello without this party's proof: refused, said once per connection. */
static void refuse_other_party(request *r, ls_quic_conn *conn, const ls_msg_hello *hello)
{
  ls_serve *s = r->serve;
  conn_record *c = r->conn;
  if (c && !c->said_party) {
    c->said_party = true;
    fprintf(stderr, "lanspread: refused peer %.16s (%s): %s\n", hello->peer_id,
            hello->name ? hello->name : "",
            hello->party[0] ? "it proves another party key" : "it has no party key");
  }
  ls_serve_send_invalid(r, LS_PROTO_REASON_OTHER_PARTY, false);
  if (s->on_other_party)
    s->on_other_party(s->user, conn, hello->peer_id, hello->name);
}

static void answer_hello(request *r, const ls_msg_hello *hello)
{
  ls_serve *s = r->serve;
  const char *tls_id = r->stream ? ls_quic_conn_peer_id(ls_quic_stream_conn(r->stream)) : NULL;
  char reason[160];
  if (hello->protocol_version != (uint32_t)s->protocol_version) {
    snprintf(reason, sizeof reason, "protocol version %u not supported; this peer speaks %d",
             hello->protocol_version, s->protocol_version);
    fprintf(stderr, "lanspread: refused peer %.16s: %s\n", hello->peer_id, reason);
    ls_serve_send_invalid(r, reason, false);
    return;
  }
  if (!tls_id || strcmp(tls_id, hello->peer_id) != 0) {
    ls_serve_send_invalid(r, "peer_id does not match the TLS certificate", false);
    return;
  }
  ls_quic_conn *conn = ls_quic_stream_conn(r->stream);
  ls_msg msg = {.type = LS_MSG_HELLO_ACK};
  if (s->has_party_key &&
      (!ls_party_proof_ok(&s->party_key, conn, LS_PARTY_HELLO, hello->party) ||
       ls_party_proof(&s->party_key, conn, LS_PARTY_ACK, msg.hello.party) != LS_OK)) {
    refuse_other_party(r, conn, hello);
    return;
  }
  msg.hello.protocol_version = (uint32_t)s->protocol_version;
  snprintf(msg.hello.peer_id, sizeof msg.hello.peer_id, "%s", s->peer_id);
  msg.hello.name = s->name;
  ls_serve_send_msg(r, &msg, 1);
  if (r->conn)
    r->conn->greeted = true;
  if (s->on_hello && r->stream)
    s->on_hello(s->user, conn, hello->peer_id, hello->name);
}

/* Sends a GameList frame, within the connection's answer budget. */
static void send_game_list(request *r, const ls_msg *msg)
{
  uint8_t *frame;
  size_t len;
  ls_diag diag;
  r->answered = true;
  if (ls_msg_encode_frame(msg, &frame, &len, &diag) != LS_OK) {
    fprintf(stderr, "lanspread: cannot encode GameList: %s\n", diag.text);
    ls_quic_stream_reset(r->stream, APP_ERR_REFUSED);
    return;
  }
  if (!answer_fits(r, len)) {
    free(frame);
    send_busy(r);
    return;
  }
  ls_serve_write_answer(r, frame, len, 1, ls_serve_release_frame, frame);
}

static void answer_list_games(request *r)
{
  ls_game_summary *sums;
  size_t n;
  if (ls_library_summaries(ls_monitor_library(r->serve->monitor), r->serve->catalog, &sums,
                           &n) != LS_OK) {
    ls_quic_stream_reset(r->stream, APP_ERR_REFUSED);
    return;
  }
  ls_msg msg = {.type = LS_MSG_GAME_LIST};
  msg.game_list.games = calloc(n ? n : 1, sizeof *msg.game_list.games);
  /* A catalog of more than LS_PROTO_MAX_GAMES games announces its first. */
  for (size_t i = 0; msg.game_list.games && i < n && msg.game_list.count < LS_PROTO_MAX_GAMES;
       i++) {
    if (!sums[i].version)
      continue; /* downloaded, version unknown: not announced */
    msg.game_list.games[msg.game_list.count++] = (ls_msg_game_info){
      (char *)sums[i].id, (char *)sums[i].name, (char *)sums[i].version, sums[i].size};
  }
  send_game_list(r, &msg);
  free(msg.game_list.games);
  free(sums);
}

/* ---- GetGame: the manifest cache ---------------------------------------- */

static void manifest_unref(manifest *m)
{
  if (!m || --m->refs > 0)
    return;
  for (size_t i = 0; i < m->count; i++)
    free(m->files[i].path);
  free(m->files);
  free(m->id);
  free(m->version);
  free(m->frame);
  free(m);
}

static void manifest_released(void *arg)
{
  manifest_unref(arg);
}

static void cache_remove(ls_serve *s, manifest *m)
{
  manifest *prev = NULL;
  for (manifest *x = s->cache; x; prev = x, x = x->next) {
    if (x != m)
      continue;
    if (prev)
      prev->next = m->next;
    else
      s->cache = m->next;
    if (s->cache_tail == m)
      s->cache_tail = prev;
    s->cache_bytes -= m->len;
    manifest_unref(m);
    return;
  }
}

static manifest *cache_find(const ls_serve *s, const char *id)
{
  for (manifest *m = s->cache; m; m = m->next)
    if (strcmp(m->id, id) == 0)
      return m;
  return NULL;
}

static void cache_clear(ls_serve *s)
{
  while (s->cache)
    cache_remove(s, s->cache);
}

/* Keeps m as the manifest of its game (replacing an older one), within
 * LS_SERVE_MANIFEST_CACHE_BYTES: the oldest go first. */
static void cache_put(ls_serve *s, manifest *m)
{
  manifest *old = cache_find(s, m->id);
  if (old)
    cache_remove(s, old);
  m->refs++;
  m->next = NULL;
  if (s->cache_tail)
    s->cache_tail->next = m;
  else
    s->cache = m;
  s->cache_tail = m;
  s->cache_bytes += m->len;
  while (s->cache != m && s->cache_bytes > LS_SERVE_MANIFEST_CACHE_BYTES)
    cache_remove(s, s->cache);
}

static int compare_index_path(const void *key, const void *elem)
{
  return strcmp(key, ((const ls_index_file *)elem)->path);
}

/* Does the index hold path with exactly this stamp? */
static bool index_has_stamp(const ls_index_game *e, const char *path, ls_stamp stamp)
{
  const ls_index_file *f =
    e ? bsearch(path, e->files, e->file_count, sizeof *e->files, compare_index_path) : NULL;
  return f && ls_stamp_equal(f->stamp, stamp);
}

/* The rule of the cache: a manifest still describes game g when the
 * library is the one it was built from, g has its version and its files,
 * and the index (which the monitor rescans on every change to the root)
 * holds every file with the stamp that was hashed. */
static bool manifest_is_current(const ls_serve *s, const manifest *m, const ls_local_game *g,
                                const ls_index *index)
{
  const ls_index_game *e = index ? ls_index_find(index, m->id) : NULL;
  if (!e || !g || m->generation != s->generation || strcmp(m->version, g->version) != 0 ||
      m->count != g->file_count)
    return false;
  for (size_t i = 0; i < m->count; i++)
    if (strcmp(m->files[i].path, g->files[i].path) != 0 || m->files[i].stamp.size !=
        g->files[i].size || !index_has_stamp(e, m->files[i].path, m->files[i].stamp))
      return false;
  return true;
}

/* ---- GetGame: jobs ------------------------------------------------------ */

typedef struct job_file {
  char *path;
  ls_stamp cached_stamp;   /* from the index; ino 0 when none */
  uint8_t *cached;         /* cached hashes, or NULL */
  uint32_t cached_count;
  ls_stamp stamp;          /* what was hashed or checked */
  uint8_t *hashes;         /* fresh hashes, or NULL when the cache was used */
  uint32_t count;
} job_file;

/* One manifest being built for every request that waits for it. */
struct hash_job {
  uv_work_t work;
  ls_serve *serve;
  hash_job *next;          /* in serve->job_list */
  hash_job *next_queued;   /* in serve->queue */
  request *waiters;        /* linked by next_waiter */
  char *game_dir, *id, *version;
  unsigned generation;     /* the library it was started for */
  size_t count;
  job_file *files;
  uint8_t *frame;          /* the encoded GameFiles, or NULL on failure */
  size_t frame_len;
  manifest *result;        /* once finished: the manifest, or NULL on failure */
  bool finished;
  ls_diag diag;
};

static void hash_job_free(hash_job *job)
{
  for (size_t i = 0; i < job->count; i++) {
    free(job->files[i].path);
    free(job->files[i].cached);
    free(job->files[i].hashes);
  }
  free(job->files);
  free(job->game_dir);
  free(job->id);
  free(job->version);
  free(job->frame);
  manifest_unref(job->result);
  free(job);
}

/* Worker: stamp every file, hash the ones the cache cannot vouch for. */
static int hash_one(hash_job *job, job_file *f)
{
  int fd = ls_open_beneath(job->game_dir, job->id, f->path, &job->diag);
  if (fd < 0)
    return fd;
  struct stat st;
  int rc = fstat(fd, &st) == 0 ? LS_OK : LS_EIO;
  if (rc == LS_OK && f->cached && ls_stamp_equal(f->cached_stamp, ls_stamp_of(&st))) {
    f->stamp = f->cached_stamp;
  } else if (rc == LS_OK) {
    rc = ls_hash_file_chunks(fd, LS_CHUNK_SIZE, &f->stamp, &f->hashes, &f->count, &job->diag);
  }
  close(fd);
  return rc;
}

static int encode_manifest(hash_job *job)
{
  ls_msg msg = {.type = LS_MSG_GAME_FILES};
  ls_msg_game_files *gf = &msg.game_files;
  gf->id = job->id;
  gf->version = job->version;
  gf->chunk_size = LS_CHUNK_SIZE;
  gf->file_count = job->count;
  gf->files = calloc(job->count ? job->count : 1, sizeof *gf->files);
  if (!gf->files)
    return LS_ENOMEM;
  for (size_t i = 0; i < job->count; i++) {
    job_file *f = &job->files[i];
    gf->files[i] = (ls_msg_file_entry){f->path, f->stamp.size, f->hashes ? f->count : f->cached_count,
                                       f->hashes ? f->hashes : f->cached};
  }
  int rc = ls_msg_encode_frame(&msg, &job->frame, &job->frame_len, &job->diag);
  free(gf->files);
  return rc;
}

static void hash_job_run(uv_work_t *work)
{
  hash_job *job = work->data;
  int rc = LS_OK;
  for (size_t i = 0; i < job->count && rc == LS_OK; i++)
    rc = hash_one(job, &job->files[i]);
  if (rc == LS_OK)
    rc = encode_manifest(job);
  if (rc != LS_OK) {
    free(job->frame);
    job->frame = NULL;
  }
}

/* The job's frame and stamps as a shared manifest (one reference). */
static manifest *manifest_of_job(hash_job *job)
{
  manifest *m = calloc(1, sizeof *m);
  bool ok = m && (m->files = calloc(job->count ? job->count : 1, sizeof *m->files)) &&
            (m->id = strdup(job->id)) && (m->version = strdup(job->version));
  for (size_t i = 0; ok && i < job->count; i++) {
    ok = (m->files[i].path = strdup(job->files[i].path)) != NULL;
    m->files[i].stamp = job->files[i].stamp;
    m->count = i + 1;
  }
  if (m)
    m->refs = 1;
  if (!ok) {
    manifest_unref(m);
    return NULL;
  }
  m->generation = job->generation;
  m->frame = job->frame;
  m->len = job->frame_len;
  job->frame = NULL;
  return m;
}

static void free_request(request *r);

/* Answers one request with the manifest (shared, not copied), within its
 * connection's answer budget. */
static void send_manifest(request *r, manifest *m)
{
  r->answered = true;
  if (!r->stream)
    return;
  if (!answer_fits(r, m->len)) {
    send_busy(r);
    return;
  }
  m->refs++;
  ls_serve_write_answer(r, m->frame, m->len, 1, manifest_released, m);
}

/* Answers r from the finished job: its manifest, or GameNotFound. */
static void answer_from_job(request *r, hash_job *job)
{
  r->job = NULL;
  if (job->result)
    send_manifest(r, job->result);
  else
    ls_serve_send_not_found(r, job->id);
  if (!r->stream)
    free_request(r);
}

static void add_waiter(hash_job *job, request *r)
{
  if (job->finished) {
    answer_from_job(r, job);
    return;
  }
  r->job = job;
  r->next_waiter = job->waiters;
  job->waiters = r;
}

/* The job is done (result set, or NULL on failure): every waiter gets it. */
static void finish_job(hash_job *job, manifest *result)
{
  job->finished = true;
  job->result = result;
  if (!result && job->waiters && !job->serve->freeing)
    fprintf(stderr, "lanspread: cannot serve %s: %s\n", job->id, job->diag.text);
  while (job->waiters) {
    request *r = job->waiters;
    job->waiters = r->next_waiter;
    answer_from_job(r, job);
  }
}

static void serve_release(ls_serve *s);

/* Unlinks and frees a job that has answered its waiters. */
static void drop_job(hash_job *job)
{
  ls_serve *s = job->serve;
  for (hash_job **p = &s->job_list; *p; p = &(*p)->next)
    if (*p == job) {
      *p = job->next;
      break;
    }
  hash_job_free(job);
  s->jobs--;
  serve_release(s);
}

static void hash_job_done(uv_work_t *work, int status);

/* Starts queued jobs while the pool has room for them. */
static void pump_jobs(ls_serve *s)
{
  while (!s->freeing && s->queue && s->running < LS_SERVE_MAX_HASH_JOBS) {
    hash_job *job = s->queue;
    s->queue = job->next_queued;
    if (!s->queue)
      s->queue_tail = NULL;
    s->running++;
    s->stats.hash_jobs++;
    if (uv_queue_work(s->loop, &job->work, hash_job_run, hash_job_done) != 0) {
      s->running--;
      finish_job(job, NULL);
      drop_job(job);
    }
  }
}

static void queue_job(hash_job *job)
{
  ls_serve *s = job->serve;
  job->next_queued = NULL;
  if (s->queue_tail)
    s->queue_tail->next_queued = job;
  else
    s->queue = job;
  s->queue_tail = job;
  pump_jobs(s);
}

/* Loop, with the index: keep the fresh hashes for the next GetGame, and
 * the manifest when the index vouches for every file it describes. */
static void store_hashes(void *user, ls_index *index)
{
  hash_job *job = user;
  ls_serve *s = job->serve;
  bool stored = false, current = index && job->result;
  const ls_index_game *e = index ? ls_index_find(index, job->id) : NULL;
  for (size_t i = 0; index && i < job->count; i++) {
    job_file *f = &job->files[i];
    if (f->hashes && ls_index_set_hashes(index, job->id, f->path, f->stamp, LS_CHUNK_SIZE,
                                         f->hashes, f->count) == LS_OK)
      stored = true;
    current = current && index_has_stamp(e, f->path, f->stamp);
  }
  if (stored && !s->freeing)
    ls_monitor_index_changed(s->monitor);
  if (current && !s->freeing && job->generation == s->generation)
    cache_put(s, job->result);
  drop_job(job);
}

static void say_hashed(const hash_job *job, unsigned hashed)
{
  if (hashed)
    fprintf(stderr, "lanspread: hashing %s: %u of %zu files hashed for its file list\n",
            job->id, hashed, job->count);
}

static void hash_job_done(uv_work_t *work, int status)
{
  hash_job *job = work->data;
  ls_serve *s = job->serve;
  unsigned hashed = 0;
  s->running--;
  for (size_t i = 0; i < job->count; i++) {
    if (job->files[i].hashes)
      hashed++;
    else if (status == 0 && job->frame)
      s->stats.hash_cache_hits++;
  }
  s->stats.files_hashed += hashed;
  say_hashed(job, hashed);
  finish_job(job, status == 0 && job->frame ? manifest_of_job(job) : NULL);
  pump_jobs(s);
  if (s->freeing || job->generation != s->generation ||
      ls_monitor_with_index(s->monitor, store_hashes, job) != LS_OK)
    store_hashes(job, NULL); /* nobody left to keep them for */
}

/* Copies the index's hashes of the job's files into it, for the worker. */
static void copy_cached_hashes(hash_job *job, const ls_index *index)
{
  const ls_index_game *e = index ? ls_index_find(index, job->id) : NULL;
  for (size_t i = 0; e && i < job->count; i++) {
    job_file *f = &job->files[i];
    const ls_index_file *x =
      bsearch(f->path, e->files, e->file_count, sizeof *e->files, compare_index_path);
    if (!x || !x->hashes || x->chunk_size != LS_CHUNK_SIZE)
      continue;
    f->cached = malloc((size_t)x->chunk_count * LS_SHA256_SIZE + 1);
    if (f->cached) {
      memcpy(f->cached, x->hashes, (size_t)x->chunk_count * LS_SHA256_SIZE);
      f->cached_count = x->chunk_count;
      f->cached_stamp = x->stamp;
    }
  }
}

/* Loop, with the index: answer from the cache when it is current, else
 * copy the cached hashes into the job and queue it for the pool. */
static void begin_job(void *user, ls_index *index)
{
  hash_job *job = user;
  ls_serve *s = job->serve;
  if (s->freeing) {
    finish_job(job, NULL);
    drop_job(job);
    return;
  }
  manifest *m = cache_find(s, job->id);
  const ls_local_game *g = ls_serve_find_game(s, job->id);
  if (m && job->generation == s->generation && manifest_is_current(s, m, g, index)) {
    s->stats.manifest_hits++;
    m->refs++;
    finish_job(job, m);
    drop_job(job);
    return;
  }
  if (m)
    cache_remove(s, m); /* the root changed: hash it again */
  copy_cached_hashes(job, index);
  queue_job(job);
}

static hash_job *new_hash_job(ls_serve *s, const ls_local_game *g)
{
  hash_job *job = calloc(1, sizeof *job);
  if (!job)
    return NULL;
  job->work.data = job;
  job->serve = s;
  job->generation = s->generation;
  job->game_dir = strdup(s->game_dir);
  job->id = strdup(g->id);
  job->version = strdup(g->version);
  job->files = calloc(g->file_count ? g->file_count : 1, sizeof *job->files);
  bool ok = job->game_dir && job->id && job->version && job->files;
  for (size_t i = 0; ok && i < g->file_count; i++) {
    ok = (job->files[i].path = strdup(g->files[i].path)) != NULL;
    job->count = i + 1;
  }
  if (!ok) {
    hash_job_free(job);
    return NULL;
  }
  return job;
}

/* A job under way (or finished with a manifest, not yet dropped) for the
 * same version of the same game in the same library. */
static hash_job *find_job(const ls_serve *s, const ls_local_game *g)
{
  for (hash_job *job = s->job_list; job; job = job->next)
    if (job->generation == s->generation && strcmp(job->id, g->id) == 0 &&
        strcmp(job->version, g->version) == 0 && (!job->finished || job->result))
      return job;
  return NULL;
}

static void answer_get_game(request *r, const char *id)
{
  ls_serve *s = r->serve;
  const ls_local_game *g = ls_serve_find_game(s, id);
  if (!g) {
    ls_serve_send_not_found(r, id);
    return;
  }
  if (!answer_fits(r, 0)) {
    send_busy(r);
    return;
  }
  hash_job *job = find_job(s, g);
  if (job) {
    s->stats.jobs_merged++;
    add_waiter(job, r);
    return;
  }
  job = new_hash_job(s, g);
  if (!job) {
    ls_quic_stream_reset(r->stream, APP_ERR_REFUSED);
    return;
  }
  add_waiter(job, r);
  job->next = s->job_list;
  s->job_list = job;
  s->jobs++;
  if (ls_monitor_with_index(s->monitor, begin_job, job) != LS_OK)
    begin_job(job, NULL);
}

/* ---- reading the request ------------------------------------------------ */

static void dispatch(request *r, const ls_msg *msg)
{
  r->serve->stats.requests++;
  if (msg->type != LS_MSG_HELLO && !(r->conn && r->conn->greeted)) {
    ls_serve_send_invalid(r, LS_PROTO_REASON_HELLO_FIRST, false);
    return;
  }
  switch (msg->type) {
  case LS_MSG_HELLO: answer_hello(r, &msg->hello); break;
  case LS_MSG_PING: {
    ls_msg pong = {.type = LS_MSG_PONG};
    ls_serve_send_msg(r, &pong, 1);
    break;
  }
  case LS_MSG_LIST_GAMES: answer_list_games(r); break;
  case LS_MSG_GET_GAME: answer_get_game(r, msg->game.id); break;
  case LS_MSG_GET_GAME_FILE_DATA: {
    ls_msg_file_range whole = {msg->file.id, msg->file.path, 0, 0};
    ls_serve_answer_file(r, &whole, true);
    break;
  }
  case LS_MSG_GET_GAME_FILE_CHUNK: ls_serve_answer_file(r, &msg->range, false); break;
  default: ls_serve_send_invalid(r, "not a request", true); break;
  }
}

static void on_frame(request *r, size_t extra)
{
  ls_msg msg;
  ls_diag diag;
  if (extra > 0) {
    ls_serve_send_invalid(r, "bytes after the request frame", true);
    return;
  }
  if (ls_frame_reader_decode(&r->reader, &msg, &diag) != LS_OK) {
    ls_serve_send_invalid(r, diag.text, true);
    return;
  }
  dispatch(r, &msg);
  ls_msg_clear(&msg);
}

/* Counts what r's unfinished frame holds against its connection. */
static void update_held(request *r)
{
  size_t now = r->reading ? ls_frame_reader_held(&r->reader) : 0;
  if (r->conn)
    r->conn->request_bytes = r->conn->request_bytes - r->held + now;
  r->held = now;
}

/* r's frame is finished, failed or abandoned: it holds nothing any more. */
static void stop_reading(request *r)
{
  if (!r->reading)
    return;
  ls_serve *s = r->serve;
  if (r->prev)
    r->prev->next = r->next;
  else
    s->reading = r->next;
  if (r->next)
    r->next->prev = r->prev;
  else
    s->reading_tail = r->prev;
  r->prev = r->next = NULL;
  r->reading = false;
  update_held(r);
}

static void start_reading(request *r)
{
  ls_serve *s = r->serve;
  r->reading = true;
  r->progress_ms = uv_now(s->loop);
  r->prev = s->reading_tail;
  if (s->reading_tail)
    s->reading_tail->next = r;
  else
    s->reading = r;
  s->reading_tail = r;
}

/* Resets an unfinished request: over the connection's cap, or stalled. */
static void reset_unfinished(request *r)
{
  stop_reading(r);
  r->answered = true;
  r->serve->stats.requests_reset++;
  ls_quic_stream_reset(r->stream, APP_ERR_REFUSED);
}

/* The one rule of the request cap: the stream whose bytes take its
 * connection's unfinished frames over LS_SERVE_REQUEST_BYTES_PER_CONN is
 * reset (the others keep their chance to finish). Said once per
 * connection. */
static bool over_request_cap(request *r)
{
  conn_record *c = r->conn;
  if (!c || c->request_bytes <= LS_SERVE_REQUEST_BYTES_PER_CONN)
    return false;
  if (!c->said_over) {
    c->said_over = true;
    fprintf(stderr, "lanspread: peer %.16s holds over %u KiB in unfinished requests: resetting "
            "the streams that add to it\n", ls_serve_peer_of(c), LS_SERVE_REQUEST_BYTES_PER_CONN >> 10);
  }
  reset_unfinished(r);
  return true;
}

static void on_request_data(ls_stream_handler *h, ls_quic_stream *s, const uint8_t *data,
                            size_t len, int fin)
{
  request *r = (request *)h;
  (void)s;
  if (r->answered || r->job || !r->reading) {
    r->ignored += len;
    if (r->ignored > MAX_IGNORED_BYTES && r->stream)
      ls_quic_stream_reset(r->stream, APP_ERR_REFUSED);
    return;
  }
  size_t consumed = 0;
  ls_diag diag;
  int rc = ls_frame_reader_feed(&r->reader, data, len, &consumed, &diag);
  if (rc != 0 || fin)
    stop_reading(r);
  if (rc < 0) {
    ls_serve_send_invalid(r, diag.text, true);
  } else if (rc == 1) {
    on_frame(r, len - consumed);
    ls_frame_reader_free(&r->reader); /* the request is decoded: its bytes go */
  } else if (fin) {
    ls_serve_send_invalid(r, "truncated request frame", true);
  } else {
    if (consumed)
      r->progress_ms = uv_now(r->serve->loop);
    update_held(r);
    over_request_cap(r);
  }
}

/* Timer: resets the requests whose frame has not grown for
 * LS_SERVE_REQUEST_STALL_MS (oldest first; said once per connection). */
static void sweep_stalled(uv_timer_t *t)
{
  ls_serve *s = t->data;
  uint64_t now = uv_now(s->loop);
  request *next;
  for (request *r = s->reading; r; r = next) {
    next = r->next;
    if (now - r->progress_ms < LS_SERVE_REQUEST_STALL_MS)
      continue;
    conn_record *c = r->conn;
    if (c && !c->said_stalled) {
      c->said_stalled = true;
      fprintf(stderr, "lanspread: peer %.16s left a request unfinished for %u s: resetting "
              "its stalled requests\n", ls_serve_peer_of(c), LS_SERVE_REQUEST_STALL_MS / 1000);
    }
    reset_unfinished(r);
  }
  ls_serve_sweep_files(s, now);
}

static void free_request(request *r)
{
  ls_frame_reader_free(&r->reader);
  free(r);
}

static void on_request_closed(ls_stream_handler *h, ls_quic_stream *s, int err)
{
  request *r = (request *)h;
  (void)s;
  (void)err;
  stop_reading(r);
  ls_serve_file_closed(r);
  r->stream = NULL;
  r->conn = NULL;
  if (!r->job)
    free_request(r); /* else the job's end frees it */
}

static int start_sweep(ls_serve *s)
{
  if (s->sweep_on)
    return LS_OK;
  if (uv_timer_init(s->loop, &s->sweep) != 0)
    return LS_ENOMEM;
  s->sweep.data = s;
  s->sweep_on = true;
  uv_timer_start(&s->sweep, sweep_stalled, SWEEP_MS, SWEEP_MS);
  uv_unref((uv_handle_t *)&s->sweep); /* never what keeps the loop alive */
  return LS_OK;
}

void ls_serve_accept(ls_serve *serve, ls_quic_stream *stream)
{
  request *r = calloc(1, sizeof *r);
  if (r)
    r->conn = conn_record_of(serve, ls_quic_stream_conn(stream));
  if (!r || !r->conn || start_sweep(serve) != LS_OK) {
    free(r);
    ls_quic_stream_reset(stream, APP_ERR_REFUSED);
    return;
  }
  r->handler.on_data = on_request_data;
  r->handler.on_closed = on_request_closed;
  r->serve = serve;
  r->stream = stream;
  ls_frame_reader_init(&r->reader, LS_DIR_REQUEST);
  start_reading(r);
  ls_quic_stream_set_user(stream, &r->handler);
}

/* ---- lifetime ------------------------------------------------------------ */

void ls_serve_conn_closed(ls_serve *serve, ls_quic_conn *conn)
{
  for (conn_record **p = &serve->conns; *p; p = &(*p)->next)
    if ((*p)->conn == conn) {
      conn_record *c = *p;
      *p = c->next;
      free(c);
      return;
    }
}

int ls_serve_new(const ls_serve_config *config, ls_serve **out, ls_diag *diag)
{
  ls_serve *s = calloc(1, sizeof *s);
  if (s) {
    s->game_dir = strdup(config->game_dir);
    s->peer_id = strdup(config->peer_id);
    s->name = strdup(config->name ? config->name : "");
  }
  if (!s || !s->game_dir || !s->peer_id || !s->name) {
    if (s) {
      free(s->game_dir);
      free(s->peer_id);
      free(s->name);
    }
    free(s);
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  }
  s->loop = config->loop;
  s->catalog = config->catalog;
  s->monitor = config->monitor;
  s->max_bad = config->max_bad_requests ? config->max_bad_requests : DEFAULT_MAX_BAD_REQUESTS;
  s->max_files = ls_serve_files_cap();
  s->on_hello = config->on_hello;
  s->on_other_party = config->on_other_party;
  if (config->party_key) {
    s->has_party_key = true;
    s->party_key = *config->party_key;
  }
  s->protocol_version = config->protocol_version ? config->protocol_version : LS_PROTO_VERSION;
  s->user = config->user;
  *out = s;
  return LS_OK;
}

static void on_sweep_closed(uv_handle_t *h)
{
  ls_serve *s = h->data;
  s->sweep_on = false;
  serve_release(s);
}

/* Frees s once it is being freed and nothing refers to it any more: no
 * job and no timer. */
static void serve_release(ls_serve *s)
{
  if (!s->freeing || s->jobs > 0 || s->sweep_on)
    return;
  cache_clear(s);
  while (s->conns) {
    conn_record *c = s->conns;
    s->conns = c->next;
    free(c);
  }
  free(s->game_dir);
  free(s->peer_id);
  free(s->name);
  free(s);
}

/* Jobs that never reached the pool: nobody waits for them any more. */
static void drop_queued_jobs(ls_serve *s)
{
  while (s->queue) {
    hash_job *job = s->queue;
    s->queue = job->next_queued;
    finish_job(job, NULL);
    drop_job(job);
  }
  s->queue_tail = NULL;
}

void ls_serve_free(ls_serve *s)
{
  if (!s || s->freeing)
    return;
  s->freeing = true;
  s->jobs++; /* held while the queue drains, so that s stays */
  drop_queued_jobs(s);
  s->jobs--;
  if (s->sweep_on && !s->sweep_closing) {
    s->sweep_closing = true;
    uv_close((uv_handle_t *)&s->sweep, on_sweep_closed);
  }
  serve_release(s); /* or the last job, or the timer's close, frees us */
}

int ls_serve_set_library(ls_serve *s, ls_monitor *monitor, const char *game_dir)
{
  char *copy = strdup(game_dir);
  if (!copy)
    return LS_ENOMEM;
  free(s->game_dir); /* hashing jobs keep their own copy of what they need */
  s->game_dir = copy;
  s->monitor = monitor;
  s->generation++;
  cache_clear(s); /* manifests of the old library */
  return LS_OK;
}

ls_serve_stats ls_serve_get_stats(const ls_serve *s)
{
  return s->stats;
}
