/* Owns the numbered log of Server-Sent Event records (records.h): the ring
 * of the last LSD_LOG_SIZE records, their SSE text, and the streams that
 * read it. One mutex guards the ring; readers wait on a condition variable
 * for the next record. A snapshot is taken without this lock held (the hub
 * takes its own), so the lock order is always hub, then log. */
#include "records.h"
#include "wait.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lsd_stream {
  lsd_log *log;
  uint64_t next; /* the next record to send; 0: a snapshot first */
  char *pending;
  size_t pending_len, pending_off;
};

void lsd_log_init(lsd_log *log, lsd_snapshot_fn snapshot, void *user)
{
  memset(log, 0, sizeof *log);
  pthread_mutex_init(&log->mu, NULL);
  lsd_cond_init_monotonic(&log->cond);
  log->snapshot = snapshot;
  log->snapshot_user = user;
}

void lsd_log_destroy(lsd_log *log)
{
  for (size_t i = 0; i < LSD_LOG_SIZE; i++)
    free(log->ring[i].text);
  pthread_cond_destroy(&log->cond);
  pthread_mutex_destroy(&log->mu);
}

static char *format_record(const char *name, uint64_t seq, json_t *data)
{
  char *json = json_dumps(data, JSON_COMPACT);
  char *text = NULL;
  if (json && asprintf(&text, "event: %s\nid: %llu\ndata: %s\n\n", name,
                       (unsigned long long)seq, json) < 0)
    text = NULL;
  free(json);
  return text;
}

void lsd_log_append(lsd_log *log, const char *name, json_t *data)
{
  if (!data)
    return;
  pthread_mutex_lock(&log->mu);
  uint64_t seq = log->seq + 1;
  char *text = format_record(name, seq, data);
  if (text) {
    lsd_record *r = &log->ring[seq % LSD_LOG_SIZE];
    free(r->text);
    r->seq = seq;
    r->text = text;
    log->seq = seq;
    pthread_cond_broadcast(&log->cond);
  }
  pthread_mutex_unlock(&log->mu);
  json_decref(data);
}

uint64_t lsd_log_last(lsd_log *log)
{
  pthread_mutex_lock(&log->mu);
  uint64_t seq = log->seq;
  pthread_mutex_unlock(&log->mu);
  return seq;
}

void lsd_log_close(lsd_log *log)
{
  pthread_mutex_lock(&log->mu);
  log->closed = true;
  pthread_cond_broadcast(&log->cond);
  pthread_mutex_unlock(&log->mu);
}

lsd_stream *lsd_stream_open(lsd_log *log)
{
  lsd_stream *s = calloc(1, sizeof *s);
  if (s)
    s->log = log;
  return s;
}

void lsd_stream_close(lsd_stream *s)
{
  if (s)
    free(s->pending);
  free(s);
}

/* A snapshot record; the stream continues after the records it includes. */
static char *snapshot_text(lsd_stream *s)
{
  uint64_t seq = 0;
  json_t *snap = s->log->snapshot(s->log->snapshot_user, &seq);
  char *text = snap ? format_record("snapshot", seq, snap) : NULL;
  json_decref(snap);
  s->next = seq + 1;
  return text;
}

/* The next record's text for s (malloc'ed), NULL when there is none yet,
 * or behind = true when s must start again from a snapshot. Caller holds
 * the log's mutex. */
static char *next_text(lsd_stream *s, bool *behind)
{
  lsd_log *log = s->log;
  *behind = s->next == 0 || log->seq - s->next + 1 > LSD_LOG_SIZE; /* new, or fell behind */
  if (*behind || s->next > log->seq)
    return NULL;
  char *text = strdup(log->ring[s->next % LSD_LOG_SIZE].text);
  s->next++;
  return text;
}

/* Waits (at most until deadline) for the next text of s. */
static char *wait_text(lsd_stream *s, unsigned wait_ms, bool *closed)
{
  lsd_log *log = s->log;
  struct timespec deadline = lsd_deadline_in(wait_ms);
  char *text = NULL;
  bool behind = false;
  pthread_mutex_lock(&log->mu);
  while (!log->closed && !(text = next_text(s, &behind)) && !behind)
    if (pthread_cond_timedwait(&log->cond, &log->mu, &deadline) != 0)
      break;
  *closed = log->closed;
  pthread_mutex_unlock(&log->mu);
  if (!*closed && behind)
    text = snapshot_text(s); /* without the log's lock: the hub's comes first */
  return text;
}

long lsd_stream_read(lsd_stream *s, char *buf, size_t max, unsigned wait_ms)
{
  if (s->pending_off == s->pending_len) {
    free(s->pending);
    bool closed;
    s->pending = wait_text(s, wait_ms, &closed);
    if (closed) {
      free(s->pending);
      s->pending = NULL;
      return -1;
    }
    s->pending_off = 0;
    s->pending_len = s->pending ? strlen(s->pending) : 0;
    if (!s->pending)
      return 0;
  }
  size_t n = s->pending_len - s->pending_off;
  if (n > max)
    n = max;
  memcpy(buf, s->pending + s->pending_off, n);
  s->pending_off += n;
  return (long)n;
}
