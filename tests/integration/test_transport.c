/* Tests the wire protocol over real QUIC on loopback: a serving node (with
 * its local game monitor) and a client node in one process on one loop.
 * Every request type, a 256 MiB transfer, 64 concurrent chunk requests,
 * hash and manifest caching (merged GetGames, a changed root hashed again),
 * every bad input, restart and reconnect, a wrong peer id. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testrun.h"

#include "testutil.h"

#include "library/hashing.h"
#include "net/identity.h"
#include "node/node.h"
#include "node/request.h"
#include "node/stream_handler.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define T_MS 20000
#define BIG_SIZE (256u << 20)

/* A node and what it owns. */
typedef struct side {
  char *games, *state;
  ls_catalog *catalog;
  ls_identity *identity;
  ls_monitor *monitor;
  ls_node *node;
  ls_quic_conn *ready_conn;
  unsigned ready, closed;
  int closed_err;
} side;

typedef struct world {
  uv_loop_t loop;
  side srv, cli;
  ls_quic_conn *conn; /* client's connection to the server */
  unsigned port;
} world;

/* One finished request. */
typedef struct result {
  bool done;
  int err;
  char diag[LS_DIAG_MAX];
  enum ls_msg_type type;
  ls_msg msg;              /* copy of the response for the types we inspect */
  struct sha256_ctx sha;
  uint64_t bytes;
  uint8_t *data;           /* first bytes, when collect is set */
  size_t collect;
} result;

static bool flag_timeout;

static void on_timeout(uv_timer_t *t)
{
  (void)t;
  flag_timeout = true;
}

/* Runs the loop until *count >= target; fails after T_MS. */
static void run_until(world *w, const unsigned *count, unsigned target)
{
  uv_timer_t timer;
  flag_timeout = false;
  uv_timer_init(&w->loop, &timer);
  uv_timer_start(&timer, on_timeout, T_MS, 0);
  while (*count < target && !flag_timeout)
    uv_run(&w->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&timer, NULL);
  uv_run(&w->loop, UV_RUN_NOWAIT);
  if (*count < target)
    fail_msg("timed out waiting (%u of %u)", *count, target);
}

static void on_ready(ls_node *n, ls_quic_conn *conn, void *user)
{
  (void)n;
  side *s = user;
  s->ready_conn = conn;
  s->ready++;
}

static void on_closed(ls_node *n, ls_quic_conn *conn, int err, const char *diag, void *user)
{
  (void)n;
  (void)conn;
  (void)diag;
  side *s = user;
  s->closed_err = err;
  s->closed++;
}

static const char *const catalog_ids[] = {"alpha", "beta", "big"};

static void start_side(world *w, side *s, unsigned port)
{
  ls_diag diag;
  if (!s->identity && ls_identity_load_or_create(s->state, &s->identity, &diag) != 0)
    fail_msg("identity: %s", diag.text);
  if (!s->catalog)
    s->catalog = t_catalog(catalog_ids, 3);
  ls_monitor_config mc = {.loop = &w->loop, .game_dir = s->games, .state_dir = s->state,
                          .catalog = s->catalog};
  if (ls_monitor_start(&mc, &s->monitor, &diag) != 0)
    fail_msg("monitor: %s", diag.text);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ls_node_config nc = {
    .loop = &w->loop, .bind_addr = (struct sockaddr *)&addr, .identity = s->identity,
    .catalog = s->catalog, .monitor = s->monitor, .game_dir = s->games, .name = "node",
    .on_conn_ready = on_ready, .on_conn_closed = on_closed, .user = s,
  };
  if (ls_node_new(&nc, &s->node, &diag) != 0)
    fail_msg("node: %s", diag.text);
}

static unsigned closed_count;

static void count_closed(void *user)
{
  (void)user;
  closed_count++;
}

static void stop_side(world *w, side *s)
{
  unsigned before = closed_count;
  ls_node_close(s->node, count_closed, NULL);
  run_until(w, &closed_count, before + 1);
  ls_monitor_close(s->monitor, count_closed, NULL);
  run_until(w, &closed_count, before + 2);
  s->node = NULL;
  s->monitor = NULL;
}

static void write_random(const char *path, size_t size, unsigned seed)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  assert_true(fd >= 0);
  uint8_t *buf = malloc(1 << 20);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t off = 0; off < size; off += 1 << 20) {
    size_t n = size - off < (1u << 20) ? size - off : (1u << 20);
    for (size_t i = 0; i < n; i += 8) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      memcpy(buf + i, &x, n - i < 8 ? n - i : 8);
    }
    assert_int_equal(write(fd, buf, n), (ssize_t)n);
  }
  free(buf);
  close(fd);
}

