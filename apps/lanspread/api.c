/* Owns the REST API of docs/API.md: each endpoint's checks and its mapping
 * to runtime commands (the original UI's request_games, install_game,
 * update_game, remove_downloaded_game, update_game_directory, ..., and
 * pause, verify and repair), and the
 * settings changes that start, move or restart the runtime. http.c has
 * already checked Host, Origin, key and size; this file sees parsed JSON. */
#include "app.h"
#include "auth.h"
#include "play.h"

#include <lanspread/release.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_ID 64

json_t *lsd_error_json(const char *code, const char *fmt, ...)
{
  char text[LS_DIAG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  return json_pack("{s:s, s:s}", "error", text, "code", code);
}

json_t *lsd_app_status(lsd_app *app)
{
  json_t *settings = lsd_settings_json(&app->effective);
  json_object_set_new(settings, "config_file", json_string(app->config_path));
  json_object_set_new(settings, "party_key", lsd_party_json(&app->party));
  json_object_set_new(settings, "ui_password", json_boolean(lsd_auth_has_password(app->auth)));
  bool running = lsd_host_running(app->host);
  return json_pack("{s:s, s:o, s:o, s:b, s:s}", "version", ls_release_version(), "settings",
                   settings, "runtime", lsd_host_runtime_json(app->host), "setup_needed",
                   !running, "suggested_game_dir", app->suggested_game_dir);
}

void lsd_app_publish_status(lsd_app *app)
{
  lsd_hub_set_status(app->hub, lsd_app_status(app));
}

/* ---- runtime calls ------------------------------------------------------- */

/* Sends cmd and turns the outcome into an HTTP status: ok_status when the
 * runtime accepted, 409 with its reason when it refused. *code (may be
 * NULL) gets the refusal's LS_E* code. */
static int call(lsd_app *app, ls_command *cmd, int ok_status, int *code, json_t **reply,
                json_t **out)
{
  ls_diag diag;
  json_t *r = NULL;
  int rc = lsd_host_call(app->host, cmd, &r, &diag);
  if (rc != LS_OK) {
    if (code)
      *code = rc;
    *out = lsd_error_json(rc == LS_ESTATE ? "setup_needed" : "timeout", "%s", diag.text);
    return rc == LS_ESTATE ? 409 : 504;
  }
  if (!json_is_true(json_object_get(r, "ok"))) {
    const char *why = json_string_value(json_object_get(r, "error"));
    const char *name = json_string_value(json_object_get(r, "code"));
    if (code)
      *code = ls_error_from_name(name);
    *out = lsd_error_json("refused", "%s", why ? why : "refused by the runtime");
    json_object_set_new(*out, "runtime_code", json_string(name ? name : "LS_EUNKNOWN"));
    json_decref(r);
    return 409;
  }
  if (reply)
    *reply = r;
  else
    json_decref(r);
  return ok_status;
}

static int get_games(lsd_app *app, json_t **out)
{
  ls_command cmd = {.type = LS_CMD_LIST_GAMES};
  json_t *reply;
  int status = call(app, &cmd, 200, NULL, &reply, out);
  if (status != 200)
    return status;
  lsd_hub_set_games(app->hub, json_deep_copy(json_object_get(reply, "games")));
  json_decref(reply);
  *out = json_pack("{s:o}", "games", lsd_hub_cards(app->hub));
  return 200;
}

static int get_peers(lsd_app *app, json_t **out)
{
  ls_command cmd = {.type = LS_CMD_LIST_PEERS};
  json_t *reply;
  int status = call(app, &cmd, 200, NULL, &reply, out);
  if (status != 200)
    return status;
  json_t *peers = json_object_get(reply, "peers");
  size_t count = json_array_size(peers);
  lsd_hub_set_peers(app->hub, json_deep_copy(peers));
  json_decref(reply);
  *out = json_pack("{s:o, s:I}", "peers", lsd_hub_peers(app->hub), "count", (json_int_t)count);
  return 200;
}

/* ---- game commands ------------------------------------------------------- */

static bool card_allows(json_t *card, const char *action)
{
  size_t i;
  json_t *a;
  json_array_foreach(json_object_get(card, "actions"), i, a) {
    if (strcmp(json_string_value(a), action) == 0)
      return true;
  }
  return false;
}

/* Download and update fetch the latest version, which the card's actions
 * already judge: an idle card that offers neither is refused here (the
 * runtime would fetch the same version again). A paused card offers
 * download (its resume) and cancel, so it is not idle here; a busy game, or
 * one not in the library, is left to the runtime, which says why. */
static const char *refusal(lsd_app *app, const char *id, const char *action)
{
  bool download = strcmp(action, "download") == 0, update = strcmp(action, "update") == 0;
  json_t *card = (download || update) ? lsd_hub_card(app->hub, id) : NULL;
  bool idle = card && json_is_null(json_object_get(card, "progress")) &&
              !card_allows(card, "cancel") && json_array_size(json_object_get(card, "actions"));
  bool offered = card_allows(card, "update") || (download && card_allows(card, "download"));
  const char *why = NULL;
  if (idle && !offered)
    why = download                           ? "this machine has the latest version already"
          : card_allows(card, "download")    ? "it is not on this machine yet: download it"
                                             : "no peer has a newer version than this machine";
  json_decref(card);
  return why;
}

static int play(lsd_app *app, const char *id, json_t **out)
{
  char why[512];
  char *path = lsd_hub_launch_path(app->hub, id, why, sizeof why);
  if (!path) {
    *out = lsd_error_json("refused", "%s", why);
    return 409;
  }
  pid_t pid;
  ls_diag diag;
  int rc = lsd_play_start(path, &pid, &diag);
  free(path);
  if (rc != LS_OK) {
    lsd_hub_note_failure(app->hub, id, "play", rc, diag.text);
    *out = lsd_error_json("failed", "%s", diag.text);
    return 500;
  }
  *out = json_pack("{s:b, s:I}", "ok", 1, "pid", (json_int_t)pid);
  return 200;
}

/* Each action's command. starts: it begins an operation, whose failures
 * are then this action's (cancel and pause only stop the running one). */
static const struct {
  const char *action;
  ls_command_type type;
  bool repair;
  bool starts;
  int ok_status;
} commands[] = {
  {"download", LS_CMD_DOWNLOAD_GAME_FILES, false, true, 202},
  {"update", LS_CMD_DOWNLOAD_GAME_FILES, false, true, 202},
  {"pause", LS_CMD_PAUSE_DOWNLOAD, false, false, 200},
  {"cancel", LS_CMD_CANCEL_DOWNLOAD, false, false, 200},
  {"verify", LS_CMD_VERIFY_GAME, false, true, 202},
  {"repair", LS_CMD_VERIFY_GAME, true, true, 202},
  {"install", LS_CMD_INSTALL_GAME, false, true, 202},
  {"uninstall", LS_CMD_UNINSTALL_GAME, false, true, 202},
  {"remove", LS_CMD_REMOVE_DOWNLOADED_GAME, false, true, 202},
};

static int game_command(lsd_app *app, const char *id, const char *action, json_t **out)
{
  if (strcmp(action, "play") == 0)
    return play(app, id, out);
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
    if (strcmp(action, commands[i].action) != 0)
      continue;
    const char *why = refusal(app, id, action);
    if (why) {
      *out = lsd_error_json("refused", "%s", why);
      lsd_hub_note_failure(app->hub, id, action, LS_ESTATE, why);
      return 409;
    }
    if (commands[i].starts)
      lsd_hub_note_action(app->hub, id, action);
    ls_command cmd = {.type = commands[i].type, .id = id, .repair = commands[i].repair};
    int code = LS_OK;
    int status = call(app, &cmd, commands[i].ok_status, &code, NULL, out);
    if (status == 409 || status == 504)
      lsd_hub_note_failure(app->hub, id, action, code,
                           json_string_value(json_object_get(*out, "error")));
    else
      *out = json_pack("{s:b, s:s}", "ok", 1, "id", id);
    return status;
  }
  *out = lsd_error_json("not_found", "no action '%s'; see docs/API.md", action);
  return 404;
}

