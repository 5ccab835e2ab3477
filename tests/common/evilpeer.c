/* The malicious peer of evilpeer.h: QUIC endpoints with throwaway
 * identities (net/quic.h), Hello through the request client
 * (node/request.h), answers built by hand with the frame codec, and the
 * client attacks: request streams it opens and abandons. */
#include "evilpeer.h"

#include "core/addr.h"
#include "net/identity.h"
#include "net/quic.h"
#include "node/party.h"
#include "node/request.h"
#include "node/stream_handler.h"
#include "proto/proto.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

typedef struct evil evil;

typedef struct ghost {
  evil *e;
  unsigned index;
  ls_identity *identity;
  ls_quic *quic;
  char host[48]; /* the address its endpoint and, later, its socket use */
  unsigned port;
  ls_request *hello;
  ls_quic_conn *conn; /* its connection to the victim, once ready */
  ls_quic_conn *donor; /* a replayed proof: the connection it was made on */
  unsigned streams_opened; /* client attacks */
  bool vanishing;
  uv_udp_t udp; /* after it vanished: counts what still arrives */
  bool udp_open;
  unsigned long datagrams, late;
} ghost;

struct evil {
  const evil_config *cfg;
  uv_loop_t loop;
  uv_timer_t stop, quiet, launch;
  uv_poll_t input; /* stdin: "quiet" and "stop" lines from the test */
  bool input_open;
  unsigned launched;
  struct sockaddr_storage victim;
  ghost *ghosts;
  unsigned count;
  unsigned lists, chunks;
  unsigned opened, resets, answered; /* client attacks */
  unsigned flood_ready, flood_refused, flood_failed;
  char probe[2][3][24];  /* answers before and after Hello */
  char probe_hello[24];
  ls_party_key key; /* cfg->party_key_file's */
  unsigned probe_phase, probe_left;
  bool in_quiet, failed, stopping;
};

/* A stream the attack opened. */
typedef struct cli_stream {
  ls_stream_handler h;
  evil *e;
  bool got_data;
} cli_stream;

/* A stream the victim opened: one request frame in, one answer out. */
typedef struct srv_stream {
  ls_stream_handler h;
  ghost *g;
  ls_frame_reader reader;
  bool answered;
} srv_stream;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
}

static ghost *ghost_of(ls_quic_conn *conn)
{
  return ls_quic_user(ls_quic_conn_endpoint(conn));
}

/* ---- answers --------------------------------------------------------------- */

static void write_frame(ls_quic_stream *s, uint8_t *frame, size_t len)
{
  if (ls_quic_stream_write(s, frame, len, 1, free, frame) != LS_OK)
    ls_quic_stream_reset(s, 1);
}

static void answer_msg(ls_quic_stream *s, const ls_msg *msg)
{
  uint8_t *frame;
  size_t len;
  if (ls_msg_encode_frame(msg, &frame, &len, NULL) == LS_OK)
    write_frame(s, frame, len);
  else
    ls_quic_stream_reset(s, 1);
}

/* A frame of the test's body, whatever it holds. */
static void answer_raw(ls_quic_stream *s, const char *body, size_t len)
{
  uint8_t *frame = malloc(LS_FRAME_HEADER_LEN + len);
  if (!frame) {
    ls_quic_stream_reset(s, 1);
    return;
  }
  ls_frame_put_length(frame, (uint32_t)len);
  memcpy(frame + LS_FRAME_HEADER_LEN, body, len);
  write_frame(s, frame, LS_FRAME_HEADER_LEN + len);
}

static void answer(srv_stream *st, ls_quic_stream *s, const ls_msg *req)
{
  ls_msg out = {.type = LS_MSG_INVALID_REQUEST};
  switch (req->type) {
  case LS_MSG_HELLO:
    out.type = LS_MSG_HELLO_ACK;
    out.hello.protocol_version = LS_PROTO_VERSION;
    snprintf(out.hello.peer_id, sizeof out.hello.peer_id, "%s",
             ls_identity_peer_id(st->g->identity));
    out.hello.name = "evil";
    break;
  case LS_MSG_PING: out.type = LS_MSG_PONG; break;
  case LS_MSG_LIST_GAMES:
    answer_raw(s, st->g->e->cfg->game_list, st->g->e->cfg->game_list_len);
    say("{\"evil\":\"list-sent\",\"n\":%u}", ++st->g->e->lists);
    return;
  case LS_MSG_GET_GAME:
    if (!st->g->e->cfg->game_files)
      break;
    answer_raw(s, st->g->e->cfg->game_files, st->g->e->cfg->game_files_len);
    say("{\"evil\":\"files-sent\"}");
    return;
  case LS_MSG_GET_GAME_FILE_CHUNK:
  case LS_MSG_GET_GAME_FILE_DATA: /* asked, never answered */
    say("{\"evil\":\"chunk-asked\",\"n\":%u}", ++st->g->e->chunks);
    return;
  default: out.invalid.reason = "no"; break;
  }
  answer_msg(s, &out);
}

