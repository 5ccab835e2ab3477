/* Owns what a card shows (cards.h): the runtime's entry with the catalog's
 * genre, description and players, the progress of a download or install
 * with its ETA, the last error, and the actions the runtime allows plus
 * Play when the game has a launch file; and the table that turns an error
 * code into a player's words. The runtime decides state and actions; a
 * card only adds what the daemon knows (the catalog's launch file). */
#include "cards.h"

#include <lanspread/error.h>
#include <limits.h>
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
  {LS_EFORMAT, "install", "The game's archives could not be unpacked on this machine."},
  {LS_EUNSUPPORTED, "install", "The game's archives could not be unpacked on this machine."},
  {LS_ESTATE, "remove", "The game is installed; uninstall it first."},
  {LS_ENOENT, "install", "The game's files are not on this machine."},
  {LS_ENOENT, "remove", "The game's files are not on this machine."},
  {LS_ENOENT, "uninstall", "The game is not installed."},
  {LS_ESTATE, "download", "This machine has that version already, or no peer has a newer one."},
  {LS_ESTATE, "update", "No peer has a newer version than this machine."},
};

/* When no row matches: what failed. */
static const struct {
  const char *action, *message;
} fallbacks[] = {
  {"download", "The download failed."}, {"update", "The download failed."},
  {"install", "The installation failed."}, {"uninstall", "Uninstalling failed."},
  {"remove", "Removing the files failed."}, {"play", "The game could not be started."},
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

/* ---- cards ---------------------------------------------------------------- */

/* {"bytes", "total_bytes", "bytes_per_sec", "eta_s"} of a download or an
 * install, else null. */
static json_t *progress_json(json_t *op)
{
  const char *kind = json_string_value(json_object_get(op, "kind"));
  if (!kind || (strcmp(kind, "download") != 0 && strcmp(kind, "install") != 0))
    return json_null();
  json_int_t bytes = json_integer_value(json_object_get(op, "bytes"));
  json_int_t total = json_integer_value(json_object_get(op, "total_bytes"));
  json_int_t bps = json_integer_value(json_object_get(op, "bytes_per_sec"));
  json_int_t eta = bps > 0 && total > bytes ? (total - bytes + bps - 1) / bps : 0;
  return json_pack("{s:I, s:I, s:I, s:I}", "bytes", bytes, "total_bytes", total,
                   "bytes_per_sec", bps, "eta_s", eta);
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

json_t *lsd_card_new(json_t *game, const ls_catalog_game *cg, json_t *error,
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
  json_object_set_new(card, "actions", actions_json(game, launch != NULL));
  free(launch);
  return card;
}
