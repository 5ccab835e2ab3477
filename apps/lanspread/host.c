/* Owns the embedded ls_peer (see host.h): its start and stop under one
 * lifecycle lock, the catalog the page's cards read, and the table of
 * commands whose replies HTTP threads wait for. The runtime's event
 * callback runs on the runtime thread: it answers waiting calls, hands
 * events to the hub and asks for fresh peer lists when peers change. */
#include "host.h"
#include "wait.h"

#include "core/error.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CALL_TIMEOUT_S 10
#define TAG_REFRESH_PEERS (1ull << 63) /* replies that feed the hub, not a caller */
#define TAG_REFRESH_GAMES (1ull << 62)
#define TAG_MASK (TAG_REFRESH_GAMES - 1)

typedef struct call {
  struct call *next;
  uint64_t tag;
  json_t *reply;
  bool done;
} call;

struct lsd_host {
  lsd_host_config config;
  char *party_key_file; /* config.party_key_file, or what the settings set */
  lsd_hub *hub;
  ls_catalog *catalog;

  pthread_mutex_t life; /* start and stop; held while sending */
  _Atomic(ls_peer *) peer; /* atomic: the event callback reads it unlocked */
  char *error;          /* why the last start failed */

  pthread_mutex_t mu;   /* the call table and tag counter */
  pthread_cond_t cond;
  call *calls;
  uint64_t next_tag;
};

static void on_event(void *user, const ls_event *ev);

int lsd_host_create(const lsd_host_config *config, lsd_hub *hub, lsd_host **out)
{
  lsd_host *h = calloc(1, sizeof *h);
  if (!h)
    return LS_ENOMEM;
  h->config = *config;
  h->hub = hub;
  if (config->party_key_file && !(h->party_key_file = strdup(config->party_key_file))) {
    free(h);
    return LS_ENOMEM;
  }
  pthread_mutex_init(&h->life, NULL);
  pthread_mutex_init(&h->mu, NULL);
  lsd_cond_init_monotonic(&h->cond);
  *out = h;
  return LS_OK;
}

/* Ends every waiting call: the runtime that would answer is gone. */
static void cancel_calls(lsd_host *h)
{
  pthread_mutex_lock(&h->mu);
  for (call *c = h->calls; c; c = c->next)
    c->done = true;
  pthread_cond_broadcast(&h->cond);
  pthread_mutex_unlock(&h->mu);
}

static void stop_locked(lsd_host *h)
{
  if (!h->peer)
    return;
  ls_peer_stop(h->peer);
  h->peer = NULL;
  cancel_calls(h);
  lsd_hub_set_games(h->hub, json_array());
  lsd_hub_set_peers(h->hub, json_array());
}

void lsd_host_stop(lsd_host *h)
{
  pthread_mutex_lock(&h->life);
  stop_locked(h);
  pthread_mutex_unlock(&h->life);
}

void lsd_host_free(lsd_host *h)
{
  if (!h)
    return;
  lsd_host_stop(h);
  lsd_hub_set_catalog(h->hub, NULL);
  ls_catalog_free(h->catalog);
  free(h->error);
  free(h->party_key_file);
  pthread_cond_destroy(&h->cond);
  pthread_mutex_destroy(&h->mu);
  pthread_mutex_destroy(&h->life);
  free(h);
}

static int load_catalog_locked(lsd_host *h, ls_diag *diag)
{
  if (h->catalog)
    return LS_OK;
  int rc = h->config.catalog_path ? ls_catalog_load_file(h->config.catalog_path, &h->catalog, diag)
                                  : ls_catalog_load_builtin(&h->catalog, diag);
  if (rc == LS_OK)
    lsd_hub_set_catalog(h->hub, h->catalog);
  return rc;
}

int lsd_host_load_catalog(lsd_host *h, ls_diag *diag)
{
  pthread_mutex_lock(&h->life);
  int rc = load_catalog_locked(h, diag);
  pthread_mutex_unlock(&h->life);
  return rc;
}

const ls_catalog *lsd_host_catalog(lsd_host *h)
{
  pthread_mutex_lock(&h->life);
  const ls_catalog *c = h->catalog;
  pthread_mutex_unlock(&h->life);
  return c;
}

static uint64_t new_tag(lsd_host *h)
{
  pthread_mutex_lock(&h->mu);
  uint64_t tag = ++h->next_tag & TAG_MASK;
  pthread_mutex_unlock(&h->mu);
  return tag;
}

/* Asks for the library or the peers; the reply goes to the hub. */
static void refresh(lsd_host *h, ls_peer *peer, ls_command_type type)
{
  uint64_t kind = type == LS_CMD_LIST_PEERS ? TAG_REFRESH_PEERS : TAG_REFRESH_GAMES;
  ls_command cmd = {.type = type, .tag = new_tag(h) | kind};
  ls_peer_send(peer, &cmd);
}

int lsd_host_start(lsd_host *h, const lsd_settings *s, ls_diag *diag)
{
  pthread_mutex_lock(&h->life);
  stop_locked(h);
  int rc = load_catalog_locked(h, diag);
  if (rc == LS_OK) {
    ls_peer_config pc = {
      .game_dir = s->game_dir, .state_dir = h->config.state_dir,
      .catalog_path = h->config.catalog_path, .listen = h->config.listen,
      .static_peers = (const char *const *)s->static_peers,
      .static_peer_count = s->static_peer_count, .mdns = h->config.mdns, .name = s->name,
      .unpacker = h->config.unpacker, .party_key_file = h->party_key_file,
      .on_event = on_event, .user = h,
    };
    ls_peer *peer = NULL;
    rc = ls_peer_start(&pc, &peer, diag);
    h->peer = peer;
  }
  free(h->error);
  h->error = rc == LS_OK ? NULL : strdup(diag->text);
  if (rc == LS_OK) {
    refresh(h, h->peer, LS_CMD_LIST_GAMES);
    refresh(h, h->peer, LS_CMD_LIST_PEERS);
  }
  pthread_mutex_unlock(&h->life);
  return rc;
}