/* The catalog id of /api/games/ID[/...], checked; else an error answer. */
static int check_game_id(lsd_app *app, const char *id, json_t **out)
{
  ls_diag diag;
  if (lsd_host_load_catalog(app->host, &diag) != LS_OK) {
    *out = lsd_error_json("failed", "%s", diag.text);
    return 500;
  }
  if (!ls_catalog_id_is_safe(id) || !ls_catalog_find(lsd_host_catalog(app->host), id)) {
    *out = lsd_error_json("unknown_game", "'%.64s' is not a game of the catalog", id);
    return 404;
  }
  return 0;
}

static int games_route(lsd_app *app, const char *method, const char *rest, json_t **out)
{
  char id[MAX_ID + 2];
  const char *slash = strchr(rest, '/');
  size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
  snprintf(id, sizeof id, "%.*s", (int)(n > MAX_ID + 1 ? MAX_ID + 1 : n), rest);
  int status = check_game_id(app, id, out);
  if (status)
    return status;
  if (!slash) {
    if (strcmp(method, "GET") != 0) {
      *out = lsd_error_json("method", "use GET");
      return 405;
    }
    json_t *card = lsd_hub_card(app->hub, id);
    if (!card) {
      *out = lsd_error_json("not_found", "%s is in the catalog, but neither this machine nor "
                                         "any connected peer has it", id);
      return 404;
    }
    *out = card;
    return 200;
  }
  if (strcmp(method, "POST") != 0) {
    *out = lsd_error_json("method", "use POST");
    return 405;
  }
  return game_command(app, id, slash + 1, out);
}

