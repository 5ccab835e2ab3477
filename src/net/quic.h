/* QUIC transport endpoint: one UDP socket on a libuv loop that is server and
 * client at once, with mutually authenticated TLS 1.3 (ALPN "lanspread/1")
 * using the node identity, and one bidirectional stream per request.
 *
 * Threading: everything runs on the loop thread; every callback is called
 * from the loop. Any function here may be called from inside a callback.
 *
 * Lifetimes:
 * - an ls_quic_conn is valid from ls_quic_connect (client) or on_conn_ready
 *   (server) until on_conn_closed returns; on_conn_closed is called exactly
 *   once for every connection the application has seen;
 * - an ls_quic_stream is valid from ls_quic_open_stream or on_stream_open
 *   until on_stream_closed returns (called exactly once per stream, before
 *   its connection's on_conn_closed).
 *
 * Errors: functions return 0 or a negative LS_E* code. */
#ifndef LS_NET_QUIC_H
#define LS_NET_QUIC_H

#include "net/identity.h"

#include <lanspread/error.h>

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#define LS_QUIC_ALPN "lanspread/1"

typedef struct ls_quic ls_quic;
typedef struct ls_quic_conn ls_quic_conn;
typedef struct ls_quic_stream ls_quic_stream;

typedef struct ls_quic_callbacks {
  /* Handshake done, peer authenticated; ls_quic_conn_peer_id() is set.
   * For server connections this is the first time the conn is seen. */
  void (*on_conn_ready)(ls_quic_conn *conn);
  /* The connection is gone. err is 0 after a clean close by either side
   * (application code 0), else LS_ETIMEDOUT (handshake or idle timeout),
   * LS_EACCES (peer id mismatch), LS_ECANCELED (closed by us before the
   * handshake finished, or endpoint closing), LS_EBUSY (the peer refused
   * it: its connection slots are taken), LS_EPROTO (peer or protocol
   * error), LS_EIO; `diag` says what happened in one sentence. */
  void (*on_conn_closed)(ls_quic_conn *conn, int err, const char *diag);
  /* The peer opened a stream (optional: without it, remote streams are
   * reset). */
  void (*on_stream_open)(ls_quic_stream *stream);
  /* Received bytes in order; consumed when the callback returns (the flow
   * control window is extended unless reading is stopped). fin: the peer
   * finished its side; len may then be 0. */
  void (*on_stream_data)(ls_quic_stream *stream, const uint8_t *data, size_t len, int fin);
  /* Both directions are finished or the stream was reset or its connection
   * closed. err 0: clean; LS_ECANCELED: reset by either side; LS_EIO: the
   * connection closed or a file read failed. Unacked write buffers have
   * been released before. */
  void (*on_stream_closed)(ls_quic_stream *stream, int err);
  /* Optional: ls_quic_open_stream returned LS_EBUSY earlier and the peer has
   * now raised the stream budget. */
  void (*on_streams_available)(ls_quic_conn *conn);
  /* Optional: an incoming connection from `from` was refused (`why`: every
   * incoming slot taken, too many from that address, too many handshakes
   * at once, an invalid Retry token). Said at most once a minute per
   * address and reason, whatever the number of refused packets. */
  void (*on_conn_refused)(ls_quic *q, const struct sockaddr *from, const char *why);
} ls_quic_callbacks;

enum {
  LS_QUIC_CC_CUBIC = 0,
  LS_QUIC_CC_RENO = 1,
  LS_QUIC_CC_BBR = 2,  /* ngtcp2 0.12 BBR v1 */
  LS_QUIC_CC_BBR2 = 3, /* ngtcp2 0.12 early BBR v2 */
};

enum {
  LS_QUIC_NO_GSO = 1 << 0,  /* send one datagram per system call */
  LS_QUIC_NO_GRO = 1 << 1,  /* receive without UDP_GRO */
  LS_QUIC_NO_MMSG = 1 << 2, /* receive one datagram per system call */
  LS_QUIC_ALWAYS_RETRY = 1 << 3, /* validate every client address (tests) */
};

