/* Owns the file answers of the request server (node/serve.h): opening a
 * payload file beneath its game root, sending file bytes, and the file
 * slots (how many files one connection and the server send at once, and
 * the sweep that resets a file answer its reader stopped taking). */
#include "node/serve_int.h"

#include "core/error.h"
#include "core/fs.h"
#include "core/relpath.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

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

/* ---- file slots ----------------------------------------------------------- */

unsigned ls_serve_files_cap(void)
{
  struct rlimit rl;
  rlim_t soft = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
  rlim_t cap = soft / 2; /* the other half: downloads, installs, sockets */
  if (cap > LS_SERVE_FILES_MAX)
    cap = LS_SERVE_FILES_MAX;
  return cap < 16 ? 16 : (unsigned)cap;
}

/* The one rule of the file slots: a connection sends at most
 * LS_SERVE_FILES_PER_CONN files at once and the server at most
 * s->max_files; a request over either waits in order for a slot (a
 * well-behaved client asks for a few chunks at a time and never waits). */
static bool file_slot_free(const request *r)
{
  return r->conn && r->conn->files < LS_SERVE_FILES_PER_CONN &&
         r->serve->files < r->serve->max_files;
}

static void say_waiting(request *r)
{
  conn_record *c = r->conn;
  bool conn_full = c->files >= LS_SERVE_FILES_PER_CONN;
  if (c->said_files)
    return;
  c->said_files = true;
  fprintf(stderr, "lanspread: peer %.16s asks for more files at once than %s (%u): the "
          "rest wait for a slot\n", ls_serve_peer_of(c),
          conn_full ? "one connection may" : "this server sends",
          conn_full ? LS_SERVE_FILES_PER_CONN : r->serve->max_files);
}

static void forget_want(request *r)
{
  free(r->want.id);
  free(r->want.path);
  r->want.id = r->want.path = NULL;
}

/* Queues the request with copies of what it asks for. */
static void enqueue(request *r, const ls_msg_file_range *want, bool whole)
{
  ls_serve *s = r->serve;
  r->want = *want;
  r->want.id = strdup(want->id);
  r->want.path = strdup(want->path);
  r->want_whole = whole;
  if (!r->want.id || !r->want.path) {
    forget_want(r);
    ls_quic_stream_reset(r->stream, APP_ERR_REFUSED);
    return;
  }
  say_waiting(r);
  r->queued = true;
  r->queue_next = NULL;
  if (s->file_queue_tail)
    s->file_queue_tail->queue_next = r;
  else
    s->file_queue = r;
  s->file_queue_tail = r;
}

static void dequeue(request *r)
{
  ls_serve *s = r->serve;
  request *prev = NULL;
  for (request *q = s->file_queue; q && q != r; q = q->queue_next)
    prev = q;
  if (prev)
    prev->queue_next = r->queue_next;
  else
    s->file_queue = r->queue_next;
  if (s->file_queue_tail == r)
    s->file_queue_tail = prev;
  r->queued = false;
}

static void send_file_bytes(request *r, const ls_msg_file_range *want, bool whole);

/* A slot came free: the oldest waiting requests that fit now start. */
static void start_waiting(ls_serve *s)
{
  request *next;
  for (request *r = s->file_queue; r && s->files < s->max_files; r = next) {
    next = r->queue_next;
    if (!file_slot_free(r))
      continue;
    dequeue(r);
    send_file_bytes(r, &r->want, r->want_whole);
    forget_want(r);
  }
}

static void start_sending(request *r)
{
  ls_serve *s = r->serve;
  r->sending = true;
  r->file_acked = 0;
  r->file_progress_ms = uv_now(s->loop);
  r->send_prev = NULL;
  r->send_next = s->sending;
  if (s->sending)
    s->sending->send_prev = r;
  s->sending = r;
  r->conn->files++;
  s->files++;
}

void ls_serve_file_closed(request *r)
{
  ls_serve *s = r->serve;
  if (r->queued) {
    dequeue(r);
    forget_want(r);
  }
  if (!r->sending)
    return;
  r->sending = false;
  if (r->send_prev)
    r->send_prev->send_next = r->send_next;
  else
    s->sending = r->send_next;
  if (r->send_next)
    r->send_next->send_prev = r->send_prev;
  if (r->conn)
    r->conn->files--;
  s->files--;
  start_waiting(s);
}

void ls_serve_sweep_files(ls_serve *s, uint64_t now_ms)
{
  request *next;
  for (request *r = s->sending; r; r = next) {
    next = r->send_next;
    uint64_t acked = r->stream ? ls_quic_stream_acked(r->stream) : 0;
    if (acked != r->file_acked) {
      r->file_acked = acked;
      r->file_progress_ms = now_ms;
      continue;
    }
    if (now_ms - r->file_progress_ms < LS_SERVE_FILE_STALL_MS || !r->stream)
      continue;
    conn_record *c = r->conn;
    if (c && !c->said_file_stall) {
      c->said_file_stall = true;
      fprintf(stderr, "lanspread: peer %.16s read nothing of a file answer for %u s: "
              "resetting its stalled file answers\n", ls_serve_peer_of(c),
              LS_SERVE_FILE_STALL_MS / 1000);
    }
    s->stats.requests_reset++;
    ls_serve_file_closed(r); /* its slot is free now, whatever the reset takes */
    ls_quic_stream_reset(r->stream, APP_ERR_REFUSED);
  }
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
  ls_serve_write_answer(r, buf, length, 1, ls_serve_release_frame, buf);
}
#endif

void ls_serve_answer_file(request *r, const ls_msg_file_range *want, bool whole)
{
  ls_serve *s = r->serve;
  const ls_local_game *g = ls_serve_find_game(s, want->id);
  if (!g) {
    ls_serve_send_not_found(r, want->id);
    return;
  }
  if (!ls_serve_is_payload_file(g, want->path)) {
    ls_serve_send_invalid(r, "path: not a payload file of this game", false);
    return;
  }
  if (!file_slot_free(r)) {
    enqueue(r, want, whole);
    return;
  }
  send_file_bytes(r, want, whole);
}

/* Opens the file and sends the FileData frame and the bytes on a slot. */
static void send_file_bytes(request *r, const ls_msg_file_range *want, bool whole)
{
  ls_serve *s = r->serve;
  ls_diag diag;
  int fd = ls_open_beneath(s->game_dir, want->id, want->path, &diag);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    if (fd >= 0)
      close(fd);
    ls_serve_send_invalid(r, "path: cannot be read", false);
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
    ls_serve_send_invalid(r, reason, false);
    return;
  }
  ls_serve_send_msg(r, &msg, 0);
#ifdef LS_TEST_HOOKS
  if (getenv("LS_TEST_CORRUPT_SERVE") && r->stream) { /* test-only fault switch */
    send_corrupted(r, fd, msg.range.offset, msg.range.length);
    return;
  }
#endif
  if (r->stream &&
      ls_quic_stream_send_file(r->stream, fd, msg.range.offset, msg.range.length, 1) == LS_OK)
    start_sending(r);
  else if (!r->stream)
    close(fd);
}

