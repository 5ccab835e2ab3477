/* lanspread-peer-cli: a headless peer driven by commands on stdin, printing
 * events as JSON lines on stdout (docs/CLI.md). This file owns the
 * command line, start-up, the main loop (stdin lines, runtime events,
 * signals) and shutdown; commands.c parses commands, waits.c answers wait. */
#include "cli.h"
#include "input.h"
#include "output.h"

#include "core/fs.h"

#include <lanspread/release.h>

#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
  "Usage: lanspread-peer-cli [--game-dir DIR] [--catalog FILE] [--state-dir DIR]\n"
  "         [--listen HOST:PORT] [--peer HOST:PORT]... [--no-mdns] [--name NAME]\n"
  "         [--unpacker CMD] [--party-key-file FILE] [--serve] | --help | --version\n"
  "\n"
  "A headless Lanspread peer: it serves GAME_DIR to other peers over QUIC,\n"
  "connects to the peers it knows, keeps one library of every game any of\n"
  "them has, prints events as JSON lines on stdout and reads one command per\n"
  "line on stdin. Logs go to stderr.\n"
  "\n"
  "Options:\n"
  "  --game-dir DIR     the game library (default: $XDG_DATA_HOME/lanspread/games,\n"
  "                     i.e. ~/.local/share/lanspread/games, created if missing)\n"
  "  --catalog FILE     the catalog of known games (default: the bundled sample)\n"
  "  --state-dir DIR    node identity and library index (default:\n"
  "                     $XDG_STATE_HOME/lanspread, i.e. ~/.local/state/lanspread)\n"
  "  --listen HOST:PORT the UDP address to serve QUIC on (default 0.0.0.0:8361, or\n"
  "                     a free port, logged, when that is taken)\n"
  "  --peer HOST:PORT   a peer to connect to and keep alive (repeatable); for\n"
  "                     networks where multicast does not pass\n"
  "  --no-mdns          no mDNS discovery or advertisement: static peers only\n"
  "  --name NAME        the name other peers see (default: the host name)\n"
  "  --unpacker CMD     external unpacker, e.g. 'unrar x {archive} {dest}'\n"
  "  --party-key-file FILE\n"
  "                     the party key (at least 16 characters): only peers with\n"
  "                     the same key are answered and linked\n"
  "  --serve            keep running at end of stdin; stop with SIGINT/SIGTERM\n"
  "  -h, --help         show this help\n"
  "  --version          print the version and exit\n"
  "\n"
  "Commands (each answered by one {\"type\":\"reply\",\"cmd\":...,\"ok\":...} line):\n"
  "  games                      the merged library of every catalog game present\n"
  "                             here or on a peer\n"
  "  peers, peer-count          the connected peers\n"
  "  get ID, fetch-latest ID    ask the peers with the latest version of ID for\n"
  "                             its file list (prints game-files)\n"
  "  set-game-dir DIR           switch to another game directory (refused while an\n"
  "                             operation runs)\n"
  "  wait TYPE [ID] [TIMEOUT_S] reply once an event of TYPE (for game ID) has been\n"
  "                             printed; each event answers one wait; default 30 s\n"
  "  wait-peers N [TIMEOUT_S]   reply once N peers are connected\n"
  "  download ID                get the latest file list of ID and download all of\n"
  "                             it from every peer that has that version (events:\n"
  "                             game-download-begin, -progress, -finished/-failed);\n"
  "                             a paused download resumes: only missing chunks\n"
  "                             are fetched, data already on disk is reused\n"
  "  pause ID                   stop a download and keep it (game-download-paused);\n"
  "                             a crash or a stop of the program keeps it too\n"
  "  cancel ID                  stop a running or paused download; its partial\n"
  "                             files are deleted (after game-download-finished\n"
  "                             the install runs by itself: an update when the\n"
  "                             game is installed)\n"
  "  verify ID [--repair]       re-hash the downloaded files of ID against the file\n"
  "                             list the peers serve for its version (game-verify-\n"
  "                             begin, -progress, -finished/-failed); --repair\n"
  "                             fetches only what does not match, as a download\n"
  "  install ID                 extract the downloaded archives of ID into local/\n"
  "                             (reinstall as an update when installed; events:\n"
  "                             game-install-begin, -progress, -finished/-failed)\n"
  "  uninstall ID               delete local/, keep the downloaded files\n"
  "                             (game-uninstall-begin, -finished/-failed)\n"
  "  remove ID                  delete the downloaded game; refused while it is\n"
  "                             installed or busy (game-remove-begin,\n"
  "                             -finished/-failed)\n"
  "  loop-stats                 the worst lag of the peer's event loop (how late a\n"
  "                             10 ms timer fired) since the last loop-stats\n"
  "  manifest-digest ID         the manifest digest of the version of ID this peer\n"
  "                             has (\"sha256:...\"): what a catalog pins in\n"
  "                             \"versions\" so that no other file list of it\n"
  "                             is accepted\n"
  "  quit                       stop (end of stdin does the same without --serve)\n"
  "\n"
  "Exit status: 0 after quit or a signal, 2 for a usage error, 1 when the\n"
  "peer cannot run (unusable game directory, bad catalog, port taken).\n";