static world *start_world(bool with_big)
{
  world *w = calloc(1, sizeof *w);
  assert_int_equal(uv_loop_init(&w->loop), 0);
  w->srv.games = t_tempdir();
  w->srv.state = t_tempdir();
  w->cli.games = t_tempdir();
  w->cli.state = t_tempdir();
  t_write(w->srv.games, "alpha/version.ini", "2.0\n");
  t_write(w->srv.games, "alpha/readme.txt", "hello, lan party\n");
  write_random(t_path("%s/alpha/data.eti", w->srv.games), 3 * 1048576 + 12345, 1);
  t_write(w->srv.games, "alpha/disc2/more.eti", "more payload bytes");
  t_write(w->srv.games, "alpha/local/game.exe", "installed, not served");
  t_write(w->srv.games, "alpha/.lanspread.json", "{}");
  t_symlink("/etc/passwd", w->srv.games, "alpha/passwd.eti");
  t_write(w->srv.games, "beta/local/beta.exe", "local-only");
  t_write(w->srv.games, "notcat/version.ini", "1");
  if (with_big) {
    t_write(w->srv.games, "big/version.ini", "1");
    write_random(t_path("%s/big/big.eti", w->srv.games), BIG_SIZE, 2);
  }
  start_side(w, &w->srv, 0);
  start_side(w, &w->cli, 0);
  w->port = ls_node_port(w->srv.node);
  return w;
}

static void connect_client(world *w, const char *expect_id)
{
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)w->port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  unsigned before = w->cli.ready;
  ls_diag diag;
  assert_int_equal(ls_quic_connect(ls_node_endpoint(w->cli.node), (struct sockaddr *)&addr,
                                   expect_id, &w->conn, &diag), 0);
  run_until(w, &w->cli.ready, before + 1);
}

static void say_hello(world *w);

/* A world whose client is connected and has said Hello (without which the
 * server answers nothing else). */
static world *start_connected(bool with_big)
{
  world *w = start_world(with_big);
  connect_client(w, ls_identity_peer_id(w->srv.identity));
  say_hello(w);
  return w;
}

static void stop_world(world *w)
{
  stop_side(w, &w->cli);
  stop_side(w, &w->srv);
  assert_int_equal(uv_loop_close(&w->loop), 0);
  for (int i = 0; i < 2; i++) {
    side *s = i ? &w->cli : &w->srv;
    ls_identity_free(s->identity);
    ls_catalog_free(s->catalog);
  }
  free(w);
}

/* ---- requests ------------------------------------------------------------ */

static void r_response(ls_request *req, const ls_msg *msg, void *user)
{
  (void)req;
  result *r = user;
  r->type = msg->type;
  if (msg->type == LS_MSG_GAME_FILES || msg->type == LS_MSG_GAME_LIST ||
      msg->type == LS_MSG_HELLO_ACK || msg->type == LS_MSG_INVALID_REQUEST ||
      msg->type == LS_MSG_FILE_DATA) {
    /* re-decode a copy we own, through the codec */
    char *json;
    size_t len;
    assert_int_equal(ls_msg_encode(msg, &json, &len, NULL), 0);
    assert_int_equal(ls_msg_decode(json, len, LS_DIR_RESPONSE, &r->msg, NULL), 0);
    free(json);
  }
}

static int r_bytes(ls_request *req, const uint8_t *data, size_t len, void *user)
{
  (void)req;
  result *r = user;
  if (r->collect && r->bytes < r->collect) {
    size_t n = r->collect - r->bytes < len ? (size_t)(r->collect - r->bytes) : len;
    memcpy(r->data + r->bytes, data, n);
  }
  sha256_update(&r->sha, len, data);
  r->bytes += len;
  return 0;
}

static unsigned done_count;

static void r_done(ls_request *req, int err, const char *diag, void *user)
{
  (void)req;
  result *r = user;
  r->done = true;
  r->err = err;
  snprintf(r->diag, sizeof r->diag, "%s", diag);
  done_count++;
}

static const ls_request_callbacks rcb = {r_response, r_bytes, r_done};

static void start(world *w, const ls_msg *msg, result *r)
{
  ls_request *req;
  ls_diag diag;
  sha256_init(&r->sha);
  if (ls_request_start(w->conn, msg, &rcb, r, &req, &diag) != 0)
    fail_msg("request: %s", diag.text);
}

