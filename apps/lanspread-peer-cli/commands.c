/* Owns the command language of lanspread-peer-cli: splitting a line into
 * words, dispatching, and the reply payloads of BRIEF section 9. */
#include "cli.h"
#include "output.h"

#include <string.h>

#define MAX_WORDS 8

/* The entry of one catalog game in `games` and games-list-updated. Until
 * peers exist the latest version is the local one. */
static json_t *game_json(const ls_catalog_game *cg, const ls_local_game *g)
{
  return json_pack("{s:s, s:s, s:b, s:b, s:s?, s:s?, s:i, s:I}", "id", cg->id, "name", cg->name,
                   "downloaded", g->downloaded, "installed", g->installed, "local_version",
                   g->version, "latest_version", g->version, "peers", 0, "size",
                   (json_int_t)g->size);
}

static json_t *games_json(const cli *c)
{
  json_t *games = json_array();
  const ls_library *lib = ls_monitor_library(c->monitor);
  for (size_t i = 0; i < lib->count; i++) {
    const ls_catalog_game *cg = ls_catalog_find(c->catalog, lib->games[i].id);
    if (cg)
      json_array_append_new(games, game_json(cg, &lib->games[i]));
  }
  return games;
}

void cli_emit_games_updated(cli *c, const char *const *ids, size_t n)
{
  json_t *changed = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(changed, json_string(ids[i]));
  out_line(json_pack("{s:s, s:o, s:o}", "type", "games-list-updated", "games", games_json(c),
                     "changed", changed));
}

static size_t split_words(char *line, char **words)
{
  size_t n = 0;
  for (char *save = NULL, *w = strtok_r(line, " \t", &save); w && n < MAX_WORDS;
       w = strtok_r(NULL, " \t", &save))
    words[n++] = w;
  return n;
}

static const char *const later_commands[] = {
  "get", "fetch-latest", "download", "cancel", "install", "uninstall", "remove",
  "set-game-dir", "wait", "wait-peers", NULL,
};

static bool is_later_command(const char *cmd)
{
  for (const char *const *p = later_commands; *p; p++)
    if (strcmp(cmd, *p) == 0)
      return true;
  return false;
}

static void dispatch(cli *c, char **words, size_t n)
{
  const char *cmd = words[0];
  if (strcmp(cmd, "games") == 0 && n == 1)
    out_reply_ok(cmd, json_pack("{s:o}", "games", games_json(c)));
  else if (strcmp(cmd, "peers") == 0 && n == 1)
    out_reply_ok(cmd, json_pack("{s:[]}", "peers"));
  else if (strcmp(cmd, "peer-count") == 0 && n == 1)
    out_reply_ok(cmd, json_pack("{s:i}", "count", 0));
  else if (strcmp(cmd, "quit") == 0 && n == 1) {
    out_reply_ok(cmd, NULL);
    cli_quit(c);
  } else if (strcmp(cmd, "help") == 0 && n == 1)
    out_reply_ok(cmd, json_pack("{s:s}", "commands", "games peers peer-count quit help"));
  else if (is_later_command(cmd))
    out_reply_error(cmd, "not implemented");
  else if (strcmp(cmd, "games") == 0 || strcmp(cmd, "peers") == 0 ||
           strcmp(cmd, "peer-count") == 0 || strcmp(cmd, "quit") == 0 ||
           strcmp(cmd, "help") == 0)
    out_reply_error(cmd, "%s takes no arguments", cmd);
  else
    out_reply_error(cmd, "unknown command '%s'; try 'help'", cmd);
}

void cli_on_line(void *user, const char *line)
{
  cli *c = user;
  if (c->quitting)
    return;
  if (!line) {
    if (!c->serve)
      cli_quit(c);
    return;
  }
  char buf[4096];
  if (strlen(line) >= sizeof buf) {
    out_reply_error("", "command line too long");
    return;
  }
  strcpy(buf, line);
  char *words[MAX_WORDS];
  size_t n = split_words(buf, words);
  if (n > 0)
    dispatch(c, words, n);
}
