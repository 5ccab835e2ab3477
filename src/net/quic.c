/* Owns the QUIC endpoint (see quic.h): ngtcp2 0.12 connections over one
 * shared UDP socket under one uv_poll_t, a uv_timer_t per connection for
 * ngtcp2 expiry, GnuTLS sessions with mutual authentication by peer id,
 * stream send queues (borrowed buffers, file blocks) and receive credit.
 *
 * Re-entrancy rule: ngtcp2 read/write/del are only called from the top of a
 * libuv callback (poll, timer, idle). Public functions only change state and
 * put the connection on the "dirty" list, which the idle handle (or the end
 * of the current poll/timer callback) flushes. */
#include "net/quic.h"

#include "core/addr.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/hex.h"
#include "net/quic_admit.h"
#include "net/udp.h"
#include "net/udp_cidmap.h"

#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define SCID_LEN 18          /* one length for every local CID (routing) */
#define RESET_SECRET_LEN 32
#define TX_BUF_SIZE 65536
#define MAX_VEC 16
#define MAX_BATCHES_PER_FLUSH 16 /* then yield to reading for a round */
#define CLOSE_PKT_MAX 1500
#define RX_ROUNDS_PER_POLL 8
#define APP_ERR_REFUSED 0x1  /* remote stream without a handler */
#define APP_ERR_FILE 0x2     /* file read failed on the sending side */

#define PRIORITY                                                                  \
  "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:"         \
  "-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:"                    \
  "%DISABLE_TLS13_COMPAT_MODE"

enum conn_state { CS_HANDSHAKE, CS_READY, CS_CLOSING, CS_DRAINING, CS_DEAD };

typedef struct chunk chunk;
struct chunk {
  chunk *next;
  const uint8_t *data;
  size_t len;
  uint64_t off; /* stream offset of data[0] */
  void (*release)(void *arg);
  void *arg;
};

typedef struct file_block file_block;
struct file_block {
  chunk ch;
  ls_quic_stream *stream;
  size_t size;
  uint8_t buf[];
};

typedef struct file_src {
  int fd;
  uint64_t pos, left;
  int fin;
  uint32_t nblocks; /* queued or in flight */
} file_src;

struct ls_quic_stream {
  ls_quic_conn *conn;
  int64_t id;
  void *user;
  ls_quic_stream *prev, *next;       /* conn->streams */
  ls_quic_stream *tx_prev, *tx_next; /* conn->txq */
  ls_quic_stream *fill_next;         /* conn->fill_head: wants a file read */
  ls_quic_stream *grave_next;
  chunk *head, *tail, *cur;          /* cur: first chunk with unsent bytes */
  uint64_t queued, sent, acked;
  uint64_t withheld;                 /* credit held back while stopped */
  uint64_t file_unsent;              /* file bytes read and not sent yet */
  uint64_t reset_code;
  uint64_t stop_sending_code;
  file_src *file;
  int err;
  unsigned in_txq : 1, in_fillq : 1, blocked : 1, fin_queued : 1, fin_sent : 1,
      read_stopped : 1, reset_pending : 1, announced : 1, dead : 1,
      stop_sending_pending : 1;
};

struct ls_quic_conn {
  ls_quic *q;
  ngtcp2_conn *conn;
  gnutls_session_t tls;
  ngtcp2_crypto_conn_ref conn_ref;
  uv_timer_t timer;
  ls_quic_conn *prev, *next;  /* q->conns */
  ls_quic_conn *dirty_next;   /* q->dirty */
  ls_quic_stream *streams;
  ls_quic_stream *txq_head, *txq_tail;
  ls_quic_stream *fill_head, *fill_tail;
  ls_quic_conn *wait_prev, *wait_next; /* q->wait_head: waits for file memory */
  uint64_t file_unsent; /* file bytes read for its streams and not sent yet */
  uint64_t file_mem; /* bytes in its file blocks */
  ls_quic_stream *grave;
  struct sockaddr_storage remote;
  socklen_t remote_len;
  enum conn_state state;
  int is_client;
  char peer_id[LS_PEER_ID_LEN + 1];
  char expected[LS_PEER_ID_LEN + 1];
  int verify_err;
  ls_diag verify_diag;
  uint64_t close_code;
  uint64_t close_deadline;
  uint8_t close_pkt[CLOSE_PKT_MAX];
  size_t close_len;
  unsigned closing_rx;
  void *user;
  unsigned is_dirty : 1, close_requested : 1, announced : 1, notified : 1,
      ready_pending : 1, streams_wanted : 1, first_sent : 1, in_wait : 1, handshaking : 1;
};

struct ls_quic {
  uv_loop_t *loop;
  ls_quic_callbacks cb;
  void *user;
  ls_quic_tuning tun;
  const ls_identity *identity;
  gnutls_priority_t prio;
  ls_udp udp;
  uv_poll_t poll;
  uv_idle_t idle;
  int poll_events;
  ls_cidmap cids;
  uint8_t reset_secret[RESET_SECRET_LEN];
  ls_quic_conn *conns;
  ls_quic_conn *dirty_head, *dirty_tail;
  unsigned nconns;
  unsigned incoming;    /* server connections */
  unsigned handshaking; /* server connections still in their handshake */
  uint64_t retries;     /* Retry packets sent */
  uint64_t refused;     /* Initials refused */
  uint8_t retry_secret[LS_QUIC_RETRY_SECRET_LEN];
  ls_quic_refusals refusals;
  uint64_t file_mem;                     /* bytes in every file block */
  ls_quic_conn *wait_head, *wait_tail;   /* conns waiting for file memory */
  uint64_t pass_ms, pass_read_ns;        /* file reads in this loop iteration */
  uint8_t *txbuf;
  /* Datagrams the kernel did not take yet (socket buffer full). */
  uint8_t *pend;
  size_t pend_len, pend_seg;
  struct sockaddr_storage pend_dst;
  socklen_t pend_dst_len;
  int closing;
  int close_started;
  unsigned open_handles;
  void (*done_cb)(void *);
  void *done_user;
};

static void conn_flush(ls_quic_conn *c);
static void conn_arm_timer(ls_quic_conn *c);
static void conn_fail(ls_quic_conn *c, int liberr);
static void q_maybe_finish_close(ls_quic *q);
static void q_start_close(ls_quic *q);

/* ---- small helpers ---------------------------------------------------- */

static uint64_t now_ns(void)
{
  return uv_hrtime();
}

