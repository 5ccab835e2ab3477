/* Loopback tests of the QUIC endpoint (src/net/quic.h): two endpoints on one
 * libuv loop in one process, real UDP on 127.0.0.1. The "server" side runs
 * a tiny test protocol: a stream starting with 'E' is echoed back whole; a
 * stream "F<path>" is answered with that file via ls_quic_stream_send_file. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testrun.h"

#include "testutil.h"

#include "net/identity.h"
#include "net/quic.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define MAX_REQS 512

typedef struct world world;

typedef struct endpoint {
  world *w;
  ls_quic *q;
  ls_identity *id;
  int ready;
  int closed;
  int last_err;
  char last_diag[LS_DIAG_MAX];
  ls_quic_conn *conn; /* last ready connection */
  int done;           /* ls_quic_close finished */
  int refused;        /* on_conn_refused calls */
  char refused_why[LS_DIAG_MAX];
} endpoint;

/* One client request: bytes sent, bytes received, completion. */
typedef struct request {
  world *w;
  uint8_t *out;
  size_t out_len;
  uint8_t *in;
  size_t in_len, in_cap;
  struct sha256_ctx sha;
  uint64_t received;
  int hash_only;
  uint64_t stop_at; /* read_stop once this much arrived (0: never) */
  int stopped;
  ls_quic_stream *stream;
  int fin;
  int closed;
  int close_err;
} request;

/* Server-side stream state. */
typedef struct srv_stream {
  uint8_t *buf;
  size_t len, cap;
} srv_stream;

struct world {
  uv_loop_t loop;
  uv_timer_t tick;
  endpoint srv, cli;
  request reqs[MAX_REQS];
  int nreqs_done;
  int streams_closed;
};

/* ---- helpers ------------------------------------------------------------ */

static struct sockaddr_in loopback(unsigned port)
{
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

static endpoint *ep_of_conn(ls_quic_conn *c)
{
  return ls_quic_user(ls_quic_conn_endpoint(c));
}

static void tick_cb(uv_timer_t *t)
{
  (void)t;
}

/* Runs the loop until *flag >= want or the timeout; returns 1 on success. */
static int run_until(world *w, const int *flag, int want, double timeout_s)
{
  uint64_t deadline = uv_hrtime() + (uint64_t)(timeout_s * 1e9);
  uv_timer_start(&w->tick, tick_cb, 10, 10);
  while (*flag < want && uv_hrtime() < deadline)
    uv_run(&w->loop, UV_RUN_ONCE);
  uv_timer_stop(&w->tick);
  return *flag >= want;
}

static void run_for(world *w, double seconds)
{
  int never = 0;
  (void)run_until(w, &never, 1, seconds);
}

/* ---- server side: echo and file ---------------------------------------- */

static void free_arg(void *arg)
{
  free(arg);
}

static void srv_send_file(ls_quic_stream *s, const char *path)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    ls_quic_stream_reset(s, 7);
    return;
  }
  off_t size = lseek(fd, 0, SEEK_END);
  assert_int_equal(ls_quic_stream_send_file(s, fd, 0, (uint64_t)size, 1), 0);
}

static void srv_on_data(ls_quic_stream *s, const uint8_t *data, size_t len, int fin)
{
  srv_stream *st = ls_quic_stream_user(s);
  if (st->len + len > st->cap) {
    st->cap = (st->len + len) * 2;
    st->buf = realloc(st->buf, st->cap);
    assert_non_null(st->buf);
  }
  memcpy(st->buf + st->len, data, len);
  st->len += len;
  if (!fin)
    return;
  if (st->len > 0 && st->buf[0] == 'F') {
    char path[4096];
    snprintf(path, sizeof path, "%.*s", (int)(st->len - 1), (const char *)st->buf + 1);
    srv_send_file(s, path);
    return;
  }
  /* Echo: hand the buffer over to the write, freed on ack. */
  uint8_t *buf = st->buf;
  size_t n = st->len;
  st->buf = NULL;
  st->len = st->cap = 0;
  assert_int_equal(ls_quic_stream_write(s, buf, n, 1, free_arg, buf), 0);
}

/* ---- client side -------------------------------------------------------- */