static void srv_on_data(ls_stream_handler *h, ls_quic_stream *s, const uint8_t *data,
                        size_t len, int fin)
{
  srv_stream *st = (srv_stream *)h;
  (void)fin;
  size_t used = 0;
  if (st->answered || ls_frame_reader_feed(&st->reader, data, len, &used, NULL) != 1)
    return;
  st->answered = true;
  ls_msg req;
  if (ls_frame_reader_decode(&st->reader, &req, NULL) != LS_OK) {
    ls_quic_stream_reset(s, 1);
    return;
  }
  answer(st, s, &req);
  ls_msg_clear(&req);
}

static void srv_on_closed(ls_stream_handler *h, ls_quic_stream *s, int err)
{
  srv_stream *st = (srv_stream *)h;
  (void)s;
  (void)err;
  ls_frame_reader_free(&st->reader);
  free(st);
}

/* ---- client attacks --------------------------------------------------------- */

static void cli_on_data(ls_stream_handler *h, ls_quic_stream *s, const uint8_t *data,
                        size_t len, int fin)
{
  cli_stream *st = (cli_stream *)h;
  (void)s;
  (void)data;
  (void)fin;
  if (len && !st->got_data) {
    st->got_data = true;
    st->e->answered++;
  }
}

static void cli_on_closed(ls_stream_handler *h, ls_quic_stream *s, int err)
{
  cli_stream *st = (cli_stream *)h;
  (void)s;
  if (err == LS_ECANCELED && !st->e->stopping)
    st->e->resets++;
  free(st);
}

/* A frame header announcing cfg->announce bytes and cfg->send of them. */
static int write_half_frame(ls_quic_stream *s, const evil_config *cfg)
{
  uint8_t *buf = malloc(LS_FRAME_HEADER_LEN + cfg->send);
  if (!buf)
    return LS_ENOMEM;
  ls_frame_put_length(buf, cfg->announce);
  memset(buf + LS_FRAME_HEADER_LEN, '{', cfg->send);
  return ls_quic_stream_write(s, buf, LS_FRAME_HEADER_LEN + cfg->send, 0, free, buf);
}

/* Writes the request with FIN, and its answer is never read. */
static int write_unread_request(ls_quic_stream *s, const ls_msg *msg)
{
  uint8_t *frame;
  size_t len;
  int rc = ls_msg_encode_frame(msg, &frame, &len, NULL);
  if (rc == LS_OK)
    rc = ls_quic_stream_write(s, frame, len, 1, free, frame);
  ls_quic_stream_read_stop(s);
  return rc;
}

static int write_get_game(ls_quic_stream *s, const evil_config *cfg)
{
  ls_msg msg = {.type = LS_MSG_GET_GAME};
  msg.game.id = (char *)cfg->game_id;
  return write_unread_request(s, &msg);
}

static int write_chunk_request(ls_quic_stream *s, const evil_config *cfg)
{
  ls_msg msg = {.type = LS_MSG_GET_GAME_FILE_CHUNK};
  msg.range.id = (char *)cfg->game_id;
  msg.range.path = (char *)cfg->file_path;
  msg.range.offset = 0;
  msg.range.length = cfg->chunk_length;
  return write_unread_request(s, &msg);
}

static int write_attack_request(ls_quic_stream *s, const evil_config *cfg)
{
  switch (cfg->attack) {
  case EVIL_HALF_FRAMES: return write_half_frame(s, cfg);
  case EVIL_GET_GAME_FLOOD: return write_get_game(s, cfg);
  case EVIL_UNREAD_CHUNKS: return write_chunk_request(s, cfg);
  default: return LS_EINVAL;
  }
}

/* Says "flood-settled" once every flood connection is ready or closed. */
static void flood_count(evil *e, unsigned *counter)
{
  (*counter)++;
  if (e->flood_ready + e->flood_refused + e->flood_failed == e->cfg->conns)
    say("{\"evil\":\"flood-settled\",\"ready\":%u,\"refused\":%u,\"failed\":%u}",
        e->flood_ready, e->flood_refused, e->flood_failed);
}

