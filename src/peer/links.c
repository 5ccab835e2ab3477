/* Owns the links to other peers: one per remote peer we know (static,
 * discovered, or one that connected to us), its connection, the Hello
 * handshake, ListGames, the ping-based liveness and reconnects. What a
 * ready peer advertises goes into PeerGameDB.
 *
 * Liveness: every tick (1 s) a ready link sends Ping unless one is still
 * out; a link whose ping is still unanswered at LS_MISSED_PINGS_MAX ticks in
 * a row is pruned, so a vanished peer is gone within about 4 s. A closed
 * connection prunes at once. Links retry with a backoff of 1, 2, 4, 8, 10 s.
 * Strangers: a peer known only from its own Hello is forgotten after
 * LS_LINK_MAX_FAILURES failed connections in a row (it comes back when it
 * says Hello again); one mDNS still announces is then retried only every
 * LS_LINK_SLOW_RETRY_TICKS (a network outage must not split the party for
 * good; mDNS forgets it by goodbye or TTL); static links (--peer) keep the
 * normal backoff. At most LS_MAX_LEARNED_LINKS links not given by --peer
 * exist at once, so throwaway identities cannot make this peer dial
 * without end. A forgotten link is freed once no request of it is in
 * flight.
 * Library changes: every LS_REFRESH_TICKS ticks a ready link re-lists the
 * peer's games (a poll, so static peers without mDNS refresh too).
 * Game lists: only catalog games are kept (the others are said once per
 * link); a list the protocol refuses (over LS_PROTO_MAX_GAMES entries or
 * LS_PROTO_MAX_GAME_LIST_FRAME bytes, or malformed) disconnects the peer. */
#include "peer/runtime.h"

#include "core/error.h"
#include "core/addr.h"
#include "node/request.h"

#include <lanspread/catalog.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BACKOFF_TICKS 10
#define REFUSED_BACKOFF_TICKS 30

typedef enum { LINK_IDLE, LINK_CONNECTING, LINK_HELLO, LINK_READY, LINK_DEAD } link_state;
enum { ORIGIN_STATIC = 1, ORIGIN_INCOMING = 2, ORIGIN_MDNS = 4 };

struct ls_link {
  ls_link *next;
  ls_peer *peer;
  char peer_id[LS_PROTO_PEER_ID_LEN + 1]; /* "" until known */
  char name[LS_PROTO_MAX_NAME + 1];
  struct sockaddr_storage addr;
  char addr_text[64];
  unsigned origin;
  link_state state;
  ls_quic_conn *conn;
  ls_request *hello, *ping, *list; /* in flight */
  bool announced;                  /* peer-connected was emitted */
  bool told_foreign, told_bad_list; /* logged once per link */
  bool other_party;                /* refused for the party key, either way */
  unsigned missed, failures;
  unsigned inflight;               /* requests whose on_done is still due */
  unsigned retry_at;               /* tick */
};

/* ---- the table of links -------------------------------------------------- */

