/* The Lanspread peer runtime: discovery, serving, the local library,
 * downloads and installs, on a thread of its own.
 *
 * Start a peer with ls_peer_start, send it commands from any thread with
 * ls_peer_send, and receive its events either by callback (called on the
 * runtime thread: return quickly) or by polling: ls_peer_event_fd becomes
 * readable when events are queued, ls_peer_next_event takes them one by one.
 * ls_peer_stop cancels what is in flight, closes everything and joins the
 * runtime thread.
 *
 * Every command is answered by exactly one event of type "reply" carrying
 * the command's tag. Events are JSON objects (docs/CLI.md lists every type
 * and field); ls_event gives the kind, game id, tag and error code without
 * parsing. The "games" reply and games-list-updated carry, per game, its
 * state, the running operation and the actions whose commands can succeed
 * now, so an embedder derives none of them. */
#ifndef LANSPREAD_PEER_H
#define LANSPREAD_PEER_H

#include <lanspread/error.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ls_peer ls_peer;

/* Every event type; ls_event_kind_name gives the name its JSON carries in
 * "type" (docs/CLI.md lists each with its fields). */
typedef enum ls_event_kind {
  LS_EVENT_REPLY,                 /* "reply": the answer to one command */
  LS_EVENT_GAMES_LIST_UPDATED,    /* "games-list-updated" */
  LS_EVENT_GAME_FILES,            /* "game-files" */
  LS_EVENT_DOWNLOAD_BEGIN,        /* "game-download-begin" */
  LS_EVENT_DOWNLOAD_PROGRESS,     /* "game-download-progress" */
  LS_EVENT_DOWNLOAD_FINISHED,     /* "game-download-finished" */
  LS_EVENT_DOWNLOAD_FAILED,       /* "game-download-failed" */
  LS_EVENT_DOWNLOAD_CANCELLED,    /* "game-download-cancelled" */
  LS_EVENT_DOWNLOAD_PAUSED,       /* "game-download-paused" */
  LS_EVENT_INSTALL_BEGIN,         /* "game-install-begin" */
  LS_EVENT_INSTALL_PROGRESS,      /* "game-install-progress" */
  LS_EVENT_INSTALL_FINISHED,      /* "game-install-finished" */
  LS_EVENT_INSTALL_FAILED,        /* "game-install-failed" */
  LS_EVENT_UNINSTALL_BEGIN,       /* "game-uninstall-begin" */
  LS_EVENT_UNINSTALL_FINISHED,    /* "game-uninstall-finished" */
  LS_EVENT_UNINSTALL_FAILED,      /* "game-uninstall-failed" */
  LS_EVENT_REMOVE_BEGIN,          /* "game-remove-begin" */
  LS_EVENT_REMOVE_FINISHED,       /* "game-remove-finished" */
  LS_EVENT_REMOVE_FAILED,         /* "game-remove-failed" */
  LS_EVENT_PEER_CONNECTED,        /* "peer-connected" */
  LS_EVENT_PEER_DISCONNECTED,     /* "peer-disconnected" */
  LS_EVENT_PEER_COUNT,            /* "peer-count" */
  LS_EVENT_VERIFY_BEGIN,          /* "game-verify-begin" */
  LS_EVENT_VERIFY_PROGRESS,       /* "game-verify-progress" */
  LS_EVENT_VERIFY_FINISHED,       /* "game-verify-finished" */
  LS_EVENT_VERIFY_FAILED,         /* "game-verify-failed" */
  LS_EVENT_MANIFEST_REFUSED,      /* "game-manifest-refused": a peer's list breaks a pin */
  LS_EVENT_KIND_COUNT
} ls_event_kind;

/* "games-list-updated" for LS_EVENT_GAMES_LIST_UPDATED; "?" out of range. */
const char *ls_event_kind_name(ls_event_kind kind);

typedef struct ls_event {
  ls_event_kind kind;
  const char *type;  /* ls_event_kind_name(kind) */
  const char *id;    /* the game id of a game event, else NULL */
  uint64_t tag;      /* replies: the tag of the command answered */
  int code;          /* a failure event or a refused reply: its LS_E* code
                        (the JSON's "code" carries its name); else LS_OK */
  const char *json;  /* the whole event, one JSON object without newline */
} ls_event;

/* The UDP port peers serve QUIC on unless told otherwise (the one to open in
 * a firewall; the web UI of the lanspread daemon is TCP 8360). */
#define LS_PEER_DEFAULT_PORT 8361
#define LS_PEER_DEFAULT_LISTEN "0.0.0.0:8361"

