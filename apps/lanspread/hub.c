/* Owns the web UI's state (see hub.h): the runtime's last library and peer
 * list, per game the running operation, its progress, the action it serves
 * and the last error; the settings and runtime status; and the numbered log
 * of Server-Sent Event records that stream readers follow. One mutex guards
 * it all; readers wait on a condition variable for the next record. */
#include "hub.h"
#include "wait.h"

#include <lanspread/version.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_SIZE 1024 /* records a slow reader may fall behind before a new snapshot */

typedef struct record {
  uint64_t seq;
  char *text; /* "event: NAME\nid: SEQ\ndata: JSON\n\n" */
} record;

struct lsd_hub {
  pthread_mutex_t mu;
  pthread_cond_t cond;
  bool closed;
  const ls_catalog *catalog;
  json_t *games;   /* the runtime's merged library (array) */
  json_t *ops;     /* id -> {"kind", "bytes", "total_bytes", "bytes_per_sec"} */
  json_t *errors;  /* id -> {"action", "message", "detail"} */
  json_t *actions; /* id -> the action the running operation serves */
  json_t *peers;   /* array; entries carry "status" */
  json_t *status;  /* {"settings", "runtime", "setup_needed"} */
  uint64_t seq;
  record log[LOG_SIZE];
};

struct lsd_stream {
  lsd_hub *hub;
  uint64_t next; /* the next record to send; 0: a snapshot first */
  char *pending;
  size_t pending_len, pending_off;
};

int lsd_hub_create(lsd_hub **out)
{
  lsd_hub *h = calloc(1, sizeof *h);
  if (!h)
    return LS_ENOMEM;
  pthread_mutex_init(&h->mu, NULL);
  lsd_cond_init_monotonic(&h->cond);
  h->games = json_array();
  h->ops = json_object();
  h->errors = json_object();
  h->actions = json_object();
  h->peers = json_array();
  h->status = json_object();
  *out = h;
  return LS_OK;
}

void lsd_hub_close(lsd_hub *h)
{
  pthread_mutex_lock(&h->mu);
  h->closed = true;
  pthread_cond_broadcast(&h->cond);
  pthread_mutex_unlock(&h->mu);
}

void lsd_hub_free(lsd_hub *h)
{
  if (!h)
    return;
  for (size_t i = 0; i < LOG_SIZE; i++)
    free(h->log[i].text);
  json_decref(h->games);
  json_decref(h->ops);
  json_decref(h->errors);
  json_decref(h->actions);
  json_decref(h->peers);
  json_decref(h->status);
  pthread_cond_destroy(&h->cond);
  pthread_mutex_destroy(&h->mu);
  free(h);
}

/* ---- the log ------------------------------------------------------------- */

static char *format_record(const char *name, uint64_t seq, json_t *data)
{
  char *json = json_dumps(data, JSON_COMPACT);
  char *text = NULL;
  if (json && asprintf(&text, "event: %s\nid: %llu\ndata: %s\n\n", name,
                       (unsigned long long)seq, json) < 0)
    text = NULL;
  free(json);
  return text;
}

/* Appends a record (steals data). Caller holds the mutex. */
static void publish(lsd_hub *h, const char *name, json_t *data)
{
  if (!data)
    return;
  uint64_t seq = h->seq + 1;
  char *text = format_record(name, seq, data);
  json_decref(data);
  if (!text)
    return;
  record *r = &h->log[seq % LOG_SIZE];
  free(r->text);
  r->seq = seq;
  r->text = text;
  h->seq = seq;
  pthread_cond_broadcast(&h->cond);
}

/* ---- cards --------------------------------------------------------------- */

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

static char *launch_path_locked(lsd_hub *h, const char *id, char *why, size_t why_size)
{
  const ls_catalog_game *cg = h->catalog ? ls_catalog_find(h->catalog, id) : NULL;
  json_t *g = find_game(h, id);
  if (!cg || !g) {
    snprintf(why, why_size, "%s is not in the library", id);
    return NULL;
  }
  if (!cg->launch) {
    snprintf(why, why_size, "the catalog names no program to start for %s", cg->name);
    return NULL;
  }
  const char *game_dir =
    json_string_value(json_object_get(json_object_get(h->status, "settings"), "game_dir"));
  if (!json_is_true(json_object_get(g, "installed")) || !game_dir) {
    snprintf(why, why_size, "%s is not installed", cg->name);
    return NULL;
  }
  char local[PATH_MAX], wanted[PATH_MAX];
  int n_local = snprintf(local, sizeof local, "%s/%s/local", game_dir, id);
  int n_wanted = snprintf(wanted, sizeof wanted, "%.*s/%s", n_local, local, cg->launch);
  if (n_local >= (int)sizeof local || n_wanted >= (int)sizeof wanted) {
    snprintf(why, why_size, "the path of %s is too long", cg->launch);
    return NULL;
  }
  char *real_local = realpath(local, NULL), *real = realpath(wanted, NULL);
  size_t n = real_local ? strlen(real_local) : 0;
  struct stat st;
  char *path = NULL;
  if (!real_local || !real)
    snprintf(why, why_size, "%s is missing from the installed files", cg->launch);
  else if (strncmp(real, real_local, n) != 0 || real[n] != '/')
    snprintf(why, why_size, "%s points outside the game's local/ folder", cg->launch);
  else if (stat(real, &st) != 0 || !S_ISREG(st.st_mode) || access(real, X_OK) != 0)
    snprintf(why, why_size, "%s is not an executable file", cg->launch);
  else
    path = real, real = NULL;
  free(real_local);
  free(real);
  return path;
}

