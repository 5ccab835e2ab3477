/* Owns what a card shows (cards.h): the runtime's entry with the catalog's
 * genre, description and players, the progress of a download, verification
 * or install with its ETA, the last error, the last verification's result
 * in a player's words, why each refused offer was refused (by its code),
 * and the actions the runtime allows plus Play when
 * the game has a launch file; and the table that turns an error code into
 * a player's words. The runtime decides state and actions; a card only adds
 * what the daemon knows (the catalog's launch file). */
#include "cards.h"

#include <lanspread/error.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- player messages ------------------------------------------------------ */

/* By code, for one action (NULL: any action); the first match wins. */
static const struct {
  int code;
  const char *action;
  const char *message;
} messages[] = {
  {LS_ECORRUPT, NULL, "A peer sent damaged data. Try again; another peer may have a good copy."},
  {LS_ENOSPC, NULL, "There is not enough free disk space for this game."},
  {LS_ENOPEER, NULL, "No peer that has this game is reachable right now."},
  {LS_ETIMEDOUT, NULL, "The peers sharing this game stopped answering."},
  {LS_EBUSY, NULL, "Another operation on this game is still running."},
  {LS_ELIMIT, NULL, "The game's archives unpack to far more than they should; a peer may have "
                    "sent a damaged or hostile copy. Nothing was changed."},
  {LS_EPIN, NULL, "The peers offering this version sent files that are not the ones the "
                  "catalog names for it; nothing was downloaded."},
  {LS_EFORMAT, "install", "The game's archives could not be unpacked on this machine."},
  {LS_EUNSUPPORTED, "install", "The game's archives could not be unpacked on this machine."},
  {LS_ESTATE, "remove", "The game is installed; uninstall it first."},
  {LS_ENOENT, "install", "The game's files are not on this machine."},
  {LS_ENOENT, "remove", "The game's files are not on this machine."},
  {LS_ENOENT, "uninstall", "The game is not installed."},
  {LS_ESTATE, "download", "This machine has that version already, or no peer has a newer one."},
  {LS_ESTATE, "update", "No peer has a newer version than this machine."},
  {LS_ESTATE, "pause", "No download of this game is running."},
  {LS_ESTATE, "verify", "The game's files are not on this machine."},
  {LS_ESTATE, "repair", "The game's files are not on this machine."},
};

/* When no row matches: what failed. */
static const struct {
  const char *action, *message;
} fallbacks[] = {
  {"download", "The download failed."}, {"update", "The download failed."},
  {"install", "The installation failed."}, {"uninstall", "Uninstalling failed."},
  {"remove", "Removing the files failed."}, {"play", "The game could not be started."},
  {"pause", "The download could not be paused."}, {"verify", "Checking the game's files failed."},
  {"repair", "The repair failed."},
};

const char *lsd_player_message(const char *action, int code)
{
  for (size_t i = 0; i < sizeof messages / sizeof messages[0]; i++)
    if (messages[i].code == code && (!messages[i].action || strcmp(messages[i].action, action) == 0))
      return messages[i].message;
  for (size_t i = 0; i < sizeof fallbacks / sizeof fallbacks[0]; i++)
    if (strcmp(fallbacks[i].action, action) == 0)
      return fallbacks[i].message;
  return "That did not work.";
}

/* Why a peer's offer of a version was refused (the runtime's
 * refused_offers), by code: the end of "2.0 from evil (e0dd…) refused: …". */
static const char *refusal_message(int code)
{
  return code == LS_EPIN ? "its file list is not the pinned one"
                         : "its file list was refused";
}

/* ---- Play ----------------------------------------------------------------- */