static result *ask(world *w, const ls_msg *msg)
{
  result *r = calloc(1, sizeof *r);
  unsigned before = done_count;
  start(w, msg, r);
  run_until(w, &done_count, before + 1);
  return r;
}

static void free_result(result *r)
{
  ls_msg_clear(&r->msg);
  free(r->data);
  free(r);
}

static ls_msg client_hello(world *w)
{
  ls_msg hello = {.type = LS_MSG_HELLO};
  hello.hello.protocol_version = 1;
  snprintf(hello.hello.peer_id, sizeof hello.hello.peer_id, "%s",
           ls_identity_peer_id(w->cli.identity));
  hello.hello.name = "client";
  return hello;
}

static void say_hello(world *w)
{
  ls_msg hello = client_hello(w);
  result *r = ask(w, &hello);
  assert_int_equal(r->type, LS_MSG_HELLO_ACK);
  free_result(r);
}

static void connect_and_greet(world *w)
{
  connect_client(w, ls_identity_peer_id(w->srv.identity));
  say_hello(w);
}

static ls_msg get_game(const char *id)
{
  ls_msg m = {.type = LS_MSG_GET_GAME};
  m.game.id = (char *)id;
  return m;
}

static ls_msg get_chunk(const char *id, const char *path, uint64_t off, uint64_t len)
{
  ls_msg m = {.type = LS_MSG_GET_GAME_FILE_CHUNK};
  m.range = (ls_msg_file_range){(char *)id, (char *)path, off, len};
  return m;
}

static ls_msg get_file(const char *id, const char *path)
{
  ls_msg m = {.type = LS_MSG_GET_GAME_FILE_DATA};
  m.file = (ls_msg_file_ref){(char *)id, (char *)path};
  return m;
}

static void assert_invalid(world *w, const ls_msg *msg, const char *reason_part)
{
  result *r = ask(w, msg);
  assert_int_equal(r->err, 0);
  assert_int_equal(r->type, LS_MSG_INVALID_REQUEST);
  if (!strstr(r->msg.invalid.reason, reason_part))
    fail_msg("reason '%s' lacks '%s'", r->msg.invalid.reason, reason_part);
  free_result(r);
}

static void assert_not_found(world *w, const char *id)
{
  ls_msg m = get_game(id);
  result *r = ask(w, &m);
  assert_int_equal(r->err, 0);
  assert_int_equal(r->type, LS_MSG_GAME_NOT_FOUND);
  free_result(r);
}

/* ---- tests ---------------------------------------------------------------- */

static void hello_ping_and_list(void **state)
{
  (void)state;
  world *w = start_world(false);
  connect_client(w, ls_identity_peer_id(w->srv.identity));
  assert_string_equal(ls_quic_conn_peer_id(w->conn), ls_identity_peer_id(w->srv.identity));

  /* Nothing but Hello is answered before a Hello was accepted. */
  ls_msg before[] = {{.type = LS_MSG_PING}, {.type = LS_MSG_LIST_GAMES}, get_game("alpha"),
                     get_chunk("alpha", "data.eti", 0, 1)};
  for (size_t i = 0; i < sizeof before / sizeof *before; i++)
    assert_invalid(w, &before[i], "hello first");
  ls_msg hello = client_hello(w);
  hello.hello.protocol_version = 2;
  assert_invalid(w, &hello, "protocol version 2 not supported");
  assert_invalid(w, &before[0], "hello first"); /* a refused Hello opens nothing */
  hello.hello.protocol_version = 1;
  result *r = ask(w, &hello);
  assert_int_equal(r->type, LS_MSG_HELLO_ACK);
  assert_string_equal(r->msg.hello.peer_id, ls_identity_peer_id(w->srv.identity));
  assert_int_equal(r->msg.hello.protocol_version, 1);
  free_result(r);

  hello.hello.protocol_version = 2;
  assert_invalid(w, &hello, "protocol version 2 not supported");
  hello.hello.protocol_version = 1;
  memset(hello.hello.peer_id, 'a', 64); /* not our certificate */
  assert_invalid(w, &hello, "does not match");

  ls_msg ping = {.type = LS_MSG_PING};
  r = ask(w, &ping);
  assert_int_equal(r->err, 0);
  assert_int_equal(r->type, LS_MSG_PONG);
  free_result(r);

  ls_msg list = {.type = LS_MSG_LIST_GAMES};
  r = ask(w, &list);
  assert_int_equal(r->type, LS_MSG_GAME_LIST);
  assert_int_equal(r->msg.game_list.count, 1); /* beta is local-only, notcat unknown */
  ls_msg_game_info *g = &r->msg.game_list.games[0];
  assert_string_equal(g->id, "alpha");
  assert_string_equal(g->name, "Game alpha");
  assert_string_equal(g->version, "2.0");
  assert_int_equal(g->size, 4 + 17 + 3 * 1048576 + 12345 + 18);
  free_result(r);
  stop_world(w);
}