/* Words a player understands for a failure, from the runtime's detail. */
static const char *player_message(const char *action, const char *detail)
{
  static const struct {
    const char *needle, *message;
  } hints[] = {
    {"SHA-256", "A peer sent damaged data. Try again; another peer may have a good copy."},
    {"corrupt", "A peer sent damaged data. Try again; another peer may have a good copy."},
    {"space", "There is not enough free disk space for this game."},
    {"no connected peer", "No peer that has this game is online right now."},
    {"no peer", "No peer that has this game is reachable right now."},
    {"unreachable", "The peers sharing this game stopped answering."},
    {"disconnect", "The peers sharing this game went away."},
    {"busy", "Another operation on this game is still running."},
    {"running", "Another operation is still running; wait for it to finish."},
    {"unpack", "The game's archives could not be unpacked on this machine."},
    {"archive", "The game's archives could not be unpacked on this machine."},
    {"installed", "The game is installed; uninstall it first."},
    {"not downloaded", "The game's files are not on this machine."},
  };
  for (size_t i = 0; detail && i < sizeof hints / sizeof hints[0]; i++)
    if (strstr(detail, hints[i].needle))
      return hints[i].message;
  if (strcmp(action, "download") == 0 || strcmp(action, "update") == 0)
    return "The download failed.";
  if (strcmp(action, "install") == 0)
    return "The installation failed.";
  if (strcmp(action, "uninstall") == 0)
    return "Uninstalling failed.";
  if (strcmp(action, "remove") == 0)
    return "Removing the files failed.";
  if (strcmp(action, "play") == 0)
    return "The game could not be started.";
  return "That did not work.";
}

static const char *op_state(const char *kind)
{
  if (strcmp(kind, "download") == 0)
    return "downloading";
  if (strcmp(kind, "install") == 0)
    return "installing";
  if (strcmp(kind, "uninstall") == 0)
    return "uninstalling";
  return "removing";
}

static json_t *progress_json(json_t *op)
{
  json_int_t bytes = json_integer_value(json_object_get(op, "bytes"));
  json_int_t total = json_integer_value(json_object_get(op, "total_bytes"));
  json_int_t bps = json_integer_value(json_object_get(op, "bytes_per_sec"));
  json_int_t eta = bps > 0 && total > bytes ? (total - bytes + bps - 1) / bps : 0;
  return json_pack("{s:I, s:I, s:I, s:I}", "bytes", bytes, "total_bytes", total,
                   "bytes_per_sec", bps, "eta_s", eta);
}

static json_t *card_locked(lsd_hub *h, json_t *g)
{
  const char *id = json_string_value(json_object_get(g, "id"));
  const ls_catalog_game *cg = h->catalog ? ls_catalog_find(h->catalog, id) : NULL;
  bool downloaded = json_is_true(json_object_get(g, "downloaded"));
  bool installed = json_is_true(json_object_get(g, "installed"));
  const char *local = json_string_value(json_object_get(g, "local_version"));
  const char *latest = json_string_value(json_object_get(g, "latest_version"));
  json_int_t peers = json_integer_value(json_object_get(g, "peers"));
  bool newer = (downloaded || installed) && peers > 0 && latest &&
               ls_version_cmp(latest, local) > 0;
  char why[256];
  char *launch = installed ? launch_path_locked(h, id, why, sizeof why) : NULL;
  bool playable = launch != NULL;
  free(launch);

  json_t *op = json_object_get(h->ops, id);
  const char *kind = op ? json_string_value(json_object_get(op, "kind")) : NULL;
  const char *state;
  json_t *actions = json_array();
  if (kind) {
    state = op_state(kind);
    if (strcmp(kind, "download") == 0)
      json_array_append_new(actions, json_string("cancel"));
  } else if (installed) {
    state = newer ? "update_available" : "installed";
    if (newer)
      json_array_append_new(actions, json_string("update"));
    if (playable)
      json_array_append_new(actions, json_string("play"));
    json_array_append_new(actions, json_string("uninstall"));
  } else if (downloaded) {
    state = "downloaded";
    json_array_append_new(actions, json_string("install"));
    if (newer)
      json_array_append_new(actions, json_string("update"));
    json_array_append_new(actions, json_string("remove"));
  } else if (peers > 0) {
    state = "available";
    json_array_append_new(actions, json_string("download"));
  } else {
    state = "unavailable";
  }
  bool with_progress = kind && (strcmp(kind, "download") == 0 || strcmp(kind, "install") == 0);
  json_t *card = json_deep_copy(g);
  json_object_set_new(card, "genre", cg && cg->genre ? json_string(cg->genre) : json_null());
  json_object_set_new(card, "description",
                      cg && cg->description ? json_string(cg->description) : json_null());
  json_object_set_new(card, "max_players", json_integer(cg ? cg->max_players : 0));
  json_object_set_new(card, "state", json_string(state));
  json_object_set_new(card, "progress", with_progress ? progress_json(op) : json_null());
  json_t *err = json_object_get(h->errors, id);
  json_object_set(card, "error", err ? err : json_null());
  json_object_set_new(card, "actions", actions);
  return card;
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
    publish(h, "game-state", card_locked(h, g));
}