/* ---- the probe --------------------------------------------------------------- */

typedef struct probe_req {
  evil *e;
  ghost *g;
  char *slot; /* where the answer's type name goes */
} probe_req;

static void send_hello(ghost *g, ls_quic_conn *conn);
static void probe_send(ghost *g, unsigned phase);

static void probe_response(ls_request *req, const ls_msg *msg, void *user)
{
  probe_req *p = user;
  (void)req;
  snprintf(p->slot, 24, "%s", ls_msg_type_name(msg->type));
}

static void probe_done(ls_request *req, int err, const char *diag, void *user)
{
  probe_req *p = user;
  evil *e = p->e;
  ghost *g = p->g;
  (void)req;
  (void)diag;
  if (err != LS_OK && !p->slot[0])
    snprintf(p->slot, 24, "error");
  free(p);
  if (--e->probe_left)
    return;
  if (e->probe_phase == 0) {
    send_hello(g, g->conn);
    return;
  }
  say("{\"evil\":\"probe\",\"before\":[\"%s\",\"%s\",\"%s\"],\"hello\":\"%s\","
      "\"after\":[\"%s\",\"%s\",\"%s\"]}", e->probe[0][0], e->probe[0][1], e->probe[0][2],
      e->probe_hello, e->probe[1][0], e->probe[1][1], e->probe[1][2]);
}

/* The three requests of a probe phase (0: before Hello, 1: after). */
static void probe_send(ghost *g, unsigned phase)
{
  static const ls_request_callbacks cb = {probe_response, NULL, probe_done};
  evil *e = g->e;
  ls_msg msgs[3] = {{.type = LS_MSG_LIST_GAMES}, {.type = LS_MSG_GET_GAME},
                    {.type = LS_MSG_GET_GAME_FILE_CHUNK}};
  msgs[1].game.id = (char *)e->cfg->game_id;
  msgs[2].range = (ls_msg_file_range){(char *)e->cfg->game_id, (char *)e->cfg->file_path, 0, 1};
  e->probe_phase = phase;
  e->probe_left = 3;
  for (int i = 0; i < 3; i++) {
    probe_req *p = calloc(1, sizeof *p);
    ls_request *req;
    *p = (probe_req){e, g, e->probe[phase][i]};
    if (ls_request_start(g->conn, &msgs[i], &cb, p, &req, NULL) != LS_OK) {
      snprintf(p->slot, 24, "error");
      probe_done(NULL, LS_EIO, "", p);
    }
  }
}

/* Opens the attack's streams; when the victim's stream budget is spent
 * (its credit for the Hello's stream may still be on its way), the rest
 * follow on on_streams_available. "attack-sent" once all are open. */
static void launch_attack(ghost *g, ls_quic_conn *conn)
{
  evil *e = g->e;
  unsigned n = g->streams_opened;
  for (; n < e->cfg->streams; n++) {
    ls_quic_stream *s;
    cli_stream *st = calloc(1, sizeof *st);
    int rc = st ? ls_quic_open_stream(conn, &s) : LS_ENOMEM;
    if (rc != LS_OK) {
      free(st);
      if (rc == LS_EBUSY) {
        g->streams_opened = n;
        return; /* on_streams_available goes on */
      }
      break;
    }
    st->h.on_data = cli_on_data;
    st->h.on_closed = cli_on_closed;
    st->e = e;
    ls_quic_stream_set_user(s, &st->h);
    e->opened++;
    if (write_attack_request(s, e->cfg) != LS_OK)
      ls_quic_stream_reset(s, 1);
  }
  g->streams_opened = e->cfg->streams;
  say("{\"evil\":\"attack-sent\",\"i\":%u,\"streams\":%u}", g->index, n);
}

static void on_streams_available(ls_quic_conn *conn)
{
  ghost *g = ghost_of(conn);
  if (g->e->cfg->attack != EVIL_SERVE && g->e->cfg->attack != EVIL_PROBE &&
      g->streams_opened < g->e->cfg->streams)
    launch_attack(g, conn);
}

/* ---- endpoint callbacks ----------------------------------------------------- */

static void on_stream_open(ls_quic_stream *s)
{
  srv_stream *st = calloc(1, sizeof *st);
  if (!st) {
    ls_quic_stream_reset(s, 1);
    return;
  }
  st->h.on_data = srv_on_data;
  st->h.on_closed = srv_on_closed;
  st->g = ghost_of(ls_quic_stream_conn(s));
  ls_frame_reader_init(&st->reader, LS_DIR_REQUEST);
  ls_quic_stream_set_user(s, &st->h);
}