/* Hashes a local file the way the server must have. */
static void expect_hashes(const char *path, const ls_msg_file_entry *f)
{
  int fd = open(path, O_RDONLY);
  assert_true(fd >= 0);
  uint8_t *h;
  uint32_t n;
  ls_stamp st;
  assert_int_equal(ls_hash_file_chunks(fd, LS_CHUNK_SIZE, &st, &h, &n, NULL), 0);
  close(fd);
  assert_int_equal(f->size, st.size);
  assert_int_equal(f->chunk_count, n);
  if (n)
    assert_memory_equal(f->sha256, h, (size_t)n * 32);
  free(h);
}

static void count_refreshed(void *user)
{
  (*(unsigned *)user)++;
}

static void manifest_with_cached_hashes(void **state)
{
  (void)state;
  world *w = start_connected(false);
  ls_msg m = get_game("alpha");
  /* 8 at once: one job hashes, the others wait for it, all get the same */
  result *rs[8];
  unsigned before = done_count;
  for (int i = 0; i < 8; i++) {
    rs[i] = calloc(1, sizeof *rs[i]);
    start(w, &m, rs[i]);
  }
  run_until(w, &done_count, before + 8);
  for (int i = 1; i < 8; i++) {
    assert_int_equal(rs[i]->type, LS_MSG_GAME_FILES);
    assert_int_equal(rs[i]->msg.game_files.file_count, 4);
    free_result(rs[i]);
  }
  result *r = rs[0];
  assert_int_equal(r->err, 0);
  assert_int_equal(r->type, LS_MSG_GAME_FILES);
  ls_msg_game_files *gf = &r->msg.game_files;
  assert_string_equal(gf->version, "2.0");
  assert_int_equal(gf->chunk_size, LS_CHUNK_SIZE);
  const char *want[] = {"data.eti", "disc2/more.eti", "readme.txt", "version.ini"};
  assert_int_equal(gf->file_count, 4); /* no local/, no reserved names, no symlink */
  for (size_t i = 0; i < 4; i++) {
    assert_string_equal(gf->files[i].path, want[i]);
    expect_hashes(t_path("%s/alpha/%s", w->srv.games, want[i]), &gf->files[i]);
  }
  free_result(r);
  ls_serve_stats st = ls_serve_get_stats(ls_node_serve(w->srv.node));
  assert_int_equal(st.files_hashed, 4);
  assert_int_equal(st.hash_jobs, 1);
  assert_int_equal(st.jobs_merged + st.manifest_hits, 7);

  r = ask(w, &m); /* again: the manifest cache, no job */
  assert_int_equal(r->type, LS_MSG_GAME_FILES);
  free_result(r);
  st = ls_serve_get_stats(ls_node_serve(w->srv.node));
  assert_int_equal(st.files_hashed, 4);
  assert_int_equal(st.hash_jobs, 1);
  unsigned hits = st.manifest_hits;
  assert_true(hits >= 1);

  /* A changed root: the monitor's rescan invalidates the manifest; the
   * changed file is hashed again, the others come from the index, and the
   * new manifest is served. */
  t_write(w->srv.games, "alpha/readme.txt", "hello again, lan party, with more bytes\n");
  unsigned refreshed = 0;
  assert_int_equal(ls_monitor_refresh(w->srv.monitor, "alpha", count_refreshed, &refreshed), 0);
  run_until(w, &refreshed, 1);
  r = ask(w, &m);
  assert_int_equal(r->type, LS_MSG_GAME_FILES);
  assert_int_equal(r->msg.game_files.file_count, 4);
  for (size_t i = 0; i < 4; i++)
    expect_hashes(t_path("%s/alpha/%s", w->srv.games, want[i]), &r->msg.game_files.files[i]);
  free_result(r);
  st = ls_serve_get_stats(ls_node_serve(w->srv.node));
  assert_int_equal(st.files_hashed, 5);
  assert_int_equal(st.hash_cache_hits, 3);
  assert_int_equal(st.manifest_hits, hits);
  r = ask(w, &m); /* and cached again */
  assert_int_equal(r->type, LS_MSG_GAME_FILES);
  free_result(r);
  st = ls_serve_get_stats(ls_node_serve(w->srv.node));
  assert_int_equal(st.manifest_hits, hits + 1);
  assert_int_equal(st.hash_jobs, 2);

  /* A restarted server still has them: the index is on disk. */
  stop_side(w, &w->srv);
  start_side(w, &w->srv, w->port);
  connect_and_greet(w);
  r = ask(w, &m);
  assert_int_equal(r->type, LS_MSG_GAME_FILES);
  free_result(r);
  st = ls_serve_get_stats(ls_node_serve(w->srv.node));
  assert_int_equal(st.files_hashed, 0);
  assert_int_equal(st.hash_cache_hits, 4);
  stop_world(w);
}