static void publish_games(lsd_hub *h)
{
  publish(h, "games", json_pack("{s:o}", "games", cards_locked(h)));
}

/* ---- inputs -------------------------------------------------------------- */

void lsd_hub_set_catalog(lsd_hub *h, const ls_catalog *catalog)
{
  pthread_mutex_lock(&h->mu);
  h->catalog = catalog;
  pthread_mutex_unlock(&h->mu);
}

static void set_op(lsd_hub *h, const char *id, const char *kind, json_t *ev)
{
  if (!kind) {
    json_object_del(h->ops, id);
    return;
  }
  json_t *op = json_object_get(h->ops, id);
  if (!op || strcmp(json_string_value(json_object_get(op, "kind")), kind) != 0) {
    op = json_pack("{s:s, s:I, s:I, s:I}", "kind", kind, "bytes", (json_int_t)0,
                   "total_bytes", (json_int_t)0, "bytes_per_sec", (json_int_t)0);
    json_object_set_new(h->ops, id, op);
  }
  const char *fields[] = {"bytes", "total_bytes", "bytes_per_sec"};
  for (size_t i = 0; ev && i < 3; i++) {
    json_t *v = json_object_get(ev, fields[i]);
    if (json_is_integer(v))
      json_object_set(op, fields[i], v);
  }
}

static void set_error(lsd_hub *h, const char *id, const char *action, const char *detail)
{
  json_object_set_new(h->errors, id,
                      json_pack("{s:s, s:s, s:s}", "action", action, "message",
                                player_message(action, detail), "detail",
                                detail ? detail : ""));
}

static const char *action_of(lsd_hub *h, const char *id, const char *fallback)
{
  const char *a = json_string_value(json_object_get(h->actions, id));
  return a ? a : fallback;
}

/* The operation an event of a game starts, continues or ends. */
static void apply_game_event(lsd_hub *h, const char *type, const char *id, json_t *ev)
{
  const char *detail = json_string_value(json_object_get(ev, "error"));
  if (strcmp(type, "game-download-begin") == 0) {
    json_object_del(h->errors, id);
    set_op(h, id, "download", ev);
  } else if (strcmp(type, "game-download-progress") == 0) {
    set_op(h, id, "download", ev);
  } else if (strcmp(type, "game-download-finished") == 0) {
    set_op(h, id, "install", NULL); /* the automatic install follows */
  } else if (strcmp(type, "game-download-failed") == 0) {
    set_op(h, id, NULL, NULL);
    set_error(h, id, action_of(h, id, "download"), detail);
  } else if (strcmp(type, "game-download-cancelled") == 0) {
    set_op(h, id, NULL, NULL);
    json_object_del(h->errors, id);
  } else if (strcmp(type, "game-install-begin") == 0 ||
             strcmp(type, "game-install-progress") == 0) {
    set_op(h, id, "install", ev);
  } else if (strcmp(type, "game-uninstall-begin") == 0) {
    set_op(h, id, "uninstall", NULL);
  } else if (strcmp(type, "game-remove-begin") == 0) {
    set_op(h, id, "remove", NULL);
  } else if (strstr(type, "-finished")) {
    set_op(h, id, NULL, NULL);
    json_object_del(h->errors, id);
  } else if (strstr(type, "-failed")) {
    set_op(h, id, NULL, NULL);
    const char *action = strncmp(type, "game-install", 12) == 0     ? "install"
                         : strncmp(type, "game-uninstall", 14) == 0 ? "uninstall"
                                                                     : "remove";
    set_error(h, id, action, detail);
  } else {
    return; /* game-files: nothing the page shows */
  }
  if (strstr(type, "-finished") || strstr(type, "-failed") || strstr(type, "-cancelled"))
    json_object_del(h->actions, id);
  publish_card(h, id);
}