static void on_stream_data(ls_quic_stream *s, const uint8_t *data, size_t len, int fin)
{
  ls_stream_handler *h = ls_quic_stream_user(s);
  if (h)
    h->on_data(h, s, data, len, fin);
}

static void on_stream_closed(ls_quic_stream *s, int err)
{
  ls_stream_handler *h = ls_quic_stream_user(s);
  ls_quic_stream_set_user(s, NULL);
  if (h)
    h->on_closed(h, s, err);
}

static void vanish(ghost *g);

static void hello_response(ls_request *req, const ls_msg *msg, void *user)
{
  ghost *g = user;
  (void)req;
  if (g->e->cfg->attack == EVIL_PROBE)
    snprintf(g->e->probe_hello, sizeof g->e->probe_hello, "%s", ls_msg_type_name(msg->type));
  if (msg->type != LS_MSG_HELLO_ACK)
    return;
  if (g->e->cfg->attack != EVIL_SERVE && g->e->cfg->attack != EVIL_PROBE) {
    launch_attack(g, g->conn); /* a server answers nothing before Hello */
    return;
  }
  if (g->e->cfg->ghosts) {
    say("{\"evil\":\"ghost-hello\",\"i\":%u,\"port\":%u}", g->index, g->port);
    vanish(g);
  } else {
    say("{\"evil\":\"hello-acked\"}");
  }
}

static void hello_done(ls_request *req, int err, const char *diag, void *user)
{
  ghost *g = user;
  (void)req;
  g->hello = NULL;
  if (err != LS_OK)
    say("{\"evil\":\"hello-failed\",\"i\":%u,\"err\":%d}", g->index, err);
  (void)diag;
  if (g->e->cfg->attack == EVIL_PROBE)
    probe_send(g, 1);
}

static void on_conn_ready(ls_quic_conn *conn)
{
  ghost *g = ghost_of(conn);
  if (!ls_quic_conn_is_client(conn) || g->hello)
    return;
  if (g->e->cfg->attack == EVIL_CONN_FLOOD) {
    flood_count(g->e, &g->e->flood_ready);
    return;
  }
  if (g->e->cfg->proof == EVIL_PROOF_REPLAYED && !g->donor) {
    g->donor = conn; /* its proof goes into the other connection's Hello */
    return;
  }
  g->conn = conn;
  if (g->e->cfg->attack == EVIL_PROBE) {
    probe_send(g, 0);
    return;
  }
  send_hello(g, conn);
}

static void send_hello(ghost *g, ls_quic_conn *conn)
{
  static const ls_request_callbacks cb = {hello_response, NULL, hello_done};
  ls_msg hello = {.type = LS_MSG_HELLO};
  hello.hello.protocol_version = LS_PROTO_VERSION;
  snprintf(hello.hello.peer_id, sizeof hello.hello.peer_id, "%s",
           ls_identity_peer_id(g->identity));
  hello.hello.name = "evil";
  enum evil_proof proof = g->e->cfg->proof;
  if (proof != EVIL_PROOF_NONE)
    ls_party_proof(&g->e->key, proof == EVIL_PROOF_REPLAYED ? g->donor : conn,
                   proof == EVIL_PROOF_REFLECTED ? LS_PARTY_ACK : LS_PARTY_HELLO,
                   hello.hello.party);
  ls_request_start(conn, &hello, &cb, g, &g->hello, NULL);
}

static void on_conn_closed(ls_quic_conn *conn, int err, const char *diag)
{
  ghost *g = ghost_of(conn);
  if (g->e->cfg->attack == EVIL_CONN_FLOOD) {
    if (!g->vanishing && !ls_quic_conn_peer_id(conn))
      flood_count(g->e, err == LS_EBUSY ? &g->e->flood_refused : &g->e->flood_failed);
    return;
  }
  if (!g->vanishing)
    say("{\"evil\":\"closed\",\"client\":%s,\"err\":%d,\"diag\":\"%.120s\"}",
        ls_quic_conn_is_client(conn) ? "true" : "false", err, diag ? diag : "");
}