static void cli_on_data(ls_quic_stream *s, const uint8_t *data, size_t len, int fin)
{
  request *r = ls_quic_stream_user(s);
  if (!r)
    return;
  r->received += len;
  r->stream = s;
  if (r->stop_at && !r->stopped && r->received >= r->stop_at) {
    r->stopped = 1;
    ls_quic_stream_read_stop(s);
  }
  if (r->hash_only) {
    sha256_update(&r->sha, len, data);
  } else {
    if (r->in_len + len > r->in_cap) {
      r->in_cap = (r->in_len + len) * 2 + 1024;
      r->in = realloc(r->in, r->in_cap);
      assert_non_null(r->in);
    }
    memcpy(r->in + r->in_len, data, len);
    r->in_len += len;
  }
  if (fin)
    r->fin = 1;
}

/* ---- callbacks shared by both endpoints -------------------------------- */

static void on_conn_ready(ls_quic_conn *c)
{
  endpoint *ep = ep_of_conn(c);
  ep->ready++;
  ep->conn = c;
}

static void on_conn_closed(ls_quic_conn *c, int err, const char *diag)
{
  endpoint *ep = ep_of_conn(c);
  ep->closed++;
  ep->last_err = err;
  snprintf(ep->last_diag, sizeof ep->last_diag, "%s", diag ? diag : "");
  if (ep->conn == c)
    ep->conn = NULL;
}

static void on_stream_open(ls_quic_stream *s)
{
  srv_stream *st = calloc(1, sizeof *st);
  assert_non_null(st);
  ls_quic_stream_set_user(s, st);
}

static void on_stream_data(ls_quic_stream *s, const uint8_t *data, size_t len, int fin)
{
  if (ls_quic_conn_is_client(ls_quic_stream_conn(s)))
    cli_on_data(s, data, len, fin);
  else
    srv_on_data(s, data, len, fin);
}

static void on_stream_closed(ls_quic_stream *s, int err)
{
  ls_quic_conn *c = ls_quic_stream_conn(s);
  endpoint *ep = ep_of_conn(c);
  if (ls_quic_conn_is_client(c)) {
    request *r = ls_quic_stream_user(s);
    if (r) {
      r->closed = 1;
      r->close_err = err;
      ep->w->nreqs_done++;
    }
  } else {
    srv_stream *st = ls_quic_stream_user(s);
    if (st) {
      free(st->buf);
      free(st);
    }
  }
  ep->w->streams_closed++;
}

static void on_conn_refused(ls_quic *q, const struct sockaddr *from, const char *why)
{
  endpoint *ep = ls_quic_user(q);
  (void)from;
  ep->refused++;
  snprintf(ep->refused_why, sizeof ep->refused_why, "%s", why);
}

static void on_done(void *user)
{
  endpoint *ep = user;
  ep->done = 1;
}

/* ---- fixture ------------------------------------------------------------ */

/* An endpoint on 127.0.0.HOST:PORT (every 127/8 address is loopback). */
static void ep_start_on(world *w, endpoint *ep, unsigned host, unsigned port,
                        const ls_quic_tuning *tun)
{
  ls_diag diag = { { 0 } };
  struct sockaddr_in addr = loopback(port);
  addr.sin_addr.s_addr = htonl(0x7f000000u | host);
  ls_quic_config cfg = {
    .bind_addr = (const struct sockaddr *)&addr,
    .identity = ep->id,
    .cb = { .on_conn_ready = on_conn_ready, .on_conn_closed = on_conn_closed,
            .on_stream_open = on_stream_open, .on_stream_data = on_stream_data,
            .on_stream_closed = on_stream_closed, .on_conn_refused = on_conn_refused },
    .user = ep,
  };
  if (tun)
    cfg.tuning = *tun;
  ep->w = w;
  ep->done = 0;
  int rv = ls_quic_new(&w->loop, &cfg, &ep->q, &diag);
  if (rv != 0)
    fail_msg("ls_quic_new: %s", diag.text);
}

static void ep_start(world *w, endpoint *ep, unsigned port, const ls_quic_tuning *tun)
{
  ep_start_on(w, ep, 1, port, tun);
}

static void ep_stop(world *w, endpoint *ep)
{
  if (!ep->q)
    return;
  ls_quic_close(ep->q, on_done, ep);
  assert_true(run_until(w, &ep->done, 1, 5));
  ep->q = NULL;
}

