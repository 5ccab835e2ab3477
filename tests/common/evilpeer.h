/* A malicious peer for the hostile-peer tests (tests/integration/
 * test_hostile.c), built on the project's own QUIC endpoint, request client
 * and frame codec, so it speaks the protocol exactly as far as it wants to.
 *
 * evil_run plays one scenario on a loop of its own and reports on stdout,
 * one JSON object per line ({"evil": WHAT, ...}); run it in a child
 * (pp_fork_in_netns with netns NULL for loopback), whose stdout the test
 * reads with pp_next.
 *
 * Scenarios:
 * - one peer (ghosts 0): connects to the victim, says Hello, and answers
 *   the victim's requests on the connection the victim opens back: Hello
 *   and Ping as a real peer would, ListGames with the frame body the test
 *   gives (any bytes: too many games, foreign ids, no JSON at all), GetGame
 *   with the GameFiles body it gives, and file requests never (the stream
 *   stays open, silent). Lines: "hello-acked", "list-sent" (n: how many so
 *   far), "files-sent", "chunk-asked" (n), "closed" (err, diag: a
 *   connection ended), "done" (lists: ListGames answered).
 * - ghosts (ghosts N): N throwaway identities, each on its own UDP port,
 *   each connects and says Hello, then vanishes: its QUIC endpoint closes
 *   and a plain UDP socket on the same port counts what the victim still
 *   sends there (its redials). Lines: "ghost-hello" (i, port), then at the
 *   end "ghosts" with "datagrams" (per ghost) and "late" (per ghost: the
 *   datagrams after the quiet window began: the last quiet_ms of the run,
 *   or from the test's "quiet" line on).
 * - client attacks (attack not EVIL_SERVE): `conns` throwaway identities,
 *   each connects, says Hello (a server answers nothing before it) and
 *   then opens `streams` request streams at once:
 *   EVIL_HALF_FRAMES writes on each a frame header announcing `announce`
 *   body bytes and only `send` of them, then nothing (no FIN);
 *   EVIL_GET_GAME_FLOOD writes on each a GetGame for `game_id` with FIN and
 *   stops reading the stream (read_stop: the answer is never consumed);
 *   EVIL_UNREAD_CHUNKS does the same with a GetGameFileChunk of
 *   `chunk_length` bytes of `file_path`.
 *   EVIL_CONN_FLOOD instead opens `conns` connections from one endpoint
 *   (one identity, one UDP port) and does nothing on them; once each is
 *   ready or closed it says "flood-settled" with "ready", "refused" (closed
 *   with LS_EBUSY: the victim refused it) and "failed" (closed otherwise).
 *   EVIL_PROBE connects once and asks ListGames, GetGame `game_id` and a
 *   1-byte GetGameFileChunk of `file_path`, then (once answered) says Hello,
 *   then asks the three again; it says "probe" with "before" and "after"
 *   (the answers' type names, or "error") and "hello" (the Hello's).
 *   Lines: "attack-sent" (i, streams: one connection's streams are out),
 *   and at the end "attack" with "opened", "reset" (streams the victim
 *   reset) and "answered" (streams on which any answer byte arrived). */
#ifndef LS_TEST_EVILPEER_H
#define LS_TEST_EVILPEER_H

#include <stdbool.h>
#include <stddef.h>

enum evil_attack {
  EVIL_SERVE = 0,      /* the peer of the first two scenarios */
  EVIL_HALF_FRAMES,    /* unfinished request frames */
  EVIL_GET_GAME_FLOOD, /* GetGames whose answers are never read */
  EVIL_UNREAD_CHUNKS,  /* file chunk requests whose answers are never read */
  EVIL_CONN_FLOOD,     /* many connections from one UDP port, doing nothing */
  EVIL_PROBE,          /* requests before and after its Hello, answers reported */
};

/* What the probe's Hello proves of a party key (node/party.h). */
enum evil_proof {
  EVIL_PROOF_NONE = 0,  /* nothing */
  EVIL_PROOF_RIGHT,     /* the key's proof for this connection */
  EVIL_PROOF_REPLAYED,  /* the key's proof made on another connection to the
                           victim (a replay) */
  EVIL_PROOF_REFLECTED, /* the key's proof for the answering side of this
                           connection (a reflection) */
};

typedef struct evil_config {
  const char *victim;     /* "HOST:PORT" */
  const char *bind_host;  /* the address its endpoints use, e.g. "127.0.0.1" */
  const char *state_dir;  /* its identities go into subdirectories */
  const char *game_list;  /* the GameList frame body sent for ListGames */
  size_t game_list_len;
  const char *game_files; /* the GameFiles body sent for GetGame (NULL: refused) */
  size_t game_files_len;
  unsigned ghosts;        /* 0: one peer that stays */
  bool ghost_hosts;       /* ghosts: ghost i binds 127.1.(i / 250).(i % 250 + 1)
                             instead of bind_host, as many hosts would (the
                             victim admits 16 connections per address) */
  unsigned run_ms;        /* how long the scenario runs */
  unsigned quiet_ms;      /* ghosts: the final window reported as "late"; 0: from
                             the test's "quiet" line on stdin ("stop" ends the
                             run early) */
  enum evil_attack attack;
  unsigned conns;         /* client attacks: connections, one identity each */
  unsigned streams;       /* client attacks: streams per connection */
  unsigned announce;      /* half frames: the body length announced */
  unsigned send;          /* half frames: the body bytes sent */
  const char *game_id;    /* GetGame flood, unread chunks: the game asked for */
  const char *file_path;  /* unread chunks: the file of game_id asked for */
  unsigned chunk_length;  /* unread chunks: bytes asked for from offset 0 */
  unsigned recv_window;   /* client attacks: the per-stream receive window
                             granted (0: the endpoint's default) */
  const char *party_key_file; /* probe: the key its Hello proves, as `proof` says */
  enum evil_proof proof;
} evil_config;

/* Plays the scenario; 0 when it ran (what happened is on stdout), else 1. */
int evil_run(const evil_config *config);

#endif
