/* Owns the web UI's connection slots (slots.h): the table of the server's
 * connections with their state and deadline, the rule that admits a new
 * connection or makes room for it, the watchdog thread that ends a
 * connection past its deadline, and the log of refused and ended
 * connections, once per address and reason.
 *
 * A connection is ended by shutting down its socket: its thread sees the
 * end and the server closes it. libmicrohttpd reports the close (release)
 * before it closes the socket, and release and every shutdown take the one
 * lock, so a socket number is never shut down after it was reused. */
#include "slots.h"

#include "wait.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOGGED_ADDRESSES 64
#define STR(x) #x
#define XSTR(x) STR(x)

typedef enum phase {
  FREE,
  WAITING,   /* for a whole request: a new connection, or one kept alive */
  ANSWERING, /* the request is in: answered, or an event stream */
  CLOSING,   /* ended here; the server has not closed it yet */
} phase;

/* A client's address without its port. */
typedef struct address {
  sa_family_t family;
  unsigned char bytes[16];
} address;

struct lsd_slot {
  phase phase;
  bool started; /* new, or its request's line is in: its timeout is worth a
                 * log line (a kept-alive one's, idle, is not) */
  int fd;
  address from;
  uint64_t deadline_ms; /* while WAITING; monotonic clock */
};

typedef enum reason {
  TIMED_OUT,
  CUT_FOR_ADDRESS,
  CUT_FOR_ROOM,
  REFUSED_FOR_ADDRESS,
  REFUSED_FOR_ROOM,
  REASONS
} reason;

/* Each takes the address (%s). */
static const char *const reason_text[REASONS] = {
  [TIMED_OUT] = "closed a connection from %s: no whole request in "
                XSTR(LSD_REQUEST_TIMEOUT_S) " s",
  [CUT_FOR_ADDRESS] = "closed a connection from %s that had not sent its request, to admit a "
                      "new one from there: an address may hold " XSTR(LSD_SLOTS_PER_ADDRESS),
  [CUT_FOR_ROOM] = "closed a connection from %s that had not sent its request, to admit a new "
                   "one: all " XSTR(LSD_SLOTS_TOTAL) " were taken",
  [REFUSED_FOR_ADDRESS] = "refused a connection from %s: it holds " XSTR(LSD_SLOTS_PER_ADDRESS)
                          " already, all busy answering",
  [REFUSED_FOR_ROOM] = "refused a connection from %s: all " XSTR(LSD_SLOTS_TOTAL)
                       " are busy answering",
};

typedef struct logged_address {
  address from;
  unsigned reasons; /* a bit per reason already logged */
} logged_address;

struct lsd_slots {
  pthread_mutex_t lock; /* everything below */
  pthread_cond_t wake;  /* a deadline was set, or stop */
  pthread_t watchdog;
  bool stopping;
  lsd_slot slot[LSD_SLOTS_HARD_LIMIT];
  logged_address logged[LOGGED_ADDRESSES];
  size_t logged_count;
  bool logged_all; /* logged is full: no further address is logged */
};

/* ---- addresses, time ----------------------------------------------------- */

static address address_of(const struct sockaddr *sa)
{
  address a = {0};
  if (sa && sa->sa_family == AF_INET) {
    struct sockaddr_in sin;
    memcpy(&sin, sa, sizeof sin);
    a.family = AF_INET;
    memcpy(a.bytes, &sin.sin_addr, sizeof sin.sin_addr);
  } else if (sa && sa->sa_family == AF_INET6) {
    struct sockaddr_in6 sin6;
    memcpy(&sin6, sa, sizeof sin6);
    a.family = AF_INET6;
    memcpy(a.bytes, &sin6.sin6_addr, sizeof sin6.sin6_addr);
  }
  return a;
}

static bool same_address(const address *a, const address *b)
{
  return a->family == b->family && memcmp(a->bytes, b->bytes, sizeof a->bytes) == 0;
}

static uint64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the log ------------------------------------------------------------- */