static void die_usage(const char *fmt, const char *arg)
{
  fprintf(stderr, "lanspread-peer-cli: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\nTry 'lanspread-peer-cli --help'.\n");
  exit(2);
}

static void add_static_peer(cli *c, const char *addr)
{
  size_t n = c->config.static_peer_count;
  const char **peers = realloc(c->static_peers, (n + 1) * sizeof *peers);
  if (!peers)
    exit(1);
  peers[n] = addr;
  c->static_peers = peers;
  c->config.static_peers = peers;
  c->config.static_peer_count = n + 1;
}

static void parse_args(int argc, char **argv, cli *c)
{
  enum { O_GAME_DIR = 1, O_CATALOG, O_STATE_DIR, O_LISTEN, O_PEER, O_NO_MDNS, O_NAME,
         O_UNPACKER, O_PARTY_KEY, O_SERVE, O_VERSION };
  static const struct option options[] = {
    {"game-dir", required_argument, NULL, O_GAME_DIR},
    {"catalog", required_argument, NULL, O_CATALOG},
    {"state-dir", required_argument, NULL, O_STATE_DIR},
    {"listen", required_argument, NULL, O_LISTEN},
    {"peer", required_argument, NULL, O_PEER},
    {"no-mdns", no_argument, NULL, O_NO_MDNS},
    {"name", required_argument, NULL, O_NAME},
    {"unpacker", required_argument, NULL, O_UNPACKER},
    {"party-key-file", required_argument, NULL, O_PARTY_KEY},
    {"serve", no_argument, NULL, O_SERVE},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, O_VERSION},
    {NULL, 0, NULL, 0},
  };
  c->config.mdns = true;
  int opt;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
    switch (opt) {
    case O_GAME_DIR: c->game_dir = strdup(optarg); break;
    case O_CATALOG: c->config.catalog_path = optarg; break;
    case O_STATE_DIR: c->state_dir = strdup(optarg); break;
    case O_LISTEN: c->config.listen = optarg; break;
    case O_PEER: add_static_peer(c, optarg); break;
    case O_NO_MDNS: c->config.mdns = false; break;
    case O_NAME: c->config.name = optarg; break;
    case O_UNPACKER: c->config.unpacker = optarg; break;
    case O_PARTY_KEY: c->config.party_key_file = optarg; break;
    case O_SERVE: c->serve = true; break;
    case 'h': fputs(usage, stdout); exit(0);
    case O_VERSION: printf("lanspread-peer-cli %s\n", ls_release_version()); exit(0);
    default: die_usage("unknown option or missing value: '%s'", argv[optind - 1]);
    }
  }
  if (optind < argc)
    die_usage("unexpected argument '%s'", argv[optind]);
  if (!c->game_dir) {
    c->game_dir = ls_user_dir("XDG_DATA_HOME", ".local/share", "games");
    c->default_game_dir = true;
  }
  if (!c->state_dir)
    c->state_dir = ls_user_dir("XDG_STATE_HOME", ".local/state", NULL);
  c->config.game_dir = c->game_dir;
  c->config.state_dir = c->state_dir;
}

