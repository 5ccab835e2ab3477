/* Owns mDNS / DNS-SD discovery (net/mdns.h): the embedded avahi-core server
 * and its thread, our entry group (service + A records), the service browser,
 * one resolver per service instance, the peers last reported, and the queue
 * that carries results to the libuv loop.
 *
 * Threads. Everything named avahi_* below, the instance list and the known
 * peer list belong to the avahi thread: its callbacks run with the threaded
 * poll's lock held; the loop thread takes that lock for set_revision and
 * touches them freely only before the thread starts and after it stopped.
 * The event queue is guarded by `lock`; `closing` (set under it) guarantees
 * that no uv_async_send happens after the handle is closed.
 *
 * Several instances per LAN, host or namespace (why: docs/ARCHITECTURE.md,
 * "Discovery"): a unique host name per instance
 * ("ls-<first 12 hex of the peer id>"), publish_addresses = 0 and our own A
 * records with AVAHI_PUBLISH_NO_REVERSE in the service's entry group,
 * deny_interfaces = "lo", IPv4 only (use_ipv6 = 0). */
#include "net/mdns.h"

#include "core/error.h"
#include "core/hex.h"
#include "core/utf8.h"

#include <avahi-common/address.h>
#include <avahi-common/alternative.h>
#include <avahi-common/error.h>
#include <avahi-common/malloc.h>
#include <avahi-common/strlst.h>
#include <avahi-common/thread-watch.h>
#include <avahi-common/timeval.h>
#include <avahi-core/core.h>
#include <avahi-core/log.h>
#include <avahi-core/lookup.h>
#include <avahi-core/publish.h>

#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TXT_MAX 200           /* bytes of TXT rdata we publish at most */
#define SERVICE_NAME_MAX 63   /* one DNS label */
#define MAX_ADDRS 32          /* IPv4 addresses we publish at most */
#define ADDR_CHECK_MS 5000    /* how often we look for address changes */
#define RETRY_MIN_MS 5000     /* first re-resolve after a failed resolve */
#define RETRY_MAX_MS 60000
#define RDATA_MAX 9000        /* larger TXT cannot come in one mDNS packet */

typedef struct published_addr {
  int ifindex;
  uint32_t s_addr; /* network byte order */
} published_addr;

/* One service instance as the browser reports it: (interface, protocol,
 * name, domain). The same peer shows up once per interface. */
typedef struct instance {
  struct instance *next;
  ls_mdns *m;
  AvahiIfIndex iface;
  AvahiProtocol proto;
  char *name, *domain;
  AvahiSServiceResolver *resolver; /* kept after FOUND: it reports changes */
  AvahiTimeout *retry;
  unsigned retry_ms;
  bool has_data; /* resolved to a valid TXT of another peer and an IPv4 address */
  ls_mdns_txt txt;
  struct sockaddr_in addr;
} instance;

/* A peer as last reported through on_found. */
typedef struct known_peer {
  struct known_peer *next;
  ls_mdns_txt txt;
  struct sockaddr_in addr;
} known_peer;

typedef struct queued_event {
  struct queued_event *next;
  bool lost;
  ls_mdns_txt txt;
  struct sockaddr_in addr;
} queued_event;

struct ls_mdns {
  /* set at start, read-only afterwards */
  uv_loop_t *loop;
  void (*on_found)(void *user, const ls_mdns_peer *peer);
  void (*on_lost)(void *user, const char *peer_id);
  void *user;
  char peer_id[65];
  char txt_name[LS_MDNS_NAME_MAX + 1]; /* already cut to fit TXT_MAX */
  uint16_t port;
  int protocol_version;
  bool debug;

  /* avahi thread (or the poll lock) */
  AvahiThreadedPoll *poll;
  const AvahiPoll *api;
  AvahiServer *server;
  AvahiSEntryGroup *group;
  AvahiSServiceBrowser *browser;
  AvahiTimeout *addr_timer;
  char *service_name; /* avahi_malloc'd: renamed on collisions */
  uint32_t rev;
  published_addr addrs[MAX_ADDRS];
  size_t n_addrs;
  instance *instances;
  known_peer *known;
  bool thread_started;

  /* the queue to the loop */
  uv_mutex_t lock;
  queued_event *head, *tail;
  bool closing;
  uv_async_t async;
  bool stopped; /* loop thread */
};

/* ---- logging ---- */

/* One fprintf per line, so lines of several threads do not interleave. */
static void log_line(const char *kind, const char *fmt, va_list ap)
{
  char text[1024];
  vsnprintf(text, sizeof text, fmt, ap);
  fprintf(stderr, "lanspread: mdns: %s%s\n", kind, text);
}

static void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void warn(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  log_line("", fmt, ap);
  va_end(ap);
}

