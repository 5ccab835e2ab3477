/* Batched UDP socket I/O for the QUIC endpoint (Linux).
 *
 * Owns one non-blocking UDP socket and the system calls around it: large
 * socket buffers, path-MTU "do not fragment", sending a run of equal-sized
 * datagrams in one sendmsg with UDP GSO (UDP_SEGMENT), and receiving batches
 * with recvmmsg, each message possibly coalesced by UDP GRO. Nothing here
 * knows about QUIC. Falls back to one datagram per system call when the
 * kernel refuses GSO, and to plain recvmmsg when GRO is unavailable. */
#ifndef LS_NET_UDP_H
#define LS_NET_UDP_H

#include <lanspread/error.h>

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Receive batch geometry: messages per recvmmsg and bytes per message (a GRO
 * super-datagram is at most 64 KiB). */
#define LS_UDP_RX_MSGS 16
#define LS_UDP_RX_MSG_SIZE 65536
/* Largest GSO send: total payload and segment count the kernel accepts. */
#define LS_UDP_GSO_MAX_BYTES 65000
#define LS_UDP_GSO_MAX_SEGS 44

enum {
  LS_UDP_NO_GSO = 1 << 0,  /* never use UDP_SEGMENT (measurements) */
  LS_UDP_NO_GRO = 1 << 1,  /* never enable UDP_GRO (measurements) */
  LS_UDP_NO_MMSG = 1 << 2, /* one datagram per receive call (measurements) */
};

typedef struct ls_udp {
  int fd;
  unsigned flags;     /* LS_UDP_NO_* */
  int gso;            /* UDP_SEGMENT usable (cleared on the first refusal) */
  int gro;            /* UDP_GRO enabled */
  struct sockaddr_storage local;
  socklen_t local_len;
  uint8_t *rx_mem;    /* LS_UDP_RX_MSGS * LS_UDP_RX_MSG_SIZE */
} ls_udp;

/* One received message: `len` bytes from `peer`, made of datagrams of
 * `seg` bytes each (the last may be shorter); seg == len without GRO. */
typedef struct ls_udp_msg {
  const uint8_t *data;
  size_t len;
  size_t seg;
  struct sockaddr_storage peer;
  socklen_t peer_len;
} ls_udp_msg;

/* Opens, configures and binds the socket. `flags` are LS_UDP_NO_*. */
int ls_udp_open(ls_udp *u, const struct sockaddr *bind_addr, unsigned flags, ls_diag *diag);
void ls_udp_close(ls_udp *u);

/* Port of the bound socket (host order). */
unsigned ls_udp_port(const ls_udp *u);

/* Receives up to LS_UDP_RX_MSGS messages into u's buffers (valid until the
 * next call). Returns the count, 0 when nothing is waiting, or a negative
 * LS_E* code. */
int ls_udp_recv(ls_udp *u, ls_udp_msg msgs[LS_UDP_RX_MSGS]);

/* Sends `len` bytes to `dst` as datagrams of `seg` bytes (the last one may
 * be shorter). Returns the number of bytes that left: all of `len`, or a
 * prefix of whole datagrams (possibly 0) when the socket buffer is full, so
 * the caller retries the rest once the socket is writable. A negative LS_E*
 * code means the datagrams are lost (QUIC recovers them). */
long ls_udp_send(ls_udp *u, const struct sockaddr *dst, socklen_t dst_len,
                const uint8_t *buf, size_t len, size_t seg);

#endif
