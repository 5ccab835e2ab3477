/* Owns the request server (node/serve.h): per-stream request state, the
 * per-connection count of bad requests, and the GetGame hashing jobs. */
#include "node/serve.h"

#include "core/error.h"
#include "core/fs.h"
#include "core/relpath.h"
#include "library/hashing.h"
#include "library/index.h"
#include "node/stream_handler.h"
#include "proto/proto.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define DEFAULT_MAX_BAD_REQUESTS 8
#define MAX_IGNORED_BYTES (64 * 1024) /* after an answer, before we reset */
#define APP_ERR_GARBAGE 0x10          /* connection closed: repeated garbage */
#define APP_ERR_REFUSED 0x11          /* stream reset: too many ignored bytes */

typedef struct conn_record {
  struct conn_record *next;
  ls_quic_conn *conn;
  unsigned bad;
} conn_record;

struct ls_serve {
  uv_loop_t *loop;
  const ls_catalog *catalog;
  ls_monitor *monitor;
  char *game_dir, *peer_id, *name;
  unsigned max_bad;
  int protocol_version;
  void (*on_hello)(void *user, ls_quic_conn *conn, const char *peer_id, const char *name);
  void *user;
  conn_record *conns;
  unsigned jobs;   /* hashing jobs not yet finished */
  unsigned generation; /* bumped by ls_serve_set_library */
  bool freeing;    /* ls_serve_free was called while jobs ran */
  ls_serve_stats stats;
};

typedef struct hash_job hash_job;

/* One request stream. Freed when the stream closes, or after its hashing
 * job when that ends later. */
typedef struct request {
  ls_stream_handler handler; /* first: the stream's user data */
  ls_serve *serve;
  ls_quic_stream *stream;    /* NULL once the stream is gone */
  ls_frame_reader reader;
  bool answered;
  size_t ignored;
  hash_job *job;
} request;

/* ---- opening payload files ------------------------------------------ */

static int open_walk(int root_fd, const char *path)
{
  char buf[LS_PROTO_MAX_PATH + 1];
  snprintf(buf, sizeof buf, "%s", path);
  int dir = fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
  char *save = NULL, *part = strtok_r(buf, "/", &save);
  while (dir >= 0 && part) {
    char *next = strtok_r(NULL, "/", &save);
    int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | (next ? O_DIRECTORY : 0);
    int fd = openat(dir, part, flags);
    int e = errno;
    close(dir);
    errno = e;
    if (!next)
      return fd;
    dir = fd;
    part = next;
  }
  return -1;
}