/* ---- the main loop ------------------------------------------------------- */

static void on_events(uv_poll_t *h, int status, int events)
{
  cli *c = h->data;
  (void)status;
  (void)events;
  ls_event *ev;
  while (c->peer && (ev = ls_peer_next_event(c->peer)) != NULL) {
    fputs(ev->json, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    cli_waits_on_event(c, ev);
    bool answered = ev->kind == LS_EVENT_REPLY && ev->tag == c->awaiting_tag;
    ls_event_free(ev);
    if (answered)
      cli_command_done(c);
  }
}

static void on_signal(uv_signal_t *s, int signum)
{
  (void)signum;
  cli_quit(s->data);
}

void cli_quit(cli *c)
{
  if (c->quitting)
    return;
  c->quitting = true;
  if (c->input)
    cli_input_stop(c->input);
  c->input = NULL;
  cli_waits_close(c);
  cli_commands_close(c);
  uv_close((uv_handle_t *)&c->sigint, NULL);
  uv_close((uv_handle_t *)&c->sigterm, NULL);
  uv_close((uv_handle_t *)&c->events, NULL);
}

static void announce(const cli *c)
{
  out_line(json_pack("{s:s, s:s, s:s, s:s, s:s, s:s?}", "type", "ready", "peer_id",
                     ls_peer_id(c->peer), "listen", ls_peer_listen_address(c->peer),
                     "game_dir", c->game_dir, "state_dir", c->state_dir, "party_key",
                     ls_peer_party_fingerprint(c->peer)));
  fprintf(stderr,
          "lanspread-peer-cli: peer %.16s… listening on %s (UDP)\n"
          "  games:   %s\n"
          "  state:   %s\n"
          "  catalog: %s\n"
          "Type 'games' for the library, 'help' for commands; %s stops it.\n",
          ls_peer_id(c->peer), ls_peer_listen_address(c->peer), c->game_dir, c->state_dir,
          c->config.catalog_path ? c->config.catalog_path : "bundled sample",
          c->serve ? "'quit' or Ctrl-C" : "'quit', Ctrl-D or Ctrl-C");
}

static int run(cli *c)
{
  ls_diag diag;
  if (c->default_game_dir && ls_mkdir_p(c->game_dir, 0, &diag) != LS_OK) {
    fprintf(stderr, "lanspread-peer-cli: %s\n", diag.text);
    return 1;
  }
  if (ls_peer_start(&c->config, &c->peer, &diag) != LS_OK) {
    fprintf(stderr, "lanspread-peer-cli: %s\n", diag.text);
    return 1;
  }
  uv_loop_init(&c->loop);
  c->history = json_object();
  uv_signal_init(&c->loop, &c->sigint);
  uv_signal_init(&c->loop, &c->sigterm);
  uv_poll_init(&c->loop, &c->events, ls_peer_event_fd(c->peer));
  c->sigint.data = c->sigterm.data = c->events.data = c;
  uv_signal_start(&c->sigint, on_signal, SIGINT);
  uv_signal_start(&c->sigterm, on_signal, SIGTERM);
  announce(c);
  uv_poll_start(&c->events, UV_READABLE, on_events);
  if (cli_input_start(&c->loop, cli_on_line, c, &c->input) != 0) {
    fprintf(stderr, "lanspread-peer-cli: cannot read stdin\n");
    cli_quit(c);
  }
  uv_run(&c->loop, UV_RUN_DEFAULT);
  ls_peer_stop(c->peer);
  c->peer = NULL;
  uv_loop_close(&c->loop);
  return 0;
}

int main(int argc, char **argv)
{
  signal(SIGPIPE, SIG_IGN);
  /* Downloads, extraction and serving allocate large buffers (chunks,
   * archive blocks) on several threads; mapped one by one they go back to
   * the system when freed, so a long-running peer keeps no arena at its
   * high-water mark. Measured by scripts/soak: without this, RSS settles
   * about 50% above its level after the first cycle. */
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  cli c = {0};
  parse_args(argc, argv, &c);
  int rc = run(&c);
  free(c.static_peers);
  free(c.game_dir);
  free(c.state_dir);
  return rc;
}
