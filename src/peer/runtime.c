/* Owns the peer runtime's lifecycle (include/lanspread/peer.h): start-up on
 * the caller's thread, the runtime thread and its loop, the command queue,
 * command dispatch, SetGameDir, and the orderly shutdown. Events are
 * events.c's. */
#include "peer/runtime.h"

#include "core/error.h"
#include "core/fs.h"
#include "core/utf8.h"
#include "download/storage.h"
#include "install/unpack.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

/* One queued command; its strings are copies. */
struct queued {
  queued *next;
  ls_command cmd;
  char *id, *path;
  char **files;
};

/* ---- commands --------------------------------------------------------- */

static void free_queued_command(queued *q)
{
  free(q->id);
  free(q->path);
  for (size_t i = 0; q->files && i < q->cmd.file_count; i++)
    free(q->files[i]);
  free(q->files);
  free(q);
}

static queued *copy_command(const ls_command *cmd)
{
  queued *q = calloc(1, sizeof *q);
  if (!q)
    return NULL;
  q->cmd = *cmd;
  bool ok = (!cmd->id || (q->id = strdup(cmd->id))) && (!cmd->path || (q->path = strdup(cmd->path)));
  if (ok && cmd->files) {
    q->files = calloc(cmd->file_count ? cmd->file_count : 1, sizeof *q->files);
    ok = q->files != NULL;
    for (size_t i = 0; ok && i < cmd->file_count; i++)
      ok = (q->files[i] = strdup(cmd->files[i])) != NULL;
  }
  q->cmd.id = q->id;
  q->cmd.path = q->path;
  q->cmd.files = (const char *const *)q->files;
  if (!ok) {
    free_queued_command(q);
    return NULL;
  }
  return q;
}

int ls_peer_send(ls_peer *p, const ls_command *cmd)
{
  queued *q = copy_command(cmd);
  if (!q)
    return LS_ENOMEM;
  uv_mutex_lock(&p->lock);
  bool stopping = p->stopping;
  if (!stopping) {
    if (p->commands_tail)
      p->commands_tail->next = q;
    else
      p->commands = q;
    p->commands_tail = q;
  }
  uv_mutex_unlock(&p->lock);
  if (stopping) {
    free_queued_command(q);
    return LS_ESTATE;
  }
  uv_async_send(&p->wake);
  return LS_OK;
}

static const char *command_name(ls_command_type type)
{
  static const char *const names[] = {
    [LS_CMD_LIST_GAMES] = "games", [LS_CMD_GET_GAME] = "get",
    [LS_CMD_FETCH_LATEST] = "fetch-latest", [LS_CMD_DOWNLOAD_GAME_FILES] = "download",
    [LS_CMD_INSTALL_GAME] = "install", [LS_CMD_UNINSTALL_GAME] = "uninstall",
    [LS_CMD_REMOVE_DOWNLOADED_GAME] = "remove", [LS_CMD_CANCEL_DOWNLOAD] = "cancel",
    [LS_CMD_SET_GAME_DIR] = "set-game-dir", [LS_CMD_GET_PEER_COUNT] = "peer-count",
    [LS_CMD_LIST_PEERS] = "peers", [LS_CMD_PAUSE_DOWNLOAD] = "pause",
    [LS_CMD_VERIFY_GAME] = "verify", [LS_CMD_LOOP_STATS] = "loop-stats",
    [LS_CMD_MANIFEST_DIGEST] = "manifest-digest",
  };
  return (size_t)type < sizeof names / sizeof names[0] && names[type] ? names[type] : "?";
}

static void on_library_change(void *user, const ls_library *lib, const char *const *ids,
                              size_t n)
{
  (void)lib;
  ls_peer *p = user;
  json_t *changed = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(changed, json_string(ids[i]));
  ls_rt_emit_games(p, changed);
  if (p->mdns)
    ls_mdns_set_revision(p->mdns, ++p->library_rev); /* peers re-list us */
}

/* In the background (SetGameDir) the first scan waits until the old
 * monitor, which owns the index file until it closed, is gone. */
static int start_monitor(ls_peer *p, const char *game_dir, bool background, ls_monitor **out,
                         ls_diag *diag)
{
  ls_monitor_config mc = {
    .loop = &p->loop, .game_dir = game_dir, .state_dir = p->state_dir, .catalog = p->catalog,
    .scan_in_background = background, .defer_first_scan = background,
    .on_change = on_library_change, .user = p,
  };
  return ls_monitor_start(&mc, out, diag);
}

