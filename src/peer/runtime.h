/* Internals of the peer runtime shared by its files: runtime.c (lifecycle,
 * the command queue, dispatch, SetGameDir), events.c (events and replies),
 * ops.c (the list of operations and the checks that admit them), links.c
 * (connections to other peers, liveness), gets.c (file lists), downloads.c
 * (downloads on top of the download engine), installs.c (install,
 * uninstall, remove), views.c (the JSON of games and peers), lag.c (the
 * loop-lag probe). Loop thread only, except the two queues, which have
 * their own lock. */
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
#define LS_LINK_MAX_FAILURES 3   /* a peer known from its Hello only is forgotten
                                    after this many failed connections in a row */
#define LS_LINK_SLOW_RETRY_TICKS 60 /* then, one mDNS announces: retried this often */
#define LS_MAX_LEARNED_LINKS 256 /* links to peers not given by --peer */
#define LS_LAG_PERIOD_MS 10      /* the loop-lag probe's timer */

typedef struct ls_link ls_link;
typedef struct queued queued;
typedef struct ls_event_node ls_event_node;
typedef struct ls_op ls_op;
typedef struct ls_listing ls_listing;
typedef struct ls_paused ls_paused;
typedef struct ls_known ls_known;

/* The loop-lag probe (lag.c): the worst lateness of its timer in the
 * current window. */
typedef struct ls_lag_probe {
  uv_timer_t timer;
  uint64_t last_ns;   /* uv_hrtime() of the last firing */
  uint64_t worst_ns;  /* the worst lateness in this window */
  uint64_t window_ns; /* when this window began */
  uint64_t ticks;     /* firings in this window */
} ls_lag_probe;

struct ls_peer {
  /* configuration, fixed after start (game_dir changes with SetGameDir) */
  char *game_dir, *state_dir, *name;
  char listen_text[64];
  struct sockaddr_storage listen_addr;
  int protocol_version;
  bool has_party_key;
  ls_party_key party_key;
  char party_fingerprint[LS_PARTY_FINGERPRINT_LEN + 1]; /* of party_key */

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
  ls_lag_probe lag;

  /* queues shared with other threads */
  uv_mutex_t lock;
  queued *commands, *commands_tail;
  ls_event_node *events, *events_tail;
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
  bool told_links_full;     /* the LS_MAX_LEARNED_LINKS refusal was logged */
  ls_op *ops;               /* every operation running (ops.c) */
  ls_listing *listings;     /* file lists being asked for (gets.c) */
  ls_paused *paused;        /* downloads kept for a resume (downloads.c) */
  ls_known *known;          /* peers seen in earlier sessions (known.c) */
  bool closing;             /* loop thread only; workers get their own flags */
};

/* ---- events.c ---- */
/* Each takes the reference to fields (a JSON object, may be NULL). */
void ls_rt_emit(ls_peer *p, ls_event_kind kind, json_t *fields);
/* {"type", "id", ...fields}. */
void ls_rt_emit_game(ls_peer *p, ls_event_kind kind, const char *id, json_t *fields);
/* ls_rt_emit_game with code (not LS_OK) as "code", the event's typed code. */
void ls_rt_emit_game_code(ls_peer *p, ls_event_kind kind, const char *id, int code,
                          json_t *fields);
/* {"type", "id", "error", "code": ls_error_name(code)}. */
void ls_rt_emit_failure(ls_peer *p, ls_event_kind kind, const char *id, int code,
                        const char *error);
/* The reply to a command: {"type":"reply","cmd":CMD,"ok":true,...fields}, or
 * "ok":false with "error" and "code". */
void ls_rt_reply_ok(ls_peer *p, uint64_t tag, const char *cmd, json_t *fields);
void ls_rt_reply_error(ls_peer *p, uint64_t tag, const char *cmd, int code, const char *fmt, ...)
  __attribute__((format(printf, 5, 6)));
void ls_rt_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Frees events nobody took (after the loop stopped). */
void ls_rt_events_free(ls_peer *p);

/* ---- ops.c: the one list of operations ---- */
typedef enum ls_op_kind {
  LS_OP_GET,       /* get / fetch-latest: a file list; any number per game */
  LS_OP_DOWNLOAD,  /* the others are exclusive: one per game at a time */
  LS_OP_INSTALL,
  LS_OP_UNINSTALL,
  LS_OP_REMOVE,
  LS_OP_VERIFY,    /* a check of the payload against its manifest */
} ls_op_kind;

struct ls_op {
  ls_op *next;
  ls_peer *peer;
  ls_op_kind kind;
  char *id;
  uint64_t tag;             /* the command's; 0 for the automatic install */
  const char *cmd;          /* the command name its reply carries */
  uint64_t bytes, total_bytes, bytes_per_sec; /* progress, when it has one */
  bool cancellable;         /* a download or verification not yet ending */
  void *impl;               /* the state of the file that runs it */
};

/* The one place for the checks every game command makes: the id is a game
 * of the catalog and, for an exclusive kind, no exclusive operation runs on
 * it. On refusal the command's reply says why (when tag_reply) and the
 * code is returned. */
int ls_ops_admit(ls_peer *p, ls_op_kind kind, const char *cmd, const char *id, uint64_t tag,
                 bool tag_reply);
/* Registers an operation (NULL: out of memory). An exclusive one holds the
 * monitor's operation gate for id, and the games view changes: a
 * games-list-updated follows. */
ls_op *ls_ops_begin(ls_peer *p, ls_op_kind kind, const char *cmd, const char *id, uint64_t tag);
/* Unregisters and frees op; an exclusive one releases the gate (the monitor
 * rescans id) and a games-list-updated follows. */
