/* lanspread: the daemon with the local web UI (docs/API.md). Owns the
 * command line (also --login-url and --set-ui-password, which need no
 * daemon), the defaults (config, state and game directories), the API key
 * file, the order of start and stop, the browser, and the signals. */
#include "app.h"
#include "auth.h"
#include "http.h"
#include "play.h"

#include "core/error.h"
#include "core/fs.h"
#include "core/hex.h"

#include <lanspread/release.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

static const char usage[] =
  "Usage: lanspread [OPTION]...\n"
  "Shares your game library with the other Lanspread peers on the LAN and\n"
  "serves a web UI to browse, download, install and play games.\n"
  "\n"
  "  --gui HOST:PORT    where the web UI listens (default 127.0.0.1:8360 (TCP), or\n"
  "                     a free port when that is taken; port 0 picks a free one).\n"
  "                     It answers only requests addressed to that address, and\n"
  "                     only to a logged-in browser. Off loopback it needs a\n"
  "                     UI password (--set-ui-password)\n"
  "  --no-browser       do not open the UI in a browser\n"
  "  --config FILE      the settings file (default: $XDG_CONFIG_HOME/lanspread/\n"
  "                     config.json, i.e. ~/.config/lanspread/config.json)\n"
  "  --state-dir DIR    node identity, library index, API key, login address, UI\n"
  "                     password hash and the party key set in the UI (default:\n"
  "                     $XDG_STATE_HOME/lanspread, i.e. ~/.local/state/lanspread);\n"
  "                     made private (0700) when it is not\n"
  "  --catalog FILE     the catalog of known games (default: the bundled sample)\n"
  "  --game-dir DIR     the game library for this run (else the one in the\n"
  "                     settings; with none, the UI asks for it)\n"
  "  --listen HOST:PORT the UDP address the peer serves QUIC on (default\n"
  "                     0.0.0.0:8361, or a free port, logged, when that is taken)\n"
  "  --peer HOST:PORT   a static peer, for networks without multicast; repeat\n"
  "                     for several (this run; the UI's list is added)\n"
  "  --no-mdns          no mDNS discovery or advertisement: static peers only\n"
  "  --name NAME        the name other peers see for this run (default: the\n"
  "                     one in the settings, else the host name)\n"
  "  --unpacker CMD     external unpacker, e.g. 'unrar x {archive} {dest}/'\n"
  "  --party-key-file FILE\n"
  "                     the party key (at least 16 characters): only peers with\n"
  "                     the same key are answered and linked; for this run it\n"
  "                     wins over the key set in the UI\n"
  "  --login-url        print a fresh one-time login address of the lanspread\n"
  "                     running with this state directory (it works once, for 15\n"
  "                     minutes), and exit\n"
  "  --set-ui-password  read a UI password (8 bytes or more) from the terminal or\n"
  "                     one line of stdin, store its hash in the state directory\n"
  "                     and exit (the UI's settings panel can change it too); a\n"
  "                     running lanspread ends every session\n"
  "  -h, --help         show this help\n"
  "  --version          print the version and exit\n"
  "\n"
  "It prints 'Lanspread UI: http://HOST:PORT/' once serving, then a one-time\n"
  "login address (for 15 minutes), which it opens in a browser. --game-dir, --name,\n"
  "--peer and --gui override the settings file for this run only; changes made\n"
  "in the UI are saved to it. Stop with Ctrl-C (SIGINT) or SIGTERM.\n"
  "\n"
  "Exit status: 0 after a signal, 2 for a usage error, 1 when it cannot serve\n"
  "(address taken, unreadable settings or state directory).\n";

typedef struct options {
  const char *gui, *config, *state_dir, *catalog, *game_dir, *listen, *name, *unpacker;
  const char *party_key_file;
  long long login_ttl_ms; /* 0: LSD_LOGIN_TTL_MS */
  const char *peers[LSD_MAX_STATIC_PEERS];
  size_t peer_count;
  bool no_browser, no_mdns, login_url, set_password;
} options;