static void file_bytes_whole_and_chunks(void **state)
{
  (void)state;
  world *w = start_connected(false);
  const char *path = t_path("%s/alpha/data.eti", w->srv.games);
  FILE *f = fopen(path, "rb");
  size_t size = 3 * 1048576 + 12345;
  uint8_t *local = malloc(size);
  assert_int_equal(fread(local, 1, size, f), size);
  fclose(f);

  ls_msg m = get_file("alpha", "data.eti");
  result *r = calloc(1, sizeof *r);
  r->collect = size;
  r->data = malloc(size);
  unsigned before = done_count;
  start(w, &m, r);
  run_until(w, &done_count, before + 1);
  assert_int_equal(r->err, 0);
  assert_int_equal(r->type, LS_MSG_FILE_DATA);
  assert_int_equal(r->bytes, size);
  assert_memory_equal(r->data, local, size);
  free_result(r);

  /* 64 chunk requests in flight at once on one connection. */
  enum { N = 64 };
  result *rs[N];
  before = done_count;
  for (int i = 0; i < N; i++) {
    uint64_t off = (uint64_t)i * 40000, len = 1 + (uint64_t)i * 1000;
    ls_msg c = get_chunk("alpha", "data.eti", off, len);
    rs[i] = calloc(1, sizeof *rs[i]);
    rs[i]->collect = len;
    rs[i]->data = malloc(len);
    start(w, &c, rs[i]);
  }
  run_until(w, &done_count, before + N);
  for (int i = 0; i < N; i++) {
    uint64_t off = (uint64_t)i * 40000, len = 1 + (uint64_t)i * 1000;
    assert_int_equal(rs[i]->err, 0);
    assert_int_equal(rs[i]->type, LS_MSG_FILE_DATA);
    assert_int_equal(rs[i]->bytes, len);
    assert_int_equal(rs[i]->msg.range.offset, off);
    assert_memory_equal(rs[i]->data, local + off, len);
    free_result(rs[i]);
  }
  /* The very last byte, and an empty-tail file. */
  ls_msg last = get_chunk("alpha", "data.eti", size - 1, 1);
  r = ask(w, &last);
  assert_int_equal(r->err, 0);
  assert_int_equal(r->bytes, 1);
  free_result(r);
  free(local);
  stop_world(w);
}

static uint64_t lag_last, lag_max;

static void on_lag_probe(uv_timer_t *t)
{
  (void)t;
  uint64_t now = uv_hrtime();
  if (now - lag_last > lag_max)
    lag_max = now - lag_last;
  lag_last = now;
}

static void big_file_is_byte_exact(void **state)
{
  (void)state;
  world *w = start_connected(true);
  uint8_t want[32], got[32];
  int fd = open(t_path("%s/big/big.eti", w->srv.games), O_RDONLY);
  struct sha256_ctx ctx;
  sha256_init(&ctx);
  uint8_t *buf = malloc(1 << 20);
  ssize_t n;
  while ((n = read(fd, buf, 1 << 20)) > 0)
    sha256_update(&ctx, (size_t)n, buf);
  sha256_digest(&ctx, 32, want);
  free(buf);
  close(fd);

  ls_msg m = get_file("big", "big.eti");
  uv_timer_t probe; /* how long the loop goes without running a 1 ms timer */
  uv_timer_init(&w->loop, &probe);
  probe.data = NULL;
  lag_last = uv_hrtime();
  lag_max = 0;
  uv_timer_start(&probe, on_lag_probe, 1, 1);
  uint64_t t0 = uv_hrtime();
  result *r = ask(w, &m);
  double secs = (double)(uv_hrtime() - t0) / 1e9;
  uv_close((uv_handle_t *)&probe, NULL);
  print_message("longest loop stall during the transfer: %.1f ms\n", (double)lag_max / 1e6);
  assert_int_equal(r->err, 0);
  assert_int_equal(r->bytes, BIG_SIZE);
  sha256_digest(&r->sha, 32, got);
  assert_memory_equal(got, want, 32);
  print_message("256 MiB over loopback QUIC in %.2f s (%.0f MB/s, both ends in one thread)\n",
                secs, BIG_SIZE / secs / 1e6);
  free_result(r);
  stop_world(w);
}