/* True the first time `from` is reported for `why`. */
static bool first_report(lsd_slots *s, const address *from, reason why)
{
  unsigned bit = 1u << why;
  for (size_t i = 0; i < s->logged_count; i++) {
    logged_address *l = &s->logged[i];
    if (same_address(&l->from, from)) {
      bool first = !(l->reasons & bit);
      l->reasons |= bit;
      return first;
    }
  }
  if (s->logged_count < LOGGED_ADDRESSES) {
    s->logged[s->logged_count++] = (logged_address){*from, bit};
    return true;
  }
  if (!s->logged_all)
    fprintf(stderr, "lanspread: UI: connections from more than " XSTR(LOGGED_ADDRESSES)
                    " addresses were refused or closed; no further address is logged\n");
  s->logged_all = true;
  return false;
}

static void report(lsd_slots *s, const address *from, reason why)
{
  if (!first_report(s, from, why))
    return;
  char host[INET6_ADDRSTRLEN] = "?", line[320];
  if (from->family)
    inet_ntop(from->family, from->bytes, host, sizeof host);
  snprintf(line, sizeof line, reason_text[why], host);
  fprintf(stderr, "lanspread: UI: %s (logged once per address)\n", line);
}

/* ---- the table ----------------------------------------------------------- */

/* Its thread sees the socket shut down, and the server closes it. */
static void end_connection(lsd_slot *c)
{
  shutdown(c->fd, SHUT_RDWR);
  c->phase = CLOSING;
}

static bool holds(const lsd_slot *c, const address *from)
{
  return (c->phase == WAITING || c->phase == ANSWERING) && (!from || same_address(&c->from, from));
}

/* Connections held (waiting or answering), from `from` when not NULL. */
static unsigned held(const lsd_slots *s, const address *from)
{
  unsigned n = 0;
  for (size_t i = 0; i < LSD_SLOTS_HARD_LIMIT; i++)
    n += holds(&s->slot[i], from);
  return n;
}

/* The waiting connection (from `from` when not NULL) whose deadline comes
 * first: the one that would be closed soonest anyway. */
static lsd_slot *first_to_go(lsd_slots *s, const address *from)
{
  lsd_slot *first = NULL;
  for (size_t i = 0; i < LSD_SLOTS_HARD_LIMIT; i++) {
    lsd_slot *c = &s->slot[i];
    if (c->phase == WAITING && holds(c, from) && (!first || c->deadline_ms < first->deadline_ms))
      first = c;
  }
  return first;
}

/* Room for a connection from `from`: when that address holds its most, or
 * all slots are taken, a waiting connection (of that address, or of any)
 * is ended. False when every one in the way is answering. */
static bool make_room(lsd_slots *s, const address *from)
{
  bool address_full = held(s, from) >= LSD_SLOTS_PER_ADDRESS;
  if (!address_full && held(s, NULL) < LSD_SLOTS_TOTAL)
    return true;
  lsd_slot *victim = first_to_go(s, address_full ? from : NULL);
  if (!victim) {
    report(s, from, address_full ? REFUSED_FOR_ADDRESS : REFUSED_FOR_ROOM);
    return false;
  }
  report(s, &victim->from, address_full ? CUT_FOR_ADDRESS : CUT_FOR_ROOM);
  end_connection(victim);
  return true;
}

static lsd_slot *free_slot(lsd_slots *s)
{
  for (size_t i = 0; i < LSD_SLOTS_HARD_LIMIT; i++)
    if (s->slot[i].phase == FREE)
      return &s->slot[i];
  return NULL; /* not with the server's limit at LSD_SLOTS_HARD_LIMIT */
}

lsd_slot *lsd_slots_admit(lsd_slots *s, int fd, const struct sockaddr *addr)
{
  address from = address_of(addr);
  pthread_mutex_lock(&s->lock);
  lsd_slot *slot = make_room(s, &from) ? free_slot(s) : NULL;
  if (slot) {
    *slot = (lsd_slot){.phase = WAITING, .started = true, .fd = fd, .from = from,
                       .deadline_ms = now_ms() + LSD_REQUEST_TIMEOUT_S * 1000u};
    pthread_cond_signal(&s->wake);
  } else {
    shutdown(fd, SHUT_RDWR);
  }
  pthread_mutex_unlock(&s->lock);
  return slot;
}