static size_t addr_size(const struct sockaddr *addr)
{
  return addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static void set_addr(ls_link *l, const struct sockaddr *addr)
{
  memset(&l->addr, 0, sizeof l->addr);
  memcpy(&l->addr, addr, addr_size(addr));
  ls_format_addr(addr, l->addr_text, sizeof l->addr_text);
}

static size_t learned_links(const ls_peer *p)
{
  size_t n = 0;
  for (ls_link *l = p->links; l; l = l->next)
    n += l->state != LINK_DEAD && !(l->origin & ORIGIN_STATIC);
  return n;
}

static ls_link *new_link(ls_peer *p, const struct sockaddr *addr, unsigned origin)
{
  if (!(origin & ORIGIN_STATIC) && learned_links(p) >= LS_MAX_LEARNED_LINKS) {
    if (!p->told_links_full)
      ls_rt_log("%d peers learned from mDNS or their Hello are linked already; not linking "
                "to more until some are gone", LS_MAX_LEARNED_LINKS);
    p->told_links_full = true;
    return NULL;
  }
  p->told_links_full = false;
  ls_link *l = calloc(1, sizeof *l);
  if (!l)
    return NULL;
  l->peer = p;
  l->origin = origin;
  set_addr(l, addr);
  l->next = p->links;
  p->links = l;
  return l;
}

static ls_link *find_by_id(const ls_peer *p, const char *peer_id, const ls_link *except)
{
  for (ls_link *l = p->links; l; l = l->next)
    if (l != except && l->state != LINK_DEAD && strcmp(l->peer_id, peer_id) == 0)
      return l;
  return NULL;
}

static ls_link *find_by_conn(const ls_peer *p, const ls_quic_conn *conn)
{
  for (ls_link *l = p->links; l; l = l->next)
    if (l->conn == conn)
      return l;
  return NULL;
}

size_t ls_links_ready_count(const ls_peer *p)
{
  size_t n = 0;
  for (ls_link *l = p->links; l; l = l->next)
    n += l->state == LINK_READY && l->announced;
  return n;
}

ls_quic_conn *ls_links_conn_of(const ls_peer *p, const char *peer_id)
{
  ls_link *l = find_by_id(p, peer_id, NULL);
  return l && l->state == LINK_READY ? l->conn : NULL;
}

/* ---- events ---------------------------------------------------------- */

static void emit_peer_count(ls_peer *p)
{
  ls_rt_emit(p, LS_EVENT_PEER_COUNT,
             json_pack("{s:I}", "count", (json_int_t)ls_links_ready_count(p)));
}

/* A ready peer is announced once its games are known, so that whoever waits
 * for peer-connected finds them in the library. */
static void announce(ls_link *l)
{
  if (l->announced)
    return;
  l->announced = true;
  ls_known_saw(l->peer, l->peer_id);
  ls_rt_emit(l->peer, LS_EVENT_PEER_CONNECTED,
             json_pack("{s:s, s:s, s:s}", "peer_id", l->peer_id, "addr", l->addr_text, "name",
                       l->name));
  emit_peer_count(l->peer);
}

/* ---- state changes -------------------------------------------------------- */

static void schedule_retry(ls_link *l, unsigned min_ticks)
{
  unsigned backoff = 1u << (l->failures < 4 ? l->failures : 4);
  if (backoff > MAX_BACKOFF_TICKS)
    backoff = MAX_BACKOFF_TICKS;
  if (backoff < min_ticks)
    backoff = min_ticks;
  l->retry_at = l->peer->ticks + backoff;
}

/* Leaves READY (or a handshake) for IDLE; a ready peer's games are dropped
 * and its departure reported. */
static void drop(ls_link *l, const char *reason, unsigned min_retry_ticks)
{
  ls_peer *p = l->peer;
  bool was_ready = l->state == LINK_READY && l->announced;
  ls_quic_conn *conn = l->conn;
  l->announced = false;
  l->conn = NULL;
  l->hello = l->ping = l->list = NULL; /* their on_done sees they are stale */
  l->missed = 0;
  if (l->state != LINK_DEAD)
    l->state = LINK_IDLE;
  schedule_retry(l, min_retry_ticks);
  if (conn)
    ls_quic_conn_close(conn, 0);
  if (l->peer_id[0] && !find_by_id(p, l->peer_id, l))
    ls_peerdb_remove_peer(p->peerdb, l->peer_id);
  if (!was_ready)
    return;
  ls_rt_log("peer %.16s at %s disconnected: %s", l->peer_id, l->addr_text, reason);
  ls_rt_emit(p, LS_EVENT_PEER_DISCONNECTED,
             json_pack("{s:s, s:s, s:s}", "peer_id", l->peer_id, "addr", l->addr_text, "reason",
                       reason));
  emit_peer_count(p);
  ls_rt_emit_games(p, NULL);
}

/* One more failed connection: the link retries; learned and failing
 * LS_LINK_MAX_FAILURES times in a row, it is forgotten, or, while mDNS
 * announces it, retried slowly. */
static void failed(ls_link *l, const char *reason, unsigned min_retry_ticks)
{
  l->failures++;
  drop(l, reason, min_retry_ticks);
  if (l->state == LINK_DEAD || (l->origin & ORIGIN_STATIC) || l->failures < LS_LINK_MAX_FAILURES)
    return;
  const char *peer = l->peer_id[0] ? l->peer_id : "(unknown)";
  if (l->origin & ORIGIN_MDNS) {
    if (l->failures == LS_LINK_MAX_FAILURES)
      ls_rt_log("peer %.16s at %s: %u connections in a row failed (last: %s); trying every "
                "%d s while mDNS announces it", peer, l->addr_text, l->failures, reason,
                LS_LINK_SLOW_RETRY_TICKS);
    schedule_retry(l, LS_LINK_SLOW_RETRY_TICKS);
    return;
  }
  ls_rt_log("forgetting peer %.16s at %s: %u connections in a row failed (last: %s)", peer,
            l->addr_text, l->failures, reason);
  l->state = LINK_DEAD;
}

static void connect_link(ls_link *l)
{
  ls_peer *p = l->peer;
  ls_diag diag;
  ls_quic_conn *conn;
  int rc = ls_quic_connect(ls_node_endpoint(p->node), (struct sockaddr *)&l->addr,
                           l->peer_id[0] ? l->peer_id : NULL, &conn, &diag);
  if (rc != LS_OK) {
    ls_rt_log("cannot connect to %s: %s", l->addr_text, diag.text);
    failed(l, "cannot connect", 0);
    return;
  }
  l->conn = conn;
  l->state = LINK_CONNECTING;
}

/* ---- ListGames ---------------------------------------------------------- */

/* The games of list that are in the catalog (pointers into list), in
 * order; *foreign gets how many were not. NULL when out of memory. */
static ls_msg_game_info *catalog_games(const ls_peer *p, const ls_msg_game_list *list,
                                       size_t *count, size_t *foreign)
{
  ls_msg_game_info *games = malloc((list->count ? list->count : 1) * sizeof *games);
  *count = *foreign = 0;
  for (size_t i = 0; games && i < list->count; i++) {
    if (ls_catalog_find(p->catalog, list->games[i].id))
      games[(*count)++] = list->games[i];
    else
      (*foreign)++;
  }
  return games;
}

static void list_response(ls_request *req, const ls_msg *msg, void *user)
{
  ls_link *l = user;
  if (req != l->list || msg->type != LS_MSG_GAME_LIST)
    return;
  size_t count, foreign;
  ls_msg_game_info *games = catalog_games(l->peer, &msg->game_list, &count, &foreign);
  if (!games)
    return;
  if (foreign && !l->told_foreign) {
    l->told_foreign = true;
    ls_rt_log("peer %.16s at %s lists %zu games that are not in the catalog; they are ignored",
              l->peer_id, l->addr_text, foreign);
  }
  ls_msg_game_list known = {.games = games, .count = count};
  bool changed = ls_peerdb_set_games(l->peer->peerdb, l->peer_id, &known);
  free(games);
  announce(l);
  if (changed)
    ls_rt_emit_games(l->peer, NULL);
}

static void list_done(ls_request *req, int err, const char *diag, void *user)
{
  ls_link *l = user;
  l->inflight--;
  if (req != l->list)
    return;
  l->list = NULL;
  if (l->state != LINK_READY)
    return;
  if (err == LS_EPROTO) {
    if (!l->told_bad_list)
      ls_rt_log("peer %.16s at %s sent a game list this peer refuses (%s); disconnecting",
                l->peer_id, l->addr_text, diag);
    l->told_bad_list = true;
    drop(l, "invalid game list", REFUSED_BACKOFF_TICKS);
    return;
  }
  announce(l); /* even without its games: it answered Hello */
}

static void send_list(ls_link *l)
{
  static const ls_request_callbacks cb = {list_response, NULL, list_done};
  ls_msg msg = {.type = LS_MSG_LIST_GAMES};
  if (!l->list && l->conn && ls_request_start(l->conn, &msg, &cb, l, &l->list, NULL) == LS_OK)
    l->inflight++;
}

/* ---- Ping ------------------------------------------------------------------ */

static void ping_response(ls_request *req, const ls_msg *msg, void *user)
{
  ls_link *l = user;
  if (req == l->ping && msg->type == LS_MSG_PONG)
    l->missed = 0;
}

static void ping_done(ls_request *req, int err, const char *diag, void *user)
{
  ls_link *l = user;
  (void)err;
  (void)diag;
  l->inflight--;
  if (req == l->ping)
    l->ping = NULL;
}

static void ping(ls_link *l)
{
  static const ls_request_callbacks cb = {ping_response, NULL, ping_done};
  if (l->ping) {
    if (++l->missed >= LS_MISSED_PINGS_MAX)
      drop(l, "no answer to pings", 0);
    return;
  }
  ls_msg msg = {.type = LS_MSG_PING};
  if (ls_request_start(l->conn, &msg, &cb, l, &l->ping, NULL) == LS_OK)
    l->inflight++;
}

/* ---- Hello --------------------------------------------------------------- */

/* Another link already reaches this peer: keep one, the other dies. */
static bool merge_duplicate(ls_link *l)
{
  ls_link *other = find_by_id(l->peer, l->peer_id, l);
  if (!other)
    return true;
  other->origin |= l->origin;
  if (other->state == LINK_READY) {
    l->state = LINK_DEAD; /* the ready one stays; this connection goes */
    drop(l, "duplicate", 0);
    return false;
  }
  l->origin |= other->origin;
  other->state = LINK_DEAD;
  drop(other, "duplicate", 0);
  return true;
}

static void become_ready(ls_link *l, const ls_msg_hello *ack)
{
  ls_peer *p = l->peer;
  snprintf(l->peer_id, sizeof l->peer_id, "%s", ack->peer_id);
  snprintf(l->name, sizeof l->name, "%s", ack->name);
  if (strcmp(l->peer_id, ls_identity_peer_id(p->identity)) == 0) {
    ls_rt_log("%s is this peer itself; not connecting to it", l->addr_text);
    l->state = LINK_DEAD;
    drop(l, "self", 0);
    return;
  }
  if (!merge_duplicate(l))
    return;
  l->state = LINK_READY;
  l->failures = 0;
  l->missed = 0;
  ls_peerdb_put_peer(p->peerdb, l->peer_id, l->name, l->addr_text);
  ls_rt_log("peer %.16s (%s) connected at %s", l->peer_id, l->name, l->addr_text);
  send_list(l);
}

/* The peer is of another party: it refused our proof, or its HelloAck did
 * not prove ours. Shown as such (ls_links_other_party_json), said once, and
 * retried once a minute (a key file may change); a peer known only from its
 * own Hello is forgotten after LS_LINK_MAX_FAILURES of these, as any. */
static void other_party(ls_link *l, const char *peer_id, const char *name, const char *why)
{
  if (peer_id && !l->peer_id[0])
    snprintf(l->peer_id, sizeof l->peer_id, "%s", peer_id);
  if (name && !l->name[0])
    snprintf(l->name, sizeof l->name, "%s", name);
  if (!l->other_party)
    ls_rt_log("peer %.16s (%s) at %s is of another party: %s", l->peer_id[0] ? l->peer_id : "?",
              l->name, l->addr_text, why);
  l->other_party = true;
  failed(l, "other party", LS_LINK_SLOW_RETRY_TICKS);
}

static bool proves_our_party(const ls_link *l, const ls_msg_hello *ack)
{
  const ls_peer *p = l->peer;
  return !p->has_party_key || ls_party_proof_ok(&p->party_key, l->conn, LS_PARTY_ACK, ack->party);
}

static bool is_party_refusal(const ls_msg *msg)
{
  static const char prefix[] = "party:";
  return msg->invalid.reason && strncmp(msg->invalid.reason, prefix, sizeof prefix - 1) == 0;
}

static void hello_response(ls_request *req, const ls_msg *msg, void *user)
{
  ls_link *l = user;
  if (req != l->hello)
    return;
  l->hello = NULL;
  int ours = l->peer->protocol_version;
  if (msg->type == LS_MSG_INVALID_REQUEST && is_party_refusal(msg)) {
    other_party(l, NULL, NULL, l->peer->has_party_key ? "it has another party key"
                                                      : "it has a party key, this peer none");
  } else if (msg->type == LS_MSG_INVALID_REQUEST) {
    ls_rt_log("peer at %s refused us: %s", l->addr_text, msg->invalid.reason);
    failed(l, "refused", REFUSED_BACKOFF_TICKS);
  } else if (msg->type != LS_MSG_HELLO_ACK) {
    ls_rt_log("peer at %s answered Hello with %s", l->addr_text, ls_msg_type_name(msg->type));
    failed(l, "protocol error", REFUSED_BACKOFF_TICKS);
  } else if (msg->hello.protocol_version != (uint32_t)ours) {
    ls_rt_log("refused peer %.16s at %s: it speaks protocol version %u, this peer speaks %d",
              msg->hello.peer_id, l->addr_text, msg->hello.protocol_version, ours);
    failed(l, "protocol version", REFUSED_BACKOFF_TICKS);
  } else if (strcmp(msg->hello.peer_id, ls_quic_conn_peer_id(l->conn)) != 0) {
    ls_rt_log("refused peer at %s: its Hello names another peer id than its certificate",
              l->addr_text);
    failed(l, "peer id mismatch", REFUSED_BACKOFF_TICKS);
  } else if (!proves_our_party(l, &msg->hello)) {
    other_party(l, msg->hello.peer_id, msg->hello.name,
                msg->hello.party[0] ? "it proves another party key" : "it has no party key");
  } else {
    l->other_party = false;
    become_ready(l, &msg->hello);
  }
}

static void hello_done(ls_request *req, int err, const char *diag, void *user)
{
  ls_link *l = user;
  l->inflight--;
  if (req != l->hello)
    return;
  l->hello = NULL;
  if (err != LS_OK && l->state == LINK_HELLO) {
    if (l->failures == 0)
      ls_rt_log("Hello to %s failed: %s", l->addr_text, diag);
    failed(l, "hello failed", 0);
  }
}

static void send_hello(ls_link *l)
{
  static const ls_request_callbacks cb = {hello_response, NULL, hello_done};
  ls_peer *p = l->peer;
  ls_msg msg = {.type = LS_MSG_HELLO};
  msg.hello.protocol_version = (uint32_t)p->protocol_version;
  snprintf(msg.hello.peer_id, sizeof msg.hello.peer_id, "%s", ls_identity_peer_id(p->identity));
  msg.hello.name = p->name;
  l->state = LINK_HELLO;
  ls_diag diag = {{0}};
  int rc = p->has_party_key
             ? ls_party_proof(&p->party_key, l->conn, LS_PARTY_HELLO, msg.hello.party)
             : LS_OK;
  if (rc != LS_OK)
    ls_diag_set(&diag, rc, "no party proof: %s", ls_strerror(rc));
  if (rc != LS_OK || ls_request_start(l->conn, &msg, &cb, l, &l->hello, &diag) != LS_OK) {
    ls_rt_log("cannot send Hello to %s: %s", l->addr_text, diag.text);
    failed(l, "hello failed", 0);
    return;
  }
  l->inflight++;
}

/* ---- node events ---------------------------------------------------------- */

void ls_links_on_conn_ready(ls_node *node, ls_quic_conn *conn, void *user)
{
  (void)node;
  ls_link *l = find_by_conn(user, conn);
  if (l && l->state == LINK_CONNECTING)
    send_hello(l);
}

void ls_links_on_conn_closed(ls_node *node, ls_quic_conn *conn, int err, const char *diag,
                             void *user)
{
  (void)node;
  ls_link *l = find_by_conn(user, conn);
  if (!l)
    return; /* a connection a peer opened to us, or one we dropped already */
  l->conn = NULL;
  if (l->state == LINK_READY) {
    drop(l, diag && *diag ? diag : "connection closed", 0);
    return;
  }
  if (l->failures == 0 || err == LS_EACCES)
    ls_rt_log("cannot reach peer at %s: %s", l->addr_text, diag ? diag : ls_strerror(err));
  failed(l, "unreachable", 0);
}

void ls_links_on_peer_hello(ls_node *node, ls_quic_conn *conn, const char *peer_id,
                            const char *name, void *user)
{
  (void)node;
  ls_peer *p = user;
  if (p->closing || strcmp(peer_id, ls_identity_peer_id(p->identity)) == 0)
    return;
  ls_link *l = find_by_id(p, peer_id, NULL);
  if (l) {
    /* It is back, maybe restarted on another port: unless the link works,
     * (re)connect to where it speaks from now, at the next tick. */
    const struct sockaddr *from = ls_quic_conn_peer_addr(conn);
    if (l->state != LINK_READY && memcmp(&l->addr, from, addr_size(from)) != 0) {
      if (l->state != LINK_IDLE)
        drop(l, "moved", 0);
      set_addr(l, from);
    }
    if (l->state == LINK_IDLE)
      l->retry_at = p->ticks;
    return;
  }
  l = new_link(p, ls_quic_conn_peer_addr(conn), ORIGIN_INCOMING);
  if (!l)
    return;
  snprintf(l->peer_id, sizeof l->peer_id, "%s", peer_id);
  snprintf(l->name, sizeof l->name, "%s", name);
  connect_link(l);
}

/* A peer's Hello to us was refused for the party key: it is learned like a
 * peer that said Hello, and our own Hello to it shows it as of another
 * party. */
void ls_links_on_other_party(ls_node *node, ls_quic_conn *conn, const char *peer_id,
                             const char *name, void *user)
{
  ls_links_on_peer_hello(node, conn, peer_id, name, user);
}

json_t *ls_links_other_party_json(const ls_peer *p)
{
  json_t *peers = json_array();
  for (const ls_link *l = p->links; l; l = l->next)
    if (l->other_party && l->state != LINK_DEAD)
      json_array_append_new(peers, json_pack("{s:s, s:s, s:s, s:s}", "peer_id", l->peer_id,
                                             "addr", l->addr_text, "name", l->name, "party",
                                             "other"));
  return peers;
}

/* ---- discovery ------------------------------------------------------------ */

void ls_links_on_mdns_found(void *user, const ls_mdns_peer *found)
{
  ls_peer *p = user;
  if (p->closing || found->protocol_version != p->protocol_version) {
    if (!p->closing)
      ls_rt_log("ignoring peer %.16s found by mDNS: it speaks protocol version %d, this "
                "peer speaks %d", found->peer_id, found->protocol_version, p->protocol_version);
    return;
  }
  ls_link *l = find_by_id(p, found->peer_id, NULL);
  if (!l) {
    l = new_link(p, (const struct sockaddr *)&found->addr, ORIGIN_MDNS);
    if (!l)
      return;
    snprintf(l->peer_id, sizeof l->peer_id, "%s", found->peer_id);
    snprintf(l->name, sizeof l->name, "%s", found->name);
    connect_link(l);
    return;
  }
  l->origin |= ORIGIN_MDNS;
  if (l->state == LINK_READY)
    send_list(l); /* its revision changed: its library did */
  else if (l->state == LINK_IDLE) {
    memcpy(&l->addr, &found->addr, sizeof(struct sockaddr_in));
    ls_format_addr((struct sockaddr *)&l->addr, l->addr_text, sizeof l->addr_text);
    l->retry_at = p->ticks; /* announced again: try at once */
  }
}

void ls_links_on_mdns_lost(void *user, const char *peer_id)
{
  ls_peer *p = user;
  ls_link *l = find_by_id(p, peer_id, NULL);
  if (!l)
    return;
  l->origin &= ~(unsigned)ORIGIN_MDNS;
  if (l->state == LINK_READY)
    drop(l, "left the network (mDNS goodbye)", 0);
  if (l->origin == 0)
    l->state = LINK_DEAD; /* nothing tells us where it is any more */
}

/* ---- the tick, start and close ------------------------------------------- */

/* Frees the forgotten links nothing refers to any more. */
static void reap_dead(ls_peer *p)
{
  for (ls_link **at = &p->links; *at;) {
    ls_link *l = *at;
    if (l->state == LINK_DEAD && !l->conn && l->inflight == 0) {
      *at = l->next;
      free(l);
    } else {
      at = &l->next;
    }
  }
}

void ls_links_tick(ls_peer *p)
{
  reap_dead(p);
  for (ls_link *l = p->links; l; l = l->next) {
    if (l->state == LINK_IDLE && p->ticks >= l->retry_at)
      connect_link(l);
    else if (l->state == LINK_READY) {
      ping(l);
      if (l->state == LINK_READY && p->ticks % LS_REFRESH_TICKS == 0)
        send_list(l);
    }
  }
}

int ls_links_start(ls_peer *p, const char *const *static_peers, size_t count, ls_diag *diag)
{
  for (size_t i = 0; i < count; i++) {
    struct sockaddr_storage addr;
    int rc = ls_parse_host_port(static_peers[i], &addr, diag);
    if (rc != LS_OK)
      return rc;
    if (!new_link(p, (struct sockaddr *)&addr, ORIGIN_STATIC))
      return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  }
  for (ls_link *l = p->links; l; l = l->next)
    connect_link(l);
  return LS_OK;
}

void ls_links_close_all(ls_peer *p)
{
  for (ls_link *l = p->links; l; l = l->next) {
    ls_quic_conn *conn = l->conn;
    l->conn = NULL;
    l->hello = l->ping = l->list = NULL;
    l->state = LINK_DEAD;
    if (conn)
      ls_quic_conn_close(conn, 0);
  }
}

void ls_links_free(ls_peer *p)
{
  while (p->links) {
    ls_link *l = p->links;
    p->links = l->next;
    free(l);
  }
}