/* A reader that stops reading after its first bytes. */
typedef struct stalled {
  result r;
  ls_request *req;
  bool paused;
} stalled;

static int stall_bytes(ls_request *req, const uint8_t *data, size_t len, void *user)
{
  stalled *st = user;
  r_bytes(req, data, len, &st->r);
  st->req = req;
  if (!st->paused) {
    st->paused = true;
    return 1;
  }
  return 0;
}

static void stall_response(ls_request *req, const ls_msg *msg, void *user)
{
  r_response(req, msg, &((stalled *)user)->r);
}

static void stall_done(ls_request *req, int err, const char *diag, void *user)
{
  r_done(req, err, diag, &((stalled *)user)->r);
}

static void stalled_reader_bounds_the_sender(void **state)
{
  (void)state;
  world *w = start_connected(true);
  stalled st = {0};
  sha256_init(&st.r.sha);
  static const ls_request_callbacks cb = {stall_response, stall_bytes, stall_done};
  ls_msg m = get_file("big", "big.eti");
  ls_request *req;
  assert_int_equal(ls_request_start(w->conn, &m, &cb, &st, &req, NULL), 0);
  unsigned one = 1;
  uv_timer_t t;
  uv_timer_init(&w->loop, &t);
  flag_timeout = false;
  uv_timer_start(&t, on_timeout, 1500, 0); /* a stall of 1.5 s */
  while (!flag_timeout)
    uv_run(&w->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  print_message("paused reader received %llu of %u bytes\n", (unsigned long long)st.r.bytes,
                BIG_SIZE);
  assert_true(st.paused);
  assert_false(st.r.done);
  /* Flow control: at most the stream window (16 MiB cap) arrives. */
  assert_true(st.r.bytes <= 16u << 20);
  unsigned before = done_count;
  ls_request_resume(st.req);
  run_until(w, &done_count, before + one);
  assert_int_equal(st.r.err, 0);
  assert_int_equal(st.r.bytes, BIG_SIZE);
  ls_msg_clear(&st.r.msg);
  stop_world(w);
}

/* ---- bad input ---------------------------------------------------------- */

/* A raw stream: whatever bytes we like, and the response frame back. */
typedef struct raw {
  ls_stream_handler handler;
  ls_frame_reader reader;
  ls_msg msg;
  bool got, closed;
} raw;

static unsigned raw_closed;

static void raw_data(ls_stream_handler *h, ls_quic_stream *s, const uint8_t *d, size_t n, int fin)
{
  (void)s;
  (void)fin;
  raw *r = (raw *)h;
  size_t used;
  int rc = r->got ? 0 : ls_frame_reader_feed(&r->reader, d, n, &used, NULL);
  if (rc == 1)
    r->got = ls_frame_reader_decode(&r->reader, &r->msg, NULL) == 0;
}

static void raw_closed_cb(ls_stream_handler *h, ls_quic_stream *s, int err)
{
  (void)s;
  (void)err;
  raw *r = (raw *)h;
  r->closed = true;
  raw_closed++;
}

static void release_nothing(void *arg)
{
  (void)arg;
}

static raw *send_raw(world *w, const void *bytes, size_t len)
{
  raw *r = calloc(1, sizeof *r);
  r->handler.on_data = raw_data;
  r->handler.on_closed = raw_closed_cb;
  ls_frame_reader_init(&r->reader, LS_DIR_RESPONSE);
  ls_quic_stream *s;
  assert_int_equal(ls_quic_open_stream(w->conn, &s), 0);
  ls_quic_stream_set_user(s, &r->handler);
  assert_int_equal(ls_quic_stream_write(s, bytes, len, 1, release_nothing, NULL), 0);
  unsigned before = raw_closed;
  run_until(w, &raw_closed, before + 1);
  return r;
}

static void free_raw(raw *r)
{
  ls_frame_reader_free(&r->reader);
  ls_msg_clear(&r->msg);
  free(r);
}

static void expect_raw_invalid(world *w, const void *bytes, size_t len, const char *reason)
{
  raw *r = send_raw(w, bytes, len);
  if (!r->got)
    fail_msg("no InvalidRequest for a raw request of %zu bytes (expecting '%s')", len, reason);
  assert_int_equal(r->msg.type, LS_MSG_INVALID_REQUEST);
  if (!strstr(r->msg.invalid.reason, reason))
    fail_msg("reason '%s' lacks '%s'", r->msg.invalid.reason, reason);
  free_raw(r);
}

/* A frame around json, sent raw. */
static void expect_json_invalid(world *w, const char *json, const char *reason)
{
  size_t n = strlen(json);
  uint8_t *frame = malloc(n + 4);
  frame[0] = (uint8_t)(n >> 24);
  frame[1] = (uint8_t)(n >> 16);
  frame[2] = (uint8_t)(n >> 8);
  frame[3] = (uint8_t)n;
  memcpy(frame + 4, json, n);
  expect_raw_invalid(w, frame, n + 4, reason);
  free(frame);
}

static void snapshot_tree(const char *dir, uint8_t out[32])
{
  /* sha256 over the sorted payload + reserved files we care about */
  const char *files[] = {"alpha/version.ini", "alpha/readme.txt", "alpha/data.eti",
                         "alpha/disc2/more.eti", "alpha/local/game.exe", "alpha/.lanspread.json"};
  struct sha256_ctx ctx;
  sha256_init(&ctx);
  uint8_t *buf = malloc(1 << 20);
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    int fd = open(t_path("%s/%s", dir, files[i]), O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n;
    while ((n = read(fd, buf, 1 << 20)) > 0)
      sha256_update(&ctx, (size_t)n, buf);
    close(fd);
  }
  free(buf);
  sha256_digest(&ctx, 32, out);
}

static void bad_requests_are_refused(void **state)
{
  (void)state;
  world *w = start_connected(false);
  uint8_t before[32], after[32];
  snapshot_tree(w->srv.games, before);
  size_t lib_count = ls_monitor_library(w->srv.monitor)->count;

  assert_not_found(w, "notcat");   /* not in the catalog */
  assert_not_found(w, "beta");     /* local-only: not downloaded */
  assert_not_found(w, "big");      /* in the catalog, absent here */
  ls_msg m = get_file("alpha", "local/game.exe");
  assert_invalid(w, &m, "not a payload file");
  m = get_file("alpha", ".lanspread.json");
  assert_invalid(w, &m, "not a payload file");
  m = get_file("alpha", "passwd.eti"); /* a symlink to /etc/passwd */
  assert_invalid(w, &m, "not a payload file");
  m = get_chunk("alpha", "readme.txt", 10, 8); /* 17 bytes: 10 + 8 is past the end */
  assert_invalid(w, &m, "past end of file");
  m = get_chunk("alpha", "readme.txt", 17, 1);
  assert_invalid(w, &m, "past end of file");

  /* A payload file swapped for a symlink after the scan is not followed. */
  assert_int_equal(rename(t_path("%s/alpha/readme.txt", w->srv.games),
                          t_path("%s/readme.keep", w->srv.state)), 0);
  t_symlink("/etc/passwd", w->srv.games, "alpha/readme.txt");
  m = get_file("alpha", "readme.txt");
  assert_invalid(w, &m, "cannot be read");
  assert_int_equal(unlink(t_path("%s/alpha/readme.txt", w->srv.games)), 0);
  assert_int_equal(rename(t_path("%s/readme.keep", w->srv.state),
                          t_path("%s/alpha/readme.txt", w->srv.games)), 0);

  /* Malformed frames on raw streams: answered, the connection lives on. */
  static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, '{'};
  expect_raw_invalid(w, huge, sizeof huge, "");
  static const uint8_t not_json[] = {0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'};
  expect_raw_invalid(w, not_json, sizeof not_json, "");
  static const uint8_t truncated[] = {0, 0, 0, 50, '{', '"'};
  expect_raw_invalid(w, truncated, sizeof truncated, "truncated");
  /* A fresh connection: 8 garbage requests on one connection would close it. */
  connect_and_greet(w);
  expect_json_invalid(w, "{\"type\":\"Teleport\"}", "");
  expect_json_invalid(w, "{\"type\":\"GetGameFileData\",\"id\":\"alpha\",\"path\":\"../x\"}", "path");
  expect_json_invalid(w, "{\"type\":\"GetGameFileData\",\"id\":\"alpha\",\"path\":\"/etc/passwd\"}", "path");
  expect_json_invalid(w, "{\"type\":\"GetGame\",\"id\":\"../../etc\"}", "id");
  expect_json_invalid(w, "{\"type\":\"GetGame\",\"id\":7}", "id");
  expect_json_invalid(w, "{\"type\":\"GetGameFileChunk\",\"id\":\"alpha\",\"path\":\"data.eti\",\"offset\":-1,\"length\":5}", "offset");
  expect_json_invalid(w, "{\"type\":\"Pong\"}", "");

  ls_msg ping = {.type = LS_MSG_PING};
  result *r = ask(w, &ping);
  assert_int_equal(r->type, LS_MSG_PONG);
  free_result(r);

  /* The server's files and library did not change. */
  snapshot_tree(w->srv.games, after);
  assert_memory_equal(before, after, 32);
  uv_run(&w->loop, UV_RUN_NOWAIT);
  assert_int_equal(ls_monitor_library(w->srv.monitor)->count, lib_count);
  stop_world(w);
}

static void repeated_garbage_disconnects(void **state)
{
  (void)state;
  world *w = start_connected(false);
  static const uint8_t junk[] = {0, 0, 0, 1, '['};
  unsigned closed_before = w->cli.closed;
  ls_msg stale = get_file("alpha", "gone.eti"); /* refused, but not garbage */
  for (int i = 0; i < 10; i++)
    assert_invalid(w, &stale, "not a payload file");
  for (int i = 0; i < 7; i++)
    free_raw(send_raw(w, junk, sizeof junk));
  assert_int_equal(w->cli.closed, closed_before); /* 7 bad requests: still connected */
  raw *r = calloc(1, sizeof *r);
  r->handler.on_data = raw_data;
  r->handler.on_closed = raw_closed_cb;
  ls_frame_reader_init(&r->reader, LS_DIR_RESPONSE);
  ls_quic_stream *s;
  assert_int_equal(ls_quic_open_stream(w->conn, &s), 0);
  ls_quic_stream_set_user(s, &r->handler);
  ls_quic_stream_write(s, junk, sizeof junk, 1, release_nothing, NULL);
  run_until(w, &w->cli.closed, closed_before + 1); /* the 8th closes the connection */
  assert_int_equal(ls_serve_get_stats(ls_node_serve(w->srv.node)).conns_dropped, 1);
  free_raw(r);
  connect_and_greet(w); /* a new one is welcome */
  ls_msg ping = {.type = LS_MSG_PING};
  result *res = ask(w, &ping);
  assert_int_equal(res->type, LS_MSG_PONG);
  free_result(res);
  stop_world(w);
}

static void reconnect_after_server_restart(void **state)
{
  (void)state;
  world *w = start_connected(false);
  unsigned closed_before = w->cli.closed;
  stop_side(w, &w->srv);
  run_until(w, &w->cli.closed, closed_before + 1); /* the client sees it go */
  start_side(w, &w->srv, w->port);
  connect_and_greet(w);
  ls_msg ping = {.type = LS_MSG_PING};
  result *r = ask(w, &ping);
  assert_int_equal(r->type, LS_MSG_PONG);
  free_result(r);
  stop_world(w);
}

static void wrong_peer_id_is_refused(void **state)
{
  (void)state;
  world *w = start_world(false);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)w->port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ls_quic_conn *conn;
  unsigned before = w->cli.closed;
  assert_int_equal(ls_quic_connect(ls_node_endpoint(w->cli.node), (struct sockaddr *)&addr,
                                   ls_identity_peer_id(w->cli.identity), &conn, NULL), 0);
  run_until(w, &w->cli.closed, before + 1);
  assert_int_equal(w->cli.closed_err, LS_EACCES);
  assert_int_equal(w->cli.ready, 0);
  stop_world(w);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(hello_ping_and_list),
    cmocka_unit_test(manifest_with_cached_hashes),
    cmocka_unit_test(file_bytes_whole_and_chunks),
    cmocka_unit_test(big_file_is_byte_exact),
    cmocka_unit_test(stalled_reader_bounds_the_sender),
    cmocka_unit_test(bad_requests_are_refused),
    cmocka_unit_test(repeated_garbage_disconnects),
    cmocka_unit_test(reconnect_after_server_restart),
    cmocka_unit_test(wrong_peer_id_is_refused),
  };
  return ls_run_tests(tests, NULL, NULL);
}