static void new_identity(ls_identity **out)
{
  ls_diag diag = { { 0 } };
  if (ls_identity_load_or_create(t_tempdir(), out, &diag) != 0)
    fail_msg("identity: %s", diag.text);
}

/* A server and a client endpoint, each with its own tuning. */
static world *world_new_tuned(const ls_quic_tuning *srv_tun, const ls_quic_tuning *cli_tun)
{
  world *w = calloc(1, sizeof *w);
  assert_non_null(w);
  assert_int_equal(uv_loop_init(&w->loop), 0);
  uv_timer_init(&w->loop, &w->tick);
  new_identity(&w->srv.id);
  new_identity(&w->cli.id);
  ep_start(w, &w->srv, 0, srv_tun);
  ep_start(w, &w->cli, 0, cli_tun);
  return w;
}

static world *world_new(const ls_quic_tuning *tun)
{
  return world_new_tuned(tun, tun);
}

static void world_free(world *w)
{
  ep_stop(w, &w->cli);
  ep_stop(w, &w->srv);
  uv_close((uv_handle_t *)&w->tick, NULL);
  uv_run(&w->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&w->loop), 0);
  for (int i = 0; i < MAX_REQS; i++) {
    free(w->reqs[i].out);
    free(w->reqs[i].in);
  }
  ls_identity_free(w->srv.id);
  ls_identity_free(w->cli.id);
  free(w);
}

static ls_quic_conn *connect_ok(world *w, const char *expected)
{
  ls_diag diag = { { 0 } };
  ls_quic_conn *c = NULL;
  struct sockaddr_in srv = loopback(ls_quic_local_port(w->srv.q));
  int want_cli = w->cli.ready + 1, want_srv = w->srv.ready + 1;
  assert_int_equal(ls_quic_connect(w->cli.q, (struct sockaddr *)&srv, expected, &c, &diag), 0);
  assert_true(run_until(w, &w->cli.ready, want_cli, 5));
  assert_true(run_until(w, &w->srv.ready, want_srv, 5));
  assert_ptr_equal(w->cli.conn, c);
  return c;
}

/* Starts request i on conn: sends `out` with fin. */
static request *start_request(world *w, ls_quic_conn *c, int i, uint8_t *out, size_t len,
                              int hash_only)
{
  request *r = &w->reqs[i];
  ls_quic_stream *s = NULL;
  r->w = w;
  r->out = out;
  r->out_len = len;
  r->hash_only = hash_only;
  sha256_init(&r->sha);
  assert_int_equal(ls_quic_open_stream(c, &s), 0);
  r->stream = s;
  ls_quic_stream_set_user(s, r);
  assert_int_equal(ls_quic_stream_write(s, out, len, 1, NULL, NULL), 0);
  return r;
}

static uint8_t *pattern(size_t len, unsigned seed)
{
  uint8_t *p = malloc(len ? len : 1);
  uint32_t x = seed * 2654435761u + 1;
  assert_non_null(p);
  p[0] = 'E';
  for (size_t i = 1; i < len; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    p[i] = (uint8_t)x;
  }
  return p;
}

static void check_echo(const request *r)
{
  assert_true(r->fin);
  assert_int_equal(r->close_err, 0);
  assert_int_equal(r->in_len, r->out_len);
  assert_memory_equal(r->in, r->out, r->out_len);
}

/* ---- tests -------------------------------------------------------------- */

static void test_handshake_peer_ids(void **state)
{
  (void)state;
  world *w = world_new(NULL);
  ls_quic_conn *c = connect_ok(w, NULL);
  assert_non_null(ls_quic_conn_peer_id(c));
  assert_string_equal(ls_quic_conn_peer_id(c), ls_identity_peer_id(w->srv.id));
  assert_non_null(w->srv.conn);
  assert_string_equal(ls_quic_conn_peer_id(w->srv.conn), ls_identity_peer_id(w->cli.id));
  assert_ptr_equal(ls_quic_find_conn_by_peer_id(w->cli.q, ls_identity_peer_id(w->srv.id)), c);
  struct sockaddr_in srv = loopback(ls_quic_local_port(w->srv.q));
  assert_ptr_equal(ls_quic_find_conn_by_addr(w->cli.q, (struct sockaddr *)&srv), c);
  /* Expected id given and right: accepted. */
  ls_quic_conn *c2 = connect_ok(w, ls_identity_peer_id(w->srv.id));
  assert_ptr_not_equal(c2, c);
  /* Clean close: both sides see err 0. */
  ls_quic_conn_close(c2, 0);
  assert_true(run_until(w, &w->srv.closed, 1, 5));
  assert_int_equal(w->srv.last_err, 0);
  assert_int_equal(w->cli.closed, 1);
  assert_int_equal(w->cli.last_err, 0);
  world_free(w);
}