static void on_old_monitor_closed(void *user)
{
  ls_peer *p = user;
  p->old_monitor = NULL;
  if (p->monitor && !p->closing)
    ls_monitor_start_scanning(p->monitor); /* the index is the new one's now */
}

static void set_game_dir(ls_peer *p, const ls_command *cmd)
{
  ls_diag diag;
  char *dir = cmd->path ? realpath(cmd->path, NULL) : NULL;
  int rc = ls_check_game_dir(dir ? dir : cmd->path, &diag);
  ls_monitor *m = NULL;
  if (rc == LS_OK && ls_ops_any_exclusive(p))
    rc = ls_diag_set(&diag, LS_EBUSY, "an operation is running; cancel or finish it first");
  if (rc == LS_OK && p->old_monitor)
    rc = ls_diag_set(&diag, LS_EBUSY, "the previous game directory is still closing; retry");
  if (rc == LS_OK)
    rc = start_monitor(p, dir, true, &m, &diag);
  if (rc == LS_OK)
    rc = ls_serve_set_library(ls_node_serve(p->node), m, dir);
  if (rc != LS_OK) {
    if (m)
      ls_monitor_close(m, NULL, NULL);
    free(dir);
    ls_rt_reply_error(p, cmd->tag, "set-game-dir", rc, "%s", diag.text);
    return;
  }
  p->old_monitor = p->monitor;
  ls_monitor_close(p->old_monitor, on_old_monitor_closed, p);
  p->monitor = m;
  free(p->game_dir);
  p->game_dir = dir;
  ls_downloads_recover(p);
  ls_rt_reply_ok(p, cmd->tag, "set-game-dir", json_pack("{s:s}", "game_dir", dir));
  ls_rt_emit_games(p, NULL);
}

static void run_command(ls_peer *p, const ls_command *cmd)
{
  const char *name = command_name(cmd->type);
  switch (cmd->type) {
  case LS_CMD_LIST_GAMES:
    ls_rt_reply_ok(p, cmd->tag, name, json_pack("{s:o}", "games", ls_rt_games_json(p)));
    break;
  case LS_CMD_LIST_PEERS:
    ls_rt_reply_ok(p, cmd->tag, name, json_pack("{s:o}", "peers", ls_rt_peers_json(p)));
    break;
  case LS_CMD_GET_PEER_COUNT:
    ls_rt_reply_ok(p, cmd->tag, name,
                   json_pack("{s:I}", "count", (json_int_t)ls_links_ready_count(p)));
    break;
  case LS_CMD_LOOP_STATS:
    ls_rt_reply_ok(p, cmd->tag, name, ls_lag_take(p));
    break;
  case LS_CMD_GET_GAME:
  case LS_CMD_FETCH_LATEST:
    ls_gets_run(p, cmd);
    break;
  case LS_CMD_MANIFEST_DIGEST:
    ls_digests_run(p, cmd);
    break;
  case LS_CMD_SET_GAME_DIR:
    set_game_dir(p, cmd);
    break;
  case LS_CMD_DOWNLOAD_GAME_FILES:
    ls_downloads_run(p, cmd);
    break;
  case LS_CMD_CANCEL_DOWNLOAD:
    ls_downloads_cancel(p, cmd);
    break;
  case LS_CMD_PAUSE_DOWNLOAD:
    ls_downloads_pause(p, cmd);
    break;
  case LS_CMD_VERIFY_GAME:
    ls_downloads_run(p, cmd); /* a verification, or with repair a download */
    break;
  case LS_CMD_INSTALL_GAME:
  case LS_CMD_UNINSTALL_GAME:
  case LS_CMD_REMOVE_DOWNLOADED_GAME:
    ls_installs_run(p, cmd);
    break;
  default:
    ls_rt_reply_error(p, cmd->tag, name, LS_EUNSUPPORTED, "not implemented");
    break;
  }
}

/* ---- the runtime thread ------------------------------------------------ */

static void begin_close(ls_peer *p);

static void on_wake(uv_async_t *async)
{
  ls_peer *p = async->data;
  uv_mutex_lock(&p->lock);
  queued *q = p->commands;
  p->commands = p->commands_tail = NULL;
  bool stopping = p->stopping;
  uv_mutex_unlock(&p->lock);
  while (q) {
    queued *next = q->next;
    if (!stopping && !p->closing)
      run_command(p, &q->cmd);
    free_queued_command(q);
    q = next;
  }
  if (stopping && !p->closing)
    begin_close(p);
}