void lsd_host_set_party_key_file(lsd_host *h, const char *file)
{
  pthread_mutex_lock(&h->life);
  free(h->party_key_file);
  h->party_key_file = file ? strdup(file) : NULL;
  pthread_mutex_unlock(&h->life);
}

bool lsd_host_running(lsd_host *h)
{
  pthread_mutex_lock(&h->life);
  bool running = h->peer != NULL;
  pthread_mutex_unlock(&h->life);
  return running;
}

json_t *lsd_host_runtime_json(lsd_host *h)
{
  pthread_mutex_lock(&h->life);
  ls_peer *peer = h->peer;
  json_t *j = json_pack("{s:b, s:s?, s:s?, s:s?, s:s?}", "running", peer != NULL, "peer_id",
                        peer ? ls_peer_id(peer) : NULL, "listen",
                        peer ? ls_peer_listen_address(peer) : NULL, "party_key",
                        peer ? ls_peer_party_fingerprint(peer) : NULL, "error", h->error);
  pthread_mutex_unlock(&h->life);
  return j;
}

/* ---- calls --------------------------------------------------------------- */

/* Hands reply (our reference) to the call waiting for tag; false when none
 * is (it timed out), and the reference is still ours. The reply is never
 * shared: this thread does not touch it once delivered (jansson's
 * json_decref reads the count before its atomic decrement). */
static bool deliver_reply(lsd_host *h, uint64_t tag, json_t *reply)
{
  bool delivered = false;
  pthread_mutex_lock(&h->mu);
  for (call *c = h->calls; c; c = c->next) {
    if (c->tag == tag && !c->done) {
      c->reply = reply;
      c->done = true;
      delivered = true;
      pthread_cond_broadcast(&h->cond);
      break;
    }
  }
  pthread_mutex_unlock(&h->mu);
  return delivered;
}

static void on_reply(lsd_host *h, const ls_event *ev)
{
  json_t *reply = json_loads(ev->json, 0, NULL);
  if (!reply)
    return;
  if (ev->tag & TAG_REFRESH_PEERS) {
    json_t *peers = json_object_get(reply, "peers");
    if (json_is_array(peers))
      lsd_hub_set_peers(h->hub, json_deep_copy(peers));
  } else if (ev->tag & TAG_REFRESH_GAMES) {
    json_t *games = json_object_get(reply, "games");
    if (json_is_array(games))
      lsd_hub_set_games(h->hub, json_deep_copy(games));
  } else if (deliver_reply(h, ev->tag, reply)) {
    return;
  }
  json_decref(reply);
}

/* On the runtime thread. */
static void on_event(void *user, const ls_event *ev)
{
  lsd_host *h = user;
  if (ev->kind == LS_EVENT_REPLY) {
    on_reply(h, ev);
    return;
  }
  lsd_hub_on_event(h->hub, ev);
  /* Peer lists carry game counts: ask again when peers or games change. */
  ls_peer *peer = h->peer;
  bool peers_changed = ev->kind == LS_EVENT_PEER_CONNECTED ||
                       ev->kind == LS_EVENT_PEER_DISCONNECTED || ev->kind == LS_EVENT_PEER_COUNT ||
                       ev->kind == LS_EVENT_GAMES_LIST_UPDATED;
  if (peer && peers_changed)
    refresh(h, peer, LS_CMD_LIST_PEERS);
}

static void unlink_call(lsd_host *h, call *c)
{
  for (call **pp = &h->calls; *pp; pp = &(*pp)->next)
    if (*pp == c) {
      *pp = c->next;
      break;
    }
}

int lsd_host_call(lsd_host *h, ls_command *cmd, json_t **reply, ls_diag *diag)
{
  *reply = NULL;
  call c = {.tag = new_tag(h)};
  cmd->tag = c.tag;
  pthread_mutex_lock(&h->mu);
  c.next = h->calls;
  h->calls = &c;
  pthread_mutex_unlock(&h->mu);

  pthread_mutex_lock(&h->life);
  int rc = h->peer ? ls_peer_send(h->peer, cmd) : LS_ESTATE;
  pthread_mutex_unlock(&h->life);

  pthread_mutex_lock(&h->mu);
  if (rc == LS_OK) {
    struct timespec deadline = lsd_deadline_in(CALL_TIMEOUT_S * 1000);
    while (!c.done)
      if (pthread_cond_timedwait(&h->cond, &h->mu, &deadline) != 0)
        break;
    rc = c.reply ? LS_OK : c.done ? LS_ECANCELED : LS_ETIMEDOUT;
  }
  unlink_call(h, &c);
  pthread_mutex_unlock(&h->mu);
  *reply = c.reply;
  if (rc == LS_ESTATE)
    return ls_diag_set(diag, rc, "choose a game directory first");
  if (rc == LS_ETIMEDOUT)
    return ls_diag_set(diag, rc, "the runtime did not answer within %d s", CALL_TIMEOUT_S);
  if (rc == LS_ECANCELED)
    return ls_diag_set(diag, rc, "the runtime stopped before it answered");
  return LS_OK;
}