static void test_echo(void **state)
{
  (void)state;
  world *w = world_new(NULL);
  ls_quic_conn *c = connect_ok(w, NULL);
  request *r = start_request(w, c, 0, pattern(100000, 1), 100000, 0);
  assert_true(run_until(w, &w->nreqs_done, 1, 10));
  check_echo(r);
  world_free(w);
}

/* A request reset before any of it was sent still closes, on both ends. */
static void test_reset_before_first_send(void **state)
{
  (void)state;
  world *w = world_new(NULL);
  ls_quic_conn *c = connect_ok(w, NULL);
  request *rs[3];
  for (int i = 0; i < 3; i++) {
    rs[i] = start_request(w, c, i, pattern(104, (unsigned)i), 104, 0);
    ls_quic_stream_reset(rs[i]->stream, 0x20);
  }
  assert_true(run_until(w, &w->nreqs_done, 3, 5));
  for (int i = 0; i < 3; i++)
    assert_true(rs[i]->closed);
  /* the connection still carries a request afterwards */
  request *r = start_request(w, c, 3, pattern(1000, 9), 1000, 0);
  assert_true(run_until(w, &w->nreqs_done, 4, 5));
  check_echo(r);
  world_free(w);
}

static void test_concurrent_streams(void **state)
{
  (void)state;
  world *w = world_new(NULL);
  ls_quic_conn *c = connect_ok(w, NULL);
  for (int i = 0; i < 64; i++) {
    size_t len = 1000 + (size_t)i * 3001;
    start_request(w, c, i, pattern(len, (unsigned)i + 10), len, 0);
  }
  assert_true(run_until(w, &w->nreqs_done, 64, 20));
  for (int i = 0; i < 64; i++)
    check_echo(&w->reqs[i]);
  world_free(w);
}

static void test_many_sequential_streams(void **state)
{
  (void)state;
  ls_quic_tuning tun = { .max_streams_bidi = 16 }; /* budget far below the count */
  world *w = world_new(&tun);
  ls_quic_conn *c = connect_ok(w, NULL);
  for (int i = 0; i < 300; i++) {
    start_request(w, c, i, pattern(200, (unsigned)i), 200, 0);
    assert_true(run_until(w, &w->nreqs_done, i + 1, 5));
    check_echo(&w->reqs[i]);
  }
  /* The server closes its side of each stream slightly later. */
  assert_true(run_until(w, &w->streams_closed, 600, 5));
  world_free(w);
}

static void make_file(const char *path, size_t size, uint8_t digest[SHA256_DIGEST_SIZE])
{
  struct sha256_ctx sha;
  size_t block = 1 << 20;
  uint8_t *buf = malloc(block);
  uint32_t x = 12345;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  assert_non_null(buf);
  assert_true(fd >= 0);
  sha256_init(&sha);
  for (size_t done = 0; done < size; done += block) {
    uint32_t *words = (uint32_t *)buf;
    for (size_t i = 0; i < block / 4; i++) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      words[i] = x;
    }
    size_t n = size - done < block ? size - done : block;
    assert_int_equal(write(fd, buf, n), (ssize_t)n);
    sha256_update(&sha, n, buf);
  }
  sha256_digest(&sha, SHA256_DIGEST_SIZE, digest);
  close(fd);
  free(buf);
}