/* ---- ghosts vanish ------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
  static char space[65536];
  (void)h;
  (void)suggested;
  *buf = uv_buf_init(space, sizeof space);
}

static void on_datagram(uv_udp_t *u, ssize_t n, const uv_buf_t *buf,
                        const struct sockaddr *from, unsigned flags)
{
  ghost *g = u->data;
  (void)buf;
  (void)flags;
  if (n <= 0 || !from)
    return;
  g->datagrams++;
  g->late += g->e->in_quiet;
}

/* The endpoint is gone: a plain socket takes its port and counts. */
static void after_quic_closed(void *user)
{
  ghost *g = user;
  g->quic = NULL;
  struct sockaddr_storage at;
  char text[96];
  snprintf(text, sizeof text, "%s:%u", g->host, g->port);
  if (ls_parse_host_port(text, &at, NULL) != LS_OK || uv_udp_init(&g->e->loop, &g->udp) != 0)
    return;
  g->udp.data = g;
  g->udp_open = true;
  if (uv_udp_bind(&g->udp, (struct sockaddr *)&at, 0) != 0 ||
      uv_udp_recv_start(&g->udp, on_alloc, on_datagram) != 0) {
    say("{\"evil\":\"rebind-failed\",\"i\":%u}", g->index);
    g->e->failed = true;
  }
}

static void vanish(ghost *g)
{
  if (g->vanishing)
    return;
  g->vanishing = true;
  ls_quic_close(g->quic, after_quic_closed, g);
}

/* ---- the scenario ------------------------------------------------------------- */

/* Every identity is made before the first connection, so that the ghosts
 * arrive at the pace of the launch timer, also when key generation is slow
 * (sanitizers). */
static int make_identity(evil *e, ghost *g, unsigned index)
{
  char dir[4096];
  g->e = e;
  g->index = index;
  snprintf(dir, sizeof dir, "%s/e%u", e->cfg->state_dir, index);
  mkdir(dir, 0700);
  ls_diag diag;
  if (ls_identity_load_or_create(dir, &g->identity, &diag) == LS_OK)
    return 0;
  say("{\"evil\":\"setup-failed\",\"why\":\"%.100s\"}", diag.text);
  return 1;
}

static int start_ghost(evil *e, ghost *g)
{
  const evil_config *cfg = e->cfg;
  char bind_text[96];
  struct sockaddr_storage bind_addr;
  if (cfg->ghosts && cfg->ghost_hosts)
    snprintf(g->host, sizeof g->host, "127.1.%u.%u", g->index / 250, g->index % 250 + 1);
  else
    snprintf(g->host, sizeof g->host, "%s", cfg->bind_host);
  snprintf(bind_text, sizeof bind_text, "%s:0", g->host);
  ls_diag diag;
  if (ls_parse_host_port(bind_text, &bind_addr, &diag) != LS_OK) {
    say("{\"evil\":\"setup-failed\",\"why\":\"%.100s\"}", diag.text);
    return 1;
  }
  ls_quic_config qc = {
    .bind_addr = (struct sockaddr *)&bind_addr, .identity = g->identity, .user = g,
    .cb = {on_conn_ready, on_conn_closed,
           cfg->ghosts || cfg->attack != EVIL_SERVE ? NULL : on_stream_open, on_stream_data,
           on_stream_closed, on_streams_available},
    .tuning = {.stream_window = cfg->recv_window, .max_stream_window = cfg->recv_window,
               .max_conns = cfg->attack == EVIL_CONN_FLOOD ? cfg->conns + 64 : 0},
  };
  unsigned dials = cfg->attack == EVIL_CONN_FLOOD    ? cfg->conns
                   : cfg->proof == EVIL_PROOF_REPLAYED ? 2
                                                       : 1;
  ls_quic_conn *conn;
  int rc = ls_quic_new(&e->loop, &qc, &g->quic, &diag);
  for (unsigned i = 0; rc == LS_OK && i < dials; i++)
    rc = ls_quic_connect(g->quic, (struct sockaddr *)&e->victim, NULL, &conn, &diag);
  if (rc != LS_OK) {
    say("{\"evil\":\"setup-failed\",\"why\":\"%.100s\"}", diag.text);
    return 1;
  }
  g->port = ls_quic_local_port(g->quic);
  return 0;
}

/* Ghosts start one every 10 ms, so that the victim's connection slots are
 * not what this tests. */
static void on_launch(uv_timer_t *t)
{
  evil *e = t->data;
  if (e->launched < e->count && start_ghost(e, &e->ghosts[e->launched]) != 0)
    e->failed = true;
  if (++e->launched >= e->count)
    uv_timer_stop(t);
}

