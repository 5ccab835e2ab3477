/* lanspread-peer-cli: a headless peer driven by JSON-lines commands on stdin
 * (BRIEF section 9). This file owns the command line, start-up and shutdown;
 * commands.c answers the commands. */
#include "cli.h"
#include "input.h"
#include "output.h"

#include "core/fs.h"
#include "library/monitor.h"
#include "net/identity.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
  "Usage: lanspread-peer-cli [--game-dir DIR] [--catalog FILE] [--state-dir DIR] [--serve]\n"
  "\n"
  "A headless Lanspread peer. It scans GAME_DIR, keeps watching it, prints\n"
  "events as JSON lines on stdout and reads one command per line on stdin.\n"
  "Logs go to stderr.\n"
  "\n"
  "Options:\n"
  "  --game-dir DIR    the game library (default: $XDG_DATA_HOME/lanspread/games,\n"
  "                    i.e. ~/.local/share/lanspread/games, created if missing)\n"
  "  --catalog FILE    the catalog of known games (default: the bundled sample)\n"
  "  --state-dir DIR   node identity and library index (default:\n"
  "                    $XDG_STATE_HOME/lanspread, i.e. ~/.local/state/lanspread)\n"
  "  --serve           keep running at end of stdin; stop with SIGINT/SIGTERM\n"
  "  -h, --help        show this help\n"
  "\n"
  "Commands (one per line): games, peers, peer-count, quit, help.\n"
  "Networking commands (get, fetch-latest, download, cancel, install,\n"
  "uninstall, remove, set-game-dir, wait, wait-peers) answer\n"
  "{\"ok\":false,\"error\":\"not implemented\"} in this version.\n"
  "\n"
  "Exit status: 0 after quit or a signal, 2 for a usage error, 1 when the\n"
  "peer cannot run (unusable game directory, bad catalog).\n";

/* $XDG_<var> or ~/<fallback>, then /lanspread[/sub]. */
static char *default_dir(const char *xdg_var, const char *fallback, const char *sub)
{
  const char *xdg = getenv(xdg_var), *home = getenv("HOME");
  char buf[4096];
  if (xdg && xdg[0] == '/')
    snprintf(buf, sizeof buf, "%s/lanspread%s%s", xdg, sub ? "/" : "", sub ? sub : "");
  else
    snprintf(buf, sizeof buf, "%s/%s/lanspread%s%s", home && *home ? home : "/tmp", fallback,
             sub ? "/" : "", sub ? sub : "");
  return strdup(buf);
}

static int parse_args(int argc, char **argv, cli *c)
{
  enum { OPT_GAME_DIR = 1, OPT_CATALOG, OPT_STATE_DIR, OPT_SERVE };
  static const struct option options[] = {
    {"game-dir", required_argument, NULL, OPT_GAME_DIR},
    {"catalog", required_argument, NULL, OPT_CATALOG},
    {"state-dir", required_argument, NULL, OPT_STATE_DIR},
    {"serve", no_argument, NULL, OPT_SERVE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
  };
  int opt;
  while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
    switch (opt) {
    case OPT_GAME_DIR: c->game_dir = strdup(optarg); break;
    case OPT_CATALOG: c->catalog_path = optarg; break;
    case OPT_STATE_DIR: c->state_dir = strdup(optarg); break;
    case OPT_SERVE: c->serve = true; break;
    case 'h': fputs(usage, stdout); exit(0);
    default: fputs("Try 'lanspread-peer-cli --help'.\n", stderr); return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "lanspread-peer-cli: unexpected argument '%s'\nTry --help.\n", argv[optind]);
    return 2;
  }
  if (!c->game_dir) {
    c->game_dir = default_dir("XDG_DATA_HOME", ".local/share", "games");
    c->default_game_dir = true;
  }
  if (!c->state_dir)
    c->state_dir = default_dir("XDG_STATE_HOME", ".local/state", NULL);
  return 0;
}

static int load_catalog(cli *c)
{
  ls_diag diag;
  int rc = c->catalog_path ? ls_catalog_load_file(c->catalog_path, &c->catalog, &diag)
                           : ls_catalog_load_builtin(&c->catalog, &diag);
  if (rc != LS_OK)
    fprintf(stderr, "lanspread-peer-cli: catalog refused: %s\n", diag.text);
  return rc;
}

/* The game directory must exist and be a writable directory; the default
 * one is created on first use. */