static void test_file_256mib(void **state)
{
  (void)state;
  const size_t size = (size_t)256 << 20;
  uint8_t want[SHA256_DIGEST_SIZE], got[SHA256_DIGEST_SIZE];
  char req[4200];
  const char *path = t_path("%s/big.bin", t_tempdir());
  make_file(path, size, want);
  world *w = world_new(NULL);
  ls_quic_conn *c = connect_ok(w, NULL);
  int n = snprintf(req, sizeof req, "F%s", path);
  uint8_t *out = malloc((size_t)n);
  memcpy(out, req, (size_t)n);
  uint64_t t0 = uv_hrtime();
  request *r = start_request(w, c, 0, out, (size_t)n, 1);
  assert_true(run_until(w, &w->nreqs_done, 1, 40));
  double secs = (double)(uv_hrtime() - t0) / 1e9;
  print_message("256 MiB in %.2f s (%.0f MB/s, this build)\n", secs, (double)size / secs / 1e6);
  assert_true(r->fin);
  assert_int_equal(r->close_err, 0);
  assert_int_equal(r->received, size);
  sha256_digest(&r->sha, SHA256_DIGEST_SIZE, got);
  assert_memory_equal(got, want, SHA256_DIGEST_SIZE);
  unlink(path);
  world_free(w);
}

/* read_stop withholds flow-control credit: the sender stalls within one
 * stream window; read_start resumes and the transfer completes intact. */
static void test_read_backpressure(void **state)
{
  (void)state;
  const size_t size = (size_t)8 << 20, window = 256 << 10;
  uint8_t want[SHA256_DIGEST_SIZE], got[SHA256_DIGEST_SIZE];
  ls_quic_tuning tun = { .stream_window = window, .max_stream_window = window,
                         .conn_window = 4 * window, .max_conn_window = 4 * window };
  const char *path = t_path("%s/mid.bin", t_tempdir());
  make_file(path, size, want);
  world *w = world_new(&tun);
  ls_quic_conn *c = connect_ok(w, NULL);
  char req[4200];
  int n = snprintf(req, sizeof req, "F%s", path);
  uint8_t *out = malloc((size_t)n);
  memcpy(out, req, (size_t)n);
  request *r = &w->reqs[0];
  r->stop_at = 1 << 20;
  start_request(w, c, 0, out, (size_t)n, 1);
  assert_true(run_until(w, &r->stopped, 1, 10));
  run_for(w, 0.3);
  assert_false(r->fin);
  assert_true(r->received <= r->stop_at + 2 * window);
  uint64_t stalled_at = r->received;
  run_for(w, 0.2);
  assert_int_equal(r->received, stalled_at); /* nothing more without credit */
  ls_quic_stream_read_start(r->stream);
  assert_true(run_until(w, &w->nreqs_done, 1, 20));
  assert_true(r->fin);
  assert_int_equal(r->received, size);
  sha256_digest(&r->sha, SHA256_DIGEST_SIZE, got);
  assert_memory_equal(got, want, SHA256_DIGEST_SIZE);
  world_free(w);
}

static void test_peer_id_mismatch(void **state)
{
  (void)state;
  world *w = world_new(NULL);
  ls_diag diag = { { 0 } };
  ls_quic_conn *c = NULL;
  struct sockaddr_in srv = loopback(ls_quic_local_port(w->srv.q));
  /* Expect the client's own id: the server cannot match it. */
  assert_int_equal(ls_quic_connect(w->cli.q, (struct sockaddr *)&srv,
                                   ls_identity_peer_id(w->cli.id), &c, &diag),
                   0);
  assert_true(run_until(w, &w->cli.closed, 1, 5));
  assert_int_equal(w->cli.last_err, LS_EACCES);
  assert_non_null(strstr(w->cli.last_diag, "mismatch"));
  assert_int_equal(w->cli.ready, 0);
  run_for(w, 0.2);
  assert_int_equal(w->srv.ready, 0); /* the server never got a connection */
  assert_null(ls_quic_find_conn_by_addr(w->cli.q, (struct sockaddr *)&srv));
  /* A malformed expected id is refused up front. */
  assert_int_equal(ls_quic_connect(w->cli.q, (struct sockaddr *)&srv, "abc", &c, &diag),
                   LS_EINVAL);
  world_free(w);
}

static unsigned dead_port(void)
{
  struct sockaddr_in a = loopback(0);
  socklen_t len = sizeof a;
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  assert_true(fd >= 0);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  close(fd);
  return ntohs(a.sin_port);
}