static void on_quiet(uv_timer_t *t)
{
  evil *e = t->data;
  e->in_quiet = true;
}

static void on_stop(uv_timer_t *t);

/* The test's lines: "quiet" starts the late count now, "stop" ends the
 * run now (both also come from the timers). */
static void on_input(uv_poll_t *p, int status, int events)
{
  evil *e = p->data;
  char buf[256];
  (void)events;
  ssize_t n = status < 0 ? -1 : read(0, buf, sizeof buf - 1);
  if (n <= 0) {
    uv_poll_stop(p);
    return;
  }
  buf[n] = '\0';
  if (strstr(buf, "quiet"))
    e->in_quiet = true;
  if (strstr(buf, "stop"))
    uv_timer_start(&e->stop, on_stop, 0, 0);
}

static void close_udp(uv_handle_t *h)
{
  (void)h;
}

static void report_ghosts(const evil *e)
{
  printf("{\"evil\":\"ghosts\",\"datagrams\":[");
  for (unsigned i = 0; i < e->count; i++)
    printf("%s%lu", i ? "," : "", e->ghosts[i].datagrams);
  printf("],\"late\":[");
  for (unsigned i = 0; i < e->count; i++)
    printf("%s%lu", i ? "," : "", e->ghosts[i].late);
  printf("]}\n");
  fflush(stdout);
}

static void on_stop(uv_timer_t *t)
{
  evil *e = t->data;
  if (e->cfg->ghosts)
    report_ghosts(e);
  if (e->cfg->attack != EVIL_SERVE)
    say("{\"evil\":\"attack\",\"opened\":%u,\"reset\":%u,\"answered\":%u}", e->opened,
        e->resets, e->answered);
  e->stopping = true;
  say("{\"evil\":\"done\",\"lists\":%u}", e->lists);
  for (unsigned i = 0; i < e->count; i++) {
    ghost *g = &e->ghosts[i];
    if (g->quic && !g->vanishing) {
      g->vanishing = true;
      ls_quic_close(g->quic, NULL, NULL);
    }
    if (g->udp_open)
      uv_close((uv_handle_t *)&g->udp, close_udp);
  }
  uv_close((uv_handle_t *)&e->stop, NULL);
  uv_close((uv_handle_t *)&e->quiet, NULL);
  uv_close((uv_handle_t *)&e->launch, NULL);
  if (e->input_open)
    uv_close((uv_handle_t *)&e->input, NULL);
  e->input_open = false;
}

int evil_run(const evil_config *cfg)
{
  unsigned count = cfg->attack == EVIL_CONN_FLOOD ? 1
                   : cfg->attack != EVIL_SERVE    ? cfg->conns
                                                  : cfg->ghosts;
  evil e = {.cfg = cfg, .count = count ? count : 1};
  if (ls_parse_host_port(cfg->victim, &e.victim, NULL) != LS_OK ||
      (cfg->party_key_file && ls_party_key_load(cfg->party_key_file, &e.key, NULL) != LS_OK))
    return 1;
  e.ghosts = calloc(e.count, sizeof *e.ghosts);
  if (!e.ghosts || uv_loop_init(&e.loop) != 0)
    return 1;
  for (unsigned i = 0; i < e.count; i++)
    if (make_identity(&e, &e.ghosts[i], i) != 0)
      e.failed = true;
  uv_update_time(&e.loop); /* the identities took a while: timers count from now */
  uv_timer_init(&e.loop, &e.stop);
  uv_timer_init(&e.loop, &e.quiet);
  uv_timer_init(&e.loop, &e.launch);
  e.stop.data = e.quiet.data = e.launch.data = &e;
  uv_timer_start(&e.launch, on_launch, 0, 10);
  uv_timer_start(&e.stop, on_stop, cfg->run_ms, 0);
  if (cfg->quiet_ms)
    uv_timer_start(&e.quiet, on_quiet, cfg->run_ms > cfg->quiet_ms ? cfg->run_ms - cfg->quiet_ms : 0,
                   0);
  if (uv_poll_init(&e.loop, &e.input, 0) == 0) {
    e.input.data = &e;
    e.input_open = true;
    uv_poll_start(&e.input, UV_READABLE, on_input);
  }
  uv_run(&e.loop, UV_RUN_DEFAULT);
  uv_loop_close(&e.loop);
  for (unsigned i = 0; i < e.count; i++)
    ls_identity_free(e.ghosts[i].identity);
  free(e.ghosts);
  return e.failed;
}
