/* The web UI's connection slots: which connections the HTTP server keeps
 * (LSD_SLOTS_TOTAL at once, LSD_SLOTS_PER_ADDRESS of them from one
 * address), the deadline by which a connection must have sent a whole
 * request, and which waiting connection makes room for a new one. An
 * answered request and an event stream are never cut; a connection still
 * waiting for its request is. Thread-safe: the HTTP server calls it from
 * its listener and connection threads; a watchdog thread of its own ends
 * connections past their deadline. */
#ifndef LSD_SLOTS_H
#define LSD_SLOTS_H

#include "core/error.h"

#include <sys/socket.h>

#define LSD_SLOTS_TOTAL 64
#define LSD_SLOTS_PER_ADDRESS 16
/* Connections the server may hold: the slots plus those ended but not yet
 * closed by their threads. */
#define LSD_SLOTS_HARD_LIMIT (2 * LSD_SLOTS_TOTAL)
/* A new connection must send a whole request (line, headers and body) in
 * this time, and a request once its line is in; so must one kept alive
 * after an answer, in LSD_IDLE_TIMEOUT_S. */
#define LSD_REQUEST_TIMEOUT_S 10
#define LSD_IDLE_TIMEOUT_S 60

typedef struct lsd_slots lsd_slots;
typedef struct lsd_slot lsd_slot;

/* Starts the watchdog thread. */
int lsd_slots_create(lsd_slots **out, ls_diag *diag);
/* Stops it; call once the server has closed every connection. */
void lsd_slots_free(lsd_slots *slots);

/* A new connection on socket fd from addr: its slot, or NULL when it is
 * refused (its socket is shut down: the server then closes it). To make
 * room it may end a waiting connection, of addr when addr holds
 * LSD_SLOTS_PER_ADDRESS, else of any address when all LSD_SLOTS_TOTAL are
 * taken: the one whose deadline comes first. */
lsd_slot *lsd_slots_admit(lsd_slots *slots, int fd, const struct sockaddr *addr);
/* A request's line is in: the rest must follow in LSD_REQUEST_TIMEOUT_S. */
void lsd_slots_request_started(lsd_slots *slots, lsd_slot *slot);
/* The whole request is in: it is answered (or streamed) without deadline. */
void lsd_slots_request_received(lsd_slots *slots, lsd_slot *slot);
/* Its answer is done: the connection waits for the next request. */
void lsd_slots_request_done(lsd_slots *slots, lsd_slot *slot);
/* The server closed the connection: its socket is no longer ours to end. */
void lsd_slots_release(lsd_slots *slots, lsd_slot *slot);

#endif