static void die_usage(const char *fmt, const char *arg)
{
  fprintf(stderr, "lanspread: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\nTry 'lanspread --help'.\n");
  exit(2);
}

static void check_option(int rc, const ls_diag *diag)
{
  if (rc != LS_OK)
    die_usage("%s", diag->text);
}

static void parse_args(int argc, char **argv, options *o)
{
  enum { O_GUI = 1, O_NO_BROWSER, O_CONFIG, O_STATE_DIR, O_CATALOG, O_GAME_DIR, O_LISTEN,
         O_PEER, O_NO_MDNS, O_NAME, O_UNPACKER, O_PARTY_KEY, O_VERSION, O_LOGIN_URL,
         O_SET_PASSWORD, O_TEST_LOGIN_TTL };
  static const struct option longopts[] = {
    {"gui", required_argument, NULL, O_GUI},
    {"no-browser", no_argument, NULL, O_NO_BROWSER},
    {"config", required_argument, NULL, O_CONFIG},
    {"state-dir", required_argument, NULL, O_STATE_DIR},
    {"catalog", required_argument, NULL, O_CATALOG},
    {"game-dir", required_argument, NULL, O_GAME_DIR},
    {"listen", required_argument, NULL, O_LISTEN},
    {"peer", required_argument, NULL, O_PEER},
    {"no-mdns", no_argument, NULL, O_NO_MDNS},
    {"name", required_argument, NULL, O_NAME},
    {"unpacker", required_argument, NULL, O_UNPACKER},
    {"party-key-file", required_argument, NULL, O_PARTY_KEY},
    {"login-url", no_argument, NULL, O_LOGIN_URL},
    {"set-ui-password", no_argument, NULL, O_SET_PASSWORD},
    /* Not in --help: the tests' way to see a login address expire. */
    {"test-login-ttl-ms", required_argument, NULL, O_TEST_LOGIN_TTL},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, O_VERSION},
    {NULL, 0, NULL, 0},
  };
  ls_diag diag;
  int opt;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (opt) {
    case O_GUI: check_option(lsd_check_host_port(optarg, &diag), &diag); o->gui = optarg; break;
    case O_NO_BROWSER: o->no_browser = true; break;
    case O_CONFIG: o->config = optarg; break;
    case O_STATE_DIR: o->state_dir = optarg; break;
    case O_CATALOG: o->catalog = optarg; break;
    case O_GAME_DIR: o->game_dir = optarg; break;
    case O_LISTEN: check_option(lsd_check_host_port(optarg, &diag), &diag); o->listen = optarg; break;
    case O_PEER:
      check_option(lsd_check_host_port(optarg, &diag), &diag);
      if (o->peer_count == LSD_MAX_STATIC_PEERS)
        die_usage("at most %s --peer options", "64");
      o->peers[o->peer_count++] = optarg;
      break;
    case O_NO_MDNS: o->no_mdns = true; break;
    case O_NAME: check_option(lsd_check_name(optarg, &diag), &diag); o->name = optarg; break;
    case O_UNPACKER: o->unpacker = optarg; break;
    case O_PARTY_KEY: o->party_key_file = optarg; break;
    case O_LOGIN_URL: o->login_url = true; break;
    case O_SET_PASSWORD: o->set_password = true; break;
    case O_TEST_LOGIN_TTL:
      o->login_ttl_ms = strtoll(optarg, NULL, 10);
      if (o->login_ttl_ms <= 0)
        die_usage("--test-login-ttl-ms takes a number of milliseconds, not '%s'", optarg);
      break;
    case 'h': fputs(usage, stdout); exit(0);
    case O_VERSION: printf("lanspread %s\n", ls_release_version()); exit(0);
    default: die_usage("unknown option or missing value: '%s'", argv[optind - 1]);
    }
  }
  if (optind < argc)
    die_usage("unexpected argument '%s'", argv[optind]);
  if (o->login_url && o->set_password)
    die_usage("%s", "--login-url and --set-ui-password go alone");
}