char *lsd_launch_path(const char *game_dir, const ls_catalog_game *cg, json_t *game, char *why,
                      size_t why_size)
{
  const char *id = json_string_value(json_object_get(game, "id"));
  if (!cg) {
    snprintf(why, why_size, "%s is not in the catalog", id);
    return NULL;
  }
  if (!cg->launch) {
    snprintf(why, why_size, "the catalog names no program to start for %s", cg->name);
    return NULL;
  }
  if (!json_is_true(json_object_get(game, "installed")) || !game_dir) {
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

/* ---- verification results ------------------------------------------------ */

/* "1 chunk", "3 chunks". */
static const char *plural(json_int_t n, const char *one, const char *many)
{
  return n == 1 ? one : many;
}

/* 1536 -> "1.5 KiB" (the page's units). */
static void format_size(char *out, size_t size, json_int_t bytes)
{
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = (double)bytes;
  size_t i = 0;
  while (v >= 1024 && i < sizeof units / sizeof units[0] - 1)
    v /= 1024, i++;
  if (i == 0)
    snprintf(out, size, "%lld B", (long long)bytes);
  else
    snprintf(out, size, v >= 100 ? "%.0f %s" : "%.1f %s", v, units[i]);
}

static json_int_t int_of(json_t *obj, const char *key)
{
  return json_integer_value(json_object_get(obj, key));
}

static char *verify_message(json_t *r, char *text, size_t size)
{
  json_int_t chunks = int_of(r, "chunks"), bad = int_of(r, "bad_chunks");
  json_int_t files = int_of(r, "files_bad");
  if (json_is_true(json_object_get(r, "repair"))) {
    char fetched[32], kept[32]; /* fetched: the bad chunks and version.ini */
    format_size(fetched, sizeof fetched, int_of(r, "bytes_fetched"));
    format_size(kept, sizeof kept, int_of(r, "bytes_reused"));
    snprintf(text, size, "Repaired: %s fetched again from the peers, %s was intact.", fetched,
             kept);
  } else if (json_is_true(json_object_get(r, "ok"))) {
    snprintf(text, size, "Verified: all %lld %s OK.", (long long)chunks,
             plural(chunks, "chunk", "chunks"));
  } else {
    snprintf(text, size, "Verify found %lld bad %s in %lld %s: Repair fetches them.",
             (long long)bad, plural(bad, "chunk", "chunks"), (long long)files,
             plural(files, "file", "files"));
  }
  return text;
}

json_t *lsd_verify_result(json_t *event)
{
  bool repair = json_is_true(json_object_get(event, "repair"));
  json_t *r = json_deep_copy(event);
  json_object_del(r, "type");
  json_object_del(r, "id");
  json_object_set_new(r, "repair", json_boolean(repair));
  if (repair)
    json_object_set_new(r, "ok", json_true());
  char text[256];
  json_object_set_new(r, "message", json_string(verify_message(r, text, sizeof text)));
  return r;
}

/* ---- cards ---------------------------------------------------------------- */

/* {"bytes", "total_bytes", "bytes_per_sec", "eta_s"} of a download, a
 * verification or an install, else null. */
static json_t *progress_json(json_t *op)
{
  static const char *const kinds[] = {"download", "verify", "install"};
  const char *kind = json_string_value(json_object_get(op, "kind"));
  bool shown = false;
  for (size_t i = 0; kind && i < sizeof kinds / sizeof kinds[0]; i++)
    shown = shown || strcmp(kind, kinds[i]) == 0;
  if (!shown)
    return json_null();
  json_int_t bytes = json_integer_value(json_object_get(op, "bytes"));
  json_int_t total = json_integer_value(json_object_get(op, "total_bytes"));
  json_int_t bps = json_integer_value(json_object_get(op, "bytes_per_sec"));
  json_int_t eta = bps > 0 && total > bytes ? (total - bytes + bps - 1) / bps : 0;
  return json_pack("{s:I, s:I, s:I, s:I}", "bytes", bytes, "total_bytes", total,
                   "bytes_per_sec", bps, "eta_s", eta);
}

/* The runtime's refused offers, each with "message" in a player's words. */
static json_t *refused_json(json_t *game)
{
  json_t *refused = json_deep_copy(json_object_get(game, "refused_offers"));
  if (!json_is_array(refused)) {
    json_decref(refused);
    return json_array();
  }
  size_t i;
  json_t *r;
  json_array_foreach(refused, i, r) {
    int code = ls_error_from_name(json_string_value(json_object_get(r, "code")));
    json_object_set_new(r, "message", json_string(refusal_message(code)));
  }
  return refused;
}

/* The runtime's actions, with Play before Uninstall when there is a
 * launch file. */
static json_t *actions_json(json_t *game, bool playable)
{
  json_t *actions = json_array();
  size_t i;
  json_t *a;
  json_array_foreach(json_object_get(game, "actions"), i, a) {
    if (playable && strcmp(json_string_value(a), "uninstall") == 0)
      json_array_append_new(actions, json_string("play"));
    json_array_append_new(actions, json_copy(a));
  }
  return actions;
}

json_t *lsd_card_new(json_t *game, const ls_catalog_game *cg, json_t *error, json_t *verify,
                     const char *game_dir)
{
  char why[256];
  bool idle = json_is_null(json_object_get(game, "operation"));
  char *launch = idle ? lsd_launch_path(game_dir, cg, game, why, sizeof why) : NULL;
  json_t *card = json_deep_copy(game);
  json_object_set_new(card, "genre", cg && cg->genre ? json_string(cg->genre) : json_null());
  json_object_set_new(card, "description",
                      cg && cg->description ? json_string(cg->description) : json_null());
  json_object_set_new(card, "max_players", json_integer(cg ? cg->max_players : 0));
  json_object_set_new(card, "progress", progress_json(json_object_get(game, "operation")));
  json_object_set_new(card, "error", error ? json_deep_copy(error) : json_null());
  json_object_set_new(card, "verify", verify ? json_deep_copy(verify) : json_null());
  json_object_set_new(card, "actions", actions_json(game, launch != NULL));
  json_object_set_new(card, "refused_offers", refused_json(game));
  free(launch);
  return card;
}