/* Zero means "default" for every field. */
typedef struct ls_quic_tuning {
  uint32_t handshake_timeout_ms; /* 10000 */
  uint32_t idle_timeout_ms;      /* 30000 */
  uint64_t conn_window;          /* 24 MiB: connection-wide receive window */
  uint64_t stream_window;        /* 8 MiB: per-stream receive window */
  uint64_t max_conn_window;      /* 32 MiB: auto-tuning cap */
  uint64_t max_stream_window;    /* 16 MiB: auto-tuning cap */
  uint32_t max_streams_bidi;     /* 256 concurrent peer-opened streams */
  uint32_t max_udp_payload;      /* 1452 bytes sent per datagram */
  uint32_t max_conns;            /* 512 connections per endpoint */
  uint32_t reserved_outgoing;    /* 64 of them only for connections we open */
  uint32_t max_conns_per_addr;   /* 16 incoming from one IP address */
  uint32_t max_handshakes;       /* 64 incoming handshakes at once; more wait */
  uint32_t retry_handshakes;     /* 16: beyond, a client proves its address
                                    with a Retry round trip first */
  uint32_t file_block;           /* 512 KiB per file read */
  uint32_t file_blocks;          /* 8 file blocks in flight per stream */
  uint32_t file_readahead;       /* 2 MiB read and not sent, per connection */
  uint32_t conn_file_budget;     /* 16 MiB of file blocks per connection */
  uint32_t file_budget;          /* 64 MiB of file blocks per endpoint */
  int cc_algo;                   /* LS_QUIC_CC_CUBIC */
  unsigned flags;                /* LS_QUIC_NO_*: for measurements */
} ls_quic_tuning;

typedef struct ls_quic_config {
  const struct sockaddr *bind_addr; /* IPv4 or IPv6 (:: is dual stack) */
  const ls_identity *identity;      /* must outlive the endpoint */
  ls_quic_callbacks cb;
  void *user;
  ls_quic_tuning tuning;
} ls_quic_config;

/* ---- endpoint --------------------------------------------------------- */

int ls_quic_new(uv_loop_t *loop, const ls_quic_config *config, ls_quic **out, ls_diag *diag);
/* Local UDP port, host order. */
unsigned ls_quic_local_port(const ls_quic *q);
void *ls_quic_user(const ls_quic *q);
/* What the endpoint holds and did, for tests, benchmarks and logs. */
typedef struct ls_quic_stats {
  uint64_t file_memory; /* bytes of file blocks read for sending and not yet
                           acknowledged (at most tuning.file_budget) */
  uint64_t retries;     /* Retry packets sent (address validation) */
  uint64_t refused;     /* Initials refused (CONNECTION_REFUSED or INVALID_TOKEN) */
} ls_quic_stats;
ls_quic_stats ls_quic_get_stats(const ls_quic *q);
/* Closes every connection (CONNECTION_CLOSE, no closing period: their
 * on_conn_closed runs with LS_ECANCELED) and the endpoint; done_cb (may be
 * NULL) runs once every handle is closed and q is freed. */
void ls_quic_close(ls_quic *q, void (*done_cb)(void *user), void *user);

/* ---- connections ------------------------------------------------------ */

/* Starts a connection to `remote`. expected_peer_id: 64 hex characters the
 * server's certificate must match (else the handshake aborts and
 * on_conn_closed reports LS_EACCES), or NULL to accept any and learn it.
 * on_conn_ready or on_conn_closed follows. */
int ls_quic_connect(ls_quic *q, const struct sockaddr *remote, const char *expected_peer_id,
                    ls_quic_conn **out, ls_diag *diag);
/* Closes with an application error code (0: no error). Before the handshake
 * finished this cancels at once: on_conn_closed(LS_ECANCELED) runs on the
 * next loop iteration. After it, CONNECTION_CLOSE is sent and
 * on_conn_closed(0) follows. Idempotent. */
