/* Internals of the request server shared by its files (node/serve.c:
 * requests, accounts, Hello and lists, GetGame; node/serve_files.c: file
 * bytes). Not for other modules: they use node/serve.h. */
#ifndef LS_NODE_SERVE_INT_H
#define LS_NODE_SERVE_INT_H

#include "node/serve.h"
#include "node/stream_handler.h"
#include "proto/proto.h"

#include <stdbool.h>
#include <stdint.h>

#define APP_ERR_GARBAGE 0x10 /* connection closed: repeated garbage */
#define APP_ERR_REFUSED 0x11 /* stream reset: refused or stalled */

/* What one connection costs us, and what was said about it once. */
typedef struct conn_record {
  struct conn_record *next;
  ls_quic_conn *conn;
  unsigned bad;
  size_t request_bytes;  /* held by its unfinished request frames */
  uint64_t answer_bytes; /* large answers written, not yet acknowledged */
  unsigned files;        /* file answers being sent */
  bool greeted;          /* its Hello was accepted */
  bool said_over, said_stalled, said_busy, said_files, said_file_stall, said_party;
} conn_record;

typedef struct hash_job hash_job;
typedef struct request request;
typedef struct manifest manifest;

struct ls_serve {
  uv_loop_t *loop;
  const ls_catalog *catalog;
  ls_monitor *monitor;
  char *game_dir, *peer_id, *name;
  unsigned max_bad;
  int protocol_version;
  void (*on_hello)(void *user, ls_quic_conn *conn, const char *peer_id, const char *name);
  void (*on_other_party)(void *user, ls_quic_conn *conn, const char *peer_id, const char *name);
  bool has_party_key;
  ls_party_key party_key;
  void *user;
  conn_record *conns;
  request *reading;          /* requests whose frame is unfinished, oldest first */
  request *reading_tail;
  request *sending;          /* requests sending file bytes */
  request *file_queue, *file_queue_tail; /* file requests waiting for a slot */
  unsigned files, max_files; /* file answers being sent; the endpoint's cap */
  uv_timer_t sweep;          /* resets stalled requests */
  bool sweep_on, sweep_closing;
  hash_job *job_list;        /* GetGame jobs not yet finished, for merging */
  hash_job *queue, *queue_tail; /* jobs waiting for a pool slot */
  unsigned running;          /* jobs on the pool */
  unsigned jobs;             /* jobs not yet freed */
  manifest *cache, *cache_tail; /* oldest first */
  size_t cache_bytes;
  unsigned generation;       /* bumped by ls_serve_set_library */
  bool freeing;              /* ls_serve_free was called while jobs ran */
  ls_serve_stats stats;
};

/* One request stream. Freed when the stream closes, or after its hashing
 * job when that ends later. */
struct request {
  ls_stream_handler handler; /* first: the stream's user data */
  ls_serve *serve;
  ls_quic_stream *stream;    /* NULL once the stream is gone */
  conn_record *conn;         /* NULL once the stream is gone */
  ls_frame_reader reader;
  request *prev, *next;      /* in serve->reading while `reading` */
  bool reading;
  uint64_t progress_ms;      /* when its frame last grew */
  size_t held;               /* what it counts in conn->request_bytes */
  bool answered;
  size_t ignored;
  hash_job *job;             /* the GetGame job it waits for */
  request *next_waiter;
  request *send_prev, *send_next; /* in serve->sending while `sending` */
  bool sending;
  request *queue_next;       /* in serve->file_queue while `queued` */
  bool queued;
  ls_msg_file_range want;    /* what it waits for (its own copies) */
  bool want_whole;
  uint64_t file_acked;       /* stream bytes acknowledged at the last sweep */
  uint64_t file_progress_ms; /* when that last grew */
};


/* serve.c */
const char *ls_serve_peer_of(const conn_record *c);
/* Writes len bytes of data (released with release(arg)); fin ends the
 * stream. Every byte the server writes from memory goes through here. */
void ls_serve_write_answer(request *r, const void *data, size_t len, int fin,
                           void (*release)(void *arg), void *arg);
void ls_serve_release_frame(void *frame);
/* Writes one response frame; fin ends the stream. */
void ls_serve_send_msg(request *r, const ls_msg *msg, int fin);
/* Answers InvalidRequest; garbage: the request could not be decoded. */
void ls_serve_send_invalid(request *r, const char *reason, bool garbage);
void ls_serve_send_not_found(request *r, const char *id);
/* The library entry of a servable game: catalog, downloaded, versioned. */
const ls_local_game *ls_serve_find_game(const ls_serve *s, const char *id);
bool ls_serve_is_payload_file(const ls_local_game *g, const char *path);

/* serve_files.c */
/* Answers GetGameFile (whole) or GetGameFileChunk. */
void ls_serve_answer_file(request *r, const ls_msg_file_range *want, bool whole);
/* The request's stream closed: its file slot (or its place in the queue for
 * one) is free. */
void ls_serve_file_closed(request *r);
/* Resets file answers that made no progress for LS_SERVE_FILE_STALL_MS. */
void ls_serve_sweep_files(ls_serve *s, uint64_t now_ms);
/* The endpoint-wide cap on file answers, from the descriptor limit. */
unsigned ls_serve_files_cap(void);

#endif
