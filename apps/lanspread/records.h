/* The numbered log of Server-Sent Event records that the page's event
 * streams follow. The hub appends records (under its own lock, so a
 * snapshot and the sequence number it includes agree); each stream starts
 * from a snapshot and then reads every record in order; a stream that
 * fell more than LSD_LOG_SIZE records behind gets a fresh snapshot. */
#ifndef LSD_RECORDS_H
#define LSD_RECORDS_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LSD_LOG_SIZE 1024 /* records a slow reader may fall behind */

typedef struct lsd_record {
  uint64_t seq;
  char *text; /* "event: NAME\nid: SEQ\ndata: JSON\n\n" */
} lsd_record;

/* The state of a new stream: a snapshot (new reference) and the sequence
 * number of the last record it includes. */
typedef json_t *(*lsd_snapshot_fn)(void *user, uint64_t *seq);

typedef struct lsd_log {
  pthread_mutex_t mu;
  pthread_cond_t cond;
  bool closed;
  uint64_t seq;     /* the last record's number */
  lsd_record ring[LSD_LOG_SIZE];
  lsd_snapshot_fn snapshot;
  void *snapshot_user;
} lsd_log;

void lsd_log_init(lsd_log *log, lsd_snapshot_fn snapshot, void *user);
void lsd_log_destroy(lsd_log *log);
/* Appends a record (steals data; NULL is ignored). */
void lsd_log_append(lsd_log *log, const char *name, json_t *data);
uint64_t lsd_log_last(lsd_log *log);
/* Wakes every reader and makes them end. */
void lsd_log_close(lsd_log *log);

typedef struct lsd_stream lsd_stream;
lsd_stream *lsd_stream_open(lsd_log *log);
/* Copies up to max bytes of SSE text into buf, waiting up to wait_ms for
 * the next record; 0 means nothing came (send a keep-alive), -1 that the
 * log closed. */
long lsd_stream_read(lsd_stream *s, char *buf, size_t max, unsigned wait_ms);
void lsd_stream_close(lsd_stream *s);

#endif
