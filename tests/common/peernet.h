/* A LAN of lanspread-peer-cli processes for scenario tests: one peer per
 * network namespace host (netns.h), each with its game directory ROOT/hI,
 * state directory ROOT/sI and a shared catalog ROOT/catalog.json that
 * pn_generate grows; helpers to generate games (lanspread-gen), start, stop
 * and kill peers (lanspread-peer-cli, or the library in-process for races
 * the CLI cannot make), run commands that must succeed or be refused,
 * collect the events of one game, and compare files and trees.
 *
 * Cleanup: pn_destroy quits the peers and removes the namespaces; when a
 * test fails before it, the atexit handlers of netns.c, peerproc.c and
 * testutil.c kill the children and remove the namespaces and ROOT.
 * Include after cmocka's prerequisites. */
#ifndef LS_TEST_PEERNET_H
#define LS_TEST_PEERNET_H

#include "netns.h"
#include "peerproc.h"

#include <jansson.h>
#include <stdbool.h>

#define PN_MAX_HOSTS 8
#define PN_T_MS 60000 /* default timeout of a reply or an event */

typedef struct pn_net {
  ls_netns *ns;
  int hosts;
  char *root;                   /* temporary; removed at exit */
  char catalog[4096];           /* ROOT/catalog.json */
  char port[8];                 /* every host listens on ADDR:port */
  peerproc *peers[PN_MAX_HOSTS];
  char ids[PN_MAX_HOSTS][65];   /* peer ids from `ready` */
} pn_net;

/* A LAN of `hosts` hosts whose peers listen on `port`. When namespaces
 * cannot be made the test is skipped (ls_skip, with the reason). */
pn_net *pn_create(int hosts, const char *port);
/* Quits every running peer (each must exit 0), removes the namespaces and
 * frees n (ROOT stays until exit). */
void pn_destroy(pn_net *n);

/* ROOT/hI, and "ADDR:PORT" of host i (static buffers, rotating). */
const char *pn_game_dir(const pn_net *n, int host);
const char *pn_endpoint(const pn_net *n, int host);

/* One generated game: id g<number, 4 digits>. Zero fields take defaults. */
typedef struct pn_game {
  int number;             /* 0: 1 */
  const char *size;       /* total payload, lanspread-gen syntax; NULL: "4M" */
  const char *version;    /* NULL: "1.0" */
  const char *format;     /* raw, tar, zip; NULL: "tar" (installable) */
  int archives;           /* 0: 2 */
  int seed;               /* 0: 1 (content differs per seed) */
  bool installed;         /* also local/README.txt */
  const char *expect_dir; /* tar/zip: write the extracted tree to DIR/<id> */
  const char *game_dir;   /* NULL: pn_game_dir(host) */
} pn_game;

/* Generates the game into host's game directory and adds its id to the
 * shared catalog. */
void pn_generate(pn_net *n, int host, pn_game g);

typedef struct pn_peer {
  unsigned static_peers; /* bit i set: --peer <endpoint of host i> */
  bool mdns;             /* false: --no-mdns */
  const char *catalog;   /* NULL: the shared catalog */
  const char *env;       /* "NAME=VALUE" for this peer only, or NULL */
  bool log;              /* stderr to ROOT/hI.log (see pn_log_has) */
  const char *party_key_file; /* --party-key-file, or NULL */
} pn_peer;

/* Starts host's peer with --game-dir ROOT/hI (created) --state-dir ROOT/sI
 * --listen ENDPOINT --name hostI --serve and waits for `ready`. */
peerproc *pn_start(pn_net *n, int host, pn_peer o);
/* The same peer (same directories, address, static peers and catalog; mDNS
 * off) run in-process by the library in a forked child inside host's
 * namespace, for races the CLI's one-command-at-a-time rule cannot make
 * (a pause while `download` still waits for its file list): each stdin
 * line is sent at once, without waiting for the previous reply. Its
 * stdout carries every event as one JSON line (replies with their "cmd"),
 * after a first {"type":"ready","peer_id"} line. Commands: games, peers,
 * download ID, pause ID, cancel ID, verify ID [--repair], quit (stops the
 * peer and exits 0; so does the end of stdin). pn_stop, pn_kill and
 * pn_destroy treat it like the others. */
peerproc *pn_start_direct(pn_net *n, int host, pn_peer o);
/* `quit`; the peer must exit 0 within PN_T_MS. */
void pn_stop(pn_net *n, int host);
/* SIGKILL and reap. */
void pn_kill(pn_net *n, int host);
/* Whether host's log (pn_peer.log) contains text. */
bool pn_log_has(const pn_net *n, int host, const char *text);

/* Sends a command (printf format) that must succeed; returns its reply
 * (caller decrefs). */
json_t *pn_ok(peerproc *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Sends a command that must be refused with an error containing `why` and
 * an LS_E* code. */
void pn_refused(peerproc *p, const char *why, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));

/* The entry of `id` in the reply of `games` (a new reference), or NULL. */
json_t *pn_game_entry(peerproc *p, const char *id);
/* Polls `games` until the entry of id matches field == value (value NULL:
 * the entry is absent) or timeout_s passes; returns whether it did. field
 * may name "latest_version", "local_version" (strings or null), "peers",
 * "downloaded", "installed" (compared as their JSON text: "1", "true"). */
bool pn_poll_game(peerproc *p, const char *id, const char *field, const char *value,
                  double timeout_s);
/* Reads stdout until a games-list-updated event whose entry of id matches
 * field == value (value NULL: the entry is absent); fails the test after
 * timeout_ms. Other lines are dropped. */
void pn_expect_games_event(peerproc *p, const char *id, const char *field, const char *value,
                           int timeout_ms);
/* A field of a game entry as text: strings as is, null as "null", numbers,
 * booleans, arrays and objects as compact JSON. Static rotating buffers. */
const char *pn_field(json_t *entry, const char *field);

/* Reads stdout lines and collects (in order) every event whose id is `id`
 * and every reply, until an event for `id` whose type is one of the
 * NULL-terminated list; fails the test after timeout_ms. Caller decrefs. */
json_t *pn_events_until(peerproc *p, const char *id, int timeout_ms, ...)
  __attribute__((sentinel));
/* The types of the collected events, space-separated (for messages). */
const char *pn_types(json_t *events);
/* Index of the first event of that type (and cmd, for replies) from `from`,
 * or -1. */
int pn_find(json_t *events, const char *type, int from);
/* Type of the last collected event. */
const char *pn_last_type(json_t *events);

/* Sends `download ID` and reads events until progress reaches `at` (a
 * fraction); returns the fraction seen, or -1 when the download ended
 * first. */
double pn_download_until(peerproc *p, const char *id, double at);

/* lstat succeeds. */
bool pn_exists(const char *path);
/* Byte-identical regular files; recursively identical trees (diff -r). */
bool pn_same_file(const char *a, const char *b);
bool pn_same_tree(const char *a, const char *b);
/* Monotonic seconds. */
double pn_now(void);

#endif
