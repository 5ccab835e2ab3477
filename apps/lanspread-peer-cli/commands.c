/* Owns the command language of lanspread-peer-cli (docs/CLI.md):
 * splitting a line into words, checking arguments, and handing commands to
 * the runtime (or to waits.c for wait and wait-peers). */
#include "cli.h"
#include "output.h"

#include <stdlib.h>
#include <string.h>

#define MAX_WORDS 8
#define DEFAULT_WAIT_S 30.0

typedef struct command_spec {
  const char *name;
  int type;            /* ls_command_type, or -1 for CLI-local commands */
  const char *usage;   /* arguments, for errors and help */
  int min_args, max_args;
} command_spec;

static const command_spec specs[] = {
  {"games", LS_CMD_LIST_GAMES, "games", 0, 0},
  {"peers", LS_CMD_LIST_PEERS, "peers", 0, 0},
  {"peer-count", LS_CMD_GET_PEER_COUNT, "peer-count", 0, 0},
  {"get", LS_CMD_GET_GAME, "get ID", 1, 1},
  {"fetch-latest", LS_CMD_FETCH_LATEST, "fetch-latest ID", 1, 1},
  {"download", LS_CMD_DOWNLOAD_GAME_FILES, "download ID", 1, 1},
  {"cancel", LS_CMD_CANCEL_DOWNLOAD, "cancel ID", 1, 1},
  {"pause", LS_CMD_PAUSE_DOWNLOAD, "pause ID", 1, 1},
  {"verify", LS_CMD_VERIFY_GAME, "verify ID [--repair]", 1, 2},
  {"install", LS_CMD_INSTALL_GAME, "install ID", 1, 1},
  {"uninstall", LS_CMD_UNINSTALL_GAME, "uninstall ID", 1, 1},
  {"remove", LS_CMD_REMOVE_DOWNLOADED_GAME, "remove ID", 1, 1},
  {"set-game-dir", LS_CMD_SET_GAME_DIR, "set-game-dir DIR", 1, 1},
  {"loop-stats", LS_CMD_LOOP_STATS, "loop-stats", 0, 0},
  {"manifest-digest", LS_CMD_MANIFEST_DIGEST, "manifest-digest ID", 1, 1},
  {"wait", -1, "wait TYPE [ID] [TIMEOUT_S]", 1, 3},
  {"wait-peers", -1, "wait-peers N [TIMEOUT_S]", 1, 2},
  {"quit", -1, "quit", 0, 0},
  {"help", -1, "help", 0, 0},
};

static const command_spec *find_spec(const char *name)
{
  for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
    if (strcmp(specs[i].name, name) == 0)
      return &specs[i];
  return NULL;
}

/* A positive number of seconds, or -1. */
static double parse_seconds(const char *s)
{
  char *end;
  double v = strtod(s, &end);
  return *s && !*end && v > 0 && v <= 86400 ? v : -1;
}

static void run_wait(cli *c, char **args, size_t n)
{
  const char *type = args[0], *id = NULL;
  double timeout = DEFAULT_WAIT_S;
  bool game_event = strncmp(type, "game", 4) == 0;
  if (n == 3) {
    id = args[1];
    timeout = parse_seconds(args[2]);
  } else if (n == 2 && !game_event) {
    timeout = parse_seconds(args[1]); /* peer-* events have no id */
  } else if (n == 2) {
    id = args[1];
  }
  if (timeout < 0) {
    out_reply_error("wait", LS_EINVAL, "TIMEOUT_S must be a number of seconds (0 < T <= 86400)");
    return;
  }
  cli_wait_start(c, type, id, timeout);
}

static void run_wait_peers(cli *c, char **args, size_t n)
{
  char *end;
  long long count = strtoll(args[0], &end, 10);
  double timeout = n == 2 ? parse_seconds(args[1]) : DEFAULT_WAIT_S;
  if (*end || count < 0 || timeout < 0) {
    out_reply_error("wait-peers", LS_EINVAL, "usage: wait-peers N [TIMEOUT_S]");
    return;
  }
  cli_wait_peers_start(c, count, timeout);
}

static void run_help(void)
{
  json_t *list = json_array();
  for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
    json_array_append_new(list, json_string(specs[i].usage));
  out_reply_ok("help", json_pack("{s:o}", "commands", list));
}