static void on_tick(uv_timer_t *t)
{
  ls_peer *p = t->data;
  p->ticks++;
  ls_links_tick(p);
}

static void on_monitor_closed(void *user)
{
  ls_peer *p = user;
  p->monitor = NULL;
  uv_close((uv_handle_t *)&p->wake, NULL); /* the last handle: the loop ends */
}

static void on_node_closed(void *user)
{
  ls_peer *p = user;
  p->node = NULL;
  ls_monitor_close(p->monitor, on_monitor_closed, p);
}

static void begin_close(ls_peer *p)
{
  p->closing = true;
  ls_downloads_close_all(p);
  ls_installs_close_all(p);
  if (p->mdns)
    ls_mdns_stop(p->mdns); /* synchronous: no discovery callback after this */
  p->mdns = NULL;
  ls_gets_close_all(p);
  ls_links_close_all(p);
  uv_close((uv_handle_t *)&p->tick, NULL);
  ls_lag_close(p);
  ls_node_close(p->node, on_node_closed, p);
}

static void runtime_main(void *arg)
{
  ls_peer *p = arg;
  uv_run(&p->loop, UV_RUN_DEFAULT);
}

/* ---- start and stop ------------------------------------------------------ */

static void free_peer(ls_peer *p)
{
  ls_rt_events_free(p);
  ls_links_free(p);
  ls_downloads_free(p);
  ls_known_save_and_free(p); /* writes only when this session announced new peers */
  if (p->unpacker.unpack)
    ls_unpacker_libarchive_free(&p->unpacker);
  ls_peerdb_free(p->peerdb);
  ls_identity_free(p->identity);
  ls_catalog_free(p->catalog);
  if (p->event_fd >= 0)
    close(p->event_fd);
  free(p->game_dir);
  free(p->state_dir);
  free(p->name);
  free(p);
}

static int load_catalog(ls_peer *p, const char *path, ls_diag *diag)
{
  return path ? ls_catalog_load_file(path, &p->catalog, diag)
              : ls_catalog_load_builtin(&p->catalog, diag);
}

/* The name peers see: the given one or the host name, its first
 * LS_PROTO_MAX_NAME bytes (cut at a character), refused when the protocol
 * would refuse it (core/utf8.h's display rule), since no peer could then
 * take our Hello. */
static int default_name(ls_peer *p, const char *name, ls_diag *diag)
{
  char host[LS_PROTO_MAX_NAME + 1] = "lanspread";
  if (!name || !*name) {
    gethostname(host, sizeof host - 1);
    name = host;
  }
  size_t len = strnlen(name, LS_PROTO_MAX_NAME + 1);
  if (len > LS_PROTO_MAX_NAME)
    for (len = LS_PROTO_MAX_NAME; len > 0 && ls_utf8_is_continuation(name[len]); len--)
      ;
  int rc = ls_utf8_check_displayable(name, len, "name", LS_EINVAL, diag);
  if (rc != LS_OK)
    return rc;
  p->name = strndup(name, len);
  return p->name ? LS_OK : ls_diag_set(diag, LS_ENOMEM, "out of memory");
}

/* The one warning when external unpackers (--unpacker, unrar, 7z) would
 * run without bubblewrap; the probe runs once per process. */
static void warn_unconfined(void)
{
  static atomic_bool warned;
  char why[LS_DIAG_MAX];
  if (!ls_unpack_sandboxed(why, sizeof why) && !atomic_exchange(&warned, true))
    ls_rt_log("warning: an external unpacker (--unpacker, unrar, 7z) would run unconfined, "
              "with all of this user's rights: %s",
              why);
}