void ls_quic_conn_close(ls_quic_conn *conn, uint64_t app_error_code);
/* The peer's id (64 hex), or NULL before the handshake authenticated it. */
const char *ls_quic_conn_peer_id(const ls_quic_conn *conn);
const struct sockaddr *ls_quic_conn_peer_addr(const ls_quic_conn *conn);
/* The TLS exporter (RFC 8446 7.5) of the connection's session for `label`
 * and an empty context: len bytes both ends derive alike and nobody else
 * can, bound to this session. LS_ESTATE before the handshake finished. */
int ls_quic_conn_export(const ls_quic_conn *conn, const char *label, uint8_t *out, size_t len);
int ls_quic_conn_is_client(const ls_quic_conn *conn);
ls_quic *ls_quic_conn_endpoint(const ls_quic_conn *conn);
void ls_quic_conn_set_user(ls_quic_conn *conn, void *user);
void *ls_quic_conn_user(const ls_quic_conn *conn);
/* An open (not closing) connection to that address or that peer id, or
 * NULL. By address, connections still in their handshake count too. */
ls_quic_conn *ls_quic_find_conn_by_addr(ls_quic *q, const struct sockaddr *remote);
ls_quic_conn *ls_quic_find_conn_by_peer_id(ls_quic *q, const char *peer_id);

/* ---- streams ---------------------------------------------------------- */

/* Opens a bidirectional stream on a ready connection. LS_ESTATE before
 * on_conn_ready or when closing; LS_EBUSY when the peer's stream budget is
 * spent (see on_streams_available). */
int ls_quic_open_stream(ls_quic_conn *conn, ls_quic_stream **out);
/* Queues `len` bytes (referenced, not copied) and optionally the end of the
 * stream. release_cb(cb_arg) runs once the peer has acknowledged them or
 * the stream is gone; it runs at once (inside this call) when len is 0 or
 * the call fails. LS_ESTATE after fin, after a reset, before the connection
 * is ready, or while a file is being sent. */
int ls_quic_stream_write(ls_quic_stream *stream, const void *data, size_t len, int fin,
                         void (*release_cb)(void *cb_arg), void *cb_arg);
/* Sends `length` bytes of `fd` from `offset`, read in blocks into buffers
 * recycled on acknowledgement. Reading runs ahead of sending only as far as
 * the peer's credit and the per-connection and endpoint budgets of
 * ls_quic_tuning allow, and for at most a few milliseconds per loop
 * iteration. The stream takes ownership of
 * fd and closes it when done (also on failure). A short file or read error
 * resets the stream (on_stream_closed: LS_EIO). */
int ls_quic_stream_send_file(ls_quic_stream *stream, int fd, uint64_t offset, uint64_t length,
                             int fin);
/* Bytes queued by write/send_file and not yet acknowledged. */
uint64_t ls_quic_stream_unacked(const ls_quic_stream *stream);
/* Bytes of the stream the peer has acknowledged. */
uint64_t ls_quic_stream_acked(const ls_quic_stream *stream);
/* Backpressure: while stopped, consumed bytes are not credited back to the
 * peer, so it stops within one stream window (data already in flight, at
 * most that window, is still delivered). */
void ls_quic_stream_read_stop(ls_quic_stream *stream);
void ls_quic_stream_read_start(ls_quic_stream *stream);
/* Aborts only the receiving direction (STOP_SENDING with the code): the
 * peer stops sending, while what we queued (say, an error answer) is still
 * delivered and the stream ends normally on our side. */
void ls_quic_stream_stop_sending(ls_quic_stream *stream, uint64_t app_error_code);
/* Aborts both directions (RESET_STREAM + STOP_SENDING with the code). */
void ls_quic_stream_reset(ls_quic_stream *stream, uint64_t app_error_code);
int64_t ls_quic_stream_id(const ls_quic_stream *stream);
ls_quic_conn *ls_quic_stream_conn(const ls_quic_stream *stream);
void ls_quic_stream_set_user(ls_quic_stream *stream, void *user);
void *ls_quic_stream_user(const ls_quic_stream *stream);

#endif