static void debug(const ls_mdns *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void debug(const ls_mdns *m, const char *fmt, ...)
{
  if (!m->debug)
    return;
  va_list ap;
  va_start(ap, fmt);
  log_line("debug: ", fmt, ap);
  va_end(ap);
}

/* avahi's own log: warnings and errors only. Sharing port 5353 with
 * avahi-daemon or a sibling instance is deliberate (disallow_other_stacks
 * = 0), so avahi's warning about "another mDNS stack" is left out. */
static void log_from_avahi(AvahiLogLevel level, const char *text)
{
  if (level <= AVAHI_LOG_WARN && !strstr(text, "Detected another IPv4 mDNS stack"))
    fprintf(stderr, "lanspread: mdns: %s\n", text);
}

/* ---- text helpers ---- */

static bool is_peer_id(const char *s, size_t n)
{
  return n == 64 && ls_hex_is_lower(s, n);
}

/* Copies n bytes of in to out (cap bytes with the NUL) as valid UTF-8
 * without control characters: each bad byte becomes '?'. Never splits a
 * character. */
static void sanitize_text(const char *in, size_t n, char *out, size_t cap)
{
  const unsigned char *s = (const unsigned char *)in;
  size_t o = 0;
  for (size_t i = 0; i < n;) {
    size_t len = ls_utf8_char_len(s + i, n - i);
    bool bad = len == 0 || (len == 1 && (s[i] < 0x20 || s[i] == 0x7f));
    size_t w = bad ? 1 : len;
    if (o + w >= cap)
      break;
    memcpy(out + o, bad ? "?" : in + i, w);
    o += w;
    i += len ? len : 1;
  }
  out[o] = '\0';
}

/* Cuts valid UTF-8 s to at most max bytes at a character boundary. */
static void utf8_truncate(char *s, size_t max)
{
  if (strlen(s) <= max)
    return;
  size_t n = max;
  while (n > 0 && ls_utf8_is_continuation(s[n]))
    n--;
  s[n] = '\0';
}

/* Decimal digits only, no sign or spaces, value <= max. */
static bool parse_decimal(const char *s, size_t n, uint64_t max, uint64_t *out)
{
  uint64_t v = 0;
  if (n == 0 || n > 10)
    return false;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return false;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  if (v > max)
    return false;
  *out = v;
  return true;
}

static bool key_is(const char *key, size_t klen, const char *want)
{
  return klen == strlen(want) && strncasecmp(key, want, klen) == 0;
}

/* ---- TXT parsing ---- */

typedef struct txt_seen {
  bool id, v, name, rev;
} txt_seen;

/* Applies one key=value pair (first occurrence of a key wins). */
static int apply_txt_pair(const char *key, size_t klen, const char *val, size_t vlen,
                          ls_mdns_txt *out, txt_seen *seen, ls_diag *diag)
{
  uint64_t n;
  if (key_is(key, klen, "id") && !seen->id) {
    seen->id = true;
    if (!is_peer_id(val, vlen))
      return ls_diag_set(diag, LS_EFORMAT, "TXT id is not 64 lowercase hex digits");
    memcpy(out->peer_id, val, 64);
    out->peer_id[64] = '\0';
  } else if (key_is(key, klen, "v") && !seen->v) {
    seen->v = true;
    if (!parse_decimal(val, vlen, INT_MAX, &n))
      return ls_diag_set(diag, LS_EFORMAT, "TXT v is not a decimal integer");
    out->protocol_version = (int)n;
  } else if (key_is(key, klen, "rev") && !seen->rev) {
    seen->rev = true;
    if (!parse_decimal(val, vlen, UINT32_MAX, &n))
      return ls_diag_set(diag, LS_EFORMAT, "TXT rev is not a decimal 32-bit integer");
    out->rev = (uint32_t)n;
  } else if (key_is(key, klen, "name") && !seen->name) {
    seen->name = true;
    sanitize_text(val, vlen, out->name, sizeof out->name);
  }
  return LS_OK;
}

int ls_mdns_parse_txt(const uint8_t *rdata, size_t len, ls_mdns_txt *out, ls_diag *diag)
{
  txt_seen seen = {0};
  memset(out, 0, sizeof *out);
  for (size_t pos = 0; pos < len;) {
    size_t n = rdata[pos++];
    if (n > len - pos)
      return ls_diag_set(diag, LS_EFORMAT, "TXT string runs past the end of the record");
    const char *item = (const char *)rdata + pos;
    pos += n;
    const char *eq = memchr(item, '=', n);
    if (!eq)
      continue; /* a boolean attribute or an empty string: not ours */
    size_t klen = (size_t)(eq - item);
    int err = apply_txt_pair(item, klen, eq + 1, n - klen - 1, out, &seen, diag);
    if (err < 0)
      return err;
  }
  if (!seen.id)
    return ls_diag_set(diag, LS_EFORMAT, "TXT has no id");
  if (!seen.v)
    return ls_diag_set(diag, LS_EFORMAT, "TXT has no v");
  return LS_OK;
}

int ls_mdns_parse_txt_list(AvahiStringList *list, ls_mdns_txt *out, ls_diag *diag)
{
  uint8_t rdata[RDATA_MAX];
  size_t len = avahi_string_list_serialize(list, rdata, sizeof rdata);
  return ls_mdns_parse_txt(rdata, len, out, diag);
}

/* ---- the queue to the loop thread ---- */

static void queue_event(ls_mdns *m, bool lost, const ls_mdns_txt *txt,
                        const struct sockaddr_in *addr)
{
  queued_event *e = calloc(1, sizeof *e);
  if (!e) {
    warn("out of memory: a discovery event was dropped");
    return;
  }
  e->lost = lost;
  e->txt = *txt;
  if (addr)
    e->addr = *addr;
  uv_mutex_lock(&m->lock);
  if (m->closing) {
    uv_mutex_unlock(&m->lock);
    free(e);
    return;
  }
  if (m->tail)
    m->tail->next = e;
  else
    m->head = e;
  m->tail = e;
  uv_async_send(&m->async); /* under the lock: never after uv_close */
  uv_mutex_unlock(&m->lock);
}

static queued_event *take_events(ls_mdns *m)
{
  uv_mutex_lock(&m->lock);
  queued_event *e = m->head;
  m->head = m->tail = NULL;
  uv_mutex_unlock(&m->lock);
  return e;
}

static void free_events(queued_event *e)
{
  while (e) {
    queued_event *next = e->next;
    free(e);
    e = next;
  }
}

static void deliver(ls_mdns *m, const queued_event *e)
{
  if (e->lost) {
    if (m->on_lost)
      m->on_lost(m->user, e->txt.peer_id);
    return;
  }
  if (!m->on_found)
    return;
  ls_mdns_peer peer;
  memset(&peer, 0, sizeof peer);
  peer.peer_id = e->txt.peer_id;
  peer.name = e->txt.name;
  peer.protocol_version = e->txt.protocol_version;
  peer.rev = e->txt.rev;
  memcpy(&peer.addr, &e->addr, sizeof e->addr);
  m->on_found(m->user, &peer);
}

/* Coalesced sends: drain everything. A callback may stop the module. */
static void on_async(uv_async_t *handle)
{
  ls_mdns *m = handle->data;
  queued_event *e = take_events(m);
  while (e) {
    queued_event *next = e->next;
    if (!m->stopped)
      deliver(m, e);
    free(e);
    e = next;
  }
}

/* ---- peers: what we report ---- */

static known_peer **find_known(ls_mdns *m, const char *peer_id)
{
  known_peer **k = &m->known;
  while (*k && strcmp((*k)->txt.peer_id, peer_id) != 0)
    k = &(*k)->next;
  return k;
}

/* The instance whose data stands for the peer: the first one resolved. */
static instance *view_of(ls_mdns *m, const char *peer_id)
{
  for (instance *i = m->instances; i; i = i->next)
    if (i->has_data && strcmp(i->txt.peer_id, peer_id) == 0)
      return i;
  return NULL;
}

static bool same_as_reported(const known_peer *k, const instance *i)
{
  return strcmp(k->txt.name, i->txt.name) == 0 &&
         k->txt.protocol_version == i->txt.protocol_version && k->txt.rev == i->txt.rev &&
         k->addr.sin_addr.s_addr == i->addr.sin_addr.s_addr &&
         k->addr.sin_port == i->addr.sin_port;
}

/* Reports what changed about peer_id since the last report. */
static void sync_peer(ls_mdns *m, const char *peer_id)
{
  instance *view = view_of(m, peer_id);
  known_peer **kp = find_known(m, peer_id);
  if (!view) {
    known_peer *k = *kp;
    if (k) {
      *kp = k->next;
      queue_event(m, true, &k->txt, NULL);
      free(k);
    }
    return;
  }
  if (*kp && same_as_reported(*kp, view))
    return;
  if (!*kp) {
    *kp = calloc(1, sizeof **kp);
    if (!*kp) {
      warn("out of memory: peer %.12s not reported", peer_id);
      return;
    }
  }
  (*kp)->txt = view->txt;
  (*kp)->addr = view->addr;
  queue_event(m, false, &view->txt, &view->addr);
}

/* Replaces the data of an instance (txt NULL: none) and reports the peers
 * concerned. */
static void set_instance_data(instance *inst, const ls_mdns_txt *txt,
                              const struct sockaddr_in *addr)
{
  char old[65] = "";
  if (inst->has_data)
    memcpy(old, inst->txt.peer_id, sizeof old);
  inst->has_data = txt != NULL;
  if (txt) {
    inst->txt = *txt;
    inst->addr = *addr;
  }
  if (old[0] && (!txt || strcmp(old, txt->peer_id) != 0))
    sync_peer(inst->m, old);
  if (txt)
    sync_peer(inst->m, txt->peer_id);
}

/* ---- resolving ---- */

static void start_resolver(instance *inst);

static void on_retry(AvahiTimeout *t, void *user)
{
  instance *inst = user;
  inst->m->api->timeout_update(t, NULL);
  if (!inst->resolver)
    start_resolver(inst);
}

/* Resolves again later, backing off: a peer that restarts under the same
 * service name gives no new browser event, so this is how we see it. */
static void schedule_retry(instance *inst)
{
  const AvahiPoll *api = inst->m->api;
  struct timeval tv;
  inst->retry_ms = inst->retry_ms ? inst->retry_ms * 2 : RETRY_MIN_MS;
  if (inst->retry_ms > RETRY_MAX_MS)
    inst->retry_ms = RETRY_MAX_MS;
  avahi_elapse_time(&tv, inst->retry_ms, 0);
  if (inst->retry)
    api->timeout_update(inst->retry, &tv);
  else
    inst->retry = api->timeout_new(api, &tv, on_retry, inst);
}

static void take_resolved(instance *inst, const AvahiAddress *a, uint16_t port,
                          AvahiStringList *txt_list)
{
  ls_mdns *m = inst->m;
  ls_mdns_txt txt;
  ls_diag diag;

  if (!a || a->proto != AVAHI_PROTO_INET) {
    debug(m, "\"%s\" resolved to a non-IPv4 address: ignored", inst->name);
    return;
  }
  if (ls_mdns_parse_txt_list(txt_list, &txt, &diag) < 0) {
    debug(m, "ignoring service \"%s\": %s", inst->name, diag.text);
    set_instance_data(inst, NULL, NULL);
    return;
  }
  if (strcmp(txt.peer_id, m->peer_id) == 0) {
    set_instance_data(inst, NULL, NULL); /* ourselves */
    return;
  }
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = a->data.ipv4.address;
  set_instance_data(inst, &txt, &addr);
}

static void on_resolve(AvahiSServiceResolver *r, AvahiIfIndex iface, AvahiProtocol proto,
                       AvahiResolverEvent event, const char *name, const char *type,
                       const char *domain, const char *host, const AvahiAddress *a,
                       uint16_t port, AvahiStringList *txt, AvahiLookupResultFlags flags,
                       void *user)
{
  instance *inst = user;
  (void)iface, (void)proto, (void)name, (void)type, (void)domain, (void)host, (void)flags;
  if (event != AVAHI_RESOLVER_FOUND) {
    debug(inst->m, "cannot resolve \"%s\": %s", inst->name,
          avahi_strerror(avahi_server_errno(inst->m->server)));
    avahi_s_service_resolver_free(r);
    inst->resolver = NULL;
    schedule_retry(inst); /* keep the last data: only the browser says "gone" */
    return;
  }
  inst->retry_ms = 0;
  take_resolved(inst, a, port, txt);
}

static void start_resolver(instance *inst)
{
  ls_mdns *m = inst->m;
  inst->resolver = avahi_s_service_resolver_new(m->server, inst->iface, inst->proto, inst->name,
                                                LS_MDNS_SERVICE_TYPE, inst->domain,
                                                AVAHI_PROTO_INET, 0, on_resolve, inst);
  if (!inst->resolver) {
    debug(m, "cannot resolve \"%s\": %s", inst->name,
          avahi_strerror(avahi_server_errno(m->server)));
    schedule_retry(inst);
  }
}

/* ---- browsing ---- */

static instance **find_instance(ls_mdns *m, AvahiIfIndex iface, AvahiProtocol proto,
                                const char *name, const char *domain)
{
  instance **i = &m->instances;
  while (*i && !((*i)->iface == iface && (*i)->proto == proto &&
                 strcmp((*i)->name, name) == 0 && strcmp((*i)->domain, domain) == 0))
    i = &(*i)->next;
  return i;
}

static void free_instance(ls_mdns *m, instance *inst)
{
  if (inst->resolver)
    avahi_s_service_resolver_free(inst->resolver);
  if (inst->retry)
    m->api->timeout_free(inst->retry);
  free(inst->name);
  free(inst->domain);
  free(inst);
}

static void add_instance(ls_mdns *m, AvahiIfIndex iface, AvahiProtocol proto,
                         const char *name, const char *domain)
{
  instance **tail = find_instance(m, iface, proto, name, domain);
  if (*tail)
    return;
  instance *inst = calloc(1, sizeof *inst);
  if (!inst || !(inst->name = strdup(name)) || !(inst->domain = strdup(domain))) {
    warn("out of memory: service \"%s\" ignored", name);
    if (inst)
      free(inst->name);
    free(inst);
    return;
  }
  inst->m = m;
  inst->iface = iface;
  inst->proto = proto;
  *tail = inst; /* appended: the first instance of a peer stands for it */
  start_resolver(inst);
}

static void remove_instance(ls_mdns *m, AvahiIfIndex iface, AvahiProtocol proto,
                            const char *name, const char *domain)
{
  instance **ip = find_instance(m, iface, proto, name, domain);
  instance *inst = *ip;
  if (!inst)
    return;
  *ip = inst->next;
  char peer_id[65] = "";
  if (inst->has_data)
    memcpy(peer_id, inst->txt.peer_id, sizeof peer_id);
  free_instance(m, inst);
  if (peer_id[0])
    sync_peer(m, peer_id); /* on_lost when it was the peer's last instance */
}

static void on_browse(AvahiSServiceBrowser *b, AvahiIfIndex iface, AvahiProtocol proto,
                      AvahiBrowserEvent event, const char *name, const char *type,
                      const char *domain, AvahiLookupResultFlags flags, void *user)
{
  ls_mdns *m = user;
  (void)b, (void)type, (void)flags;
  switch (event) {
  case AVAHI_BROWSER_NEW:
    debug(m, "service \"%s\" on interface %d", name, iface);
    add_instance(m, iface, proto, name, domain);
    break;
  case AVAHI_BROWSER_REMOVE:
    debug(m, "service \"%s\" gone from interface %d", name, iface);
    remove_instance(m, iface, proto, name, domain);
    break;
  case AVAHI_BROWSER_FAILURE:
    warn("browsing failed: %s", avahi_strerror(avahi_server_errno(m->server)));
    break;
  case AVAHI_BROWSER_CACHE_EXHAUSTED:
  case AVAHI_BROWSER_ALL_FOR_NOW:
    break;
  }
}

/* ---- publishing ---- */

static int compare_addrs(const void *a, const void *b)
{
  const published_addr *x = a, *y = b;
  if (x->ifindex != y->ifindex)
    return x->ifindex < y->ifindex ? -1 : 1;
  return x->s_addr < y->s_addr ? -1 : x->s_addr > y->s_addr;
}

static bool is_usable_interface(const struct ifaddrs *ifa)
{
  unsigned flags = ifa->ifa_flags;
  return ifa->ifa_addr && ifa->ifa_addr->sa_family == AF_INET && (flags & IFF_UP) &&
         (flags & IFF_MULTICAST) && !(flags & (IFF_LOOPBACK | IFF_POINTOPOINT)) &&
         strcmp(ifa->ifa_name, "lo") != 0;
}

/* The IPv4 addresses of the interfaces avahi can use (up, multicast, not lo,
 * not point-to-point), sorted. */
static size_t usable_addresses(published_addr *out, size_t max)
{
  struct ifaddrs *list;
  size_t n = 0;
  if (getifaddrs(&list) != 0)
    return 0;
  for (struct ifaddrs *ifa = list; ifa && n < max; ifa = ifa->ifa_next) {
    if (!is_usable_interface(ifa))
      continue;
    char dev[IF_NAMESIZE + 1];
    snprintf(dev, sizeof dev, "%s", ifa->ifa_name);
    dev[strcspn(dev, ":")] = '\0'; /* "eth0:1" labels */
    unsigned index = if_nametoindex(dev);
    if (!index)
      continue;
    memset(&out[n], 0, sizeof out[n]);
    out[n].ifindex = (int)index;
    out[n].s_addr = ((const struct sockaddr_in *)ifa->ifa_addr)->sin_addr.s_addr;
    n++;
  }
  freeifaddrs(list);
  qsort(out, n, sizeof *out, compare_addrs);
  return n;
}

static AvahiStringList *build_txt(const ls_mdns *m)
{
  char id[80], v[32], rev[32], name[8 + LS_MDNS_NAME_MAX];
  snprintf(id, sizeof id, "id=%s", m->peer_id);
  snprintf(v, sizeof v, "v=%d", m->protocol_version);
  snprintf(rev, sizeof rev, "rev=%u", (unsigned)m->rev);
  snprintf(name, sizeof name, "name=%s", m->txt_name);
  return avahi_string_list_new(id, v, name, rev, NULL);
}

static void add_address_records(ls_mdns *m, AvahiServer *s)
{
  for (size_t i = 0; i < m->n_addrs; i++) {
    AvahiAddress a;
    memset(&a, 0, sizeof a);
    a.proto = AVAHI_PROTO_INET;
    a.data.ipv4.address = m->addrs[i].s_addr;
    int r = avahi_server_add_address(s, m->group, m->addrs[i].ifindex, AVAHI_PROTO_INET,
                                     AVAHI_PUBLISH_NO_REVERSE, NULL, &a);
    if (r < 0)
      warn("cannot publish an address on interface %d: %s", m->addrs[i].ifindex,
           avahi_strerror(r));
  }
}

static void on_group_state(AvahiServer *s, AvahiSEntryGroup *g, AvahiEntryGroupState state,
                           void *user);

/* (Re)publishes the service and our A records in one entry group. Uses the
 * callback's server argument: this runs inside avahi_server_new too. */
static void publish(ls_mdns *m, AvahiServer *s)
{
  if (!m->group && !(m->group = avahi_s_entry_group_new(s, on_group_state, m))) {
    warn("cannot create an entry group: %s", avahi_strerror(avahi_server_errno(s)));
    return;
  }
  avahi_s_entry_group_reset(m->group);
  m->n_addrs = usable_addresses(m->addrs, MAX_ADDRS);
  AvahiStringList *txt = build_txt(m);
  int r = avahi_server_add_service_strlst(s, m->group, AVAHI_IF_UNSPEC, AVAHI_PROTO_INET, 0,
                                          m->service_name, LS_MDNS_SERVICE_TYPE, NULL, NULL,
                                          m->port, txt);
  avahi_string_list_free(txt);
  if (r < 0) {
    warn("cannot publish \"%s\": %s", m->service_name, avahi_strerror(r));
    return;
  }
  add_address_records(m, s);
  if ((r = avahi_s_entry_group_commit(m->group)) < 0)
    warn("cannot commit the entry group: %s", avahi_strerror(r));
  debug(m, "publishing \"%s\" on port %u with %zu address(es), rev %u", m->service_name,
        (unsigned)m->port, m->n_addrs, (unsigned)m->rev);
}

/* A host name conflict: take the next name; the server goes REGISTERING
 * (we withdraw) and RUNNING (we publish again). */
static void rename_host(ls_mdns *m, AvahiServer *s)
{
  char *alt = avahi_alternative_host_name(avahi_server_get_host_name(s));
  if (!alt)
    return;
  warn("host name \"%s\" is taken, renaming to \"%s\"", avahi_server_get_host_name(s), alt);
  if (m->group)
    avahi_s_entry_group_reset(m->group);
  int r = avahi_server_set_host_name(s, alt);
  if (r < 0)
    warn("cannot rename the host: %s", avahi_strerror(r));
  avahi_free(alt);
}

static void on_group_state(AvahiServer *s, AvahiSEntryGroup *g, AvahiEntryGroupState state,
                           void *user)
{
  ls_mdns *m = user;
  (void)g;
  if (state == AVAHI_ENTRY_GROUP_COLLISION) {
    /* The service name or (a copy of our identity elsewhere) the host name
     * is taken: rename both, on the same group. */
    char *alt = avahi_alternative_service_name(m->service_name);
    if (!alt)
      return;
    warn("service name \"%s\" is taken, renaming to \"%s\"", m->service_name, alt);
    avahi_free(m->service_name);
    m->service_name = alt;
    if (avahi_server_get_state(s) == AVAHI_SERVER_RUNNING)
      rename_host(m, s);
    if (avahi_server_get_state(s) == AVAHI_SERVER_RUNNING &&
        avahi_s_entry_group_is_empty(m->group))
      publish(m, s);
  } else if (state == AVAHI_ENTRY_GROUP_FAILURE) {
    warn("cannot publish: %s", avahi_strerror(avahi_server_errno(s)));
  } else if (state == AVAHI_ENTRY_GROUP_ESTABLISHED) {
    debug(m, "published \"%s\"", m->service_name);
  }
}

static void on_server_state(AvahiServer *s, AvahiServerState state, void *user)
{
  ls_mdns *m = user;
  switch (state) {
  case AVAHI_SERVER_RUNNING:
    publish(m, s);
    break;
  case AVAHI_SERVER_COLLISION:
    rename_host(m, s);
    break;
  case AVAHI_SERVER_REGISTERING:
    if (m->group)
      avahi_s_entry_group_reset(m->group);
    break;
  case AVAHI_SERVER_FAILURE:
    warn("server failure: %s", avahi_strerror(avahi_server_errno(s)));
    break;
  case AVAHI_SERVER_INVALID:
    break;
  }
}

/* Re-publishes when the set of interface addresses changed. */
static void on_addr_timer(AvahiTimeout *t, void *user)
{
  ls_mdns *m = user;
  published_addr now[MAX_ADDRS];
  size_t n = usable_addresses(now, MAX_ADDRS);
  if (avahi_server_get_state(m->server) == AVAHI_SERVER_RUNNING &&
      (n != m->n_addrs || memcmp(now, m->addrs, n * sizeof *now) != 0)) {
    debug(m, "interface addresses changed: publishing again");
    publish(m, m->server);
  }
  struct timeval tv;
  m->api->timeout_update(t, avahi_elapse_time(&tv, ADDR_CHECK_MS, 0));
}

/* ---- start and stop ---- */

static int check_config(const ls_mdns_config *c, ls_diag *diag)
{
  if (!c || !c->loop)
    return ls_diag_set(diag, LS_EINVAL, "mdns: no loop");
  if (!c->peer_id || !is_peer_id(c->peer_id, strlen(c->peer_id)))
    return ls_diag_set(diag, LS_EINVAL, "mdns: the peer id must be 64 lowercase hex digits");
  if (c->port == 0)
    return ls_diag_set(diag, LS_EINVAL, "mdns: no port to advertise");
  if (c->protocol_version < 0)
    return ls_diag_set(diag, LS_EINVAL, "mdns: negative protocol version");
  return LS_OK;
}

/* Our display name in TXT, cut so that the record stays <= TXT_MAX bytes
 * whatever the rev grows to; and our service name "<name> (<12 hex>)". */
static int set_names(ls_mdns *m, const char *name)
{
  char v[32], service[LS_MDNS_NAME_MAX + 32], shown[LS_MDNS_NAME_MAX + 1];
  name = name ? name : "";
  sanitize_text(name, strlen(name), m->txt_name, sizeof m->txt_name);
  int vlen = snprintf(v, sizeof v, "v=%d", m->protocol_version);
  size_t fixed = (1 + 3 + 64) + (1 + (size_t)vlen) + (1 + strlen("rev=4294967295")) + 1 + 5;
  utf8_truncate(m->txt_name, TXT_MAX - fixed);

  snprintf(shown, sizeof shown, "%s", m->txt_name[0] ? m->txt_name : "lanspread");
  utf8_truncate(shown, SERVICE_NAME_MAX - strlen(" (123456789012)"));
  snprintf(service, sizeof service, "%s (%.12s)", shown, m->peer_id);
  m->service_name = avahi_strdup(service);
  return m->service_name ? LS_OK : LS_ENOMEM;
}

static void free_avahi(ls_mdns *m)
{
  while (m->instances) {
    instance *next = m->instances->next;
    free_instance(m, m->instances);
    m->instances = next;
  }
  while (m->known) {
    known_peer *next = m->known->next;
    free(m->known);
    m->known = next;
  }
  if (m->addr_timer)
    m->api->timeout_free(m->addr_timer);
  if (m->browser)
    avahi_s_service_browser_free(m->browser);
  /* Freeing the group queues goodbyes; freeing the server flushes them. */
  if (m->group)
    avahi_s_entry_group_free(m->group);
  if (m->server)
    avahi_server_free(m->server);
  if (m->poll)
    avahi_threaded_poll_free(m->poll);
  avahi_free(m->service_name);
  m->instances = NULL, m->known = NULL, m->addr_timer = NULL, m->browser = NULL;
  m->group = NULL, m->server = NULL, m->poll = NULL, m->service_name = NULL;
}

static int start_server(ls_mdns *m, ls_diag *diag)
{
  char host[32];
  snprintf(host, sizeof host, "ls-%.12s", m->peer_id);
  AvahiServerConfig cfg;
  avahi_server_config_init(&cfg);
  cfg.host_name = avahi_strdup(host);
  cfg.use_ipv4 = 1;
  cfg.use_ipv6 = 0; /* IPv4 only for now */
  cfg.publish_addresses = 0; /* our own A records, without reverse PTR */
  cfg.publish_aaaa_on_ipv4 = 0;
  cfg.publish_a_on_ipv6 = 0;
  cfg.publish_hinfo = 0;
  cfg.publish_workstation = 0;
  cfg.publish_domain = 0;
  cfg.add_service_cookie = 0;
  cfg.disallow_other_stacks = 0; /* share port 5353 with avahi-daemon and siblings */
  cfg.deny_interfaces = avahi_string_list_new("lo", NULL);
  int err = 0;
  m->server = avahi_server_new(m->api, &cfg, on_server_state, m, &err);
  avahi_server_config_free(&cfg);
  if (!m->server)
    return ls_diag_set(diag, err == AVAHI_ERR_NO_MEMORY ? LS_ENOMEM : LS_EIO,
                       "mdns: cannot start avahi: %s%s", avahi_strerror(err),
                       err == AVAHI_ERR_NO_NETWORK ? " (is UDP port 5353 held exclusively?)" : "");
  m->browser = avahi_s_service_browser_new(m->server, AVAHI_IF_UNSPEC, AVAHI_PROTO_INET,
                                           LS_MDNS_SERVICE_TYPE, NULL, 0, on_browse, m);
  if (!m->browser)
    return ls_diag_set(diag, LS_EIO, "mdns: cannot browse: %s",
                       avahi_strerror(avahi_server_errno(m->server)));
  struct timeval tv;
  m->addr_timer = m->api->timeout_new(m->api, avahi_elapse_time(&tv, ADDR_CHECK_MS, 0),
                                      on_addr_timer, m);
  return LS_OK;
}

static void on_closed(uv_handle_t *handle)
{
  ls_mdns *m = handle->data;
  uv_mutex_destroy(&m->lock);
  free(m);
}

static ls_mdns *new_mdns(const ls_mdns_config *c)
{
  ls_mdns *m = calloc(1, sizeof *m);
  if (!m)
    return NULL;
  if (uv_mutex_init(&m->lock) != 0) {
    free(m);
    return NULL;
  }
  m->loop = c->loop;
  m->on_found = c->on_found;
  m->on_lost = c->on_lost;
  m->user = c->user;
  memcpy(m->peer_id, c->peer_id, sizeof m->peer_id);
  m->port = c->port;
  m->protocol_version = c->protocol_version;
  m->rev = c->rev;
  m->debug = getenv("LS_MDNS_DEBUG") != NULL;
  return m;
}

int ls_mdns_start(const ls_mdns_config *c, ls_mdns **out, ls_diag *diag)
{
  published_addr probe[MAX_ADDRS];
  *out = NULL;
  int err = check_config(c, diag);
  if (err < 0)
    return err;
  if (usable_addresses(probe, MAX_ADDRS) == 0)
    return ls_diag_set(diag, LS_EIO, "mdns: no usable IPv4 interface "
                                     "(up, multicast-capable, not lo) to run mDNS on");
  avahi_set_log_function(log_from_avahi);
  ls_mdns *m = new_mdns(c);
  if (!m)
    return ls_diag_set(diag, LS_ENOMEM, "mdns: out of memory");
  if ((err = set_names(m, c->name)) < 0 || !(m->poll = avahi_threaded_poll_new())) {
    err = ls_diag_set(diag, LS_ENOMEM, "mdns: out of memory");
    goto fail;
  }
  m->api = avahi_threaded_poll_get(m->poll);
  if ((err = start_server(m, diag)) < 0)
    goto fail;
  if (uv_async_init(c->loop, &m->async, on_async) != 0) {
    err = ls_diag_set(diag, LS_EIO, "mdns: cannot create the loop notifier");
    goto fail;
  }
  m->async.data = m;
  if (avahi_threaded_poll_start(m->poll) < 0) {
    ls_mdns_stop(m); /* closes the handle, frees m in its close callback */
    return ls_diag_set(diag, LS_EIO, "mdns: cannot start the avahi thread");
  }
  m->thread_started = true;
  *out = m;
  return LS_OK;
fail:
  free_avahi(m);
  uv_mutex_destroy(&m->lock);
  free(m);
  return err;
}

int ls_mdns_set_revision(ls_mdns *m, uint32_t rev)
{
  if (!m || m->stopped)
    return LS_EINVAL;
  int r = 0;
  avahi_threaded_poll_lock(m->poll);
  m->rev = rev;
  if (m->group && !avahi_s_entry_group_is_empty(m->group)) {
    AvahiStringList *txt = build_txt(m);
    r = avahi_server_update_service_txt_strlst(m->server, m->group, AVAHI_IF_UNSPEC,
                                               AVAHI_PROTO_INET, 0, m->service_name,
                                               LS_MDNS_SERVICE_TYPE, NULL, txt);
    avahi_string_list_free(txt);
  }
  avahi_threaded_poll_unlock(m->poll);
  /* When the service is being re-published, the new rev goes out with it. */
  if (r < 0)
    debug(m, "rev %u not updated now: %s", (unsigned)rev, avahi_strerror(r));
  return LS_OK;
}

void ls_mdns_stop(ls_mdns *m)
{
  if (!m || m->stopped)
    return;
  m->stopped = true;
  uv_mutex_lock(&m->lock);
  m->closing = true;
  uv_mutex_unlock(&m->lock);
  if (m->thread_started)
    avahi_threaded_poll_stop(m->poll); /* joins the thread */
  free_avahi(m);
  free_events(take_events(m));
  uv_close((uv_handle_t *)&m->async, on_closed);
}
