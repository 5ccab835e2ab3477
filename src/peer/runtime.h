/* Internals of the peer runtime shared by its files: runtime.c (lifecycle,
 * queues, commands), links.c (connections to other peers, liveness),
 * views.c (the JSON of games and peers), gets.c (file lists), installs.c
 * (install, uninstall, remove) and src/download/download.c (downloads).
 * Loop thread only, except the two queues, which have their own lock. */
#ifndef LS_PEER_RUNTIME_H
#define LS_PEER_RUNTIME_H

#include <lanspread/peer.h>

#include "install/unpacker.h"
#include "library/monitor.h"
#include "core/addr.h"
#include "net/identity.h"
#include "net/mdns.h"
#include "node/node.h"
#include "peer/peerdb.h"

#include <jansson.h>
#include <sys/socket.h>
#include <uv.h>

#define LS_LIVENESS_TICK_MS 1000 /* pings and reconnects run on this tick */
#define LS_MISSED_PINGS_MAX 3    /* a peer that misses this many is pruned */
#define LS_REFRESH_TICKS 5       /* ListGames refresh every 5 ticks */

typedef struct ls_link ls_link;
typedef struct queued queued;

struct ls_peer {
  /* configuration, fixed after start (game_dir changes with SetGameDir) */
  char *game_dir, *state_dir, *name;
  char listen_text[64];
  struct sockaddr_storage listen_addr;
  int protocol_version;

  ls_catalog *catalog;
  ls_identity *identity;
  ls_unpacker unpacker;     /* libarchive, with the --unpacker command as fallback */
  void (*on_event)(void *user, const ls_event *event);
  void *user;

  /* the runtime thread and its loop */
  uv_loop_t loop;
  uv_thread_t thread;
  uv_async_t wake;
  uv_timer_t tick;
  unsigned ticks;

  /* queues shared with other threads */
  uv_mutex_t lock;
  queued *commands, *commands_tail;
  queued *events, *events_tail;
  int event_fd;
  bool stopping;            /* guarded by lock */

  /* state owned by the loop thread */
  ls_monitor *monitor;
  ls_monitor *old_monitor;  /* closing after SetGameDir */
  ls_node *node;
  ls_mdns *mdns;            /* NULL without mDNS */
  uint32_t library_rev;     /* advertised in TXT; bumped on local changes */
  ls_peerdb *peerdb;
  ls_link *links;
  struct get_op *gets;      /* GetGame / FetchLatest in flight (gets.c) */
  struct download *downloads; /* downloads running (download/download.c) */
  bool closing;
};

/* ---- runtime.c ---- */
/* Queues (or calls back) one event; takes the reference to obj. */
void ls_rt_emit(ls_peer *p, json_t *obj);
/* The reply to a command: {"type":"reply","cmd":CMD,"ok":true,...fields}. */
void ls_rt_reply_ok(ls_peer *p, uint64_t tag, const char *cmd, json_t *fields);
void ls_rt_reply_error(ls_peer *p, uint64_t tag, const char *cmd, const char *fmt, ...)
  __attribute__((format(printf, 4, 5)));
void ls_rt_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- views.c ---- */
json_t *ls_rt_games_json(const ls_peer *p);
json_t *ls_rt_peers_json(const ls_peer *p);
/* games-list-updated with the merged library; changed may be NULL. */
void ls_rt_emit_games(ls_peer *p, json_t *changed);

/* ---- links.c ---- */
int ls_links_start(ls_peer *p, const char *const *static_peers, size_t count, ls_diag *diag);
void ls_links_tick(ls_peer *p);
/* Closes every connection; links stay allocated (requests may still end)
 * until ls_links_free, after the loop has stopped. */
void ls_links_close_all(ls_peer *p);
void ls_links_free(ls_peer *p);
/* Node events. */
void ls_links_on_conn_ready(ls_node *node, ls_quic_conn *conn, void *user);
void ls_links_on_conn_closed(ls_node *node, ls_quic_conn *conn, int err, const char *diag,
                             void *user);
void ls_links_on_peer_hello(ls_node *node, ls_quic_conn *conn, const char *peer_id,
                            const char *name, void *user);
/* Discovery results (links.c). */
void ls_links_on_mdns_found(void *user, const ls_mdns_peer *peer);
void ls_links_on_mdns_lost(void *user, const char *peer_id);
/* A ready connection to the peer, or NULL. */
ls_quic_conn *ls_links_conn_of(const ls_peer *p, const char *peer_id);
/* How many peers are connected. */
size_t ls_links_ready_count(const ls_peer *p);

/* ---- gets.c ---- */
void ls_gets_start(ls_peer *p, const ls_command *cmd);
/* The same, then (when the list arrived) ls_downloads_start for all files. */
void ls_gets_then_download(ls_peer *p, const ls_command *cmd);
void ls_gets_close_all(ls_peer *p);

/* ---- installs.c ---- */
/* InstallGame, UninstallGame, RemoveDownloadedGame. */
void ls_installs_run(ls_peer *p, const ls_command *cmd);
/* The automatic install after a finished download. */
void ls_installs_after_download(ls_peer *p, const char *id);
/* Startup recovery of interrupted install transactions, every catalog root. */
void ls_installs_recover(ls_peer *p);

/* ---- download/download.c ---- */
/* Downloads every file of the manifest already in PeerGameDB. */
void ls_downloads_start(ls_peer *p, const ls_command *cmd);
void ls_downloads_cancel(ls_peer *p, const ls_command *cmd);
/* Stopping: requests cancelled, no rollback (the journal stays for startup
 * recovery); each download frees itself once nothing is in flight. */
void ls_downloads_close_all(ls_peer *p);

#endif