int ls_open_beneath(const char *game_dir, const char *id, const char *path, ls_diag *diag)
{
  ls_diag why;
  if (ls_relpath_check(path, &why) != LS_OK)
    return ls_diag_set(diag, LS_EINVAL, "cannot open %.300s: %s", path ? path : "(null)",
                       why.text);
  int gd = open(game_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int root = gd >= 0 ? openat(gd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
  int e = errno;
  if (gd >= 0)
    close(gd);
  if (root < 0)
    return ls_diag_errno(diag, e, "cannot open game root", id);
  /* O_NONBLOCK: opening a FIFO a peer names must not wait for a writer
   * (this runs on the loop); it is refused below as not a regular file. */
  struct open_how how = {
    .flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK,
    .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
  };
  int fd = (int)syscall(SYS_openat2, root, path, &how, sizeof how);
  if (fd < 0 && errno == ENOSYS)
    fd = open_walk(root, path);
  e = errno;
  close(root);
  if (fd < 0)
    return ls_diag_errno(diag, e, "cannot open", path);
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return ls_diag_set(diag, LS_EINVAL, "%s is not a regular file", path);
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

/* ---- answering ---------------------------------------------------------- */

static void release_frame(void *frame)
{
  free(frame);
}

/* Writes one response frame; fin ends the stream. */
static void send_msg(request *r, const ls_msg *msg, int fin)
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
  ls_quic_stream_write(r->stream, frame, len, fin, release_frame, frame);
}

static conn_record *conn_record_of(ls_serve *s, ls_quic_conn *conn)
{
  for (conn_record *c = s->conns; c; c = c->next)
    if (c->conn == conn)
      return c;
  conn_record *c = calloc(1, sizeof *c);
  if (c) {
    c->conn = conn;
    c->next = s->conns;
    s->conns = c;
  }
  return c;
}

/* Answers InvalidRequest. garbage: the request could not be decoded at
 * all; a connection that keeps sending garbage is closed. (A well-formed
 * request refused for its content, such as a stale path, does not count.) */
static void send_invalid(request *r, const char *reason, bool garbage)
{
  ls_msg msg = {.type = LS_MSG_INVALID_REQUEST};
  char text[LS_PROTO_MAX_REASON + 1];
  snprintf(text, sizeof text, "%s", reason);
  msg.invalid.reason = text;
  send_msg(r, &msg, 1);
  if (r->stream)
    ls_quic_stream_stop_sending(r->stream, APP_ERR_REFUSED); /* no more of this request */
  ls_serve *s = r->serve;
  s->stats.bad_requests++;
  if (!garbage || !r->stream)
    return;
  ls_quic_conn *conn = ls_quic_stream_conn(r->stream);
  conn_record *c = conn_record_of(s, conn);
  if (c && ++c->bad >= s->max_bad) {
    fprintf(stderr, "lanspread: closing connection from peer %.16s: %u bad requests\n",
            ls_quic_conn_peer_id(conn) ? ls_quic_conn_peer_id(conn) : "?", c->bad);
    s->stats.conns_dropped++;
    ls_quic_conn_close(conn, APP_ERR_GARBAGE);
  }
}

static void send_not_found(request *r, const char *id)
{
  ls_msg msg = {.type = LS_MSG_GAME_NOT_FOUND};
  msg.game.id = (char *)id;
  send_msg(r, &msg, 1);
}

/* The library entry of a servable game: catalog, downloaded, versioned. */
static const ls_local_game *servable_game(const ls_serve *s, const char *id)
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

static bool is_payload_file(const ls_local_game *g, const char *path)
{
  return bsearch(path, g->files, g->file_count, sizeof *g->files, compare_file_path) != NULL;
}

/* ---- Hello, Ping, ListGames --------------------------------------------- */

static void answer_hello(request *r, const ls_msg_hello *hello)
{
  ls_serve *s = r->serve;
  const char *tls_id = r->stream ? ls_quic_conn_peer_id(ls_quic_stream_conn(r->stream)) : NULL;
  char reason[160];
  if (hello->protocol_version != (uint32_t)s->protocol_version) {
    snprintf(reason, sizeof reason, "protocol version %u not supported; this peer speaks %d",
             hello->protocol_version, s->protocol_version);
    fprintf(stderr, "lanspread: refused peer %.16s: %s\n", hello->peer_id, reason);
    send_invalid(r, reason, false);
    return;
  }
  if (!tls_id || strcmp(tls_id, hello->peer_id) != 0) {
    send_invalid(r, "peer_id does not match the TLS certificate", false);
    return;
  }
  ls_msg msg = {.type = LS_MSG_HELLO_ACK};
  msg.hello.protocol_version = (uint32_t)s->protocol_version;
  snprintf(msg.hello.peer_id, sizeof msg.hello.peer_id, "%s", s->peer_id);
  msg.hello.name = s->name;
  send_msg(r, &msg, 1);
  if (s->on_hello && r->stream)
    s->on_hello(s->user, ls_quic_stream_conn(r->stream), hello->peer_id, hello->name);
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
  send_msg(r, &msg, 1);
  free(msg.game_list.games);
  free(sums);
}

/* ---- file bytes --------------------------------------------------------- */

#ifdef LS_TEST_HOOKS
/* Test builds only: serves the range with its first byte flipped, so that
 * tests can play a corrupt peer. */
static void send_corrupted(request *r, int fd, uint64_t offset, uint64_t length)
{
  uint8_t *buf = malloc(length ? length : 1);
  ssize_t n = buf ? ls_pread_full(fd, buf, length, offset) : LS_ENOMEM;
  close(fd);
  if (n != (ssize_t)length) {
    free(buf);
    ls_quic_stream_reset(r->stream, APP_ERR_REFUSED);
    return;
  }
  if (length)
    buf[0] ^= 0xff;
  ls_quic_stream_write(r->stream, buf, length, 1, release_frame, buf);
}
#endif

static void answer_file(request *r, const ls_msg_file_range *want, bool whole)
{
  ls_serve *s = r->serve;
  const ls_local_game *g = servable_game(s, want->id);
  if (!g) {
    send_not_found(r, want->id);
    return;
  }
  if (!is_payload_file(g, want->path)) {
    send_invalid(r, "path: not a payload file of this game", false);
    return;
  }
  ls_diag diag;
  int fd = ls_open_beneath(s->game_dir, want->id, want->path, &diag);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    if (fd >= 0)
      close(fd);
    send_invalid(r, "path: cannot be read", false);
    return;
  }
  uint64_t size = (uint64_t)st.st_size;
  ls_msg msg = {.type = LS_MSG_FILE_DATA};
  msg.range = (ls_msg_file_range){want->id, want->path, whole ? 0 : want->offset,
                                  whole ? size : want->length};
  if (msg.range.offset > size || msg.range.length > size - msg.range.offset) {
    close(fd);
    char reason[128];
    snprintf(reason, sizeof reason, "range past end of file (size %llu)",
             (unsigned long long)size);
    send_invalid(r, reason, false);
    return;
  }
  send_msg(r, &msg, 0);
#ifdef LS_TEST_HOOKS
  if (getenv("LS_TEST_CORRUPT_SERVE") && r->stream) { /* test-only fault switch */
    send_corrupted(r, fd, msg.range.offset, msg.range.length);
    return;
  }
#endif
  if (r->stream)
    ls_quic_stream_send_file(r->stream, fd, msg.range.offset, msg.range.length, 1);
  else
    close(fd);
}

/* ---- GetGame: manifest with chunk hashes -------------------------------- */

typedef struct job_file {
  char *path;
  ls_stamp cached_stamp;   /* from the index; ino 0 when none */
  uint8_t *cached;         /* cached hashes, or NULL */
  uint32_t cached_count;
  ls_stamp stamp;          /* what was hashed or checked */
  uint8_t *hashes;         /* fresh hashes, or NULL when the cache was used */
  uint32_t count;
} job_file;

struct hash_job {
  uv_work_t work;
  ls_serve *serve;
  request *req;            /* NULL once the request is gone */
  char *game_dir, *id, *version;
  unsigned generation;     /* the library it was started for */
  size_t count;
  job_file *files;
  uint8_t *frame;          /* the encoded GameFiles, or NULL on failure */
  size_t frame_len;
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

/* Loop, with the index: keep the fresh hashes for the next GetGame. */
static void store_hashes(void *user, ls_index *index)
{
  hash_job *job = user;
  ls_serve *s = job->serve;
  bool stored = false;
  for (size_t i = 0; index && i < job->count; i++) {
    job_file *f = &job->files[i];
    if (f->hashes && ls_index_set_hashes(index, job->id, f->path, f->stamp, LS_CHUNK_SIZE,
                                         f->hashes, f->count) == LS_OK)
      stored = true;
  }
  if (stored && !s->freeing)
    ls_monitor_index_changed(s->monitor);
  hash_job_free(job);
  if (--s->jobs == 0 && s->freeing)
    ls_serve_free(s);
}

static void free_request(request *r);

static void hash_job_done(uv_work_t *work, int status)
{
  hash_job *job = work->data;
  ls_serve *s = job->serve;
  request *r = job->req;
  for (size_t i = 0; i < job->count; i++) {
    if (job->files[i].hashes)
      s->stats.files_hashed++;
    else if (status == 0 && job->frame)
      s->stats.hash_cache_hits++;
  }
  if (r) {
    r->job = NULL;
    if (status == 0 && job->frame) {
      r->answered = true;
      if (r->stream)
        ls_quic_stream_write(r->stream, job->frame, job->frame_len, 1, release_frame, job->frame);
      else
        free(job->frame);
      job->frame = NULL;
    } else {
      fprintf(stderr, "lanspread: cannot serve %s: %s\n", job->id, job->diag.text);
      send_not_found(r, job->id);
    }
    if (!r->stream)
      free_request(r);
  }
  if (s->freeing || job->generation != s->generation) {
    store_hashes(job, NULL); /* nobody left to keep them for */
    return;
  }
  if (ls_monitor_with_index(s->monitor, store_hashes, job) != LS_OK)
    store_hashes(job, NULL);
}

/* Loop, with the index: copy the cached hashes into the job and start it. */
static void start_hash_job(void *user, ls_index *index)
{
  hash_job *job = user;
  const ls_index_game *e = index ? ls_index_find(index, job->id) : NULL;
  for (size_t i = 0; e && i < job->count; i++) {
    job_file *f = &job->files[i];
    for (size_t j = 0; j < e->file_count; j++) {
      const ls_index_file *x = &e->files[j];
      if (strcmp(x->path, f->path) != 0 || !x->hashes || x->chunk_size != LS_CHUNK_SIZE)
        continue;
      f->cached = malloc((size_t)x->chunk_count * LS_SHA256_SIZE + 1);
      if (f->cached) {
        memcpy(f->cached, x->hashes, (size_t)x->chunk_count * LS_SHA256_SIZE);
        f->cached_count = x->chunk_count;
        f->cached_stamp = x->stamp;
      }
      break;
    }
  }
  if (uv_queue_work(job->serve->loop, &job->work, hash_job_run, hash_job_done) != 0)
    hash_job_done(&job->work, UV_ECANCELED);
}

static hash_job *new_hash_job(request *r, const ls_local_game *g)
{
  hash_job *job = calloc(1, sizeof *job);
  if (!job)
    return NULL;
  job->work.data = job;
  job->serve = r->serve;
  job->req = r;
  job->generation = r->serve->generation;
  job->game_dir = strdup(r->serve->game_dir);
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

static void answer_get_game(request *r, const char *id)
{
  const ls_local_game *g = servable_game(r->serve, id);
  if (!g) {
    send_not_found(r, id);
    return;
  }
  hash_job *job = new_hash_job(r, g);
  if (!job) {
    ls_quic_stream_reset(r->stream, APP_ERR_REFUSED);
    return;
  }
  r->job = job;
  r->serve->jobs++;
  if (ls_monitor_with_index(r->serve->monitor, start_hash_job, job) != LS_OK)
    start_hash_job(job, NULL);
}

/* ---- reading the request ------------------------------------------------ */

static void dispatch(request *r, const ls_msg *msg)
{
  r->serve->stats.requests++;
  switch (msg->type) {
  case LS_MSG_HELLO: answer_hello(r, &msg->hello); break;
  case LS_MSG_PING: {
    ls_msg pong = {.type = LS_MSG_PONG};
    send_msg(r, &pong, 1);
    break;
  }
  case LS_MSG_LIST_GAMES: answer_list_games(r); break;
  case LS_MSG_GET_GAME: answer_get_game(r, msg->game.id); break;
  case LS_MSG_GET_GAME_FILE_DATA: {
    ls_msg_file_range whole = {msg->file.id, msg->file.path, 0, 0};
    answer_file(r, &whole, true);
    break;
  }
  case LS_MSG_GET_GAME_FILE_CHUNK: answer_file(r, &msg->range, false); break;
  default: send_invalid(r, "not a request", true); break;
  }
}

static void on_frame(request *r, size_t extra, int fin)
{
  ls_msg msg;
  ls_diag diag;
  if (extra > 0) {
    send_invalid(r, "bytes after the request frame", true);
    return;
  }
  if (ls_frame_reader_decode(&r->reader, &msg, &diag) != LS_OK) {
    send_invalid(r, diag.text, true);
    return;
  }
  (void)fin;
  dispatch(r, &msg);
  ls_msg_clear(&msg);
}

static void on_request_data(ls_stream_handler *h, ls_quic_stream *s, const uint8_t *data,
                            size_t len, int fin)
{
  request *r = (request *)h;
  (void)s;
  if (r->answered || r->job) {
    r->ignored += len;
    if (r->ignored > MAX_IGNORED_BYTES && r->stream)
      ls_quic_stream_reset(r->stream, APP_ERR_REFUSED);
    return;
  }
  size_t consumed = 0;
  ls_diag diag;
  int rc = ls_frame_reader_feed(&r->reader, data, len, &consumed, &diag);
  if (rc < 0)
    send_invalid(r, diag.text, true);
  else if (rc == 1)
    on_frame(r, len - consumed, fin);
  else if (fin)
    send_invalid(r, "truncated request frame", true);
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
  r->stream = NULL;
  if (!r->job)
    free_request(r); /* else the job's end frees it */
}

void ls_serve_accept(ls_serve *serve, ls_quic_stream *stream)
{
  request *r = calloc(1, sizeof *r);
  if (!r) {
    ls_quic_stream_reset(stream, APP_ERR_REFUSED);
    return;
  }
  r->handler.on_data = on_request_data;
  r->handler.on_closed = on_request_closed;
  r->serve = serve;
  r->stream = stream;
  ls_frame_reader_init(&r->reader, LS_DIR_REQUEST);
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
  s->on_hello = config->on_hello;
  s->protocol_version = config->protocol_version ? config->protocol_version : LS_PROTO_VERSION;
  s->user = config->user;
  *out = s;
  return LS_OK;
}

void ls_serve_free(ls_serve *s)
{
  if (!s)
    return;
  s->freeing = true;
  if (s->jobs > 0)
    return; /* the last job frees us */
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

int ls_serve_set_library(ls_serve *s, ls_monitor *monitor, const char *game_dir)
{
  char *copy = strdup(game_dir);
  if (!copy)
    return LS_ENOMEM;
  free(s->game_dir); /* hashing jobs keep their own copy of what they need */
  s->game_dir = copy;
  s->monitor = monitor;
  s->generation++;
  return LS_OK;
}

ls_serve_stats ls_serve_get_stats(const ls_serve *s)
{
  return s->stats;
}
