/* Owns the endpoint's UDP socket: creation and tuning, GSO batch sends and
 * recvmmsg/GRO batch receives (see udp.h). */
#include "net/udp.h"

#include "core/error.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SOCKBUF_BYTES (16 * 1024 * 1024)

static void set_buffer(int fd, int force_opt, int opt, int bytes)
{
  /* As root the FORCE variants pass net.core.[rw]mem_max; else best effort. */
  if (setsockopt(fd, SOL_SOCKET, force_opt, &bytes, sizeof bytes) == 0)
    return;
  (void)setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes);
}

static int set_pmtu_do(int fd, int family)
{
  int on = IP_PMTUDISC_DO;
  if (family == AF_INET6) {
    int v6 = IPV6_PMTUDISC_DO;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &v6, sizeof v6) != 0)
      return -1;
    /* A dual-stack socket also carries IPv4: best effort. */
    (void)setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &on, sizeof on);
    return 0;
  }
  return setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &on, sizeof on);
}

static void enable_offloads(ls_udp *u)
{
  int on = 1;
  int seg = 1200;
  u->gso = 0;
  u->gro = 0;
  if (!(u->flags & LS_UDP_NO_GSO) &&
      setsockopt(u->fd, SOL_UDP, UDP_SEGMENT, &seg, sizeof seg) == 0) {
    seg = 0; /* probe only: per-call cmsg sets the real size */
    (void)setsockopt(u->fd, SOL_UDP, UDP_SEGMENT, &seg, sizeof seg);
    u->gso = 1;
  }
  if (!(u->flags & (LS_UDP_NO_GRO | LS_UDP_NO_MMSG)) &&
      setsockopt(u->fd, SOL_UDP, UDP_GRO, &on, sizeof on) == 0)
    u->gro = 1;
}

static socklen_t sockaddr_len(const struct sockaddr *sa)
{
  return sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

int ls_udp_open(ls_udp *u, const struct sockaddr *bind_addr, unsigned flags, ls_diag *diag)
{
  memset(u, 0, sizeof *u);
  u->fd = -1;
  u->flags = flags;
  if (!bind_addr || (bind_addr->sa_family != AF_INET && bind_addr->sa_family != AF_INET6))
    return ls_diag_set(diag, LS_EINVAL, "UDP bind address must be IPv4 or IPv6");
  u->rx_mem = malloc((size_t)LS_UDP_RX_MSGS * LS_UDP_RX_MSG_SIZE);
  if (!u->rx_mem)
    return ls_diag_set(diag, LS_ENOMEM, "out of memory for UDP receive buffers");
  int fd = socket(bind_addr->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    int e = errno;
    ls_udp_close(u);
    return ls_diag_errno(diag, e, "socket(UDP)", NULL);
  }
  u->fd = fd;
  if (bind_addr->sa_family == AF_INET6) {
    int off = 0; /* dual stack when bound to :: */
    (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  }
  set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, SOCKBUF_BYTES);
  set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, SOCKBUF_BYTES);
  if (set_pmtu_do(fd, bind_addr->sa_family) != 0) {
    int e = errno;
    ls_udp_close(u);
    return ls_diag_errno(diag, e, "setsockopt(IP_MTU_DISCOVER)", NULL);
  }
  enable_offloads(u);
  if (bind(fd, bind_addr, sockaddr_len(bind_addr)) != 0) {
    int e = errno;
    ls_udp_close(u);
    return ls_diag_set(diag, e == EADDRINUSE ? LS_EEXIST : ls_err_from_errno(e),
                       "cannot bind UDP socket: %s", strerror(e));
  }
  u->local_len = sizeof u->local;
  if (getsockname(fd, (struct sockaddr *)&u->local, &u->local_len) != 0) {
    int e = errno;
    ls_udp_close(u);
    return ls_diag_errno(diag, e, "getsockname(UDP)", NULL);
  }
  return LS_OK;
}

void ls_udp_close(ls_udp *u)
{
  if (u->fd >= 0)
    close(u->fd);
  u->fd = -1;
  free(u->rx_mem);
  u->rx_mem = NULL;
}

unsigned ls_udp_port(const ls_udp *u)
{
  if (u->local.ss_family == AF_INET6)
    return ntohs(((const struct sockaddr_in6 *)&u->local)->sin6_port);
  return ntohs(((const struct sockaddr_in *)&u->local)->sin_port);
}

/* ---- receive ---------------------------------------------------------- */

static size_t gro_segment(struct msghdr *mh, size_t len)
{
  for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
    if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
      int seg;
      memcpy(&seg, CMSG_DATA(c), sizeof seg);
      if (seg > 0 && (size_t)seg < len)
        return (size_t)seg;
    }
  }
  return len;
}

