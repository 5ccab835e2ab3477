/* Owns the web UI's state (see hub.h): the runtime's last library and peer
 * list, per game the last error and the action it belongs to, the last
 * verification's (or repair's) result, and the settings and runtime status; and the order in which changes become
 * records of the event log (records.c). Cards are cards.c's. One mutex
 * guards the state; records are appended while it is held, so a snapshot
 * and the sequence number it includes always agree. */
#include "hub.h"

#include "cards.h"

#include <lanspread/error.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lsd_hub {
  pthread_mutex_t mu;
  const ls_catalog *catalog;
  json_t *games;   /* the runtime's merged library (array) */
  json_t *errors;  /* id -> {"action", "message", "detail", "code"} */
  json_t *actions; /* id -> the action the running operation serves */
  json_t *verified; /* id -> the card's "verify" (lsd_verify_result) */
  json_t *peers;   /* array; entries carry "status" */
  json_t *status;  /* {"settings", "runtime", "setup_needed"} */
  lsd_log log;
};

static json_t *snapshot_for_stream(void *user, uint64_t *seq);

int lsd_hub_create(lsd_hub **out)
{
  lsd_hub *h = calloc(1, sizeof *h);
  if (!h)
    return LS_ENOMEM;
  pthread_mutex_init(&h->mu, NULL);
  lsd_log_init(&h->log, snapshot_for_stream, h);
  h->games = json_array();
  h->errors = json_object();
  h->actions = json_object();
  h->verified = json_object();
  h->peers = json_array();
  h->status = json_object();
  *out = h;
  return LS_OK;
}

void lsd_hub_close(lsd_hub *h)
{
  lsd_log_close(&h->log);
}

void lsd_hub_free(lsd_hub *h)
{
  if (!h)
    return;
  lsd_log_destroy(&h->log);
  json_decref(h->games);
  json_decref(h->errors);
  json_decref(h->actions);
  json_decref(h->verified);
  json_decref(h->peers);
  json_decref(h->status);
  pthread_mutex_destroy(&h->mu);
  free(h);
}

lsd_log *lsd_hub_log(lsd_hub *h)
{
  return &h->log;
}

/* ---- cards ------------------------------------------------------------------ */

static json_t *find_game(lsd_hub *h, const char *id)
{
  size_t i;
  json_t *g;
  json_array_foreach(h->games, i, g) {
    if (strcmp(json_string_value(json_object_get(g, "id")), id) == 0)
      return g;
  }
  return NULL;
}

static const char *game_dir_locked(lsd_hub *h)
{
  return json_string_value(json_object_get(json_object_get(h->status, "settings"), "game_dir"));
}

static const ls_catalog_game *catalog_game(lsd_hub *h, json_t *g)
{
  const char *id = json_string_value(json_object_get(g, "id"));
  return h->catalog && id ? ls_catalog_find(h->catalog, id) : NULL;
}

static json_t *card_locked(lsd_hub *h, json_t *g)
{
  const char *id = json_string_value(json_object_get(g, "id"));
  return lsd_card_new(g, catalog_game(h, g), json_object_get(h->errors, id),
                      json_object_get(h->verified, id), game_dir_locked(h));
}

static json_t *cards_locked(lsd_hub *h)
{
  json_t *cards = json_array();
  size_t i;
  json_t *g;
  json_array_foreach(h->games, i, g)
    json_array_append_new(cards, card_locked(h, g));
  return cards;
}

static void publish_card(lsd_hub *h, const char *id)
{
  json_t *g = find_game(h, id);
  if (g)
    lsd_log_append(&h->log, "game-state", card_locked(h, g));
}

/* ---- inputs -------------------------------------------------------------- */

void lsd_hub_set_catalog(lsd_hub *h, const ls_catalog *catalog)
{
  pthread_mutex_lock(&h->mu);
  h->catalog = catalog;
  pthread_mutex_unlock(&h->mu);
}

/* A stop the user asked for (a cancel, a pause) ends an operation, or a
 * command before it began, with this code: no failure to show. */