static socklen_t sa_len(const struct sockaddr *sa)
{
  return sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static int sa_equal(const struct sockaddr *a, const struct sockaddr *b)
{
  if (a->sa_family != b->sa_family)
    return 0;
  if (a->sa_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
  return x->sin6_port == y->sin6_port &&
         memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
}

/* An address as the socket sees it: IPv4 peers of a dual-stack IPv6 socket
 * are IPv4-mapped. */
static int sa_normalize(const ls_quic *q, const struct sockaddr *in, struct sockaddr_storage *out,
                        socklen_t *out_len)
{
  int fam = q->udp.local.ss_family;
  if (in->sa_family == fam) {
    *out_len = sa_len(in);
    memcpy(out, in, *out_len);
    return LS_OK;
  }
  if (fam == AF_INET6 && in->sa_family == AF_INET) {
    const struct sockaddr_in *v4 = (const void *)in;
    struct sockaddr_in6 v6 = { .sin6_family = AF_INET6, .sin6_port = v4->sin_port };
    v6.sin6_addr.s6_addr[10] = 0xff;
    v6.sin6_addr.s6_addr[11] = 0xff;
    memcpy(&v6.sin6_addr.s6_addr[12], &v4->sin_addr, 4);
    memcpy(out, &v6, sizeof v6);
    *out_len = sizeof v6;
    return LS_OK;
  }
  return LS_EINVAL;
}

static ngtcp2_path make_path(ls_quic *q, const struct sockaddr_storage *remote, socklen_t len)
{
  ngtcp2_path p = {
    .local = { .addr = (ngtcp2_sockaddr *)&q->udp.local, .addrlen = q->udp.local_len },
    .remote = { .addr = (ngtcp2_sockaddr *)remote, .addrlen = len },
  };
  return p;
}

static int random_bytes(void *buf, size_t len)
{
  return gnutls_rnd(GNUTLS_RND_RANDOM, buf, len) == 0 ? LS_OK : LS_EIO;
}

static void handle_closed(uv_handle_t *h)
{
  ls_quic *q = h->data;
  q->open_handles--;
  q_maybe_finish_close(q);
}

/* ---- dirty list and idle flush ----------------------------------------- */

static void q_update_poll(ls_quic *q)
{
  if (q->close_started)
    return;
  int ev = UV_READABLE | (q->pend_len ? UV_WRITABLE : 0);
  if (ev != q->poll_events) {
    uv_poll_start(&q->poll, ev, NULL); /* callback kept from the first start */
    q->poll_events = ev;
  }
}

static void q_idle_cb(uv_idle_t *h);

static void q_kick(ls_quic *q)
{
  if (q->close_started)
    return;
  if ((q->dirty_head || q->closing) && !q->pend_len)
    uv_idle_start(&q->idle, q_idle_cb);
  else
    uv_idle_stop(&q->idle);
}

static void mark_dirty(ls_quic_conn *c)
{
  ls_quic *q = c->q;
  if (c->is_dirty || c->state == CS_DEAD)
    return;
  c->is_dirty = 1;
  c->dirty_next = NULL;
  if (q->dirty_tail)
    q->dirty_tail->dirty_next = c;
  else
    q->dirty_head = c;
  q->dirty_tail = c;
  q_kick(q);
}

static void dirty_remove(ls_quic_conn *c)
{
  ls_quic *q = c->q;
  if (!c->is_dirty)
    return;
  ls_quic_conn **pp = &q->dirty_head, *prev = NULL;
  while (*pp && *pp != c) {
    prev = *pp;
    pp = &(*pp)->dirty_next;
  }
  if (*pp) {
    *pp = c->dirty_next;
    if (q->dirty_tail == c)
      q->dirty_tail = prev;
  }
  c->is_dirty = 0;
}

/* Sends what the kernel refused before. Returns 1 while still blocked. */
static int q_send_pending(ls_quic *q)
{
  if (!q->pend_len)
    return 0;
  long n = ls_udp_send(&q->udp, (struct sockaddr *)&q->pend_dst, q->pend_dst_len, q->pend,
                       q->pend_len, q->pend_seg);
  if (n < 0 || (size_t)n >= q->pend_len) {
    q->pend_len = 0;
  } else if (n > 0) {
    memmove(q->pend, q->pend + n, q->pend_len - (size_t)n);
    q->pend_len -= (size_t)n;
  }
  q_update_poll(q);
  return q->pend_len != 0;
}

static void q_flush_dirty(ls_quic *q)
{
  if (q_send_pending(q))
    return;
  /* Take the list: conns marked during this pass wait for the next one. */
  ls_quic_conn *c = q->dirty_head;
  q->dirty_head = q->dirty_tail = NULL;
  while (c) {
    ls_quic_conn *next = c->dirty_next;
    if (c->is_dirty) { /* else it was removed (destroyed) meanwhile */
      c->is_dirty = 0;
      if (q->pend_len)
        mark_dirty(c); /* socket blocked: keep it for later */
      else
        conn_flush(c);
    }
    c = next;
  }
  if (q->closing)
    q_start_close(q);
  q_kick(q);
}

static void q_idle_cb(uv_idle_t *h)
{
  q_flush_dirty(h->data);
}

/* Sends datagrams of one batch; keeps what the kernel refuses. Returns 1
 * when the socket is now blocked. */
static int q_send(ls_quic *q, const ngtcp2_addr *dst, const uint8_t *buf, size_t len, size_t seg)
{
  if (q->pend_len) /* never reorder behind pending datagrams */
    return 1;
  long n = ls_udp_send(&q->udp, (const struct sockaddr *)dst->addr, (socklen_t)dst->addrlen, buf,
                       len, seg);
  if (n < 0 || (size_t)n >= len)
    return 0; /* sent, or lost (QUIC recovers) */
  q->pend_len = len - (size_t)n;
  q->pend_seg = seg;
  memcpy(q->pend, buf + n, q->pend_len);
  memcpy(&q->pend_dst, dst->addr, dst->addrlen);
  q->pend_dst_len = (socklen_t)dst->addrlen;
  q_update_poll(q);
  return 1;
}

/* ---- stream send queue ------------------------------------------------ */

static int stream_has_tx(const ls_quic_stream *s)
{
  return !s->dead && (s->sent < s->queued || (s->fin_queued && !s->fin_sent));
}

static void txq_remove(ls_quic_stream *s)
{
  ls_quic_conn *c = s->conn;
  if (!s->in_txq)
    return;
  if (s->tx_prev)
    s->tx_prev->tx_next = s->tx_next;
  else
    c->txq_head = s->tx_next;
  if (s->tx_next)
    s->tx_next->tx_prev = s->tx_prev;
  else
    c->txq_tail = s->tx_prev;
  s->tx_prev = s->tx_next = NULL;
  s->in_txq = 0;
}

static void txq_append(ls_quic_stream *s)
{
  ls_quic_conn *c = s->conn;
  s->tx_next = NULL;
  s->tx_prev = c->txq_tail;
  if (c->txq_tail)
    c->txq_tail->tx_next = s;
  else
    c->txq_head = s;
  c->txq_tail = s;
  s->in_txq = 1;
}

/* Puts the stream on the send queue if it has something to send. */
static void txq_update(ls_quic_stream *s)
{
  int want = stream_has_tx(s) && !s->blocked;
  if (want && !s->in_txq) {
    txq_append(s);
    mark_dirty(s->conn);
  } else if (!want && s->in_txq) {
    txq_remove(s);
  }
}

/* Round robin: the head goes to the back after it filled a packet. */
static void txq_rotate(ls_quic_stream *s)
{
  if (s->in_txq && s->tx_next) {
    txq_remove(s);
    txq_append(s);
  }
}

static int chunk_append(ls_quic_stream *s, chunk *ch, const void *data, size_t len,
                        void (*release)(void *), void *arg)
{
  ch->next = NULL;
  ch->data = data;
  ch->len = len;
  ch->off = s->queued;
  ch->release = release;
  ch->arg = arg;
  if (s->tail)
    s->tail->next = ch;
  else
    s->head = ch;
  s->tail = ch;
  if (!s->cur)
    s->cur = ch;
  s->queued += len;
  return LS_OK;
}

/* Fills vec from the first unsent byte. *all: the vector reaches the end of
 * the queue. */
static size_t stream_vec(const ls_quic_stream *s, ngtcp2_vec *vec, size_t max, int *all)
{
  size_t n = 0;
  const chunk *ch = s->cur;
  uint64_t pos = s->sent;
  while (ch && n < max) {
    size_t skip = (size_t)(pos - ch->off);
    if (skip < ch->len) {
      vec[n].base = (uint8_t *)ch->data + skip;
      vec[n].len = ch->len - skip;
      n++;
    }
    pos = ch->off + ch->len;
    ch = ch->next;
  }
  *all = ch == NULL;
  return n;
}

static void fillq_add(ls_quic_stream *s);

static void stream_sent(ls_quic_stream *s, size_t n, int fin_flag)
{
  s->sent += n;
  /* file bytes come last in the queue: the unsent ones are its tail */
  uint64_t file_unsent = s->queued - s->sent;
  if (file_unsent < s->file_unsent) {
    s->conn->file_unsent -= s->file_unsent - file_unsent;
    s->file_unsent = file_unsent;
  }
  if (n && s->file && s->file->left > 0)
    fillq_add(s); /* the read-ahead has room again */
  else if (n && s->conn->fill_head)
    mark_dirty(s->conn);
  while (s->cur && s->cur->off + s->cur->len <= s->sent && s->cur->len > 0)
    s->cur = s->cur->next;
  if (fin_flag && s->sent == s->queued)
    s->fin_sent = 1;
  if (!stream_has_tx(s))
    txq_remove(s);
}

static void chunk_release(chunk *ch)
{
  if (ch->release)
    ch->release(ch->arg); /* may free ch (file blocks live elsewhere) */
}

typedef struct write_req {
  chunk ch;
  void (*cb)(void *);
  void *arg;
} write_req;

static void write_req_release(void *arg)
{
  write_req *w = arg;
  void (*cb)(void *) = w->cb;
  void *cb_arg = w->arg;
  free(w);
  if (cb)
    cb(cb_arg);
}

/* The peer acknowledged everything below `end`. */
static void stream_acked(ls_quic_stream *s, uint64_t end)
{
  if (end > s->acked)
    s->acked = end;
  while (s->head && s->head->off + s->head->len <= s->acked && s->head != s->cur) {
    chunk *ch = s->head;
    s->head = ch->next;
    if (!s->head)
      s->tail = NULL;
    chunk_release(ch);
  }
}

/* Releases every queued chunk (stream gone). */
static void stream_release_all(ls_quic_stream *s)
{
  chunk *ch = s->head;
  s->head = s->tail = s->cur = NULL;
  while (ch) {
    chunk *next = ch->next;
    chunk_release(ch);
    ch = next;
  }
}

/* ---- file sending ----------------------------------------------------- */

/* File sends read ahead of what is sent within three budgets, so a peer
 * that opens many streams and never reads holds little memory. A block
 * holds one read, from the read until the peer acknowledges it:
 * - per stream: never more read than the peer's credit for the stream lets
 *   us send, and at most tun.file_blocks blocks;
 * - per connection: tun.file_readahead bytes read and not sent,
 *   tun.conn_file_budget bytes of blocks;
 * - per endpoint: tun.file_budget bytes of blocks; a connection that hits it
 *   waits on q->wait_head until a block is freed.
 * Reads run in flush passes and stop once READ_NS_PER_PASS of reading was
 * spent in one loop iteration, so a slow disk delays sends, not the loop. */
#define READ_NS_PER_PASS (5 * 1000 * 1000ull)

typedef enum fill_result {
  FILL_DONE,     /* nothing to read now: finished, failed, or waits for credit
                    or its own blocks (an ack or a credit update re-queues it) */
  FILL_MORE,     /* read a block and wants another turn */
  FILL_CONN,     /* the connection's read-ahead or memory is spent */
  FILL_ENDPOINT, /* the endpoint's memory is spent */
  FILL_PASS,     /* this loop iteration's read time is spent */
} fill_result;

static void fillq_add(ls_quic_stream *s)
{
  ls_quic_conn *c = s->conn;
  if (s->in_fillq || s->dead)
    return;
  s->in_fillq = 1;
  s->fill_next = NULL;
  if (c->fill_tail)
    c->fill_tail->fill_next = s;
  else
    c->fill_head = s;
  c->fill_tail = s;
  mark_dirty(c);
}

static void fillq_remove(ls_quic_stream *s)
{
  ls_quic_conn *c = s->conn;
  if (!s->in_fillq)
    return;
  ls_quic_stream **pp = &c->fill_head, *prev = NULL;
  while (*pp != s) {
    prev = *pp;
    pp = &prev->fill_next;
  }
  *pp = s->fill_next;
  if (c->fill_tail == s)
    c->fill_tail = prev;
  s->in_fillq = 0;
}

static ls_quic_stream *fillq_pop(ls_quic_conn *c)
{
  ls_quic_stream *s = c->fill_head;
  c->fill_head = s->fill_next;
  if (!c->fill_head)
    c->fill_tail = NULL;
  s->in_fillq = 0;
  return s;
}

static void wait_add(ls_quic_conn *c)
{
  ls_quic *q = c->q;
  if (c->in_wait)
    return;
  c->in_wait = 1;
  c->wait_next = NULL;
  c->wait_prev = q->wait_tail;
  if (q->wait_tail)
    q->wait_tail->wait_next = c;
  else
    q->wait_head = c;
  q->wait_tail = c;
}

static void wait_remove(ls_quic_conn *c)
{
  ls_quic *q = c->q;
  if (!c->in_wait)
    return;
  if (c->wait_prev)
    c->wait_prev->wait_next = c->wait_next;
  else
    q->wait_head = c->wait_next;
  if (c->wait_next)
    c->wait_next->wait_prev = c->wait_prev;
  else
    q->wait_tail = c->wait_prev;
  c->wait_prev = c->wait_next = NULL;
  c->in_wait = 0;
}

/* Memory came back: every connection waiting for it gets a turn (those
 * that miss out queue again, behind the others). */
static void wake_waiters(ls_quic *q)
{
  while (q->wait_head) {
    ls_quic_conn *c = q->wait_head;
    wait_remove(c);
    mark_dirty(c);
  }
}

static void block_free(ls_quic_conn *c, file_src *f, file_block *b)
{
  ls_quic *q = c->q;
  f->nblocks--;
  c->file_mem -= b->size;
  q->file_mem -= b->size;
  free(b);
  if (c->fill_head)
    mark_dirty(c);
  wake_waiters(q);
}

/* The peer acknowledged the block, or the stream is gone. */
static void file_block_release(void *arg)
{
  file_block *b = arg;
  ls_quic_stream *s = b->stream;
  file_src *f = s->file;
  block_free(s->conn, f, b);
  if (f->left > 0)
    fillq_add(s);
}

static void file_close(file_src *f)
{
  if (f->fd >= 0)
    close(f->fd);
  f->fd = -1;
}

static void file_free(file_src *f)
{
  if (!f)
    return;
  file_close(f);
  free(f);
}

/* A block for a read of `size` bytes, or NULL with the budget that is
 * spent. */
static file_block *file_get_block(ls_quic_stream *s, size_t size, fill_result *why)
{
  ls_quic_conn *c = s->conn;
  ls_quic *q = c->q;
  file_src *f = s->file;
  *why = f->nblocks >= q->tun.file_blocks             ? FILL_DONE
         : c->file_mem + size > q->tun.conn_file_budget ? FILL_CONN
         : q->file_mem + size > q->tun.file_budget      ? FILL_ENDPOINT
                                                        : FILL_MORE;
  if (*why != FILL_MORE)
    return NULL;
  file_block *b = malloc(sizeof *b + size);
  if (!b) {
    *why = FILL_ENDPOINT; /* out of memory: wait for some to come back */
    return NULL;
  }
  b->stream = s;
  b->size = size;
  f->nblocks++;
  c->file_mem += size;
  q->file_mem += size;
  return b;
}

static void stream_schedule_reset(ls_quic_stream *s, uint64_t code, int err);

/* Read time is counted per loop iteration (uv_now changes once per
 * iteration, and an iteration that read for 5 ms ends at least 5 ms later). */
static int read_time_left(ls_quic *q)
{
  uint64_t now_ms = uv_now(q->loop);
  if (now_ms != q->pass_ms) {
    q->pass_ms = now_ms;
    q->pass_read_ns = 0;
  }
  return q->pass_read_ns < READ_NS_PER_PASS;
}

static void file_finished(ls_quic_stream *s)
{
  file_src *f = s->file;
  file_close(f);
  if (f->fin)
    s->fin_queued = 1;
  txq_update(s);
}

/* Reads one block into the stream's send queue if every budget allows. */
static fill_result stream_fill(ls_quic_stream *s)
{
  ls_quic_conn *c = s->conn;
  ls_quic *q = c->q;
  file_src *f = s->file;
  if (s->dead || !f || f->left == 0)
    return FILL_DONE;
  uint64_t unsent = s->queued - s->sent;
  uint64_t credit = ngtcp2_conn_get_max_stream_data_left(c->conn, s->id);
  if (unsent >= credit)
    return FILL_DONE; /* cb_extend_max_stream_data queues it again */
  if (c->file_unsent >= q->tun.file_readahead)
    return FILL_CONN; /* stream_sent wakes the connection */
  if (!read_time_left(q))
    return FILL_PASS;
  uint64_t n = f->left;
  if (n > q->tun.file_block)
    n = q->tun.file_block;
  if (n > credit - unsent)
    n = credit - unsent;
  fill_result why = FILL_MORE;
  file_block *b = file_get_block(s, (size_t)n, &why);
  if (!b)
    return why;
  uint64_t t0 = uv_hrtime();
  ssize_t got = ls_pread_full(f->fd, b->buf, (size_t)n, f->pos);
  q->pass_read_ns += uv_hrtime() - t0;
  if (got != (ssize_t)n) { /* a read error, or shorter than announced */
    f->left = 0;
    block_free(c, f, b);
    file_close(f);
    stream_schedule_reset(s, APP_ERR_FILE, LS_EIO);
    return FILL_DONE;
  }
  chunk_append(s, &b->ch, b->buf, (size_t)n, file_block_release, b);
  s->file_unsent += n;
  c->file_unsent += n;
  f->pos += n;
  f->left -= n;
  if (f->left == 0) {
    file_finished(s);
    return FILL_DONE;
  }
  txq_update(s);
  return FILL_MORE;
}

/* Gives the streams that want a read one block each in turn, until every
 * one is served or a budget is spent. */
static void conn_fill_files(ls_quic_conn *c)
{
  while (c->fill_head) {
    fill_result r = stream_fill(c->fill_head);
    if (r == FILL_DONE) {
      fillq_pop(c);
    } else if (r == FILL_MORE) {
      fillq_add(fillq_pop(c)); /* to the back: round robin */
    } else {
      if (r == FILL_ENDPOINT)
        wait_add(c);
      else if (r == FILL_PASS)
        mark_dirty(c); /* the next loop iteration continues */
      return;
    }
  }
}

/* ---- stream lifecycle ------------------------------------------------- */

static ls_quic_stream *stream_new(ls_quic_conn *c, int64_t id)
{
  ls_quic_stream *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  s->conn = c;
  s->id = id;
  s->next = c->streams;
  if (c->streams)
    c->streams->prev = s;
  c->streams = s;
  return s;
}

static void stream_schedule_reset(ls_quic_stream *s, uint64_t code, int err)
{
  if (s->dead || s->reset_pending)
    return;
  if (s->sent == 0 && s->fin_queued && ngtcp2_conn_is_local_stream(s->conn->conn, s->id)) {
    /* Our stream, nothing on the wire yet: a RESET_STREAM as its first
     * frame leaves it open forever at both ends under ngtcp2 0.12. Send the
     * request as queued and refuse the answer instead. */
    if (!s->err)
      s->err = err;
    s->stop_sending_pending = 1;
    s->stop_sending_code = code;
    mark_dirty(s->conn);
    return;
  }
  s->reset_pending = 1;
  s->reset_code = code;
  if (!s->err)
    s->err = err;
  mark_dirty(s->conn);
}

/* The stream is over: release buffers, tell the application, and park the
 * memory until the current top-level operation ends. */
static void stream_retire(ls_quic_stream *s, int err)
{
  ls_quic_conn *c = s->conn;
  if (s->dead)
    return;
  s->dead = 1;
  txq_remove(s);
  fillq_remove(s);
  c->file_unsent -= s->file_unsent;
  s->file_unsent = 0;
  if (s->file)
    file_close(s->file);
  stream_release_all(s);
  if (s->prev)
    s->prev->next = s->next;
  else
    c->streams = s->next;
  if (s->next)
    s->next->prev = s->prev;
  s->grave_next = c->grave;
  c->grave = s;
  if (s->announced && c->q->cb.on_stream_closed)
    c->q->cb.on_stream_closed(s, err);
}

static void conn_free_graves(ls_quic_conn *c)
{
  while (c->grave) {
    ls_quic_stream *s = c->grave;
    c->grave = s->grave_next;
    file_free(s->file);
    free(s);
  }
}

static void conn_retire_streams(ls_quic_conn *c, int err)
{
  while (c->streams)
    stream_retire(c->streams, err);
}

static void conn_apply_resets(ls_quic_conn *c)
{
  for (ls_quic_stream *s = c->streams; s; s = s->next) {
    if (s->stop_sending_pending) {
      s->stop_sending_pending = 0;
      ngtcp2_conn_shutdown_stream_read(c->conn, s->id, s->stop_sending_code);
    }
    if (!s->reset_pending)
      continue;
    s->reset_pending = 0;
    txq_remove(s);
    s->blocked = 1; /* nothing more to send */
    ngtcp2_conn_shutdown_stream(c->conn, s->id, s->reset_code);
  }
}

/* ---- ngtcp2 callbacks (no read/write/del in here) ---------------------- */

static void cb_rand(uint8_t *dest, size_t destlen, const ngtcp2_rand_ctx *rand_ctx)
{
  (void)rand_ctx;
  (void)gnutls_rnd(GNUTLS_RND_NONCE, dest, destlen);
}

static int cb_get_new_cid(ngtcp2_conn *conn, ngtcp2_cid *cid, uint8_t *token, size_t cidlen,
                          void *user_data)
{
  ls_quic_conn *c = user_data;
  (void)conn;
  if (random_bytes(cid->data, cidlen) != LS_OK)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  cid->datalen = cidlen;
  if (ngtcp2_crypto_generate_stateless_reset_token(token, c->q->reset_secret, RESET_SECRET_LEN,
                                                   cid) != 0)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  if (ls_cidmap_put(&c->q->cids, cid->data, cid->datalen, c) != LS_OK)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  return 0;
}

static int cb_remove_cid(ngtcp2_conn *conn, const ngtcp2_cid *cid, void *user_data)
{
  ls_quic_conn *c = user_data;
  (void)conn;
  ls_cidmap_del(&c->q->cids, cid->data, cid->datalen, c);
  return 0;
}

static int check_alpn(ls_quic_conn *c)
{
  gnutls_datum_t d;
  if (gnutls_alpn_get_selected_protocol(c->tls, &d) != 0 || d.size != strlen(LS_QUIC_ALPN) ||
      memcmp(d.data, LS_QUIC_ALPN, d.size) != 0)
    return -1;
  return 0;
}

/* A server connection's handshake ended (done or not): it no longer counts
 * against the handshakes in progress. */
static void handshake_over(ls_quic_conn *c)
{
  if (c->handshaking) {
    c->handshaking = 0;
    c->q->handshaking--;
  }
}

static int cb_handshake_completed(ngtcp2_conn *conn, void *user_data)
{
  ls_quic_conn *c = user_data;
  (void)conn;
  if (check_alpn(c) != 0) {
    c->verify_err = ls_diag_set(&c->verify_diag, LS_EPROTO, "peer did not select ALPN %s",
                                LS_QUIC_ALPN);
    return NGTCP2_ERR_CALLBACK_FAILURE;
  }
  if (!c->peer_id[0]) {
    c->verify_err = ls_diag_set(&c->verify_diag, LS_EACCES, "peer presented no certificate");
    return NGTCP2_ERR_CALLBACK_FAILURE;
  }
  c->state = CS_READY;
  c->announced = 1;
  handshake_over(c);
  if (c->q->cb.on_conn_ready) /* before any stream callback of this conn */
    c->q->cb.on_conn_ready(c);
  return 0;
}

static int cb_recv_stream_data(ngtcp2_conn *conn, uint32_t flags, int64_t stream_id,
                               uint64_t offset, const uint8_t *data, size_t datalen,
                               void *user_data, void *stream_user_data)
{
  ls_quic_conn *c = user_data;
  ls_quic_stream *s = stream_user_data;
  int fin = (flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0;
  (void)offset;
  if (s && !s->dead && c->q->cb.on_stream_data && c->state == CS_READY)
    c->q->cb.on_stream_data(s, data, datalen, fin);
  ngtcp2_conn_extend_max_offset(conn, datalen);
  if (s && !s->dead && s->read_stopped)
    s->withheld += datalen;
  else
    ngtcp2_conn_extend_max_stream_offset(conn, stream_id, datalen);
  return 0;
}

static int cb_acked_stream_data(ngtcp2_conn *conn, int64_t stream_id, uint64_t offset,
                                uint64_t datalen, void *user_data, void *stream_user_data)
{
  ls_quic_stream *s = stream_user_data;
  (void)conn;
  (void)stream_id;
  (void)user_data;
  if (s && !s->dead)
    stream_acked(s, offset + datalen);
  return 0;
}

static int cb_stream_open(ngtcp2_conn *conn, int64_t stream_id, void *user_data)
{
  ls_quic_conn *c = user_data;
  if (!ngtcp2_is_bidi_stream(stream_id))
    return 0;
  ls_quic_stream *s = stream_new(c, stream_id);
  if (!s)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  ngtcp2_conn_set_stream_user_data(conn, stream_id, s);
  if (!c->q->cb.on_stream_open) {
    stream_schedule_reset(s, APP_ERR_REFUSED, LS_ECANCELED);
    return 0;
  }
  s->announced = 1;
  c->q->cb.on_stream_open(s);
  return 0;
}

static int cb_stream_close(ngtcp2_conn *conn, uint32_t flags, int64_t stream_id,
                           uint64_t app_error_code, void *user_data, void *stream_user_data)
{
  ls_quic_stream *s = stream_user_data;
  (void)user_data;
  if (ngtcp2_is_bidi_stream(stream_id) && !ngtcp2_conn_is_local_stream(conn, stream_id))
    ngtcp2_conn_extend_max_streams_bidi(conn, 1); /* the budget is cumulative */
  if (!s || s->dead)
    return 0;
  int err = s->err;
  if (!err && (flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET) && app_error_code != 0)
    err = LS_ECANCELED;
  stream_retire(s, err);
  return 0;
}

static int cb_stream_reset(ngtcp2_conn *conn, int64_t stream_id, uint64_t final_size,
                           uint64_t app_error_code, void *user_data, void *stream_user_data)
{
  ls_quic_stream *s = stream_user_data;
  (void)conn;
  (void)stream_id;
  (void)final_size;
  (void)app_error_code;
  (void)user_data;
  if (s && !s->dead && !s->err)
    s->err = LS_ECANCELED;
  return 0;
}

static int cb_stop_sending(ngtcp2_conn *conn, int64_t stream_id, uint64_t app_error_code,
                           void *user_data, void *stream_user_data)
{
  ls_quic_stream *s = stream_user_data;
  (void)conn;
  (void)stream_id;
  (void)user_data;
  if (s && !s->dead)
    stream_schedule_reset(s, app_error_code, LS_ECANCELED);
  return 0;
}

static int cb_extend_max_stream_data(ngtcp2_conn *conn, int64_t stream_id, uint64_t max_data,
                                     void *user_data, void *stream_user_data)
{
  ls_quic_stream *s = stream_user_data;
  (void)conn;
  (void)stream_id;
  (void)max_data;
  (void)user_data;
  if (s && !s->dead && s->blocked && !s->reset_pending) {
    s->blocked = 0;
    txq_update(s);
  }
  if (s && !s->dead && s->file && s->file->left > 0)
    fillq_add(s); /* the read-ahead may have waited for this credit */
  return 0;
}

static int cb_extend_max_local_streams(ngtcp2_conn *conn, uint64_t max_streams, void *user_data)
{
  ls_quic_conn *c = user_data;
  (void)conn;
  (void)max_streams;
  if (c->streams_wanted && c->state == CS_READY) {
    c->streams_wanted = 0;
    if (c->q->cb.on_streams_available)
      c->q->cb.on_streams_available(c);
  }
  return 0;
}

static void set_callbacks(ngtcp2_callbacks *cb, int client)
{
  memset(cb, 0, sizeof *cb);
  if (client) {
    cb->client_initial = ngtcp2_crypto_client_initial_cb;
    cb->recv_retry = ngtcp2_crypto_recv_retry_cb;
  } else {
    cb->recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
  }
  cb->recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
  cb->encrypt = ngtcp2_crypto_encrypt_cb;
  cb->decrypt = ngtcp2_crypto_decrypt_cb;
  cb->hp_mask = ngtcp2_crypto_hp_mask_cb;
  cb->update_key = ngtcp2_crypto_update_key_cb;
  cb->delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
  cb->delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
  cb->get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
  cb->version_negotiation = ngtcp2_crypto_version_negotiation_cb;
  cb->rand = cb_rand;
  cb->get_new_connection_id = cb_get_new_cid;
  cb->remove_connection_id = cb_remove_cid;
  cb->handshake_completed = cb_handshake_completed;
  cb->recv_stream_data = cb_recv_stream_data;
  cb->acked_stream_data_offset = cb_acked_stream_data;
  cb->stream_open = cb_stream_open;
  cb->stream_close = cb_stream_close;
  cb->stream_reset = cb_stream_reset;
  cb->stream_stop_sending = cb_stop_sending;
  cb->extend_max_stream_data = cb_extend_max_stream_data;
  cb->extend_max_local_streams_bidi = cb_extend_max_local_streams;
}

/* ---- TLS -------------------------------------------------------------- */

static ngtcp2_conn *get_conn(ngtcp2_crypto_conn_ref *ref)
{
  ls_quic_conn *c = ref->user_data;
  return c->conn;
}

/* Runs inside the handshake once the peer's certificate arrived: learns
 * the peer id and, on the client, refuses an unexpected server (the TLS
 * handshake then aborts with alert bad_certificate). */
static int verify_peer(gnutls_session_t session)
{
  ngtcp2_crypto_conn_ref *ref = gnutls_session_get_ptr(session);
  ls_quic_conn *c = ref->user_data;
  unsigned n = 0;
  const gnutls_datum_t *certs = gnutls_certificate_get_peers(session, &n);
  char id[LS_PEER_ID_LEN + 1];
  if (!certs || n == 0) {
    c->verify_err = ls_diag_set(&c->verify_diag, LS_EACCES, "peer presented no certificate");
    return -1;
  }
  if (ls_peer_id_from_der(&certs[0], id) != LS_OK) {
    c->verify_err = ls_diag_set(&c->verify_diag, LS_EACCES, "peer certificate is unusable");
    return -1;
  }
  if (c->expected[0] && strcasecmp(c->expected, id) != 0) {
    c->verify_err = ls_diag_set(&c->verify_diag, LS_EACCES,
                                "peer id mismatch: expected %s, the server presented %s",
                                c->expected, id);
    return -1;
  }
  memcpy(c->peer_id, id, sizeof id);
  return 0;
}

static int tls_new(ls_quic_conn *c, ls_diag *diag)
{
  ls_quic *q = c->q;
  gnutls_datum_t alpn = { .data = (unsigned char *)LS_QUIC_ALPN,
                          .size = (unsigned)strlen(LS_QUIC_ALPN) };
  int rv = gnutls_init(&c->tls, c->is_client ? GNUTLS_CLIENT : GNUTLS_SERVER);
  if (rv != 0) {
    c->tls = NULL;
    return ls_diag_set(diag, LS_ENOMEM, "gnutls_init: %s", gnutls_strerror(rv));
  }
  if ((rv = gnutls_priority_set(c->tls, q->prio)) != 0 ||
      (rv = gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE,
                                   ls_identity_credentials(q->identity))) != 0)
    return ls_diag_set(diag, LS_EIO, "TLS session setup: %s", gnutls_strerror(rv));
  if ((c->is_client ? ngtcp2_crypto_gnutls_configure_client_session(c->tls)
                    : ngtcp2_crypto_gnutls_configure_server_session(c->tls)) != 0)
    return ls_diag_set(diag, LS_EIO, "cannot configure the TLS session for QUIC");
  c->conn_ref.get_conn = get_conn;
  c->conn_ref.user_data = c;
  gnutls_session_set_ptr(c->tls, &c->conn_ref);
  unsigned alpn_flags = GNUTLS_ALPN_MANDATORY;
  if (!c->is_client) {
    alpn_flags |= GNUTLS_ALPN_SERVER_PRECEDENCE;
    gnutls_certificate_server_set_request(c->tls, GNUTLS_CERT_REQUIRE);
  }
  if ((rv = gnutls_alpn_set_protocols(c->tls, &alpn, 1, alpn_flags)) != 0)
    return ls_diag_set(diag, LS_EIO, "ALPN setup: %s", gnutls_strerror(rv));
  gnutls_session_set_verify_function(c->tls, verify_peer);
  return LS_OK;
}

/* ---- connection setup ------------------------------------------------- */

static void debug_printf(void *user_data, const char *fmt, ...)
{
  va_list ap;
  (void)user_data;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

static void conn_settings(ls_quic *q, ngtcp2_settings *st, ngtcp2_transport_params *p)
{
  const ls_quic_tuning *t = &q->tun;
  static const ngtcp2_cc_algo algos[] = { NGTCP2_CC_ALGO_CUBIC, NGTCP2_CC_ALGO_RENO,
                                          NGTCP2_CC_ALGO_BBR, NGTCP2_CC_ALGO_BBR2 };
  ngtcp2_settings_default(st);
  st->initial_ts = now_ns();
  st->cc_algo = algos[t->cc_algo];
  st->max_tx_udp_payload_size = t->max_udp_payload;
  st->no_tx_udp_payload_size_shaping = 1;
  st->handshake_timeout = (uint64_t)t->handshake_timeout_ms * NGTCP2_MILLISECONDS;
  st->max_window = t->max_conn_window;
  st->max_stream_window = t->max_stream_window;
  st->initial_rtt = 10 * NGTCP2_MILLISECONDS; /* LAN, not the 333 ms default */
  if (getenv("LS_QUIC_DEBUG"))
    st->log_printf = debug_printf;
  ngtcp2_transport_params_default(p);
  p->initial_max_stream_data_bidi_local = t->stream_window;
  p->initial_max_stream_data_bidi_remote = t->stream_window;
  p->initial_max_data = t->conn_window;
  p->initial_max_streams_bidi = t->max_streams_bidi;
  p->initial_max_streams_uni = 0;
  p->max_idle_timeout = (uint64_t)t->idle_timeout_ms * NGTCP2_MILLISECONDS;
  p->active_connection_id_limit = 4;
}

static int register_scids(ls_quic_conn *c)
{
  ngtcp2_cid ids[16];
  if (ngtcp2_conn_get_num_scid(c->conn) > 16)
    return LS_EINVAL; /* a new connection has one */
  size_t n = ngtcp2_conn_get_scid(c->conn, ids);
  for (size_t i = 0; i < n; i++)
    if (ls_cidmap_put(&c->q->cids, ids[i].data, ids[i].datalen, c) != LS_OK)
      return LS_ENOMEM;
  return LS_OK;
}

static ls_quic_conn *conn_alloc(ls_quic *q, const struct sockaddr_storage *remote,
                                socklen_t remote_len, int client)
{
  ls_quic_conn *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->q = q;
  c->is_client = client;
  memcpy(&c->remote, remote, remote_len);
  c->remote_len = remote_len;
  uv_timer_init(q->loop, &c->timer);
  c->timer.data = c;
  q->open_handles++;
  c->next = q->conns;
  if (q->conns)
    q->conns->prev = c;
  q->conns = c;
  q->nconns++;
  return c;
}

static void conn_timer_closed(uv_handle_t *h)
{
  ls_quic_conn *c = h->data;
  ls_quic *q = c->q;
  free(c);
  q->open_handles--;
  q_maybe_finish_close(q);
}

/* Tells the application (once) that the connection is over and ends its
 * streams. The conn may live on internally (closing/draining period). */
static void conn_notify_closed(ls_quic_conn *c, int err, const char *msg)
{
  conn_retire_streams(c, LS_EIO);
  if (c->announced && !c->notified) {
    c->notified = 1;
    if (c->q->cb.on_conn_closed)
      c->q->cb.on_conn_closed(c, err, msg);
  }
  c->notified = 1;
}

/* Frees everything; the memory goes when the timer handle is closed. */
static void conn_destroy(ls_quic_conn *c, int err, const char *msg)
{
  ls_quic *q = c->q;
  if (c->state == CS_DEAD)
    return;
  conn_notify_closed(c, err, msg);
  c->state = CS_DEAD;
  dirty_remove(c);
  ls_cidmap_del_owner(&q->cids, c);
  if (c->prev)
    c->prev->next = c->next;
  else
    q->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  q->nconns--;
  if (!c->is_client)
    q->incoming--;
  handshake_over(c);
  wait_remove(c);
  conn_free_graves(c);
  if (c->conn)
    ngtcp2_conn_del(c->conn);
  c->conn = NULL;
  if (c->tls)
    gnutls_deinit(c->tls);
  c->tls = NULL;
  uv_timer_stop(&c->timer);
  uv_close((uv_handle_t *)&c->timer, conn_timer_closed);
}

static int conn_client_new(ls_quic *q, ls_quic_conn *c, ls_diag *diag)
{
  ngtcp2_cid dcid = { .datalen = SCID_LEN }, scid = { .datalen = SCID_LEN };
  ngtcp2_settings st;
  ngtcp2_transport_params p;
  ngtcp2_callbacks cb;
  if (random_bytes(dcid.data, dcid.datalen) != LS_OK ||
      random_bytes(scid.data, scid.datalen) != LS_OK)
    return ls_diag_set(diag, LS_EIO, "no randomness for connection IDs");
  conn_settings(q, &st, &p);
  set_callbacks(&cb, 1);
  ngtcp2_path path = make_path(q, &c->remote, c->remote_len);
  int rv = ngtcp2_conn_client_new(&c->conn, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1, &cb, &st,
                                  &p, NULL, c);
  if (rv != 0) {
    c->conn = NULL;
    return ls_diag_set(diag, LS_ENOMEM, "ngtcp2_conn_client_new: %s", ngtcp2_strerror(rv));
  }
  if ((rv = tls_new(c, diag)) != LS_OK)
    return rv;
  ngtcp2_conn_set_tls_native_handle(c->conn, c->tls);
  if (register_scids(c) != LS_OK)
    return ls_diag_set(diag, LS_ENOMEM, "out of memory for the connection ID table");
  return LS_OK;
}

/* odcid: the client's first destination CID when the Initial carried a
 * valid Retry token, else NULL. */
static int conn_server_new(ls_quic *q, ls_quic_conn *c, const ngtcp2_pkt_hd *hd,
                           const ngtcp2_cid *odcid)
{
  ngtcp2_cid scid = { .datalen = SCID_LEN };
  ngtcp2_settings st;
  ngtcp2_transport_params p;
  ngtcp2_callbacks cb;
  if (random_bytes(scid.data, scid.datalen) != LS_OK)
    return LS_EIO;
  conn_settings(q, &st, &p);
  p.original_dcid = hd->dcid;
  if (odcid) {
    p.original_dcid = *odcid;
    p.retry_scid = hd->dcid;
    p.retry_scid_present = 1;
    st.token = hd->token;
  }
  p.stateless_reset_token_present = 1;
  if (ngtcp2_crypto_generate_stateless_reset_token(p.stateless_reset_token, q->reset_secret,
                                                   RESET_SECRET_LEN, &scid) != 0)
    return LS_EIO;
  set_callbacks(&cb, 0);
  ngtcp2_path path = make_path(q, &c->remote, c->remote_len);
  if (ngtcp2_conn_server_new(&c->conn, &hd->scid, &scid, &path, hd->version, &cb, &st, &p, NULL,
                             c) != 0) {
    c->conn = NULL;
    return LS_ENOMEM;
  }
  int rv = tls_new(c, NULL);
  if (rv != LS_OK)
    return rv;
  ngtcp2_conn_set_tls_native_handle(c->conn, c->tls);
  if (register_scids(c) != LS_OK ||
      ls_cidmap_put(&q->cids, hd->dcid.data, hd->dcid.datalen, c) != LS_OK)
    return LS_ENOMEM;
  return LS_OK;
}

/* ---- closing ---------------------------------------------------------- */

/* Whether a peer's reason phrase is short printable ASCII (else not shown). */
static int printable(const uint8_t *text, size_t len)
{
  if (!text || len == 0 || len > 120)
    return 0;
  for (size_t i = 0; i < len; i++)
    if (text[i] < 0x20 || text[i] > 0x7e)
      return 0;
  return 1;
}

static int map_peer_close(ls_quic_conn *c, char *msg, size_t msglen)
{
  ngtcp2_connection_close_error e;
  ngtcp2_conn_get_connection_close_error(c->conn, &e);
  if (e.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION) {
    snprintf(msg, msglen, "peer closed the connection (application code %llu)",
             (unsigned long long)e.error_code);
    return e.error_code == 0 ? LS_OK : LS_EPROTO;
  }
  if (e.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_TRANSPORT && e.error_code == 0) {
    snprintf(msg, msglen, "peer closed the connection");
    return LS_OK;
  }
  if (e.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_TRANSPORT &&
      (e.error_code & ~(uint64_t)0xff) == NGTCP2_CRYPTO_ERROR) {
    snprintf(msg, msglen, "peer aborted the TLS handshake (alert %u)",
             (unsigned)(e.error_code & 0xff));
    return LS_EPROTO;
  }
  if (e.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_TRANSPORT &&
      e.error_code == NGTCP2_CONNECTION_REFUSED) {
    snprintf(msg, msglen, "peer refused the connection%s%.*s", printable(e.reason, e.reasonlen)
             ? ": " : "", printable(e.reason, e.reasonlen) ? (int)e.reasonlen : 0,
             (const char *)e.reason);
    return LS_EBUSY;
  }
  snprintf(msg, msglen, "peer closed the connection with transport error 0x%llx",
           (unsigned long long)e.error_code);
  return LS_EPROTO;
}

static void conn_set_deadline(ls_quic_conn *c)
{
  c->close_deadline = now_ns() + 3 * ngtcp2_conn_get_pto(c->conn);
  conn_arm_timer(c);
}

/* Writes CONNECTION_CLOSE into c->close_pkt and sends it. Returns 0 when a
 * packet was produced. */
static int conn_write_close(ls_quic_conn *c, const ngtcp2_connection_close_error *ccerr)
{
  ngtcp2_path_storage ps;
  ngtcp2_pkt_info pi;
  ngtcp2_path_storage_zero(&ps);
  ngtcp2_ssize n = ngtcp2_conn_write_connection_close(c->conn, &ps.path, &pi, c->close_pkt,
                                                      sizeof c->close_pkt, ccerr, now_ns());
  if (n <= 0)
    return -1;
  c->close_len = (size_t)n;
  ngtcp2_addr dst = { .addr = (ngtcp2_sockaddr *)&c->remote, .addrlen = c->remote_len };
  q_send(c->q, &dst, c->close_pkt, c->close_len, c->close_len);
  return 0;
}

/* Local error: CONNECTION_CLOSE, closing period, tell the application. */
static void conn_fail(ls_quic_conn *c, int liberr)
{
  ngtcp2_connection_close_error ccerr;
  char msg[LS_DIAG_MAX];
  int err = LS_EPROTO;
  if (c->state >= CS_CLOSING)
    return;
  ngtcp2_connection_close_error_default(&ccerr);
  if (liberr == NGTCP2_ERR_CRYPTO)
    ngtcp2_connection_close_error_set_transport_error_tls_alert(
        &ccerr, ngtcp2_conn_get_tls_alert(c->conn), NULL, 0);
  else
    ngtcp2_connection_close_error_set_transport_error_liberr(&ccerr, liberr, NULL, 0);
  if (c->verify_err) {
    err = c->verify_err;
    snprintf(msg, sizeof msg, "%s", c->verify_diag.text);
  } else if (liberr == NGTCP2_ERR_HANDSHAKE_TIMEOUT) {
    err = LS_ETIMEDOUT;
    snprintf(msg, sizeof msg, "QUIC handshake timed out");
  } else if (liberr == NGTCP2_ERR_CRYPTO) {
    snprintf(msg, sizeof msg, "TLS handshake failed (alert %u)",
             (unsigned)ngtcp2_conn_get_tls_alert(c->conn));
  } else {
    snprintf(msg, sizeof msg, "QUIC error: %s", ngtcp2_strerror(liberr));
  }
  if (liberr == NGTCP2_ERR_HANDSHAKE_TIMEOUT || conn_write_close(c, &ccerr) != 0) {
    conn_destroy(c, err, msg);
    return;
  }
  c->state = CS_CLOSING;
  conn_notify_closed(c, err, msg);
  conn_set_deadline(c);
}

/* The peer closed (or reset) the connection: draining period. */
static void conn_drain(ls_quic_conn *c)
{
  char msg[LS_DIAG_MAX];
  int err = map_peer_close(c, msg, sizeof msg);
  c->state = CS_DRAINING;
  conn_notify_closed(c, err, msg);
  conn_set_deadline(c);
}

/* Application close (deferred from ls_quic_conn_close). */
static void conn_do_close(ls_quic_conn *c)
{
  ngtcp2_connection_close_error ccerr;
  ngtcp2_connection_close_error_default(&ccerr);
  ngtcp2_connection_close_error_set_application_error(&ccerr, c->close_code, NULL, 0);
  if (c->state == CS_HANDSHAKE || c->q->closing) {
    /* Cancel: best-effort CONNECTION_CLOSE (none before the first Initial),
     * no closing period. */
    (void)conn_write_close(c, &ccerr);
    conn_destroy(c, LS_ECANCELED,
                 c->q->closing ? "the endpoint is closing"
                               : "connection cancelled during the handshake");
    return;
  }
  if (conn_write_close(c, &ccerr) != 0) {
    conn_destroy(c, LS_OK, "connection closed by us");
    return;
  }
  c->state = CS_CLOSING;
  conn_notify_closed(c, LS_OK, "connection closed by us");
  conn_set_deadline(c);
}

/* ---- receiving -------------------------------------------------------- */

static void conn_read(ls_quic_conn *c, const ngtcp2_path *path, const uint8_t *data, size_t len)
{
  if (c->state == CS_DRAINING || c->state == CS_DEAD)
    return;
  if (c->state == CS_CLOSING) {
    /* Repeat our CONNECTION_CLOSE, less and less often. */
    c->closing_rx++;
    if ((c->closing_rx & (c->closing_rx - 1)) == 0 && c->close_len) {
      ngtcp2_addr dst = { .addr = (ngtcp2_sockaddr *)&c->remote, .addrlen = c->remote_len };
      q_send(c->q, &dst, c->close_pkt, c->close_len, c->close_len);
    }
    return;
  }
  ngtcp2_pkt_info pi = { 0 };
  int rv = ngtcp2_conn_read_pkt(c->conn, path, &pi, data, len, now_ns());
  if (rv == 0) {
    mark_dirty(c);
    return;
  }
  switch (rv) {
  case NGTCP2_ERR_DRAINING:
    conn_drain(c);
    break;
  case NGTCP2_ERR_DROP_CONN:
  case NGTCP2_ERR_RETRY: /* no 0-RTT, so no address validation: drop */
    conn_destroy(c, LS_EPROTO, "connection dropped");
    break;
  default: /* CRYPTO (TLS alert), protocol errors, callback failures */
    conn_fail(c, rv);
  }
}

static void send_version_negotiation(ls_quic *q, const ngtcp2_version_cid *vc,
                                     const ls_udp_msg *m)
{
  uint8_t buf[256];
  uint32_t versions[] = { NGTCP2_PROTO_VER_V1 };
  uint8_t rnd;
  (void)gnutls_rnd(GNUTLS_RND_NONCE, &rnd, 1);
  ngtcp2_ssize n = ngtcp2_pkt_write_version_negotiation(buf, sizeof buf, rnd, vc->scid,
                                                        vc->scidlen, vc->dcid, vc->dcidlen,
                                                        versions, 1);
  if (n <= 0)
    return;
  ngtcp2_addr dst = { .addr = (ngtcp2_sockaddr *)&m->peer, .addrlen = m->peer_len };
  q_send(q, &dst, buf, (size_t)n, (size_t)n);
}

static ls_quic_load current_load(const ls_quic *q, const struct sockaddr *from)
{
  ls_quic_load load = {.total = q->nconns, .incoming = q->incoming,
                       .handshaking = q->handshaking};
  for (const ls_quic_conn *c = q->conns; c; c = c->next)
    if (!c->is_client && ls_addr_same_ip((const struct sockaddr *)&c->remote, from))
      load.from_addr++;
  return load;
}

static ls_quic_admit_limits admit_limits(const ls_quic *q)
{
  const ls_quic_tuning *t = &q->tun;
  return (ls_quic_admit_limits){
    .max_total = t->max_conns,
    .max_incoming = t->max_conns > t->reserved_outgoing ? t->max_conns - t->reserved_outgoing : 0,
    .max_per_addr = t->max_conns_per_addr,
    .max_handshakes = t->max_handshakes,
    .retry_above = t->retry_handshakes,
    .always_retry = (t->flags & LS_QUIC_ALWAYS_RETRY) != 0,
  };
}

/* Answers an Initial that gets no connection: a Retry, or a refusal that
 * the application hears of once per address and minute. */
static void answer_unadmitted(ls_quic *q, const ls_udp_msg *m, const ngtcp2_pkt_hd *hd,
                              ls_quic_admission a, uint64_t code)
{
  uint8_t buf[CLOSE_PKT_MAX];
  const struct sockaddr *from = (const struct sockaddr *)&m->peer;
  const char *why = ls_quic_admission_reason(a);
  size_t n = 0;
  if (a == LS_ADMIT_RETRY)
    n = ls_quic_write_retry(buf, sizeof buf, q->retry_secret, hd, from, m->peer_len, SCID_LEN,
                            now_ns());
  else if (a != LS_ADMIT_DROP)
    n = ls_quic_write_refusal(buf, sizeof buf, hd, code, why);
  if (n) {
    ngtcp2_addr dst = {.addr = (ngtcp2_sockaddr *)&m->peer, .addrlen = m->peer_len};
    q_send(q, &dst, buf, n, n);
    q->retries += a == LS_ADMIT_RETRY;
    q->refused += a != LS_ADMIT_RETRY;
  }
  if (a != LS_ADMIT_RETRY && q->cb.on_conn_refused &&
      ls_quic_refusal_is_new(&q->refusals, from, a, uv_now(q->loop)))
    q->cb.on_conn_refused(q, from, why);
}

/* An Initial of an unknown connection: admitted, answered with a Retry or
 * a refusal, or dropped (see quic_admit.h). */
static void accept_conn(ls_quic *q, const ls_udp_msg *m, const ngtcp2_path *path,
                        const uint8_t *data, size_t len)
{
  ngtcp2_pkt_hd hd;
  if (q->closing || ngtcp2_accept(&hd, data, len) != 0)
    return; /* not a valid Initial (or 0-RTT we do not take): drop */
  const struct sockaddr *from = (const struct sockaddr *)&m->peer;
  ngtcp2_cid odcid;
  bool validated = false;
  if (hd.token.len) {
    validated = ls_quic_check_retry_token(q->retry_secret, &hd, from, m->peer_len, now_ns(),
                                          &odcid) == 0;
    if (!validated) { /* forged, stale or from another address */
      answer_unadmitted(q, m, &hd, LS_ADMIT_REFUSE_TOKEN, NGTCP2_INVALID_TOKEN);
      return;
    }
  }
  ls_quic_load load = current_load(q, from);
  ls_quic_admit_limits limits = admit_limits(q);
  ls_quic_admission a = ls_quic_admit(&load, &limits, validated);
  if (a != LS_ADMIT) {
    answer_unadmitted(q, m, &hd, a, NGTCP2_CONNECTION_REFUSED);
    return;
  }
  ls_quic_conn *c = conn_alloc(q, &m->peer, m->peer_len, 0);
  if (!c)
    return;
  q->incoming++;
  c->handshaking = 1;
  q->handshaking++;
  if (conn_server_new(q, c, &hd, validated ? &odcid : NULL) != LS_OK) {
    conn_destroy(c, LS_ENOMEM, "cannot create the connection");
    return;
  }
  conn_read(c, path, data, len);
}

static void dispatch_datagram(ls_quic *q, const ls_udp_msg *m, const uint8_t *data, size_t len)
{
  ngtcp2_version_cid vc;
  int rv = ngtcp2_pkt_decode_version_cid(&vc, data, len, SCID_LEN);
  if (rv == NGTCP2_ERR_VERSION_NEGOTIATION) {
    send_version_negotiation(q, &vc, m);
    return;
  }
  if (rv != 0)
    return; /* malformed: drop */
  ngtcp2_path path = make_path(q, &m->peer, m->peer_len);
  ls_quic_conn *c = ls_cidmap_get(&q->cids, vc.dcid, vc.dcidlen);
  if (c) {
    conn_read(c, &path, data, len);
    return;
  }
  accept_conn(q, m, &path, data, len);
}

static void q_read_batch(ls_quic *q, const ls_udp_msg *msgs, int n)
{
  for (int i = 0; i < n; i++) {
    const ls_udp_msg *m = &msgs[i];
    for (size_t off = 0; off < m->len; off += m->seg) {
      size_t len = m->len - off < m->seg ? m->len - off : m->seg;
      dispatch_datagram(q, m, m->data + off, len);
    }
  }
}

static void q_poll_cb(uv_poll_t *h, int status, int events)
{
  ls_quic *q = h->data;
  ls_udp_msg msgs[LS_UDP_RX_MSGS];
  if (status < 0)
    return;
  if (events & UV_WRITABLE)
    q_send_pending(q);
  if (events & UV_READABLE) {
    for (int round = 0; round < RX_ROUNDS_PER_POLL && !q->close_started; round++) {
      int n = ls_udp_recv(&q->udp, msgs);
      if (n <= 0)
        break;
      q_read_batch(q, msgs, n);
      q_flush_dirty(q); /* acks and replies go out between batches */
    }
  }
  q_flush_dirty(q);
}

/* ---- sending ---------------------------------------------------------- */

typedef struct tx_batch {
  uint8_t *buf;
  size_t pos, seg, nseg, max_segs;
  ngtcp2_addr dst;
  struct sockaddr_storage dst_ss;
} tx_batch;

/* Sends the batch. Returns 1 when the socket is now blocked. */
static int batch_flush(ls_quic *q, tx_batch *b)
{
  int blocked = 0;
  if (b->pos)
    blocked = q_send(q, &b->dst, b->buf, b->pos, b->seg);
  b->pos = b->seg = b->nseg = 0;
  return blocked;
}

/* Appends the packet just written at b->buf + b->pos. GSO needs equal sizes
 * with only the last one shorter. Returns 1 when the socket is blocked. */
static int batch_add(ls_quic *q, tx_batch *b, const ngtcp2_path *path, size_t n)
{
  if (b->nseg && (n > b->seg || b->dst.addrlen != path->remote.addrlen ||
                  memcmp(b->dst.addr, path->remote.addr, path->remote.addrlen) != 0)) {
    uint8_t *pkt = b->buf + b->pos; /* the new packet, not yet counted */
    int blocked = q_send(q, &b->dst, b->buf, b->pos, b->seg);
    memmove(b->buf, pkt, n);
    b->pos = b->seg = b->nseg = 0;
    if (blocked)
      return 1; /* the new packet is lost; ngtcp2 will retransmit */
  }
  if (b->nseg == 0) {
    memcpy(&b->dst_ss, path->remote.addr, path->remote.addrlen);
    b->dst.addr = (ngtcp2_sockaddr *)&b->dst_ss;
    b->dst.addrlen = path->remote.addrlen;
    b->seg = n;
  }
  b->pos += n;
  b->nseg++;
  if (b->nseg >= b->max_segs || n < b->seg)
    return batch_flush(q, b);
  return 0;
}

static size_t batch_max_segs(ls_quic_conn *c, size_t maxpl)
{
  size_t by_quantum = ngtcp2_conn_get_send_quantum(c->conn) / maxpl;
  size_t by_buf = LS_UDP_GSO_MAX_BYTES / maxpl;
  size_t n = by_quantum < by_buf ? by_quantum : by_buf;
  if (n > LS_UDP_GSO_MAX_SEGS)
    n = LS_UDP_GSO_MAX_SEGS;
  return n ? n : 1;
}

/* One writev call for stream s (or control frames only). Returns the
 * packet size, 0 when ngtcp2 has nothing to send, or a negative ngtcp2
 * error; stream-level refusals are handled here and reported as
 * NGTCP2_ERR_WRITE_MORE so the caller just loops. */
static ngtcp2_ssize write_one(ls_quic_conn *c, ls_quic_stream *s, ngtcp2_path_storage *ps,
                              uint8_t *dst, size_t maxpl, uint64_t ts)
{
  ngtcp2_vec vec[MAX_VEC];
  size_t nvec = 0;
  int all = 1;
  int64_t sid = -1;
  uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
  ngtcp2_pkt_info pi;
  ngtcp2_ssize ndatalen = -1;
  if (s) {
    sid = s->id;
    nvec = stream_vec(s, vec, MAX_VEC, &all);
    if (all && s->fin_queued)
      flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
  }
  ngtcp2_ssize n = ngtcp2_conn_writev_stream(c->conn, &ps->path, &pi, dst, maxpl, &ndatalen,
                                             flags, sid, vec, nvec, ts);
  if (s && ndatalen >= 0)
    stream_sent(s, (size_t)ndatalen, (flags & NGTCP2_WRITE_STREAM_FLAG_FIN) != 0);
  if (n == NGTCP2_ERR_STREAM_DATA_BLOCKED || n == NGTCP2_ERR_STREAM_SHUT_WR ||
      n == NGTCP2_ERR_STREAM_NOT_FOUND) {
    s->blocked = 1; /* until extend_max_stream_data; shut/gone: for good */
    txq_remove(s);
    return NGTCP2_ERR_WRITE_MORE;
  }
  if (n > 0 && s && s->in_txq)
    txq_rotate(s);
  return n;
}

static void conn_write(ls_quic_conn *c)
{
  ls_quic *q = c->q;
  ngtcp2_path_storage ps;
  uint64_t ts = now_ns();
  size_t maxpl = ngtcp2_conn_get_max_tx_udp_payload_size(c->conn);
  tx_batch b = { .buf = q->txbuf, .max_segs = batch_max_segs(c, maxpl) };
  int batches = 0;
  ngtcp2_path_storage_zero(&ps);
  for (;;) {
    if (b.pos + maxpl > TX_BUF_SIZE && batch_flush(q, &b))
      break;
    ngtcp2_ssize n = write_one(c, c->txq_head, &ps, b.buf + b.pos, maxpl, ts);
    if (n == NGTCP2_ERR_WRITE_MORE)
      continue;
    if (n < 0) {
      batch_flush(q, &b);
      conn_fail(c, (int)n);
      return;
    }
    if (n == 0)
      break;
    size_t before = b.nseg;
    if (batch_add(q, &b, &ps.path, (size_t)n)) {
      mark_dirty(c); /* socket full: resume when writable */
      break;
    }
    if (b.nseg == 0 && before > 0 && ++batches >= MAX_BATCHES_PER_FLUSH) {
      mark_dirty(c); /* let the loop read acks, then continue */
      break;
    }
  }
  batch_flush(q, &b);
  if (q->pend_len)
    mark_dirty(c); /* socket full: resume when writable */
  ngtcp2_conn_update_pkt_tx_time(c->conn, ts);
}

static void conn_flush(ls_quic_conn *c)
{
  if (c->state == CS_DEAD)
    return;
  if (c->close_requested && c->state < CS_CLOSING) {
    conn_do_close(c);
    return;
  }
  if (c->state >= CS_CLOSING)
    return;
  conn_apply_resets(c);
  conn_fill_files(c);
  conn_write(c);
  if (c->state < CS_CLOSING)
    conn_arm_timer(c);
  conn_free_graves(c);
}

/* ---- timers ----------------------------------------------------------- */

static void conn_timer_cb(uv_timer_t *t)
{
  ls_quic_conn *c = t->data;
  if (c->state == CS_CLOSING || c->state == CS_DRAINING) {
    conn_destroy(c, LS_OK, "closed");
    return;
  }
  if (c->state == CS_DEAD)
    return;
  int rv = ngtcp2_conn_handle_expiry(c->conn, now_ns());
  if (rv == NGTCP2_ERR_IDLE_CLOSE) {
    conn_destroy(c, LS_ETIMEDOUT,
                 c->state == CS_HANDSHAKE ? "no answer from the peer (handshake timed out)"
                                          : "connection idle timeout");
    return;
  }
  if (rv != 0) {
    conn_fail(c, rv);
    return;
  }
  conn_flush(c);
}

static void conn_arm_timer(ls_quic_conn *c)
{
  uint64_t expiry;
  if (c->state == CS_CLOSING || c->state == CS_DRAINING)
    expiry = c->close_deadline;
  else
    expiry = ngtcp2_conn_get_expiry(c->conn);
  if (expiry == UINT64_MAX) {
    uv_timer_stop(&c->timer);
    return;
  }
  uint64_t now = now_ns();
  uint64_t ms = expiry > now ? (expiry - now + NGTCP2_MILLISECONDS - 1) / NGTCP2_MILLISECONDS : 0;
  uv_timer_start(&c->timer, conn_timer_cb, ms, 0);
}

/* ---- endpoint --------------------------------------------------------- */

static void tuning_defaults(ls_quic_tuning *t)
{
#define DEF(field, value) if (!t->field) t->field = (value)
  DEF(handshake_timeout_ms, 10000);
  DEF(idle_timeout_ms, 30000);
  DEF(conn_window, 24u << 20);
  DEF(stream_window, 8u << 20);
  DEF(max_conn_window, 32u << 20);
  DEF(max_stream_window, 16u << 20);
  DEF(max_streams_bidi, 256);
  DEF(max_udp_payload, 1452);
  DEF(max_conns, 512);
  DEF(reserved_outgoing, 64);
  DEF(max_conns_per_addr, 16);
  DEF(max_handshakes, 64);
  DEF(retry_handshakes, 16);
  DEF(file_block, 512u << 10);
  DEF(file_blocks, 8);
  DEF(file_readahead, 2u << 20);
  DEF(conn_file_budget, 16u << 20);
  DEF(file_budget, 64u << 20);
#undef DEF
  if (t->max_conn_window < t->conn_window)
    t->max_conn_window = t->conn_window;
  if (t->max_stream_window < t->stream_window)
    t->max_stream_window = t->stream_window;
  if (t->conn_file_budget < t->file_block)
    t->conn_file_budget = t->file_block;
  if (t->file_budget < t->file_block)
    t->file_budget = t->file_block;
  if (t->max_udp_payload < 1200)
    t->max_udp_payload = 1200;
  if (t->max_udp_payload > 1452)
    t->max_udp_payload = 1452;
  if (t->cc_algo < 0 || t->cc_algo > LS_QUIC_CC_BBR2)
    t->cc_algo = LS_QUIC_CC_CUBIC;
}

static unsigned udp_flags(unsigned quic_flags)
{
  return ((quic_flags & LS_QUIC_NO_GSO) ? LS_UDP_NO_GSO : 0) |
         ((quic_flags & LS_QUIC_NO_GRO) ? LS_UDP_NO_GRO : 0) |
         ((quic_flags & LS_QUIC_NO_MMSG) ? LS_UDP_NO_MMSG : 0);
}

static void q_free(ls_quic *q)
{
  ls_cidmap_free(&q->cids);
  ls_udp_close(&q->udp);
  if (q->prio)
    gnutls_priority_deinit(q->prio);
  free(q->txbuf);
  free(q->pend);
  free(q);
}

static int q_init_handles(ls_quic *q, ls_diag *diag)
{
  int rv = uv_poll_init_socket(q->loop, &q->poll, q->udp.fd);
  if (rv != 0)
    return ls_diag_set(diag, LS_EIO, "uv_poll_init_socket: %s", uv_strerror(rv));
  q->poll.data = q;
  uv_idle_init(q->loop, &q->idle);
  q->idle.data = q;
  q->open_handles = 2;
  q->poll_events = UV_READABLE;
  uv_poll_start(&q->poll, UV_READABLE, q_poll_cb);
  return LS_OK;
}

int ls_quic_new(uv_loop_t *loop, const ls_quic_config *config, ls_quic **out, ls_diag *diag)
{
  *out = NULL;
  if (!loop || !config || !config->identity || !config->bind_addr)
    return ls_diag_set(diag, LS_EINVAL, "QUIC endpoint needs a loop, an identity and an address");
  ls_quic *q = calloc(1, sizeof *q);
  if (!q)
    return ls_diag_set(diag, LS_ENOMEM, "out of memory for the QUIC endpoint");
  q->loop = loop;
  q->cb = config->cb;
  q->user = config->user;
  q->tun = config->tuning;
  q->identity = config->identity;
  tuning_defaults(&q->tun);
  ls_cidmap_init(&q->cids);
  q->udp.fd = -1;
  q->txbuf = malloc(TX_BUF_SIZE);
  q->pend = malloc(TX_BUF_SIZE);
  if (!q->txbuf || !q->pend) {
    q_free(q);
    return ls_diag_set(diag, LS_ENOMEM, "out of memory for the QUIC endpoint");
  }
  const char *errpos = NULL;
  int rv = gnutls_priority_init(&q->prio, PRIORITY, &errpos);
  if (rv != 0) {
    q->prio = NULL;
    q_free(q);
    return ls_diag_set(diag, LS_EIO, "TLS priority string refused at \"%s\": %s",
                       errpos ? errpos : "?", gnutls_strerror(rv));
  }
  if (random_bytes(q->reset_secret, sizeof q->reset_secret) != LS_OK ||
      random_bytes(q->retry_secret, sizeof q->retry_secret) != LS_OK) {
    q_free(q);
    return ls_diag_set(diag, LS_EIO, "no randomness for the stateless reset secret");
  }
  rv = ls_udp_open(&q->udp, config->bind_addr, udp_flags(q->tun.flags), diag);
  if (rv == LS_OK)
    rv = q_init_handles(q, diag);
  if (rv != LS_OK) {
    q_free(q);
    return rv;
  }
  *out = q;
  return LS_OK;
}

unsigned ls_quic_local_port(const ls_quic *q)
{
  return ls_udp_port(&q->udp);
}

void *ls_quic_user(const ls_quic *q)
{
  return q->user;
}

static void q_maybe_finish_close(ls_quic *q)
{
  if (!q->close_started || q->open_handles > 0)
    return;
  void (*done)(void *) = q->done_cb;
  void *user = q->done_user;
  q_free(q);
  if (done)
    done(user);
}

/* Runs from the idle/poll flush (never inside ngtcp2): closes every
 * connection, then the handles. */
static void q_start_close(ls_quic *q)
{
  if (q->close_started)
    return;
  while (q->conns) {
    ls_quic_conn *c = q->conns;
    if (c->state < CS_CLOSING) {
      c->close_requested = 1;
      conn_do_close(c);
    }
    if (c->state != CS_DEAD)
      conn_destroy(c, LS_ECANCELED, "the endpoint is closing");
  }
  q->close_started = 1;
  uv_idle_stop(&q->idle);
  uv_poll_stop(&q->poll);
  uv_close((uv_handle_t *)&q->poll, handle_closed);
  uv_close((uv_handle_t *)&q->idle, handle_closed);
}

void ls_quic_close(ls_quic *q, void (*done_cb)(void *user), void *user)
{
  if (!q || q->closing)
    return;
  q->closing = 1;
  q->done_cb = done_cb;
  q->done_user = user;
  q_kick(q); /* the idle callback does the work outside any callback */
}

/* ---- connections ------------------------------------------------------ */

static int parse_expected(const char *id, char out[LS_PEER_ID_LEN + 1])
{
  out[0] = '\0';
  if (!id)
    return LS_OK;
  if (strlen(id) != LS_PEER_ID_LEN)
    return LS_EINVAL;
  for (size_t i = 0; i <= LS_PEER_ID_LEN; i++) /* upper case is fine here */
    out[i] = (char)tolower((unsigned char)id[i]);
  return ls_hex_is_lower(out, LS_PEER_ID_LEN) ? LS_OK : LS_EINVAL;
}

int ls_quic_connect(ls_quic *q, const struct sockaddr *remote, const char *expected_peer_id,
                    ls_quic_conn **out, ls_diag *diag)
{
  struct sockaddr_storage ss;
  socklen_t len;
  char expected[LS_PEER_ID_LEN + 1];
  *out = NULL;
  if (q->closing)
    return ls_diag_set(diag, LS_ESTATE, "the QUIC endpoint is closing");
  if (!remote || sa_normalize(q, remote, &ss, &len) != LS_OK)
    return ls_diag_set(diag, LS_EINVAL, "address family does not match the endpoint's socket");
  if (parse_expected(expected_peer_id, expected) != LS_OK)
    return ls_diag_set(diag, LS_EINVAL, "expected peer id must be %d hex characters",
                       LS_PEER_ID_LEN);
  if (q->nconns >= q->tun.max_conns)
    return ls_diag_set(diag, LS_EBUSY, "too many QUIC connections (%u)", q->tun.max_conns);
  ls_quic_conn *c = conn_alloc(q, &ss, len, 1);
  if (!c)
    return ls_diag_set(diag, LS_ENOMEM, "out of memory for a connection");
  memcpy(c->expected, expected, sizeof expected);
  c->announced = 1;
  c->notified = 1; /* no on_conn_closed for a connect that fails here */
  int rv = conn_client_new(q, c, diag);
  if (rv != LS_OK) {
    conn_destroy(c, rv, "");
    return rv;
  }
  c->notified = 0;
  mark_dirty(c); /* the first Initial goes out from the loop */
  *out = c;
  return LS_OK;
}

void ls_quic_conn_close(ls_quic_conn *c, uint64_t app_error_code)
{
  if (c->state >= CS_CLOSING || c->close_requested)
    return;
  c->close_requested = 1;
  c->close_code = app_error_code;
  mark_dirty(c);
}

const char *ls_quic_conn_peer_id(const ls_quic_conn *c)
{
  return c->peer_id[0] && c->state != CS_HANDSHAKE ? c->peer_id : NULL;
}

int ls_quic_conn_export(const ls_quic_conn *c, const char *label, uint8_t *out, size_t len)
{
  if (c->state != CS_READY || !c->tls)
    return LS_ESTATE;
  if (gnutls_prf_rfc5705(c->tls, strlen(label), label, 0, NULL, len, (char *)out) != 0)
    return LS_EIO;
  return LS_OK;
}

const struct sockaddr *ls_quic_conn_peer_addr(const ls_quic_conn *c)
{
  return (const struct sockaddr *)&c->remote;
}

int ls_quic_conn_is_client(const ls_quic_conn *c)
{
  return c->is_client;
}

ls_quic *ls_quic_conn_endpoint(const ls_quic_conn *c)
{
  return c->q;
}

void ls_quic_conn_set_user(ls_quic_conn *c, void *user)
{
  c->user = user;
}

void *ls_quic_conn_user(const ls_quic_conn *c)
{
  return c->user;
}

static int conn_is_open(const ls_quic_conn *c)
{
  return c->state <= CS_READY && !c->close_requested && (c->is_client || c->announced);
}

ls_quic_conn *ls_quic_find_conn_by_addr(ls_quic *q, const struct sockaddr *remote)
{
  struct sockaddr_storage ss;
  socklen_t len;
  if (sa_normalize(q, remote, &ss, &len) != LS_OK)
    return NULL;
  for (ls_quic_conn *c = q->conns; c; c = c->next)
    if (conn_is_open(c) && sa_equal((struct sockaddr *)&c->remote, (struct sockaddr *)&ss))
      return c;
  return NULL;
}

ls_quic_conn *ls_quic_find_conn_by_peer_id(ls_quic *q, const char *peer_id)
{
  if (!peer_id)
    return NULL;
  for (ls_quic_conn *c = q->conns; c; c = c->next)
    if (conn_is_open(c) && c->state == CS_READY && strcasecmp(c->peer_id, peer_id) == 0)
      return c;
  return NULL;
}

/* ---- streams ---------------------------------------------------------- */

int ls_quic_open_stream(ls_quic_conn *c, ls_quic_stream **out)
{
  int64_t id;
  *out = NULL;
  if (c->state != CS_READY || c->close_requested)
    return LS_ESTATE;
  ls_quic_stream *s = stream_new(c, -1);
  if (!s)
    return LS_ENOMEM;
  int rv = ngtcp2_conn_open_bidi_stream(c->conn, &id, s);
  if (rv != 0) {
    s->dead = 1;
    if (s->next)
      s->next->prev = NULL;
    c->streams = s->next;
    free(s);
    if (rv == NGTCP2_ERR_STREAM_ID_BLOCKED) {
      c->streams_wanted = 1;
      return LS_EBUSY;
    }
    return LS_ENOMEM;
  }
  s->id = id;
  s->announced = 1;
  *out = s;
  return LS_OK;
}

static int stream_can_write(const ls_quic_stream *s)
{
  return !s->dead && !s->fin_queued && !s->reset_pending && !(s->file && s->file->left > 0) &&
         s->conn->state == CS_READY;
}

int ls_quic_stream_write(ls_quic_stream *s, const void *data, size_t len, int fin,
                         void (*release_cb)(void *cb_arg), void *cb_arg)
{
  if (!stream_can_write(s)) {
    if (release_cb)
      release_cb(cb_arg);
    return LS_ESTATE;
  }
  if (len > 0) {
    write_req *w = malloc(sizeof *w);
    if (!w) {
      if (release_cb)
        release_cb(cb_arg);
      return LS_ENOMEM;
    }
    w->cb = release_cb;
    w->arg = cb_arg;
    chunk_append(s, &w->ch, data, len, write_req_release, w);
  } else if (release_cb) {
    release_cb(cb_arg);
  }
  if (fin)
    s->fin_queued = 1;
  txq_update(s);
  return LS_OK;
}

int ls_quic_stream_send_file(ls_quic_stream *s, int fd, uint64_t offset, uint64_t length, int fin)
{
  if (!stream_can_write(s) || s->file) {
    close(fd);
    return LS_ESTATE;
  }
  file_src *f = calloc(1, sizeof *f);
  if (!f) {
    close(fd);
    return LS_ENOMEM;
  }
  f->fd = fd;
  f->pos = offset;
  f->left = length;
  f->fin = fin;
  s->file = f;
  if (length == 0) {
    file_finished(s);
  } else {
    fillq_add(s); /* read from the flush, outside any callback */
  }
  return LS_OK;
}

ls_quic_stats ls_quic_get_stats(const ls_quic *q)
{
  return (ls_quic_stats){.file_memory = q->file_mem, .retries = q->retries,
                         .refused = q->refused};
}

uint64_t ls_quic_stream_unacked(const ls_quic_stream *s)
{
  return s->queued - s->acked;
}

uint64_t ls_quic_stream_acked(const ls_quic_stream *s)
{
  return s->acked;
}

void ls_quic_stream_read_stop(ls_quic_stream *s)
{
  s->read_stopped = 1;
}

void ls_quic_stream_read_start(ls_quic_stream *s)
{
  if (!s->read_stopped)
    return;
  s->read_stopped = 0;
  if (s->withheld && !s->dead && s->conn->state == CS_READY) {
    ngtcp2_conn_extend_max_stream_offset(s->conn->conn, s->id, s->withheld);
    s->withheld = 0;
    mark_dirty(s->conn);
  }
}

void ls_quic_stream_stop_sending(ls_quic_stream *s, uint64_t app_error_code)
{
  if (s->dead || s->reset_pending)
    return;
  s->stop_sending_pending = 1;
  s->stop_sending_code = app_error_code;
  mark_dirty(s->conn);
}

void ls_quic_stream_reset(ls_quic_stream *s, uint64_t app_error_code)
{
  stream_schedule_reset(s, app_error_code, LS_ECANCELED);
}

int64_t ls_quic_stream_id(const ls_quic_stream *s)
{
  return s->id;
}

ls_quic_conn *ls_quic_stream_conn(const ls_quic_stream *s)
{
  return s->conn;
}

void ls_quic_stream_set_user(ls_quic_stream *s, void *user)
{
  s->user = user;
}

void *ls_quic_stream_user(const ls_quic_stream *s)
{
  return s->user;
}