static void run_local(cli *c, const command_spec *spec, char **args, size_t n)
{
  if (strcmp(spec->name, "wait") == 0)
    run_wait(c, args, n);
  else if (strcmp(spec->name, "wait-peers") == 0)
    run_wait_peers(c, args, n);
  else if (strcmp(spec->name, "help") == 0)
    run_help();
  else {
    out_reply_ok("quit", NULL);
    cli_quit(c);
  }
}

static void dispatch(cli *c, char **words, size_t n)
{
  const command_spec *spec = find_spec(words[0]);
  if (!spec) {
    out_reply_error(words[0], LS_EINVAL, "unknown command '%s'; try 'help'", words[0]);
    return;
  }
  int nargs = (int)n - 1;
  if (nargs < spec->min_args || nargs > spec->max_args) {
    out_reply_error(spec->name, LS_EINVAL, "usage: %s", spec->usage);
    return;
  }
  if (spec->type < 0) {
    run_local(c, spec, words + 1, (size_t)nargs);
    return;
  }
  ls_command cmd = {.type = (ls_command_type)spec->type, .tag = ++c->next_tag};
  if (spec->type == LS_CMD_SET_GAME_DIR)
    cmd.path = words[1];
  else if (nargs >= 1)
    cmd.id = words[1];
  if (nargs == 2 && strcmp(words[2], "--repair") != 0) {
    out_reply_error(spec->name, LS_EINVAL, "usage: %s", spec->usage);
    return;
  }
  cmd.repair = nargs == 2;
  int rc = ls_peer_send(c->peer, &cmd);
  if (rc != LS_OK)
    out_reply_error(spec->name, rc, "%s", ls_strerror(rc));
  else
    c->awaiting_tag = cmd.tag;
}

/* Splits on blanks; set-game-dir keeps the rest of the line as one word so
 * a directory may contain spaces. */
static size_t split_words(char *line, char **words)
{
  size_t n = 0;
  char *p = line;
  while (n < MAX_WORDS) {
    while (*p == ' ' || *p == '\t')
      p++;
    if (!*p)
      break;
    if (n == 1 && strcmp(words[0], "set-game-dir") == 0) {
      words[n++] = p;
      char *end = p + strlen(p);
      while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        *--end = '\0';
      break;
    }
    words[n++] = p;
    while (*p && *p != ' ' && *p != '\t')
      p++;
    if (*p)
      *p++ = '\0';
  }
  return n;
}

typedef struct pending_line {
  struct pending_line *next;
  char *text; /* NULL: end of stdin */
} pending_line;

static bool busy(const cli *c)
{
  return c->awaiting_tag != 0 || c->awaiting_wait;
}

static void run_line(cli *c, const char *line)
{
  if (!line) {
    if (!c->serve)
      cli_quit(c);
    return;
  }
  char buf[4096];
  if (strlen(line) >= sizeof buf) {
    out_reply_error("", LS_ETOOBIG, "command line too long (at most %zu bytes)", sizeof buf - 1);
    return;
  }
  strcpy(buf, line);
  char *words[MAX_WORDS + 1];
  size_t n = split_words(buf, words);
  if (n > 0)
    dispatch(c, words, n);
}

void cli_command_done(cli *c)
{
  c->awaiting_tag = 0;
  c->awaiting_wait = false;
  while (c->pending && !busy(c) && !c->quitting) {
    pending_line *l = c->pending;
    c->pending = l->next;
    if (!c->pending)
      c->pending_tail = NULL;
    run_line(c, l->text);
    free(l->text);
    free(l);
  }
}

void cli_on_line(void *user, const char *line)
{
  cli *c = user;
  if (c->quitting)
    return;
  if (!busy(c) && !c->pending) {
    run_line(c, line);
    return;
  }
  pending_line *l = calloc(1, sizeof *l);
  if (!l || (line && !(l->text = strdup(line)))) {
    free(l);
    return;
  }
  if (c->pending_tail)
    c->pending_tail->next = l;
  else
    c->pending = l;
  c->pending_tail = l;
}

void cli_commands_close(cli *c)
{
  while (c->pending) {
    pending_line *l = c->pending;
    c->pending = l->next;
    free(l->text);
    free(l);
  }
  c->pending_tail = NULL;
}