static void test_nobody_listening_and_cancel(void **state)
{
  (void)state;
  ls_quic_tuning tun = { .handshake_timeout_ms = 500 };
  world *w = world_new(&tun);
  ls_diag diag = { { 0 } };
  ls_quic_conn *c = NULL;
  struct sockaddr_in nowhere = loopback(dead_port());
  uint64_t t0 = uv_hrtime();
  assert_int_equal(ls_quic_connect(w->cli.q, (struct sockaddr *)&nowhere, NULL, &c, &diag), 0);
  assert_true(run_until(w, &w->cli.closed, 1, 5));
  double secs = (double)(uv_hrtime() - t0) / 1e9;
  assert_int_equal(w->cli.last_err, LS_ETIMEDOUT);
  assert_true(secs >= 0.4 && secs < 3);
  /* Cancel mid-handshake completes at once. */
  assert_int_equal(ls_quic_connect(w->cli.q, (struct sockaddr *)&nowhere, NULL, &c, &diag), 0);
  run_for(w, 0.05);
  assert_int_equal(w->cli.closed, 1);
  t0 = uv_hrtime();
  ls_quic_conn_close(c, 0);
  assert_true(run_until(w, &w->cli.closed, 2, 5));
  secs = (double)(uv_hrtime() - t0) / 1e9;
  assert_int_equal(w->cli.last_err, LS_ECANCELED);
  assert_true(secs < 1.0);
  /* Cancel right after connect, before anything was sent. */
  assert_int_equal(ls_quic_connect(w->cli.q, (struct sockaddr *)&nowhere, NULL, &c, &diag), 0);
  ls_quic_conn_close(c, 0);
  assert_true(run_until(w, &w->cli.closed, 3, 1));
  assert_int_equal(w->cli.last_err, LS_ECANCELED);
  world_free(w);
}

static void test_server_restart(void **state)
{
  (void)state;
  world *w = world_new(NULL);
  ls_quic_conn *c = connect_ok(w, NULL);
  unsigned port = ls_quic_local_port(w->srv.q);
  (void)c;
  ep_stop(w, &w->srv);
  assert_true(run_until(w, &w->cli.closed, 1, 5)); /* CONNECTION_CLOSE reached us */
  assert_null(w->cli.conn);
  ep_start(w, &w->srv, port, NULL);
  assert_int_equal(ls_quic_local_port(w->srv.q), port);
  c = connect_ok(w, ls_identity_peer_id(w->srv.id));
  request *r = start_request(w, c, 0, pattern(5000, 3), 5000, 0);
  assert_true(run_until(w, &w->nreqs_done, 1, 5));
  check_echo(r);
  world_free(w);
}

static void send_garbage(unsigned port)
{
  struct sockaddr_in to = loopback(port);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  uint8_t buf[1500];
  uint32_t x = 99;
  assert_true(fd >= 0);
  for (int i = 0; i < 200; i++) {
    size_t len = (size_t)(i * 37) % sizeof buf + 1;
    for (size_t k = 0; k < len; k++) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      buf[k] = (uint8_t)x;
    }
    if (i % 4 == 0 && len >= 1200) { /* long header, unknown version */
      buf[0] = 0xc0;
      memcpy(buf + 1, "\x1a\x2a\x3a\x4a", 4);
      buf[5] = 8;
      buf[14] = 8;
    }
    if (i % 4 == 1 && len > 7) { /* long header Initial, version 1, junk */
      buf[0] = 0xc0;
      memcpy(buf + 1, "\x00\x00\x00\x01", 4);
    }
    (void)sendto(fd, buf, len, 0, (struct sockaddr *)&to, sizeof to);
  }
  close(fd);
}

static void test_garbage_then_good(void **state)
{
  (void)state;
  world *w = world_new(NULL);
  send_garbage(ls_quic_local_port(w->srv.q));
  run_for(w, 0.2);
  assert_int_equal(w->srv.ready, 0);
  ls_quic_conn *c = connect_ok(w, NULL);
  send_garbage(ls_quic_local_port(w->srv.q)); /* also during a connection */
  send_garbage(ls_quic_local_port(w->cli.q));
  request *r = start_request(w, c, 0, pattern(20000, 5), 20000, 0);
  assert_true(run_until(w, &w->nreqs_done, 1, 5));
  check_echo(r);
  world_free(w);
}

