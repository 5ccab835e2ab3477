/* The download engine: downloads one version of one game from a set of
 * sources into GAME_DIR/ID, every chunk checked against the manifest's
 * SHA-256 before it is written, and commits it (or rolls it back) through
 * the download storage.
 *
 * It knows nothing of peers, connections, commands or events. Its owner
 * names the sources and passes an operations table: the engine asks it to
 * fetch byte ranges from a source and to stop a fetch; the owner delivers
 * the bytes and the end of each fetch, and hears when the download began
 * and when it ended. Time comes from the owner too (ls_download_tick and
 * an optional clock), so a test can drive every decision of the planner
 * without a network and without waiting.
 *
 * Planner: one shared queue of chunks (the manifest's chunk size). Each
 * source keeps about LS_DOWNLOAD_INFLIGHT_SECONDS of its measured rate
 * requested (1 to LS_DOWNLOAD_MAX_INFLIGHT chunks) and takes the next
 * chunk when one finishes, so a faster source takes more chunks and a slow
 * one holds few. When the queue is empty, an idle source duplicates the
 * oldest chunk still in flight elsewhere (end game); the first complete
 * copy wins and the other copies are stopped. A chunk whose hash does not
 * match counts against its source and goes back to the queue, preferably
 * for another source. A source that fails LS_DOWNLOAD_MAX_SOURCE_FAILURES
 * times is dropped; the download fails when no source is left for a
 * missing chunk, when a chunk failed LS_DOWNLOAD_MAX_CHUNK_ATTEMPTS times,
 * or when the disk refuses a write. A fetch that gets no byte for
 * LS_DOWNLOAD_STALL_SECONDS fails like a corrupt one (a silent source
 * loses its chunks to the others, and is dropped after its third), so a
 * download never waits for ever. Once every chunk is in, fetches still
 * in flight are stopped: a slow or silent source never holds up the end.
 * While LS_DOWNLOAD_MAX_CHECKING fetched chunks wait to be hashed and
 * written, no fetch starts: a disk slower than the network holds memory
 * bounded instead of queueing every chunk.
 *
 * Resume (docs/ARCHITECTURE.md, "Resume"): the storage keeps the chunks an
 * interrupted download of the game made durable; every other chunk of a
 * file that was already on disk is probed first (read and hashed on the
 * pool, LS_DOWNLOAD_PROBE_JOBS at a time) and fetched only when its bytes
 * do not match. Written chunks are made durable in batches (a sync job
 * every LS_DOWNLOAD_SYNC_BYTES or LS_DOWNLOAD_SYNC_SECONDS) and recorded
 * in the chunk map. A pause, a stop of the program and running out of
 * sources keep the download for a later resume; a cancel and every other
 * failure discard it. A verification (verify_only) probes every chunk and
 * fetches nothing.
 *
 * Threads: every function and every callback runs on the loop's thread;
 * hashing and all file I/O run on the loop's thread pool. */
#ifndef LS_DOWNLOAD_DOWNLOAD_H
#define LS_DOWNLOAD_DOWNLOAD_H

#include "download/storage.h"
#include "proto/proto.h"

#include <lanspread/error.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define LS_DOWNLOAD_MAX_SOURCES 32
#define LS_DOWNLOAD_MAX_INFLIGHT 8          /* chunks requested from one source */
#define LS_DOWNLOAD_INFLIGHT_SECONDS 0.75   /* of a source's rate kept requested */
#define LS_DOWNLOAD_MAX_SOURCE_FAILURES 3
#define LS_DOWNLOAD_MAX_CHUNK_ATTEMPTS 6
#define LS_DOWNLOAD_PROBE_JOBS 3             /* chunks read and hashed at once */
#define LS_DOWNLOAD_MAX_CHECKING 16          /* fetched chunks waiting for the disk */
#define LS_DOWNLOAD_SYNC_BYTES ((uint64_t)64 << 20)
#define LS_DOWNLOAD_SYNC_SECONDS 2
#define LS_DOWNLOAD_STALL_SECONDS 15         /* a fetch without a byte fails */

typedef struct ls_download ls_download;
/* One fetch in flight: created by the engine, handed to start_fetch, and
 * valid until the owner calls ls_fetch_done or the engine calls
 * stop_fetch, whichever comes first. */
typedef struct ls_fetch ls_fetch;

typedef struct ls_fetch_request {
  size_t source;    /* index into the sources given at start */
  const char *path; /* the manifest's path of the file */
  uint64_t offset;
  uint32_t length;  /* 1 .. the manifest's chunk size */
} ls_fetch_request;

typedef struct ls_download_progress {
  uint64_t bytes;          /* verified and on disk (a verification: checked) */
  uint64_t total_bytes;
  uint64_t bytes_per_sec;  /* smoothed over the ticks */
} ls_download_progress;