/* The settings file's values with this run's command-line overrides. */
static int apply_overrides(lsd_settings *s, const options *o, ls_diag *diag)
{
  json_t *over = json_object();
  if (o->name)
    json_object_set_new(over, "name", json_string(o->name));
  if (o->gui)
    json_object_set_new(over, "gui", json_string(o->gui));
  if (o->peer_count) {
    json_t *peers = json_array();
    for (size_t i = 0; i < s->static_peer_count; i++)
      json_array_append_new(peers, json_string(s->static_peers[i]));
    for (size_t i = 0; i < o->peer_count; i++)
      json_array_append_new(peers, json_string(o->peers[i]));
    json_object_set_new(over, "static_peers", peers);
  }
  int rc = lsd_settings_update(s, over, diag);
  json_decref(over);
  if (rc == LS_OK && o->game_dir) {
    char *real = realpath(o->game_dir, NULL); /* checked when the runtime starts */
    free(s->game_dir);
    s->game_dir = real ? real : strdup(o->game_dir);
  }
  return rc;
}

/* The state directory, 0700, and its secrets (the API key, the login
 * address, the UI password's hash, the party key), 0600: a wider mode left
 * by hand or an older version is taken away, and said. */
static int prepare_state_dir(const char *state_dir, ls_diag *diag)
{
  static const char *const secrets[] = {"api-key", "login-url", LSD_LOGIN_PAGE, "ui-password",
                                        "party-key"};
  ls_diag note;
  int rc = ls_state_dir_prepare(state_dir, &note, diag);
  if (rc == LS_OK && note.text[0])
    fprintf(stderr, "lanspread: %s\n", note.text);
  for (size_t i = 0; rc == LS_OK && i < sizeof secrets / sizeof secrets[0]; i++) {
    char path[4096];
    unsigned old;
    snprintf(path, sizeof path, "%s/%s", state_dir, secrets[i]);
    if ((rc = ls_restrict_mode(path, 0600, &old, diag)) == LS_OK && old)
      fprintf(stderr, "lanspread: %s had mode %04o, open to other users: it is 0600 now\n",
              path, old);
  }
  return rc;
}

/* STATE_DIR/api-key: 64 hex characters, made once, mode 0600. */
static int load_api_key(const char *state_dir, char key[LSD_API_KEY_LEN + 1], ls_diag *diag)
{
  char path[4096];
  snprintf(path, sizeof path, "%s/api-key", state_dir);
  char *data;
  size_t len;
  int rc = ls_read_file_at(AT_FDCWD, path, 256, &data, &len, diag);
  if (rc == LS_OK) {
    bool ok = len >= LSD_API_KEY_LEN && ls_hex_is_lower(data, LSD_API_KEY_LEN) &&
              !ls_hex_is_lower(data + LSD_API_KEY_LEN, 1);
    if (ok)
      snprintf(key, LSD_API_KEY_LEN + 1, "%s", data);
    free(data);
    if (ok)
      return LS_OK;
  } else if (rc != LS_ENOENT) {
    return rc;
  }
  unsigned char raw[LSD_API_KEY_LEN / 2];
  if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
    return ls_diag_errno(diag, errno, "cannot make an API key:", "getrandom");
  ls_hex_encode(raw, sizeof raw, key);
  return ls_write_file_atomic(path, key, LSD_API_KEY_LEN, 0600, diag);
}

/* One line of the terminal without echo, or of stdin. */
static int read_password(char *buf, size_t size, ls_diag *diag)
{
  struct termios old, quiet;
  bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
  if (tty) {
    fprintf(stderr, "UI password: ");
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  bool got = fgets(buf, (int)size, stdin) != NULL;
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    fprintf(stderr, "\n");
  }
  if (!got)
    return ls_diag_set(diag, LS_EINVAL, "no password on stdin");
  buf[strcspn(buf, "\r\n")] = '\0';
  return LS_OK;
}