static void test_idle_timeout(void **state)
{
  (void)state;
  ls_quic_tuning tun = { .idle_timeout_ms = 300 };
  world *w = world_new(&tun);
  connect_ok(w, NULL);
  uint64_t t0 = uv_hrtime();
  assert_true(run_until(w, &w->cli.closed, 1, 5));
  assert_true(run_until(w, &w->srv.closed, 1, 5));
  double secs = (double)(uv_hrtime() - t0) / 1e9;
  assert_int_equal(w->cli.last_err, LS_ETIMEDOUT);
  assert_int_equal(w->srv.last_err, LS_ETIMEDOUT);
  assert_true(secs >= 0.25 && secs < 3);
  world_free(w);
}

/* Streams whose reader stopped hold no read-ahead beyond their credit:
 * 64 streams of an 8 MiB file to a client that grants 64 KiB per stream
 * and stops reading at once. Before the budgets, each stream read 8 blocks
 * of 512 KiB ahead (256 MiB here). Resumed, every stream completes intact. */
static void test_unread_streams_hold_little(void **state)
{
  (void)state;
  enum { STREAMS = 64 };
  const size_t size = (size_t)8 << 20, window = 64 << 10;
  uint8_t want[SHA256_DIGEST_SIZE], got[SHA256_DIGEST_SIZE];
  const char *path = t_path("%s/unread.bin", t_tempdir());
  make_file(path, size, want);
  ls_quic_tuning tun = { .stream_window = window, .max_stream_window = window };
  world *w = world_new(&tun);
  ls_quic_conn *c = connect_ok(w, NULL);
  char req[4200];
  int n = snprintf(req, sizeof req, "F%s", path);
  int stopped = 0;
  for (int i = 0; i < STREAMS; i++) {
    uint8_t *out = malloc((size_t)n);
    memcpy(out, req, (size_t)n);
    w->reqs[i].stop_at = 1;
    start_request(w, c, i, out, (size_t)n, 1);
  }
  uint64_t peak = 0;
  for (int round = 0; round < 50; round++) {
    run_for(w, 0.02);
    uint64_t now = ls_quic_get_stats(w->srv.q).file_memory;
    peak = now > peak ? now : peak;
  }
  for (int i = 0; i < STREAMS; i++)
    stopped += w->reqs[i].stopped;
  print_message("unread streams: %d stopped, server file memory peak %llu KiB\n", stopped,
                (unsigned long long)(peak >> 10));
  assert_int_equal(stopped, STREAMS);
  assert_true(peak <= STREAMS * window);
  for (int i = 0; i < STREAMS; i++)
    ls_quic_stream_read_start(w->reqs[i].stream);
  assert_true(run_until(w, &w->nreqs_done, STREAMS, 60));
  for (int i = 0; i < STREAMS; i++) {
    request *r = &w->reqs[i];
    assert_int_equal(r->close_err, 0);
    assert_int_equal(r->received, size);
    sha256_digest(&r->sha, SHA256_DIGEST_SIZE, got);
    assert_memory_equal(got, want, SHA256_DIGEST_SIZE);
  }
  run_for(w, 0.1); /* the last acks */
  assert_int_equal(ls_quic_get_stats(w->srv.q).file_memory, 0);
  world_free(w);
}

/* With every client address validated by a Retry round trip first,
 * connections and streams work as before. */
static void test_retry_validates_addresses(void **state)
{
  (void)state;
  ls_quic_tuning tun = { .flags = LS_QUIC_ALWAYS_RETRY };
  world *w = world_new(&tun);
  ls_quic_conn *c = connect_ok(w, ls_identity_peer_id(w->srv.id));
  request *r = start_request(w, c, 0, pattern(70000, 5), 70000, 0);
  assert_true(run_until(w, &w->nreqs_done, 1, 5));
  check_echo(r);
  assert_int_equal(ls_quic_get_stats(w->srv.q).retries, 1);
  assert_int_equal(ls_quic_get_stats(w->cli.q).retries, 0);
  assert_int_equal(w->srv.refused, 0);
  world_free(w);
}

/* Starts endpoint ep on 127.0.0.HOST and connects it to the server; returns
 * once it is ready (1) or closed (0). */