/* Replaces the library; the page hears of it only when it changed (the
 * same list comes back from every GET /api/games). */
static void replace_games(lsd_hub *h, json_t *games)
{
  bool same = json_equal(h->games, games);
  json_decref(h->games);
  h->games = games;
  if (!same)
    publish_games(h);
}

void lsd_hub_on_event(lsd_hub *h, const ls_event *ev)
{
  json_t *obj = json_loads(ev->json, 0, NULL);
  if (!obj)
    return;
  pthread_mutex_lock(&h->mu);
  publish(h, ev->type, json_incref(obj));
  if (strcmp(ev->type, "games-list-updated") == 0) {
    json_t *games = json_object_get(obj, "games");
    if (json_is_array(games))
      replace_games(h, json_incref(games));
  } else if (ev->id && strncmp(ev->type, "game-", 5) == 0) {
    apply_game_event(h, ev->type, ev->id, obj);
  }
  pthread_mutex_unlock(&h->mu);
  json_decref(obj);
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
  json_array_foreach(peers, i, p)
    json_object_set_new(p, "status", json_string("connected"));
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
    publish(h, "peers", json_pack("{s:O}", "peers", peers));
  pthread_mutex_unlock(&h->mu);
}

void lsd_hub_set_status(lsd_hub *h, json_t *status)
{
  pthread_mutex_lock(&h->mu);
  json_decref(h->status);
  h->status = status;
  publish(h, "settings", json_incref(status));
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

void lsd_hub_note_failure(lsd_hub *h, const char *id, const char *action, const char *detail)
{
  pthread_mutex_lock(&h->mu);
  set_error(h, id, action, detail);
  publish_card(h, id);
  pthread_mutex_unlock(&h->mu);
}

/* ---- views --------------------------------------------------------------- */

bool lsd_hub_any_busy(lsd_hub *h)
{
  pthread_mutex_lock(&h->mu);
  bool busy = json_object_size(h->ops) > 0;
  pthread_mutex_unlock(&h->mu);
  return busy;
}

static json_t *snapshot_locked(lsd_hub *h)
{
  json_t *snap = json_deep_copy(h->status);
  json_object_set_new(snap, "seq", json_integer((json_int_t)h->seq));
  json_object_set_new(snap, "games", cards_locked(h));
  json_object_set(snap, "peers", h->peers);
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
  char *path = launch_path_locked(h, id, why, why_size);
  pthread_mutex_unlock(&h->mu);
  return path;
}

/* ---- streams ------------------------------------------------------------- */

lsd_stream *lsd_stream_open(lsd_hub *h)
{
  lsd_stream *s = calloc(1, sizeof *s);
  if (s)
    s->hub = h;
  return s;
}

void lsd_stream_close(lsd_stream *s)
{
  if (s)
    free(s->pending);
  free(s);
}

/* The next record's text for s (malloc'ed), or NULL when there is none.
 * Caller holds the mutex. */
static char *next_text(lsd_stream *s)
{
  lsd_hub *h = s->hub;
  if (s->next == 0 || h->seq - s->next + 1 > LOG_SIZE) { /* new, or fell behind */
    json_t *snap = snapshot_locked(h);
    char *text = format_record("snapshot", h->seq, snap);
    json_decref(snap);
    s->next = h->seq + 1;
    return text;
  }
  if (s->next > h->seq)
    return NULL;
  char *text = strdup(h->log[s->next % LOG_SIZE].text);
  s->next++;
  return text;
}

long lsd_stream_read(lsd_stream *s, char *buf, size_t max, unsigned wait_ms)
{
  lsd_hub *h = s->hub;
  if (s->pending_off == s->pending_len) {
    free(s->pending);
    s->pending = NULL;
    pthread_mutex_lock(&h->mu);
    struct timespec deadline = lsd_deadline_in(wait_ms);
    while (!h->closed && !(s->pending = next_text(s)))
      if (pthread_cond_timedwait(&h->cond, &h->mu, &deadline) != 0)
        break;
    bool closed = h->closed;
    pthread_mutex_unlock(&h->mu);
    if (closed) {
      free(s->pending);
      s->pending = NULL;
      return -1;
    }
    s->pending_off = 0;
    s->pending_len = s->pending ? strlen(s->pending) : 0;
    if (!s->pending)
      return 0;
  }
  size_t n = s->pending_len - s->pending_off;
  if (n > max)
    n = max;
  memcpy(buf, s->pending + s->pending_off, n);
  s->pending_off += n;
  return (long)n;
}