/* --login-url and --set-ui-password: exit 0 when done, 1 otherwise. */
static int run_tool(const options *o)
{
  char *state_dir = o->state_dir ? strdup(o->state_dir)
                                 : ls_user_dir("XDG_STATE_HOME", ".local/state", NULL);
  ls_diag diag = {0};
  int rc;
  if (o->login_url) {
    char *url = NULL;
    if ((rc = lsd_auth_issue_login_url(state_dir, &url, &diag)) == LS_OK)
      printf("%s\n", url);
    free(url);
  } else {
    char pass[1100];
    if ((rc = read_password(pass, sizeof pass, &diag)) == LS_OK)
      rc = lsd_auth_set_password(state_dir, pass, &diag);
    explicit_bzero(pass, sizeof pass);
    if (rc == LS_OK)
      fprintf(stderr, "lanspread: UI password set (a running lanspread ends its sessions)\n");
  }
  if (rc != LS_OK)
    fprintf(stderr, "lanspread: %s\n", diag.text[0] ? diag.text : ls_strerror(rc));
  free(state_dir);
  return rc == LS_OK ? 0 : 1;
}

/* xdg-open of the login page (auth.c's STATE_DIR/login.html, never the
 * login address: a command line is readable by every local user) when a
 * graphical session is there; otherwise the printed address is the way
 * in. */
static void open_browser(lsd_auth *auth)
{
  const char *x11 = getenv("DISPLAY"), *wayland = getenv("WAYLAND_DISPLAY");
  if (!(x11 && *x11) && !(wayland && *wayland))
    return;
  char url[4200];
  ls_diag diag;
  if (lsd_auth_login_page(auth, url, sizeof url, &diag) != LS_OK) {
    fprintf(stderr, "lanspread: could not open a browser: %s\n", diag.text);
    return;
  }
  const char *path = getenv("PATH");
  char dirs[4096], exe[4200];
  snprintf(dirs, sizeof dirs, "%s", path ? path : "/usr/bin:/bin");
  for (char *save, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
    snprintf(exe, sizeof exe, "%s/xdg-open", d);
    if (access(exe, X_OK) != 0)
      continue;
    char *const argv[] = {exe, url, NULL};
    pid_t pid;
    if (lsd_spawn_detached(argv, "/", &pid, &diag) != LS_OK)
      fprintf(stderr, "lanspread: could not open a browser: %s\n", diag.text);
    return;
  }
}

static void print_where(const lsd_app *app, const char *url, const char *login,
                        const char *state_dir)
{
  printf("Lanspread UI: %s\n", url);
  printf("  log in:   %s (once; 'lanspread --login-url' gives another)\n", login);
  printf("  settings: %s\n", app->config_path);
  printf("  state:    %s\n", state_dir);
  if (app->effective.game_dir)
    printf("  games:    %s\n", app->effective.game_dir);
  else
    printf("  games:    not chosen yet: open the UI to choose a folder\n");
  printf("Stop with Ctrl-C.\n");
  fflush(stdout);
}

/* The UI on its address; when none is chosen and another program (another
 * user's Lanspread) holds LSD_DEFAULT_GUI, on a free port of loopback. */
static int start_ui(lsd_app *app, lsd_http **http, ls_diag *diag)
{
  if (app->effective.gui)
    return lsd_http_start(app, app->effective.gui, http, diag);
  int rc = lsd_http_start(app, LSD_DEFAULT_GUI, http, diag);
  if (rc != LS_OK && (rc = lsd_http_start(app, LSD_DEFAULT_UI_FALLBACK, http, diag)) == LS_OK)
    fprintf(stderr, "lanspread: %s is taken; the UI is on %s instead\n", LSD_DEFAULT_GUI,
            lsd_http_url(*http));
  return rc;
}