typedef struct ls_download_ops {
  /* Starts fetching req. On LS_OK the owner keeps `fetch` and later calls
   * ls_fetch_data for the bytes in order and then ls_fetch_done once,
   * never from inside this call. LS_EBUSY: the source cannot take a
   * request now (retried later); any other code drops the source, with
   * diag as the reason. `*handle` is the owner's, given back to
   * stop_fetch. */
  int (*start_fetch)(void *user, ls_fetch *fetch, const ls_fetch_request *req,
                     void **handle, ls_diag *diag);
  /* Stops a fetch the engine no longer wants: after this returns the
   * owner must not call ls_fetch_data or ls_fetch_done for it. */
  void (*stop_fetch)(void *user, void *handle);
  /* The storage is ready and chunks are being fetched (err LS_OK), or the
   * download could not begin (err < 0, diag says why; on_end follows). */
  void (*on_begin)(void *user, int err, const char *diag);
  /* Called by ls_download_tick and once at 100%. Optional. */
  void (*on_progress)(void *user, const ls_download_progress *progress);
  /* The last call: committed (LS_OK; a verification: done), kept for a
   * resume after a pause (LS_EPAUSED) or when no source was left
   * (LS_ENOPEER; with keep_on_failure, any failure), or rolled back and
   * discarded after a cancel (LS_ECANCELED) or any other failure (its
   * code; diag says why).
   * ls_download_get_result says more. The engine is freed when this
   * returns. Never called after ls_download_abandon. */
  void (*on_end)(void *user, int err, const char *diag);
  /* Optional: a line for the log (a source dropped, a corrupt chunk). */
  void (*log)(void *user, const char *line);
  /* Optional: the clock in ns (default uv_hrtime). */
  uint64_t (*now_ns)(void *user);
} ls_download_ops;

typedef struct ls_download_config {
  uv_loop_t *loop;
  const char *game_dir;
  const char *id;
  ls_msg *manifest;              /* LS_MSG_GAME_FILES; taken (cleared) on LS_OK */
  const char *const *sources;    /* names, for the log and diags (peer ids) */
  size_t source_count;           /* 1 .. LS_DOWNLOAD_MAX_SOURCES (0 to verify) */
  bool verify_only;              /* check the game root against the manifest */
  bool keep_on_failure;          /* a failure keeps the download too (a repair:
                                    the payload is the game's own) */
  uint64_t sync_bytes;           /* 0: LS_DOWNLOAD_SYNC_BYTES */
  uint32_t sync_ms;              /* 0: LS_DOWNLOAD_SYNC_SECONDS */
  uint32_t stall_ms;             /* 0: LS_DOWNLOAD_STALL_SECONDS */
  const ls_download_ops *ops;
  void *user;
} ls_download_config;

/* Starts a download: the storage begins on the pool, then on_begin. Fails
 * (nothing started, no callback) only for invalid arguments or memory. */
int ls_download_start(const ls_download_config *config, ls_download **out, ls_diag *diag);

/* Cancels: fetches stop at once (no source is waited for), the storage
 * rolls back and discards the payload, then on_end(LS_ECANCELED). A no-op
 * once the download is ending. */
void ls_download_cancel(ls_download *d);

/* Pauses: fetches stop at once, the chunks written so far are made
 * durable and recorded, the storage is closed and kept, then
 * on_end(LS_EPAUSED). A no-op once the download is ending. */
void ls_download_pause(ls_download *d);

/* Stopping the program: as a pause (a cancel or failure under way still
 * rolls back), but no callback follows; the engine frees itself once its
 * pool jobs are done (they keep the loop alive). */
void ls_download_abandon(ls_download *d);

/* Measures the rates since the last tick and reports progress; call it
 * every few hundred ms while the download runs. */
void ls_download_tick(ls_download *d);

/* True from the moment the download stops taking chunks (commit, rollback
 * or abandon under way). */
bool ls_download_is_ending(const ls_download *d);

ls_download_progress ls_download_get_progress(const ls_download *d);

/* What a source has done: verified bytes written from it, failures, and
 * whether it was dropped. */
typedef struct ls_download_source_stats {
  uint64_t bytes;
  unsigned failures;
  bool dropped;
} ls_download_source_stats;
ls_download_source_stats ls_download_get_source_stats(const ls_download *d, size_t source);

/* The chunks in manifest order (file by file, offset by offset), and the
 * source whose copy of chunk k was written, or -1 while it is missing or
 * when the bytes on disk were kept. */
size_t ls_download_chunk_count(const ls_download *d);
int ls_download_chunk_source(const ls_download *d, size_t k);

typedef struct ls_download_chunk_info {
  const char *path;  /* the manifest's; valid while the engine lives */
  uint64_t offset;
  uint32_t len;
  bool done;         /* on disk and verified (a verification: matched) */
} ls_download_chunk_info;
ls_download_chunk_info ls_download_get_chunk(const ls_download *d, size_t k);

/* What the storage's begin found of an interrupted download (valid after
 * on_begin). */
ls_storage_resume ls_download_get_resume(const ls_download *d);

typedef struct ls_download_result {
  uint64_t bytes_fetched;  /* verified bytes written from sources */
  uint64_t bytes_reused;   /* kept from before or found on disk */
  size_t bad_chunks;       /* a verification: chunks that did not match */
  uint64_t bad_bytes;
  bool kept;               /* the storage stays for a resume (journal, map) */
} ls_download_result;
ls_download_result ls_download_get_result(const ls_download *d);

/* For the owner: bytes of a fetch arrived, in order. Returns LS_OK, or
 * LS_ECANCELED when the engine stopped the fetch during this call (a copy
 * of the chunk already won; or more bytes than requested, which counts as
 * a failure of the source): stop_fetch has run and `fetch` is gone. */
int ls_fetch_data(ls_fetch *fetch, const void *data, size_t len);
/* For the owner: the fetch ended. err LS_OK means every requested byte
 * was delivered; LS_ECANCELED a stop by the source (not counted against
 * it); anything else is a failure of the source (diag says what). */
void ls_fetch_done(ls_fetch *fetch, int err, const char *diag);

#endif
