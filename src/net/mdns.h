/* mDNS / DNS-SD discovery: owns the embedded avahi-core server, its thread,
 * our "_lanspread._udp" advertisement and the browse/resolve state of the
 * peers seen on the LAN.
 *
 * avahi-core runs on its own thread (avahi_threaded_poll); results are
 * handed to the libuv loop through a mutex-protected queue and a uv_async_t,
 * so every callback runs on the loop's thread.
 *
 * IPv4 only for now: avahi runs with use_ipv6 = 0, we publish A records
 * only and report IPv4 addresses only.
 *
 * mDNS is not a liveness signal: a peer that crashes sends no goodbye and
 * stays listed for up to the 75-minute service TTL. The runtime pings peers;
 * this module only discovers them. */
#ifndef LS_NET_MDNS_H
#define LS_NET_MDNS_H

#include <lanspread/error.h>

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#define LS_MDNS_SERVICE_TYPE "_lanspread._udp"
/* Longest display name we pass on (bytes of UTF-8, without the NUL). */
#define LS_MDNS_NAME_MAX 250

typedef struct ls_mdns ls_mdns;

typedef struct ls_mdns_peer {
  const char *peer_id;          /* 64 lowercase hex */
  const char *name;             /* display name, valid UTF-8 without control characters */
  int protocol_version;         /* TXT "v" */
  uint32_t rev;                 /* TXT "rev": the peer's library revision */
  struct sockaddr_storage addr; /* IPv4 address (AF_INET) and QUIC port */
} ls_mdns_peer;

typedef struct ls_mdns_config {
  uv_loop_t *loop;      /* callbacks are delivered on this loop's thread */
  const char *peer_id;  /* ours: 64 lowercase hex; used to skip ourselves and in the host name */
  const char *name;     /* display name (truncated to fit the TXT record; NULL: "") */
  uint16_t port;        /* our QUIC port, advertised */
  int protocol_version; /* advertised in TXT "v" (>= 0) */
  uint32_t rev;         /* initial TXT "rev" */
  /* A new peer, or a known one whose address, port, name, version or rev
   * changed. The pointers in peer are valid during the call only. */
  void (*on_found)(void *user, const ls_mdns_peer *peer);
  /* The last instance of that peer's service was removed (a goodbye, or the
   * TTL ran out). */
  void (*on_lost)(void *user, const char *peer_id);
  void *user;
} ls_mdns_config;

/* Starts advertising and browsing. Fails with LS_EINVAL for a bad config,
 * LS_EIO when avahi cannot run (no usable IPv4 interface other than lo, port
 * 5353 unavailable), with avahi's error text in diag. Thread: loop. */
int ls_mdns_start(const ls_mdns_config *config, ls_mdns **out, ls_diag *diag);

/* Sets the TXT "rev" counter so others notice that our library changed; they
 * see it as on_found about 2 s later (announce + 1 s cache flush). Thread:
 * loop. */
int ls_mdns_set_revision(ls_mdns *m, uint32_t rev);

/* Synchronous: sends goodbyes, stops the avahi thread and frees everything;
 * no callback runs after it returns (it may be called from a callback). The
 * uv_async_t is closed, so the loop must run once more before
 * uv_loop_close (as for any libuv handle). Thread: loop. NULL is a no-op. */
void ls_mdns_stop(ls_mdns *m);

/* The TXT of a lanspread service, parsed. Exposed for tests. */
typedef struct ls_mdns_txt {
  char peer_id[65];
  char name[LS_MDNS_NAME_MAX + 1];
  int protocol_version;
  uint32_t rev;
} ls_mdns_txt;

/* Parses TXT rdata (length-prefixed strings, RFC 6763 section 6). Keys are
 * case-insensitive and the first occurrence wins. "id" (64 lowercase hex)
 * and "v" (decimal, 0..INT_MAX) are required: without them LS_EFORMAT with
 * the reason in diag. "name" is optional (invalid UTF-8 and control
 * characters become '?'), "rev" optional (decimal uint32, default 0). */
int ls_mdns_parse_txt(const uint8_t *rdata, size_t len, ls_mdns_txt *out, ls_diag *diag);

/* The same for the TXT strings as avahi's resolver hands them over: the
 * list serialized as on the wire (strings cut at 255 bytes, empty ones
 * dropped, at most 9000 bytes in all), then ls_mdns_parse_txt. The list is
 * left as it was. */
struct AvahiStringList;
int ls_mdns_parse_txt_list(struct AvahiStringList *list, ls_mdns_txt *out, ls_diag *diag);

#endif
