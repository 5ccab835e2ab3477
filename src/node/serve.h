/* The request server: answers the requests peers send on the streams they
 * open (docs/PROTOCOL.md), from the local library.
 *
 * It reads the library snapshot and the index through the local game
 * monitor; chunk hashes are computed lazily on worker threads and stored in
 * the index, so a second GetGame of an unchanged game costs no hashing.
 * File bytes are sent with large reads straight from the file, never loaded
 * whole. Paths are resolved beneath the game root without following any
 * symlink, and only payload files of a downloaded catalog game are served.
 *
 * Against hostile clients (the limits below; docs/PROTOCOL.md, "Server
 * limits"): unfinished request frames are capped per connection and reset
 * when they stall; the encoded manifest of a game version is built once,
 * cached while the root's index stamps are unchanged and shared by every
 * stream that sends it; identical GetGames in progress are merged into one
 * job, at most LS_SERVE_MAX_HASH_JOBS of them use the thread pool at once;
 * the large answers of a connection not yet acknowledged are bounded; and
 * the files sent at once are capped per connection and per server, and a
 * file answer nobody reads is reset.
 * Every request but Hello is refused until the connection's Hello was
 * accepted; with a party key, a Hello is accepted only with a valid proof.
 * Loop thread only. */
#ifndef LS_NODE_SERVE_H
#define LS_NODE_SERVE_H

#include "library/monitor.h"
#include "net/quic.h"
#include "node/party.h"

typedef struct ls_serve ls_serve;

/* Bytes one connection's unfinished request frames may hold (their reader
 * buffers); the stream whose bytes would take it over is reset. Real
 * requests are a few hundred bytes and complete in one packet. */
#define LS_SERVE_REQUEST_BYTES_PER_CONN (256u * 1024u)
/* A request stream whose frame does not grow for this long is reset. */
#define LS_SERVE_REQUEST_STALL_MS 10000u
/* GetGame jobs (hashing and encoding a manifest) on the thread pool at
 * once; the others wait in order, so downloads and installs keep the rest
 * of the pool. */
#define LS_SERVE_MAX_HASH_JOBS 1u
/* Bytes of answers from memory (every frame the server writes; file bytes
 * are read in bounded blocks by the endpoint) one connection may have
 * written and not yet acknowledged: a large answer (GameFiles, GameList)
 * that would go over is answered InvalidRequest ("busy: ...") instead. */
#define LS_SERVE_ANSWER_BYTES_PER_CONN (32u * 1024u * 1024u)
/* File answers (GetGameFile, GetGameFileChunk) one connection may have in
 * progress, each holding an open descriptor; more are answered "busy". The
 * server's own cap is half its descriptor limit, at most
 * LS_SERVE_FILES_MAX. Our downloader asks a source for at most 8 chunks at
 * once. */
#define LS_SERVE_FILES_PER_CONN 16u
#define LS_SERVE_FILES_MAX 4096u
/* A file answer of which the reader acknowledged nothing for this long is
 * reset, and its slot freed. */
#define LS_SERVE_FILE_STALL_MS 10000u
/* Bytes of encoded manifests kept for the next GetGame; the oldest go
 * first. */
#define LS_SERVE_MANIFEST_CACHE_BYTES (64u * 1024u * 1024u)

typedef struct ls_serve_config {
  uv_loop_t *loop;
  const ls_catalog *catalog;
  ls_monitor *monitor;           /* library snapshot and index */
  const char *game_dir;
  const char *peer_id;           /* ours, for HelloAck */
  const char *name;              /* ours, for HelloAck */
  unsigned max_bad_requests;     /* per connection before it is closed; 0: 8 */
  int protocol_version;          /* the one we speak; 0: LS_PROTO_VERSION */
  /* Optional: only peers that prove this key in their Hello are answered
   * (node/party.h); NULL: any peer is. */
  const ls_party_key *party_key;
  /* Optional: a peer introduced itself with a valid Hello. */
  void (*on_hello)(void *user, ls_quic_conn *conn, const char *peer_id, const char *name);
  /* Optional: a peer's Hello was refused for the party key (it has none or
   * another one). */
  void (*on_other_party)(void *user, ls_quic_conn *conn, const char *peer_id, const char *name);
  void *user;
} ls_serve_config;

/* Counters for tests and logs. */
typedef struct ls_serve_stats {
  unsigned requests;        /* frames decoded */
  unsigned bad_requests;    /* answered InvalidRequest */
  unsigned files_hashed;    /* files whose chunks were hashed */
  unsigned hash_cache_hits; /* files whose hashes came from the index */
  unsigned conns_dropped;   /* connections closed for repeated garbage */
  unsigned hash_jobs;       /* GetGame jobs run on the thread pool */
  unsigned jobs_merged;     /* GetGames answered by a job already under way */
  unsigned manifest_hits;   /* GetGames answered from the manifest cache */
  unsigned requests_reset;  /* unfinished requests reset: over the cap or stalled */
  unsigned answers_refused; /* answers refused: over the connection's budget */
} ls_serve_stats;

int ls_serve_new(const ls_serve_config *config, ls_serve **out, ls_diag *diag);
/* Call once every stream has closed (after the endpoint closed). */
void ls_serve_free(ls_serve *serve);

/* Serves another library from now on (SetGameDir); requests already
 * being answered finish from the old one. */
int ls_serve_set_library(ls_serve *serve, ls_monitor *monitor, const char *game_dir);

/* A peer opened this stream: serve one request on it. */
void ls_serve_accept(ls_serve *serve, ls_quic_stream *stream);
/* A connection ended: forget its garbage count. */
void ls_serve_conn_closed(ls_serve *serve, ls_quic_conn *conn);

ls_serve_stats ls_serve_get_stats(const ls_serve *serve);

/* Opens id/path beneath game_dir for reading without following symlinks in
 * any component (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, or a
 * component walk with O_NOFOLLOW where openat2 is missing); a path outside
 * the path rule (core/relpath.h) is refused first. Regular files only, and
 * never blocks on what is not one (a FIFO, a device). Returns an fd or a
 * negative LS_E* code. */
int ls_open_beneath(const char *game_dir, const char *id, const char *path, ls_diag *diag);

#endif