typedef struct ls_peer_config {
  const char *game_dir;            /* must exist and be writable */
  const char *state_dir;           /* identity and index; created if missing */
  const char *catalog_path;        /* NULL: the bundled sample catalog */
  const char *listen;              /* "HOST:PORT"; NULL: LS_PEER_DEFAULT_LISTEN,
                                      or any free port when that one is taken */
  const char *const *static_peers; /* "HOST:PORT" each */
  size_t static_peer_count;
  bool mdns;                       /* discover and advertise by mDNS */
  const char *name;                /* display name; NULL: the host name */
  const char *unpacker;            /* external unpacker command, or NULL */
  /* Optional: a file holding the party key (docs/PROTOCOL.md "Party key"):
   * only peers with the same key are answered and linked; NULL: any. */
  const char *party_key_file;
  /* Optional: events by callback instead of the queue. */
  void (*on_event)(void *user, const ls_event *event);
  void *user;
} ls_peer_config;

/* Starts the runtime. Everything that can fail at start (catalog, game
 * directory, state directory, port) fails here with a diag. */
int ls_peer_start(const ls_peer_config *config, ls_peer **out, ls_diag *diag);
void ls_peer_stop(ls_peer *peer);

/* This peer's id (64 hex) and the address it listens on ("HOST:PORT"). */
const char *ls_peer_id(const ls_peer *peer);
const char *ls_peer_listen_address(const ls_peer *peer);

/* The party key (docs/PROTOCOL.md "Party key"). Its fingerprint is what an
 * organiser compares between machines: LS_PEER_PARTY_FINGERPRINT_LEN hex
 * digits of a SHA-256 over a label and the key, which tell nothing of the
 * secret. */
#define LS_PEER_PARTY_FINGERPRINT_LEN 8
/* Checks a secret by the key file's rule (surrounding whitespace trimmed,
 * at least 16 bytes) and gives its fingerprint; LS_EINVAL with the reason. */
int ls_party_key_check(const char *secret, size_t len,
                       char fingerprint[LS_PEER_PARTY_FINGERPRINT_LEN + 1], ls_diag *diag);
/* The fingerprint of the key in a key file (a party_key_file). */
int ls_party_key_file_fingerprint(const char *path,
                                  char fingerprint[LS_PEER_PARTY_FINGERPRINT_LEN + 1],
                                  ls_diag *diag);
/* The fingerprint of the key this peer runs with; NULL without one. */
const char *ls_peer_party_fingerprint(const ls_peer *peer);

typedef enum ls_command_type {
  LS_CMD_LIST_GAMES,        /* reply "games": the merged library */
  LS_CMD_GET_GAME,          /* id: file list from the peers with the latest version */
  LS_CMD_FETCH_LATEST,      /* id: the same, bypassing local archives (updates) */
  LS_CMD_DOWNLOAD_GAME_FILES, /* id, files */
  LS_CMD_INSTALL_GAME,      /* id */
  LS_CMD_UNINSTALL_GAME,    /* id */
  LS_CMD_REMOVE_DOWNLOADED_GAME, /* id */
  LS_CMD_CANCEL_DOWNLOAD,   /* id */
  LS_CMD_SET_GAME_DIR,      /* path */
  LS_CMD_GET_PEER_COUNT,    /* reply "peer-count": count */
  LS_CMD_LIST_PEERS,        /* reply "peers": the known peers */
  LS_CMD_PAUSE_DOWNLOAD,    /* id: stop a download and keep it for a resume */
  LS_CMD_VERIFY_GAME,       /* id, repair: check the payload against its manifest */
  LS_CMD_LOOP_STATS,        /* reply: the runtime loop's worst lag since the last one */
  LS_CMD_MANIFEST_DIGEST,   /* id: reply "digest", the pin of the local version's manifest */
} ls_command_type;

typedef struct ls_command {
  ls_command_type type;
  const char *id;                /* game id */
  const char *path;              /* SetGameDir */
  const char *const *files;      /* DownloadGameFiles: paths; NULL: all */
  size_t file_count;
  bool repair;                   /* VerifyGame: fetch what does not match */
  uint64_t tag;                  /* echoed by the reply */
} ls_command;

/* Queues a command (copied). Thread-safe. LS_ESTATE once stopping. */
int ls_peer_send(ls_peer *peer, const ls_command *cmd);

/* Polling: a file descriptor that is readable while events are queued, and
 * the next event (NULL when none); free it with ls_event_free. */
int ls_peer_event_fd(const ls_peer *peer);
ls_event *ls_peer_next_event(ls_peer *peer);
void ls_event_free(ls_event *event);

#endif