int ls_udp_recv(ls_udp *u, ls_udp_msg msgs[LS_UDP_RX_MSGS])
{
  struct mmsghdr mm[LS_UDP_RX_MSGS];
  struct iovec iov[LS_UDP_RX_MSGS];
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctl[LS_UDP_RX_MSGS];
  unsigned n = (u->flags & LS_UDP_NO_MMSG) ? 1 : LS_UDP_RX_MSGS;
  memset(mm, 0, sizeof mm[0] * n);
  for (unsigned i = 0; i < n; i++) {
    iov[i].iov_base = u->rx_mem + (size_t)i * LS_UDP_RX_MSG_SIZE;
    iov[i].iov_len = LS_UDP_RX_MSG_SIZE;
    mm[i].msg_hdr.msg_iov = &iov[i];
    mm[i].msg_hdr.msg_iovlen = 1;
    mm[i].msg_hdr.msg_name = &msgs[i].peer;
    mm[i].msg_hdr.msg_namelen = sizeof msgs[i].peer;
    mm[i].msg_hdr.msg_control = ctl[i].buf;
    mm[i].msg_hdr.msg_controllen = sizeof ctl[i].buf;
  }
  int got;
  do {
    got = recvmmsg(u->fd, mm, n, MSG_DONTWAIT, NULL);
  } while (got < 0 && errno == EINTR);
  if (got < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return 0;
    /* ICMP errors (ECONNREFUSED...) surface here on some kernels: skip. */
    if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH)
      return 0;
    return ls_err_from_errno(errno);
  }
  for (int i = 0; i < got; i++) {
    msgs[i].data = iov[i].iov_base;
    msgs[i].len = mm[i].msg_len;
    msgs[i].peer_len = mm[i].msg_hdr.msg_namelen;
    msgs[i].seg = gro_segment(&mm[i].msg_hdr, msgs[i].len);
    if (mm[i].msg_hdr.msg_flags & MSG_TRUNC)
      msgs[i].len = 0; /* oversized: drop */
  }
  return got;
}

/* ---- send ------------------------------------------------------------- */

static int send_is_blocked(int e)
{
  return e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS;
}

/* One sendmsg; with seg < len the kernel splits it (GSO). Returns the
 * sendmsg result with errno preserved. */
static ssize_t send_one(int fd, const struct sockaddr *dst, socklen_t dst_len,
                        const uint8_t *buf, size_t len, size_t seg)
{
  struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
  union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } ctl;
  struct msghdr mh = {
    .msg_name = (void *)dst, .msg_namelen = dst_len, .msg_iov = &iov, .msg_iovlen = 1,
  };
  if (seg < len) {
    uint16_t s = (uint16_t)seg;
    memset(&ctl, 0, sizeof ctl);
    mh.msg_control = ctl.buf;
    mh.msg_controllen = sizeof ctl.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof s);
    memcpy(CMSG_DATA(c), &s, sizeof s);
  }
  ssize_t r;
  do {
    r = sendmsg(fd, &mh, MSG_DONTWAIT);
  } while (r < 0 && errno == EINTR);
  return r;
}

/* One datagram per call (no GSO), stopping when the buffer is full. */
static long send_each(ls_udp *u, const struct sockaddr *dst, socklen_t dst_len,
                      const uint8_t *buf, size_t len, size_t seg)
{
  size_t off = 0;
  while (off < len) {
    size_t n = len - off < seg ? len - off : seg;
    if (send_one(u->fd, dst, dst_len, buf + off, n, n) < 0) {
      if (send_is_blocked(errno))
        return (long)off;
      if (off > 0)
        return (long)off; /* report the error on the next call */
      return ls_err_from_errno(errno);
    }
    off += n;
  }
  return (long)off;
}

long ls_udp_send(ls_udp *u, const struct sockaddr *dst, socklen_t dst_len,
                 const uint8_t *buf, size_t len, size_t seg)
{
  if (len == 0)
    return 0;
  if (seg == 0 || seg > len)
    seg = len;
  if (seg == len || !u->gso)
    return send_each(u, dst, dst_len, buf, len, seg);
  if (send_one(u->fd, dst, dst_len, buf, len, seg) >= 0)
    return (long)len;
  int e = errno;
  if (send_is_blocked(e))
    return 0;
  if (e == EIO || e == EINVAL || e == EOPNOTSUPP) {
    u->gso = 0; /* the device or kernel refuses GSO: datagram by datagram */
    return send_each(u, dst, dst_len, buf, len, seg);
  }
  return ls_err_from_errno(e);
}