void ls_ops_end(ls_peer *p, ls_op *op);
/* The exclusive operation running on id, or NULL. */
ls_op *ls_ops_find(const ls_peer *p, const char *id);
bool ls_ops_any_exclusive(const ls_peer *p);
/* {"kind", "bytes", "total_bytes", "bytes_per_sec"}. */
json_t *ls_ops_json(const ls_op *op);

/* ---- views.c ---- */
json_t *ls_rt_games_json(const ls_peer *p);
json_t *ls_rt_peers_json(const ls_peer *p);
/* games-list-updated with the merged library; changed may be NULL. */
void ls_rt_emit_games(ls_peer *p, json_t *changed);

/* ---- lag.c: the loop-lag probe ---- */
void ls_lag_init(ls_peer *p);  /* the timer handle, with tick's */
void ls_lag_start(ls_peer *p); /* the first window begins */
void ls_lag_close(ls_peer *p);
/* {"lag_max_us", "window_ms", "ticks", "period_ms"} of the window that
 * ends now; a new one begins. */
json_t *ls_lag_take(ls_peer *p);

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
void ls_links_on_other_party(ls_node *node, ls_quic_conn *conn, const char *peer_id,
                             const char *name, void *user);
/* The peers of another party the links know: [{peer_id, addr, name,
 * "party": "other"}]. */
json_t *ls_links_other_party_json(const ls_peer *p);
void ls_links_on_peer_hello(ls_node *node, ls_quic_conn *conn, const char *peer_id,
                            const char *name, void *user);
/* Discovery results (links.c). */
void ls_links_on_mdns_found(void *user, const ls_mdns_peer *peer);
void ls_links_on_mdns_lost(void *user, const char *peer_id);
/* A ready connection to the peer, or NULL. */
ls_quic_conn *ls_links_conn_of(const ls_peer *p, const char *peer_id);
/* How many peers are connected. */
size_t ls_links_ready_count(const ls_peer *p);

/* ---- gets.c: file lists from the peers ---- */
/* Asks every connected peer advertising `version` of id for its file list
 * (kept in PeerGameDB), emits game-files with the first list, then calls
 * done with it (NULL when no peer sent one) and how many peers sent the
 * same list. done is not called after ls_listing_abandon or at shutdown. */
/* manifest is NULL when no peer sent an acceptable list; refusal is the
 * last pin refusal's sentence (NULL when none was refused). */
typedef void (*ls_listing_done)(void *user, const char *version, const ls_msg *manifest,
                                unsigned agreeing, const char *refusal);
int ls_listing_start(ls_peer *p, const char *id, const char *version, ls_listing_done done,
                     void *user, ls_listing **out);
void ls_listing_abandon(ls_listing *listing);
/* GetGame / FetchLatestFromPeers. */
void ls_gets_run(ls_peer *p, const ls_command *cmd);
/* The latest version of id connected peers offer (PeerGameDB's refusals
 * skipped), or NULL after replying to the command why there is none:
 * LS_EPIN with the refusal's sentence when every peer advertising the game
 * was refused, else LS_ENOPEER. */
const char *ls_gets_latest_or_reply(ls_peer *p, uint64_t tag, const char *cmd, const char *id);

/* ---- known.c ---- */
#define LS_KNOWN_PEERS_MAX 4096
/* Reads STATE_DIR/known-peers (caller's thread, at start); LS_ENOMEM. */
int ls_known_load(ls_peer *p);
/* A peer was announced (peer-connected) in this session. */
void ls_known_saw(ls_peer *p, const char *peer_id);
/* True when the peer was seen in an earlier session. */
bool ls_known_before(const ls_peer *p, const char *peer_id);
/* Writes the file with this session's peers added (after the loop ended). */
void ls_known_save_and_free(ls_peer *p);

/* ---- digests.c ---- */
/* ManifestDigest: the manifest digest of the local version of a game. */
void ls_digests_run(ls_peer *p, const ls_command *cmd);
/* Stopping: no listing reports anything any more. */
void ls_gets_close_all(ls_peer *p);

/* ---- downloads.c ---- */
/* DownloadGameFiles: a fresh file list first unless the command names
 * files; then the download engine; the automatic install after it. A
 * paused download of the game is resumed. VerifyGame with repair is a
 * download of the version on disk. */
void ls_downloads_run(ls_peer *p, const ls_command *cmd);
/* CancelDownload: a running download (or verification) stops and is
 * discarded; a paused one is discarded. */
void ls_downloads_cancel(ls_peer *p, const ls_command *cmd);
/* PauseDownload: a running download stops and is kept. */
void ls_downloads_pause(ls_peer *p, const ls_command *cmd);
/* Stopping: downloads are kept as paused, as after a pause. */
void ls_downloads_close_all(ls_peer *p);
/* Startup recovery of every catalog root's download journal, on the
 * caller's thread: the paused downloads it keeps are listed. Also after
 * SetGameDir (the list is rebuilt for the new directory). */
void ls_downloads_recover(ls_peer *p);
/* A paused download of id (its version, bytes on disk and total), or NULL. */
typedef struct ls_paused_info {
  const char *version;
  uint64_t bytes, total_bytes;
} ls_paused_info;
bool ls_downloads_paused(const ls_peer *p, const char *id, ls_paused_info *out);
void ls_downloads_free(ls_peer *p);


/* ---- installs.c ---- */
/* InstallGame, UninstallGame, RemoveDownloadedGame. */
void ls_installs_run(ls_peer *p, const ls_command *cmd);
/* The automatic install (or update) after a finished download. */
void ls_installs_after_download(ls_peer *p, const char *id);
/* Stopping: extractions in flight stop at their next file. */
void ls_installs_close_all(ls_peer *p);
/* Startup recovery of interrupted install transactions, every catalog root. */
void ls_installs_recover(ls_peer *p);

#endif