void lsd_slots_request_started(lsd_slots *s, lsd_slot *slot)
{
  if (!slot)
    return;
  pthread_mutex_lock(&s->lock);
  uint64_t by = now_ms() + LSD_REQUEST_TIMEOUT_S * 1000u;
  if (slot->phase == WAITING) {
    slot->started = true;
    if (by < slot->deadline_ms) {
      slot->deadline_ms = by;
      pthread_cond_signal(&s->wake);
    }
  }
  pthread_mutex_unlock(&s->lock);
}

void lsd_slots_request_received(lsd_slots *s, lsd_slot *slot)
{
  if (!slot)
    return;
  pthread_mutex_lock(&s->lock);
  if (slot->phase == WAITING)
    slot->phase = ANSWERING;
  pthread_mutex_unlock(&s->lock);
}

void lsd_slots_request_done(lsd_slots *s, lsd_slot *slot)
{
  if (!slot)
    return;
  pthread_mutex_lock(&s->lock);
  if (slot->phase == ANSWERING) {
    slot->phase = WAITING;
    slot->started = false; /* closing an idle kept-alive connection is not news */
    slot->deadline_ms = now_ms() + LSD_IDLE_TIMEOUT_S * 1000u;
    pthread_cond_signal(&s->wake);
  }
  pthread_mutex_unlock(&s->lock);
}

void lsd_slots_release(lsd_slots *s, lsd_slot *slot)
{
  if (!slot)
    return;
  pthread_mutex_lock(&s->lock);
  slot->phase = FREE;
  pthread_mutex_unlock(&s->lock);
}

/* ---- the watchdog -------------------------------------------------------- */

/* Ends the waiting connections past their deadline; returns the next
 * deadline, UINT64_MAX when none waits. */
static uint64_t end_overdue(lsd_slots *s, uint64_t now)
{
  uint64_t next = UINT64_MAX;
  for (size_t i = 0; i < LSD_SLOTS_HARD_LIMIT; i++) {
    lsd_slot *c = &s->slot[i];
    if (c->phase != WAITING)
      continue;
    if (c->deadline_ms > now) {
      next = c->deadline_ms < next ? c->deadline_ms : next;
      continue;
    }
    if (c->started)
      report(s, &c->from, TIMED_OUT);
    end_connection(c);
  }
  return next;
}

static void *watch_deadlines(void *arg)
{
  lsd_slots *s = arg;
  pthread_mutex_lock(&s->lock);
  while (!s->stopping) {
    uint64_t next = end_overdue(s, now_ms());
    if (next == UINT64_MAX) {
      pthread_cond_wait(&s->wake, &s->lock);
    } else {
      struct timespec at = {.tv_sec = (time_t)(next / 1000u),
                            .tv_nsec = (long)(next % 1000u) * 1000000L};
      pthread_cond_timedwait(&s->wake, &s->lock, &at);
    }
  }
  pthread_mutex_unlock(&s->lock);
  return NULL;
}

int lsd_slots_create(lsd_slots **out, ls_diag *diag)
{
  lsd_slots *s = calloc(1, sizeof *s);
  if (!s)
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  pthread_mutex_init(&s->lock, NULL);
  lsd_cond_init_monotonic(&s->wake);
  int err = pthread_create(&s->watchdog, NULL, watch_deadlines, s);
  if (err) {
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    free(s);
    return ls_diag_errno(diag, err, "cannot start the UI's", "watchdog thread");
  }
  *out = s;
  return LS_OK;
}

void lsd_slots_free(lsd_slots *s)
{
  if (!s)
    return;
  pthread_mutex_lock(&s->lock);
  s->stopping = true;
  pthread_cond_signal(&s->wake);
  pthread_mutex_unlock(&s->lock);
  pthread_join(s->watchdog, NULL);
  pthread_cond_destroy(&s->wake);
  pthread_mutex_destroy(&s->lock);
  free(s);
}