static int dial_from(world *w, endpoint *ep, unsigned host)
{
  ls_diag diag = { { 0 } };
  ls_quic_conn *c = NULL;
  if (!ep->q) {
    new_identity(&ep->id);
    ep_start_on(w, ep, host, 0, NULL);
  }
  struct sockaddr_in srv = loopback(ls_quic_local_port(w->srv.q));
  int ready = ep->ready, closed = ep->closed;
  assert_int_equal(ls_quic_connect(ep->q, (struct sockaddr *)&srv, NULL, &c, &diag), 0);
  uint64_t deadline = uv_hrtime() + 3000000000ull;
  while (ep->ready == ready && ep->closed == closed && uv_hrtime() < deadline)
    run_for(w, 0.01);
  return ep->ready > ready;
}

/* Incoming connections are capped per address and in all, refused at once
 * with a reason (not left to time out), said once per address, and the
 * slots kept for dialling out still let the server connect. */
static void test_incoming_slots_are_capped(void **state)
{
  (void)state;
  ls_quic_tuning tun = { .max_conns = 6, .reserved_outgoing = 2, .max_conns_per_addr = 2 };
  world *w = world_new_tuned(&tun, NULL);
  endpoint other[3] = { 0 };
  /* 127.0.0.1: two in, then refused (twice, said once) */
  assert_true(dial_from(w, &w->cli, 1));
  assert_true(dial_from(w, &w->cli, 1));
  uint64_t t0 = uv_hrtime();
  assert_false(dial_from(w, &w->cli, 1));
  double refused_s = (double)(uv_hrtime() - t0) / 1e9;
  assert_int_equal(w->cli.last_err, LS_EBUSY);
  assert_non_null(strstr(w->cli.last_diag, "too many connections from this address"));
  assert_false(dial_from(w, &w->cli, 1));
  assert_int_equal(w->srv.refused, 1);
  assert_non_null(strstr(w->srv.refused_why, "from this address"));
  /* 127.0.0.2: two in; the 4 incoming slots (6 - 2 reserved) are taken */
  assert_true(dial_from(w, &other[0], 2));
  assert_true(dial_from(w, &other[0], 2));
  assert_false(dial_from(w, &other[1], 3));
  assert_int_equal(other[1].last_err, LS_EBUSY);
  assert_non_null(strstr(other[1].last_diag, "every incoming connection slot is taken"));
  assert_int_equal(w->srv.refused, 2);
  assert_int_equal(ls_quic_get_stats(w->srv.q).refused, 3); /* every one, said twice */
  /* the server still dials out, on a reserved slot */
  new_identity(&other[2].id);
  ep_start_on(w, &other[2], 4, 0, NULL);
  ls_diag diag = { { 0 } };
  ls_quic_conn *c = NULL;
  struct sockaddr_in to = loopback(ls_quic_local_port(other[2].q));
  to.sin_addr.s_addr = htonl(0x7f000004u);
  int ready = w->srv.ready;
  assert_int_equal(ls_quic_connect(w->srv.q, (struct sockaddr *)&to, NULL, &c, &diag), 0);
  assert_true(run_until(w, &w->srv.ready, ready + 1, 5));
  print_message("refused in %.3f s\n", refused_s);
  assert_true(refused_s < 1.0);
  for (int i = 0; i < 3; i++) {
    ep_stop(w, &other[i]);
    ls_identity_free(other[i].id);
  }
  world_free(w);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_handshake_peer_ids),
    cmocka_unit_test(test_echo),
    cmocka_unit_test(test_reset_before_first_send),
    cmocka_unit_test(test_concurrent_streams),
    cmocka_unit_test(test_many_sequential_streams),
    cmocka_unit_test(test_file_256mib),
    cmocka_unit_test(test_read_backpressure),
    cmocka_unit_test(test_peer_id_mismatch),
    cmocka_unit_test(test_nobody_listening_and_cancel),
    cmocka_unit_test(test_server_restart),
    cmocka_unit_test(test_garbage_then_good),
    cmocka_unit_test(test_idle_timeout),
    cmocka_unit_test(test_unread_streams_hold_little),
    cmocka_unit_test(test_retry_validates_addresses),
    cmocka_unit_test(test_incoming_slots_are_capped),
  };
  return ls_run_tests(tests, NULL, NULL);
}