static int run(const options *o, sigset_t *signals)
{
  char *config = o->config ? strdup(o->config) : ls_user_dir("XDG_CONFIG_HOME", ".config",
                                                             "config.json");
  char *state_dir = o->state_dir ? strdup(o->state_dir)
                                 : ls_user_dir("XDG_STATE_HOME", ".local/state", NULL);
  char *suggested = ls_user_dir("XDG_DATA_HOME", ".local/share", "games");
  lsd_app app = {.config_path = config, .state_dir = state_dir,
                 .suggested_game_dir = suggested};
  pthread_mutex_init(&app.settings_lock, NULL);
  lsd_http *http = NULL;
  ls_diag diag;
  int rc = lsd_settings_load(config, &app.saved, &diag);
  if (rc == LS_OK && (rc = lsd_settings_copy(&app.effective, &app.saved)) == LS_OK)
    rc = apply_overrides(&app.effective, o, &diag);
  if (rc == LS_OK)
    rc = prepare_state_dir(state_dir, &diag);
  if (rc == LS_OK)
    rc = load_api_key(state_dir, app.api_key, &diag);
  if (rc == LS_OK)
    rc = lsd_auth_create(state_dir, &app.auth, &diag);
  if (rc == LS_OK && o->login_ttl_ms)
    lsd_auth_set_login_ttl(app.auth, o->login_ttl_ms);
  if (rc == LS_OK)
    rc = lsd_auth_check_gui(app.auth, app.effective.gui ? app.effective.gui : LSD_DEFAULT_GUI,
                            &diag);
  if (rc == LS_OK)
    rc = lsd_hub_create(&app.hub);
  lsd_party_init(&app.party, state_dir, o->party_key_file);
  lsd_host_config hc = {.state_dir = state_dir, .catalog_path = o->catalog,
                        .listen = o->listen, .mdns = !o->no_mdns, .unpacker = o->unpacker,
                        .party_key_file = app.party.file[0] ? app.party.file : NULL};
  if (rc == LS_OK)
    rc = lsd_host_create(&hc, app.hub, &app.host);
  if (rc == LS_OK && o->catalog)
    rc = lsd_host_load_catalog(app.host, &diag); /* a bad --catalog is a start error */
  if (rc == LS_OK)
    rc = start_ui(&app, &http, &diag);
  if (rc == LS_OK)
    rc = lsd_auth_begin(app.auth, lsd_http_url(http), &diag);
  if (rc != LS_OK) {
    fprintf(stderr, "lanspread: %s\n", diag.text[0] ? diag.text : ls_strerror(rc));
  } else {
    /* The UI already answers: a PUT /api/settings may replace app.effective. */
    pthread_mutex_lock(&app.settings_lock);
    if (app.effective.game_dir && lsd_host_start(app.host, &app.effective, &diag) != LS_OK)
      fprintf(stderr, "lanspread: the peer did not start: %s\n"
                      "lanspread: choose a game directory in the UI\n", diag.text);
    lsd_app_publish_status(&app);
    char login[1024];
    lsd_auth_login_url(app.auth, login, sizeof login);
    print_where(&app, lsd_http_url(http), login, state_dir);
    pthread_mutex_unlock(&app.settings_lock);
    if (!o->no_browser)
      open_browser(app.auth);
    int sig;
    sigwait(signals, &sig);
    fprintf(stderr, "lanspread: stopping\n");
  }
  if (app.hub)
    lsd_hub_close(app.hub); /* event streams end, so the HTTP threads can */
  if (app.host)
    lsd_host_stop(app.host);
  lsd_http_stop(http);
  lsd_auth_free(app.auth);
  lsd_host_free(app.host);
  lsd_hub_free(app.hub);
  lsd_settings_free(&app.saved);
  lsd_settings_free(&app.effective);
  pthread_mutex_destroy(&app.settings_lock);
  free(config);
  free(state_dir);
  free(suggested);
  return rc == LS_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
  options o = {0};
  parse_args(argc, argv, &o);
  if (o.login_url || o.set_password)
    return run_tool(&o);
  /* Large buffers straight from mmap, so RSS falls back after a download
   * (as in lanspread-peer-cli; measured there by scripts/soak). */
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  /* Every thread inherits the blocked signals; the main thread waits for
   * them. A closed connection must not kill the daemon. */
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, NULL);
  signal(SIGPIPE, SIG_IGN);
  return run(&o, &signals);
}