/* ---- settings ------------------------------------------------------------ */

static bool same_string(const char *a, const char *b)
{
  return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool same_peers(const lsd_settings *a, const lsd_settings *b)
{
  if (a->static_peer_count != b->static_peer_count)
    return false;
  for (size_t i = 0; i < a->static_peer_count; i++)
    if (strcmp(a->static_peers[i], b->static_peers[i]) != 0)
      return false;
  return true;
}

/* A party key a PUT sends: absent (changes false), a new key or a clearing
 * of it. */
typedef struct party_change {
  bool changes;
  const char *secret; /* NULL: clear */
  char fingerprint[LS_PEER_PARTY_FINGERPRINT_LEN + 1];
} party_change;

static int check_party(lsd_app *app, json_t *body, party_change *pc, json_t **out)
{
  json_t *value = json_object_get(body, "party_key");
  memset(pc, 0, sizeof *pc);
  if (!value)
    return 0;
  ls_diag diag;
  if (app->party.fixed) {
    *out = lsd_error_json("bad_request", "the party key is set by --party-key-file for this "
                                         "run: change that file, or start without it");
    return 400;
  }
  if (lsd_party_check(value, &pc->secret, pc->fingerprint, &diag) != LS_OK) {
    *out = lsd_error_json("bad_request", "%s", diag.text);
    return 400;
  }
  pc->changes = lsd_party_changes(&app->party, pc->fingerprint);
  return 0;
}

/* Stores the new party key (or clears it) for the runtime's next start. */
static int store_party(lsd_app *app, const party_change *pc, json_t **out)
{
  ls_diag diag;
  if (lsd_party_store(&app->party, app->state_dir, pc->secret, pc->fingerprint, &diag) != LS_OK) {
    *out = lsd_error_json("failed", "the party key was not stored: %s", diag.text);
    return 500;
  }
  lsd_host_set_party_key_file(app->host, app->party.file[0] ? app->party.file : NULL);
  return 0;
}

/* Brings the runtime in line with next: start it, move it to another game
 * directory, or restart it for a new name, peer list or party key (links
 * are then made again under the new key). */
static int apply_to_runtime(lsd_app *app, const lsd_settings *next, const party_change *pc,
                            json_t **out)
{
  const lsd_settings *now = &app->effective;
  bool running = lsd_host_running(app->host);
  bool reshape = !same_string(now->name, next->name) || !same_peers(now, next) || pc->changes;
  bool move = !same_string(now->game_dir, next->game_dir);
  bool restart = (!running && next->game_dir) || (running && reshape);
  ls_diag diag;
  if (restart && running && lsd_hub_any_busy(app->hub)) {
    *out = lsd_error_json("refused", "a download or install is running; the name, the static "
                                     "peers and the party key can change when it is done");
    return 409;
  }
  int status = pc->changes ? store_party(app, pc, out) : 0;
  if (status)
    return status;
  if (restart) {
    if (lsd_host_start(app->host, next, &diag) != LS_OK) {
      lsd_app_publish_status(app);
      *out = lsd_error_json("failed", "the runtime did not start: %s", diag.text);
      return 500;
    }
    return 0;
  }
  if (running && move) {
    ls_command cmd = {.type = LS_CMD_SET_GAME_DIR, .path = next->game_dir};
    status = call(app, &cmd, 200, NULL, NULL, out);
    return status == 200 ? 0 : status;
  }
  return 0;
}

static int put_settings(lsd_app *app, json_t *body, json_t **out)
{
  ls_diag diag;
  lsd_settings next, saved;
  if (lsd_settings_copy(&next, &app->effective) != LS_OK) {
    *out = lsd_error_json("failed", "out of memory");
    return 500;
  }
  bool gui = json_object_get(body, "gui") != NULL; /* the next start checks it too */
  if (lsd_settings_update(&next, body, &diag) != LS_OK ||
      (gui && next.gui && lsd_auth_check_gui(app->auth, next.gui, &diag) != LS_OK)) {
    lsd_settings_free(&next);
    *out = lsd_error_json("bad_request", "%s", diag.text);
    return 400;
  }
  party_change pc;
  int status = check_party(app, body, &pc, out);
  if (!status)
    status = apply_to_runtime(app, &next, &pc, out);
  if (status) {
    lsd_settings_free(&next);
    return status;
  }
  /* The file gets the values the page sent; this run's overrides of the
   * other fields stay out of it, and the party key is a file of its own. */
  json_t *stored = json_deep_copy(body);
  json_object_del(stored, "create");
  json_object_del(stored, "party_key");
  if (json_is_string(json_object_get(stored, "game_dir")))
    json_object_set_new(stored, "game_dir", json_string(next.game_dir));
  int rc = lsd_settings_copy(&saved, &app->saved);
  if (rc == LS_OK && (rc = lsd_settings_update(&saved, stored, &diag)) == LS_OK)
    rc = lsd_settings_save(app->config_path, &saved, &diag);
  json_decref(stored);
  lsd_settings_free(&app->effective);
  app->effective = next;
  if (rc == LS_OK) {
    lsd_settings_free(&app->saved);
    app->saved = saved;
  }
  lsd_app_publish_status(app);
  if (rc != LS_OK) {
    *out = lsd_error_json("failed", "applied, but not saved: %s", diag.text);
    return 500;
  }
  *out = lsd_app_status(app);
  return 200;
}

static int settings_route(lsd_app *app, const char *method, json_t *body, json_t **out)
{
  if (strcmp(method, "GET") == 0) {
    pthread_mutex_lock(&app->settings_lock);
    *out = lsd_app_status(app);
    pthread_mutex_unlock(&app->settings_lock);
    return 200;
  }
  if (strcmp(method, "PUT") != 0) {
    *out = lsd_error_json("method", "use GET or PUT");
    return 405;
  }
  pthread_mutex_lock(&app->settings_lock);
  int status = put_settings(app, body, out);
  pthread_mutex_unlock(&app->settings_lock);
  return status;
}

static int check_game_dir(json_t *body, json_t **out)
{
  const char *path = json_string_value(json_object_get(body, "path"));
  if (!path) {
    *out = lsd_error_json("bad_request", "give {\"path\": \"/absolute/dir\"}");
    return 400;
  }
  json_t *create = json_object_get(body, "create");
  if (create && !json_is_boolean(create)) {
    *out = lsd_error_json("bad_request", "'create' must be true or false");
    return 400;
  }
  ls_diag diag;
  bool missing = access(path, F_OK) != 0;
  lsd_dir_mode mode = json_is_true(create) ? LSD_DIR_MAY_CREATE : LSD_DIR_EXISTS;
  if (lsd_check_game_dir(path, mode, &diag) != LS_OK)
    *out = json_pack("{s:b, s:s}", "ok", 0, "error", diag.text);
  else if (missing)
    *out = json_pack("{s:b, s:s}", "ok", 1, "note", "it will be created");
  else
    *out = json_pack("{s:b}", "ok", 1);
  return 200;
}

/* ---- routing ------------------------------------------------------------- */

static int only(const char *method, const char *allowed, json_t **out)
{
  if (strcmp(method, allowed) == 0)
    return 0;
  *out = lsd_error_json("method", "use %s", allowed);
  return 405;
}

int lsd_api_handle(lsd_app *app, const char *method, const char *path, json_t *body,
                   json_t **out)
{
  int status;
  if (strcmp(path, "/api/state") == 0)
    return (status = only(method, "GET", out)) ? status
                                                : (*out = lsd_hub_snapshot(app->hub), 200);
  if (strcmp(path, "/api/games") == 0)
    return (status = only(method, "GET", out)) ? status : get_games(app, out);
  if (strncmp(path, "/api/games/", 11) == 0)
    return games_route(app, method, path + 11, out);
  if (strcmp(path, "/api/peers") == 0)
    return (status = only(method, "GET", out)) ? status : get_peers(app, out);
  if (strcmp(path, "/api/settings") == 0)
    return settings_route(app, method, body, out);
  if (strcmp(path, "/api/check-game-dir") == 0)
    return (status = only(method, "POST", out)) ? status : check_game_dir(body, out);
  *out = lsd_error_json("not_found", "no endpoint %s; see docs/API.md", path);
  return 404;
}
