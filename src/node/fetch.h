/* The download engine's fetches (download/download.h) as requests: one
 * GetGameFileChunk per fetch on a ready connection, its bytes and its end
 * handed to the engine, and a stop that resets the stream. The runtime
 * picks the connection of each source; the benchmarks use one. Loop thread
 * only. */
#ifndef LS_NODE_FETCH_H
#define LS_NODE_FETCH_H

#include "download/download.h"
#include "net/quic.h"

/* Starts fetching req of game_id on conn; *handle is for ls_chunk_fetch_stop.
 * LS_EBUSY when the connection cannot take a request now (the engine tries
 * again later); other codes as ls_request_start. */
int ls_chunk_fetch_start(ls_quic_conn *conn, const char *game_id, ls_fetch *fetch,
                         const ls_fetch_request *req, void **handle, ls_diag *diag);
/* The engine's stop_fetch: no call for this fetch reaches the engine after it. */
void ls_chunk_fetch_stop(void *handle);

#endif