/* Everything that can fail, on the caller's thread. */
static int open_everything(ls_peer *p, const ls_peer_config *c, ls_diag *diag)
{
  int rc = load_catalog(p, c->catalog_path, diag);
  if (rc == LS_OK)
    rc = ls_check_game_dir(c->game_dir, diag);
  if (rc == LS_OK && !(p->game_dir = realpath(c->game_dir, NULL)))
    rc = ls_diag_errno(diag, errno, "game directory", c->game_dir);
  ls_diag note;
  if (rc == LS_OK && (rc = ls_state_dir_prepare(c->state_dir, &note, diag)) == LS_OK &&
      note.text[0])
    ls_rt_log("%s", note.text);
  if (rc == LS_OK)
    rc = ls_identity_load_or_create(c->state_dir, &p->identity, diag);
  if (rc == LS_OK && ls_known_load(p) != LS_OK)
    rc = ls_diag_set(diag, LS_ENOMEM, "out of memory");
  if (rc == LS_OK)
    rc = ls_parse_host_port(c->listen ? c->listen : LS_PEER_DEFAULT_LISTEN, &p->listen_addr,
                            diag);
  if (rc == LS_OK && (p->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
    rc = ls_diag_errno(diag, errno, "cannot create", "an eventfd");
  if (rc == LS_OK && c->party_key_file) {
    rc = ls_party_key_load(c->party_key_file, &p->party_key, diag);
    p->has_party_key = rc == LS_OK;
    if (p->has_party_key)
      ls_party_fingerprint(&p->party_key, p->party_fingerprint);
  }
  if (rc == LS_OK)
    rc = ls_unpacker_libarchive(&p->unpacker, c->unpacker, diag);
  if (rc == LS_OK)
    warn_unconfined();
  return rc;
}

/* Without mDNS the peer still runs on static peers: a warning, not an error. */
static void start_discovery(ls_peer *p)
{
  ls_mdns_config mc = {
    .loop = &p->loop, .peer_id = ls_identity_peer_id(p->identity), .name = p->name,
    .port = (uint16_t)ls_node_port(p->node), .protocol_version = p->protocol_version,
    .on_found = ls_links_on_mdns_found, .on_lost = ls_links_on_mdns_lost, .user = p,
  };
  ls_diag diag;
  if (ls_mdns_start(&mc, &p->mdns, &diag) != LS_OK) {
    ls_rt_log("mDNS discovery is off: %s; use --peer HOST:PORT to reach peers", diag.text);
    p->mdns = NULL;
  }
}

/* Binds the peer's UDP port. Without --listen that is LS_PEER_DEFAULT_PORT,
 * the one a firewall lets in; when another program holds it, any free port,
 * said once in the log (mDNS announces whichever port it is). */
static int start_node(ls_peer *p, const ls_peer_config *c, ls_diag *diag)
{
  ls_node_config nc = {
    .loop = &p->loop, .bind_addr = (struct sockaddr *)&p->listen_addr,
    .identity = p->identity, .catalog = p->catalog, .monitor = p->monitor,
    .game_dir = p->game_dir, .name = p->name, .protocol_version = p->protocol_version,
    .on_conn_ready = ls_links_on_conn_ready, .on_conn_closed = ls_links_on_conn_closed,
    .on_peer_hello = ls_links_on_peer_hello, .on_other_party = ls_links_on_other_party,
    .party_key = p->has_party_key ? &p->party_key : NULL, .user = p,
  };
  int rc = ls_node_new(&nc, &p->node, diag);
  if (rc == LS_EEXIST && !c->listen) {
    ((struct sockaddr_in *)&p->listen_addr)->sin_port = 0;
    rc = ls_node_new(&nc, &p->node, diag);
    if (rc == LS_OK)
      ls_rt_log("UDP port %d is taken (another Lanspread peer?); serving on UDP port %u "
                "instead: peers found by mDNS still reach it, but a firewall must let it "
                "in (or choose one with --listen HOST:PORT)",
                LS_PEER_DEFAULT_PORT, ls_node_port(p->node));
  }
  if (rc != LS_OK) {
    char why[LS_DIAG_MAX];
    snprintf(why, sizeof why, "%s", diag ? diag->text : "");
    ls_diag_set(diag, rc, "cannot listen on %s: %s", c->listen ? c->listen : LS_PEER_DEFAULT_LISTEN,
                why);
  }
  return rc;
}

static int start_services(ls_peer *p, const ls_peer_config *c, ls_diag *diag)
{
  ls_downloads_recover(p);
  ls_installs_recover(p);
  int rc = start_monitor(p, p->game_dir, false, &p->monitor, diag);
  if (rc == LS_OK)
    rc = start_node(p, c, diag);
  if (rc == LS_OK) {
    struct sockaddr_storage bound = p->listen_addr;
    ((struct sockaddr_in *)&bound)->sin_port = htons((uint16_t)ls_node_port(p->node));
    ls_format_addr((struct sockaddr *)&bound, p->listen_text, sizeof p->listen_text);
    rc = ls_links_start(p, c->static_peers, c->static_peer_count, diag);
  }
  if (rc == LS_OK && c->mdns)
    start_discovery(p);
  return rc;
}

static void close_after_failed_start(ls_peer *p)
{
  /* Close what was opened, through the loop, on this thread. */
  p->stopping = true;
  if (p->node) {
    begin_close(p);
  } else {
    uv_close((uv_handle_t *)&p->tick, NULL);
    ls_lag_close(p);
    if (p->monitor)
      ls_monitor_close(p->monitor, NULL, NULL);
    uv_close((uv_handle_t *)&p->wake, NULL);
  }
  uv_run(&p->loop, UV_RUN_DEFAULT);
  uv_loop_close(&p->loop);
}

int ls_peer_start(const ls_peer_config *c, ls_peer **out, ls_diag *diag)
{
  *out = NULL;
  ls_peer *p = calloc(1, sizeof *p);
  if (!p || !(p->state_dir = strdup(c->state_dir ? c->state_dir : ""))) {
    if (p)
      free(p->state_dir);
    free(p);
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  }
  int rc = default_name(p, c->name, diag);
  if (rc != LS_OK) {
    free(p->state_dir);
    free(p);
    return rc;
  }
  p->event_fd = -1;
  p->on_event = c->on_event;
  p->user = c->user;
  p->protocol_version = LS_PROTO_VERSION;
#ifdef LS_TEST_HOOKS
  if (getenv("LS_TEST_PROTOCOL_VERSION")) /* test-only: a peer of another version */
    p->protocol_version = atoi(getenv("LS_TEST_PROTOCOL_VERSION"));
#endif
  rc = open_everything(p, c, diag);
  if (rc != LS_OK) {
    free_peer(p);
    return rc;
  }
  p->peerdb = ls_peerdb_new();
  uv_loop_init(&p->loop);
  uv_mutex_init(&p->lock);
  uv_async_init(&p->loop, &p->wake, on_wake);
  uv_timer_init(&p->loop, &p->tick);
  ls_lag_init(p);
  p->wake.data = p->tick.data = p;
  rc = p->peerdb ? start_services(p, c, diag) : LS_ENOMEM;
  if (rc != LS_OK) {
    close_after_failed_start(p);
    uv_mutex_destroy(&p->lock);
    free_peer(p);
    return rc;
  }
  uv_timer_start(&p->tick, on_tick, LS_LIVENESS_TICK_MS, LS_LIVENESS_TICK_MS);
  ls_lag_start(p);
  ls_rt_emit_games(p, NULL);
  if (uv_thread_create(&p->thread, runtime_main, p) != 0) {
    close_after_failed_start(p);
    uv_mutex_destroy(&p->lock);
    free_peer(p);
    return ls_diag_set(diag, LS_ENOMEM, "cannot start the runtime thread");
  }
  *out = p;
  return LS_OK;
}

void ls_peer_stop(ls_peer *p)
{
  if (!p)
    return;
  uv_mutex_lock(&p->lock);
  p->stopping = true;
  uv_mutex_unlock(&p->lock);
  uv_async_send(&p->wake);
  uv_thread_join(&p->thread);
  for (queued *q = p->commands, *next; q; q = next) {
    next = q->next;
    free_queued_command(q);
  }
  uv_loop_close(&p->loop);
  uv_mutex_destroy(&p->lock);
  free_peer(p);
}

const char *ls_peer_id(const ls_peer *p)
{
  return ls_identity_peer_id(p->identity);
}

const char *ls_peer_listen_address(const ls_peer *p)
{
  return p->listen_text;
}

const char *ls_peer_party_fingerprint(const ls_peer *p)
{
  return p->has_party_key ? p->party_fingerprint : NULL;
}

_Static_assert(LS_PEER_PARTY_FINGERPRINT_LEN == LS_PARTY_FINGERPRINT_LEN,
               "lanspread/peer.h and node/party.h agree on the fingerprint");

int ls_party_key_check(const char *secret, size_t len,
                       char fingerprint[LS_PEER_PARTY_FINGERPRINT_LEN + 1], ls_diag *diag)
{
  ls_party_key key;
  int rc = ls_party_key_from_text(secret, len, "party key", &key, diag);
  if (rc == LS_OK)
    ls_party_fingerprint(&key, fingerprint);
  explicit_bzero(&key, sizeof key);
  return rc;
}

int ls_party_key_file_fingerprint(const char *path,
                                  char fingerprint[LS_PEER_PARTY_FINGERPRINT_LEN + 1],
                                  ls_diag *diag)
{
  ls_party_key key;
  int rc = ls_party_key_load(path, &key, diag);
  if (rc == LS_OK)
    ls_party_fingerprint(&key, fingerprint);
  explicit_bzero(&key, sizeof key);
  return rc;
}