static bool user_stop(int code)
{
  return code == LS_ECANCELED || code == LS_EPAUSED;
}

static void set_error(lsd_hub *h, const char *id, const char *action, int code,
                      const char *detail)
{
  if (user_stop(code)) {
    json_object_del(h->errors, id);
    return;
  }
  json_object_set_new(h->errors, id,
                      json_pack("{s:s, s:s, s:s, s:s}", "action", action, "message",
                                lsd_player_message(action, code), "detail",
                                detail ? detail : "", "code", ls_error_name(code)));
}

static const char *action_of(lsd_hub *h, const char *id, const char *fallback)
{
  const char *a = json_string_value(json_object_get(h->actions, id));
  return a ? a : fallback;
}

/* How a game event changes a card: the action a failure belongs to when
 * no command named one, whether the event begins an operation, reports
 * its progress, or ends it (a pause or a cancel ends it too), and whether
 * that operation reads or changes the payload (which makes the last
 * verification's result stale when it begins). */
enum role { BEGINS, PROGRESSES, ENDS, FAILS, OTHER };

static enum role role_of(ls_event_kind kind, const char **action, bool *payload)
{
  static const struct {
    ls_event_kind kind;
    const char *action;
    enum role role;
    bool payload;
  } table[] = {
    {LS_EVENT_DOWNLOAD_BEGIN, "download", BEGINS, true},
    {LS_EVENT_DOWNLOAD_PROGRESS, "download", PROGRESSES, true},
    {LS_EVENT_DOWNLOAD_FINISHED, "download", ENDS, true},
    {LS_EVENT_DOWNLOAD_CANCELLED, "download", ENDS, true},
    {LS_EVENT_DOWNLOAD_PAUSED, "download", ENDS, true},
    {LS_EVENT_DOWNLOAD_FAILED, "download", FAILS, true},
    {LS_EVENT_VERIFY_BEGIN, "verify", BEGINS, true},
    {LS_EVENT_VERIFY_PROGRESS, "verify", PROGRESSES, true},
    {LS_EVENT_VERIFY_FINISHED, "verify", ENDS, true},
    {LS_EVENT_VERIFY_FAILED, "verify", FAILS, true},
    {LS_EVENT_INSTALL_BEGIN, "install", BEGINS, false},
    {LS_EVENT_INSTALL_PROGRESS, "install", PROGRESSES, false},
    {LS_EVENT_INSTALL_FINISHED, "install", ENDS, false},
    {LS_EVENT_INSTALL_FAILED, "install", FAILS, false},
    {LS_EVENT_UNINSTALL_BEGIN, "uninstall", BEGINS, false},
    {LS_EVENT_UNINSTALL_FINISHED, "uninstall", ENDS, false},
    {LS_EVENT_UNINSTALL_FAILED, "uninstall", FAILS, false},
    {LS_EVENT_REMOVE_BEGIN, "remove", BEGINS, true},
    {LS_EVENT_REMOVE_FINISHED, "remove", ENDS, true},
    {LS_EVENT_REMOVE_FAILED, "remove", FAILS, true},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
    if (table[i].kind == kind) {
      *action = table[i].action;
      *payload = table[i].payload;
      return table[i].role;
    }
  return OTHER;
}

/* The end of a verification, or of a repair (a download with "repair"):
 * its result is what the card shows until the payload changes again. */
static bool ends_check(const ls_event *ev, json_t *obj)
{
  return ev->kind == LS_EVENT_VERIFY_FINISHED ||
         (ev->kind == LS_EVENT_DOWNLOAD_FINISHED && json_is_true(json_object_get(obj, "repair")));
}

static void copy_ints(json_t *to, json_t *from, const char *const *fields, size_t n)
{
  for (size_t i = 0; json_is_object(to) && i < n; i++) {
    json_t *v = json_object_get(from, fields[i]);
    if (json_is_integer(v))
      json_object_set(to, fields[i], v);
  }
}

/* Progress events carry the operation's numbers (and a running
 * download's): the card shows them until the runtime's next library. */
static void take_progress(json_t *g, json_t *ev)
{
  static const char *const fields[] = {"bytes", "total_bytes", "bytes_per_sec"};
  copy_ints(json_object_get(g, "operation"), ev, fields, 3);
  json_t *dl = json_object_get(g, "download");
  const char *dl_state = json_string_value(json_object_get(dl, "state"));
  if (dl_state && strcmp(dl_state, "running") == 0)
    copy_ints(dl, ev, fields, 2);
}

static void apply_game_event(lsd_hub *h, const ls_event *ev, json_t *obj)
{
  const char *action = NULL;
  bool payload = false;
  enum role role = role_of(ev->kind, &action, &payload);
  if (role == OTHER)
    return; /* game-files: nothing the page shows */
  if (role == BEGINS && payload)
    json_object_del(h->verified, ev->id);
  if (ends_check(ev, obj))
    json_object_set_new(h->verified, ev->id, lsd_verify_result(obj));
  if (role == PROGRESSES) {
    json_t *g = find_game(h, ev->id);
    if (g)
      take_progress(g, obj);
  } else if (role == FAILS) {
    set_error(h, ev->id, action_of(h, ev->id, action), ev->code,
              json_string_value(json_object_get(obj, "error")));
    json_object_del(h->actions, ev->id);
  } else {
    json_object_del(h->errors, ev->id);
    if (role == ENDS)
      json_object_del(h->actions, ev->id);
  }
  publish_card(h, ev->id);
}

/* Replaces the library; the page hears of it only when it changed (the
 * same list comes back from every GET /api/games). */
static void replace_games(lsd_hub *h, json_t *games)
{
  bool same = json_equal(h->games, games);
  json_decref(h->games);
  h->games = games;
  if (!same)
    lsd_log_append(&h->log, "games", json_pack("{s:o}", "games", cards_locked(h)));
}

void lsd_hub_on_event(lsd_hub *h, const ls_event *ev)
{
  json_t *obj = json_loads(ev->json, 0, NULL);
  if (!obj)
    return;
  pthread_mutex_lock(&h->mu);
  lsd_log_append(&h->log, ev->type, json_incref(obj));
  if (ev->kind == LS_EVENT_GAMES_LIST_UPDATED) {
    json_t *games = json_object_get(obj, "games");
    if (json_is_array(games))
      replace_games(h, json_incref(games));
  } else if (ev->id) {
    apply_game_event(h, ev, obj);
  }
  /* Under the lock: h->games may hold values of obj, and jansson's atomic
   * counts do not order another thread's last use before this free. */
  json_decref(obj);
  pthread_mutex_unlock(&h->mu);
}

void lsd_hub_set_games(lsd_hub *h, json_t *games)
{
  pthread_mutex_lock(&h->mu);
  replace_games(h, games);
  pthread_mutex_unlock(&h->mu);
}

static json_t *peer_by_id(json_t *peers, const char *peer_id)
{
  size_t i;
  json_t *p;
  json_array_foreach(peers, i, p) {
    if (strcmp(json_string_value(json_object_get(p, "peer_id")), peer_id) == 0)
      return p;
  }
  return NULL;
}

void lsd_hub_set_peers(lsd_hub *h, json_t *peers)
{
  pthread_mutex_lock(&h->mu);
  size_t i;
  json_t *p;
  json_array_foreach(peers, i, p) { /* "party": "other": refused, not connected */
    const char *party = json_string_value(json_object_get(p, "party"));
    bool other = party && strcmp(party, "other") == 0;
    json_object_set_new(p, "status", json_string(other ? "other party" : "connected"));
  }
  json_array_foreach(h->peers, i, p) { /* seen earlier in this run, gone now */
    const char *peer_id = json_string_value(json_object_get(p, "peer_id"));
    if (!peer_by_id(peers, peer_id)) {
      json_t *gone = json_deep_copy(p);
      json_object_set_new(gone, "status", json_string("disconnected"));
      json_array_append_new(peers, gone);
    }
  }
  bool same = json_equal(h->peers, peers); /* a refresh after every event */
  json_decref(h->peers);
  h->peers = peers;
  if (!same)
    lsd_log_append(&h->log, "peers", json_pack("{s:O}", "peers", peers));
  pthread_mutex_unlock(&h->mu);
}

void lsd_hub_set_status(lsd_hub *h, json_t *status)
{
  pthread_mutex_lock(&h->mu);
  json_decref(h->status);
  h->status = status;
  lsd_log_append(&h->log, "settings", json_incref(status));
  pthread_mutex_unlock(&h->mu);
}

void lsd_hub_note_action(lsd_hub *h, const char *id, const char *action)
{
  pthread_mutex_lock(&h->mu);
  json_object_set_new(h->actions, id, json_string(action));
  json_object_del(h->errors, id);
  publish_card(h, id);
  pthread_mutex_unlock(&h->mu);
}

void lsd_hub_note_failure(lsd_hub *h, const char *id, const char *action, int code,
                          const char *detail)
{
  pthread_mutex_lock(&h->mu);
  set_error(h, id, action, code, detail);
  publish_card(h, id);
  pthread_mutex_unlock(&h->mu);
}

/* ---- views --------------------------------------------------------------- */

bool lsd_hub_any_busy(lsd_hub *h)
{
  pthread_mutex_lock(&h->mu);
  bool busy = false;
  size_t i;
  json_t *g;
  json_array_foreach(h->games, i, g)
    busy = busy || json_is_object(json_object_get(g, "operation"));
  pthread_mutex_unlock(&h->mu);
  return busy;
}

static json_t *snapshot_locked(lsd_hub *h)
{
  json_t *snap = json_deep_copy(h->status);
  json_object_set_new(snap, "seq", json_integer((json_int_t)lsd_log_last(&h->log)));
  json_object_set_new(snap, "games", cards_locked(h));
  /* A copy: the snapshot is sent and freed outside the lock (see cards.h). */
  json_object_set_new(snap, "peers", json_deep_copy(h->peers));
  return snap;
}

static json_t *snapshot_for_stream(void *user, uint64_t *seq)
{
  lsd_hub *h = user;
  pthread_mutex_lock(&h->mu);
  json_t *snap = snapshot_locked(h);
  *seq = (uint64_t)json_integer_value(json_object_get(snap, "seq"));
  pthread_mutex_unlock(&h->mu);
  return snap;
}

json_t *lsd_hub_snapshot(lsd_hub *h)
{
  pthread_mutex_lock(&h->mu);
  json_t *snap = snapshot_locked(h);
  pthread_mutex_unlock(&h->mu);
  return snap;
}

json_t *lsd_hub_card(lsd_hub *h, const char *id)
{
  pthread_mutex_lock(&h->mu);
  json_t *g = find_game(h, id);
  json_t *card = g ? card_locked(h, g) : NULL;
  pthread_mutex_unlock(&h->mu);
  return card;
}

json_t *lsd_hub_cards(lsd_hub *h)
{
  pthread_mutex_lock(&h->mu);
  json_t *cards = cards_locked(h);
  pthread_mutex_unlock(&h->mu);
  return cards;
}

json_t *lsd_hub_peers(lsd_hub *h)
{
  pthread_mutex_lock(&h->mu);
  json_t *peers = json_deep_copy(h->peers);
  pthread_mutex_unlock(&h->mu);
  return peers;
}

char *lsd_hub_launch_path(lsd_hub *h, const char *id, char *why, size_t why_size)
{
  pthread_mutex_lock(&h->mu);
  json_t *g = find_game(h, id);
  char *path = NULL;
  if (g)
    path = lsd_launch_path(game_dir_locked(h), catalog_game(h, g), g, why, why_size);
  else
    snprintf(why, why_size, "%s is not in the library", id);
  pthread_mutex_unlock(&h->mu);
  return path;
}