static int check_game_dir(cli *c)
{
  ls_diag diag;
  if (c->default_game_dir && ls_mkdir_p(c->game_dir, 0, &diag) != LS_OK) {
    fprintf(stderr, "lanspread-peer-cli: %s\n", diag.text);
    return -1;
  }
  struct stat st;
  if (stat(c->game_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    fprintf(stderr, "lanspread-peer-cli: game directory %s does not exist or is not a "
                    "directory; create it or pass another --game-dir\n", c->game_dir);
    return -1;
  }
  if (access(c->game_dir, W_OK) != 0) {
    fprintf(stderr, "lanspread-peer-cli: game directory %s is not writable\n", c->game_dir);
    return -1;
  }
  return 0;
}

static void on_library_change(void *user, const ls_library *lib, const char *const *ids,
                              size_t n)
{
  (void)lib;
  cli_emit_games_updated(user, ids, n);
}

static int start_peer(cli *c)
{
  ls_diag diag;
  if (ls_mkdir_p(c->state_dir, 1, &diag) != LS_OK ||
      ls_identity_load_or_create(c->state_dir, &c->identity, &diag) != LS_OK) {
    fprintf(stderr, "lanspread-peer-cli: state directory %s: %s\n", c->state_dir, diag.text);
    return -1;
  }
  ls_monitor_config cfg = {
    .loop = &c->loop, .game_dir = c->game_dir, .state_dir = c->state_dir,
    .catalog = c->catalog, .on_change = on_library_change, .user = c,
  };
  if (ls_monitor_start(&cfg, &c->monitor, &diag) != LS_OK) {
    fprintf(stderr, "lanspread-peer-cli: %s\n", diag.text);
    return -1;
  }
  return 0;
}

static void on_signal(uv_signal_t *s, int signum)
{
  (void)signum;
  cli_quit(s->data);
}

static void announce(const cli *c)
{
  out_line(json_pack("{s:s, s:s, s:s, s:s}", "type", "ready", "peer_id",
                     ls_identity_peer_id(c->identity), "game_dir", c->game_dir, "state_dir",
                     c->state_dir));
  fprintf(stderr,
          "lanspread-peer-cli: peer %.16s… ready\n"
          "  games:   %s (%zu of %zu catalog games present)\n"
          "  state:   %s\n"
          "  catalog: %s\n"
          "Type 'games' for the library, 'help' for commands; %s stops it.\n",
          ls_identity_peer_id(c->identity), c->game_dir, ls_monitor_library(c->monitor)->count,
          ls_catalog_count(c->catalog), c->state_dir,
          c->catalog_path ? c->catalog_path : "bundled sample",
          c->serve ? "'quit' or Ctrl-C" : "'quit', Ctrl-D or Ctrl-C");
}

static void on_monitor_closed(void *user)
{
  cli *c = user;
  c->monitor = NULL;
}

void cli_quit(cli *c)
{
  if (c->quitting)
    return;
  c->quitting = true;
  if (c->input)
    cli_input_stop(c->input);
  c->input = NULL;
  uv_close((uv_handle_t *)&c->sigint, NULL);
  uv_close((uv_handle_t *)&c->sigterm, NULL);
  if (c->monitor)
    ls_monitor_close(c->monitor, on_monitor_closed, c);
}

static int run(cli *c)
{
  uv_loop_init(&c->loop);
  if (start_peer(c) != 0) {
    uv_loop_close(&c->loop);
    return 1;
  }
  uv_signal_init(&c->loop, &c->sigint);
  uv_signal_init(&c->loop, &c->sigterm);
  c->sigint.data = c->sigterm.data = c;
  uv_signal_start(&c->sigint, on_signal, SIGINT);
  uv_signal_start(&c->sigterm, on_signal, SIGTERM);
  announce(c);
  cli_emit_games_updated(c, NULL, 0);
  if (cli_input_start(&c->loop, cli_on_line, c, &c->input) != 0) {
    fprintf(stderr, "lanspread-peer-cli: cannot read stdin\n");
    cli_quit(c);
  }
  uv_run(&c->loop, UV_RUN_DEFAULT);
  uv_loop_close(&c->loop);
  return 0;
}

int main(int argc, char **argv)
{
  signal(SIGPIPE, SIG_IGN);
  cli c = {0};
  int rc = parse_args(argc, argv, &c);
  if (rc == 0 && load_catalog(&c) != LS_OK)
    rc = 1;
  if (rc == 0 && check_game_dir(&c) != 0)
    rc = 1;
  if (rc == 0)
    rc = run(&c);
  ls_identity_free(c.identity);
  ls_catalog_free(c.catalog);
  free(c.game_dir);
  free(c.state_dir);
  return rc;
}
