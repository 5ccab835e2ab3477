/* The download storage: all file I/O of one download into one game root
 * (docs/ARCHITECTURE.md, "Downloads"). It owns the download journal, the
 * version-sentinel transaction, the pre-allocation and the chunk writes of
 * the payload, the commit, the rollback and discard of a failed or cancelled
 * download, and the startup recovery of a download interrupted by a crash.
 * No symbolic link is ever followed inside the game directory.
 *
 * Blocking: every call does file I/O (fsync included); run it on a worker
 * thread, never on the runtime loop. */
#ifndef LS_DOWNLOAD_STORAGE_H
#define LS_DOWNLOAD_STORAGE_H

#include "download/journal.h"
#include "proto/proto.h"

#include <lanspread/error.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One download into one game root GAME_DIR/ID. */
typedef struct ls_storage ls_storage;

/* The largest version.ini accepted (it is buffered in memory). */
#define LS_STORAGE_VERSION_INI_MAX (64 * 1024)

/* Starts downloading `version` of game `id` into GAME_DIR/ID, its files
 * (the root-level "version.ini", the sentinel, must be one of them) cut
 * into chunks of chunk_size bytes:
 * - a journal whose download had committed: its cleanup is finished first;
 * - a journal of an interrupted download (format 2): it is resumed. Its
 *   durable chunks whose path, offset, length and hash are the same in the
 *   new file list are kept (ls_storage_chunk_kept), the others forgotten;
 *   a chunk of a file now shorter than the chunk's end is not kept; a
 *   file it made that the new list does not name is removed;
 * - any other journal (format 1, no or a foreign chunk map): rolled back as
 *   a failure (ls_storage_abort); an unreadable one: as a cancel;
 * - creates the root if missing (refused when it is a symbolic link);
 * - writes the journal (version, file list, which files it makes) and the
 *   chunk map atomically before anything else;
 * - parks an existing version.ini: as .version.ini.kept while no file of
 *   the old version is written (the first write into a file that was there
 *   before renames it .version.ini.discarded), or at once as
 *   .version.ini.discarded when a file of it must be resized;
 * - creates every payload file except version.ini (parents made, no symlink
 *   followed at any component) at its size and pre-allocates it; existing
 *   content is kept (a file of another size is resized); version.ini is
 *   buffered in memory.
 * Paths must be relative, without empty, "." or ".." components, unique, and
 * must not start with a reserved root-level name (local/, .sync/, ...).
 * On failure after the journal was written, it is rolled back as
 * ls_storage_abort(s, LS_ROLLBACK_FAILED) does before returning; *out stays
 * NULL. */
int ls_storage_begin(const char *game_dir, const char *id, const char *version,
                     uint32_t chunk_size, const ls_storage_file *files, size_t count,
                     ls_storage **out, ls_diag *diag);

/* What begin found of an interrupted download of this game. */
typedef struct ls_storage_resume {
  bool resumed;          /* a journal was found and its chunks considered */
  bool manifest_changed; /* it named another file list (or version) */
  size_t kept_chunks;    /* durable chunks kept for the new file list */
  size_t dropped_chunks; /* durable chunks that no longer match */
  uint64_t kept_bytes;
} ls_storage_resume;
ls_storage_resume ls_storage_get_resume(const ls_storage *s);

/* The chunks in file-list order (file by file, offset by offset). */
size_t ls_storage_chunk_count(const ls_storage *s);
/* Durable at begin (kept from the interrupted download). */
bool ls_storage_chunk_kept(const ls_storage *s, size_t k);
/* True when begin created the file: it holds no data worth probing. */
bool ls_storage_file_fresh(const ls_storage *s, size_t file_index);

/* Checks whether len bytes of file `file_index` at offset already hold
 * the data whose SHA-256 is `hash`, reading them into buf (len bytes, the
 * caller's). A range the file system reports as a hole, past the file's
 * end, or of a file missing on disk is no match without reading. version.ini
 * of a download (buffered) never matches. Thread-safe. */
int ls_storage_probe(ls_storage *s, size_t file_index, uint64_t offset, uint32_t len,
                     const uint8_t hash[32], void *buf, bool *match, ls_diag *diag);

/* Makes written data durable and records it: fdatasync of every file
 * written since the last sync (and, the first time, the directories begin
 * made), then the chunk map rewritten atomically with `bits`
 * (ls_chunk_bits_size(chunk count) bytes). Call it only with chunks whose
 * writes had returned before this call. Not concurrently with itself. */
int ls_storage_sync(ls_storage *s, const uint8_t *bits, ls_diag *diag);

/* Opens GAME_DIR/ID read-only for a verification of its payload against a
 * file list: nothing is written, created or parked; a file missing on disk
 * is no error (every probe of it fails). Use ls_storage_probe, then
 * ls_storage_free. */
int ls_storage_open_readonly(const char *game_dir, const char *id, uint32_t chunk_size,
                             const ls_storage_file *files, size_t count, ls_storage **out,
                             ls_diag *diag);

/* Writes len bytes of file `file_index` (an index into begin's list) at
 * `offset`. Never truncates. Thread-safe: any number of threads may write
 * different ranges of the same or different files at once. LS_EINVAL for a
 * range past the file's size; LS_ENOSPC (the diag names the file) when the
 * disk is full. */
int ls_storage_write(ls_storage *s, size_t file_index, uint64_t offset, const void *data,
                     size_t len, ls_diag *diag);

/* Commits the download once every byte is written and no write is in flight:
 * fsyncs the payload and its directories; checks that the buffered
 * version.ini names the version given to begin (LS_EPROTO otherwise); writes
 * it through .version.ini.tmp, fsync, rename (the commit point), fsync of the
 * root; then deletes the payload files the manifest does not list (and
 * directories left empty), the parked version.ini and the journal.
 * An error before the commit point leaves the download uncommitted: call
 * ls_storage_abort. Once version.ini is renamed the result is LS_OK; if the
 * cleanup after it failed, diag->text says so (it is empty otherwise) and the
 * journal stays, so ls_storage_recover finishes the cleanup at next start.
 * The chunk map goes with the journal. */
int ls_storage_commit(ls_storage *s, ls_diag *diag);

/* How ls_storage_abort rolls a download back. */
typedef enum ls_storage_rollback {
  /* A failure: what the download wrote goes, what was there before it began
   * stays. The files it made are deleted (every file it lists, once it
   * wrote into a file of the old version), directories left empty too;
   * files it does not list stay; an old version none of whose files was
   * written gets its version.ini back (downloaded and served again). */
  LS_ROLLBACK_FAILED,
  /* A cancel: the payload is discarded as ls_discard_cancelled_download
   * does (local/ and the other survivors stay; the old version.ini is not
   * restored). */
  LS_ROLLBACK_CANCELLED,
} ls_storage_rollback;

/* Rolls back an uncommitted download (no write may be in flight): the
 * chunk map first, then as `how` says, the journal last. LS_ESTATE
 * (touching nothing) once the download is committed. A NULL s (a begin that
 * failed and already rolled back) is LS_OK. */
int ls_storage_abort(ls_storage *s, ls_storage_rollback how, ls_diag *diag);

/* Closes the descriptors and frees s. Does not touch the disk: freeing an
 * unfinished download leaves its journal and chunk map (a pause, a stop):
 * the next begin resumes it. */
void ls_storage_free(ls_storage *s);

/* Deletes everything in GAME_DIR/ID except what survives a discard (local/,
 * .local.installing/, .local.backup/, .lanspread.json,
 * .softlan_game_installed, .sync/), the journal last, and then the root
 * itself when it is empty. Symbolic links are deleted as links. ID must be a
 * single path component; a missing root is LS_OK; a root that is a symbolic
 * link is refused (LS_EINVAL). */
int ls_discard_cancelled_download(const char *game_dir, const char *id, ls_diag *diag);

/* What ls_storage_recover did. */
typedef enum ls_storage_recovery {
  LS_RECOVERY_NONE,      /* no journal (or not a game root): nothing touched */
  LS_RECOVERY_COMPLETED, /* the download had committed: its cleanup finished */
  LS_RECOVERY_DISCARDED, /* not resumable: rolled back (a failure's rollback;
                            an unreadable journal: a cancel's) */
  LS_RECOVERY_PAUSED,    /* resumable: kept as a paused download */
  LS_RECOVERY_UNSTARTED, /* it had not begun (version.ini untouched): the
                            journal went, the payload is as it was */
} ls_storage_recovery;

/* A paused download as recovery found it. */
typedef struct ls_storage_paused {
  char version[LS_PROTO_MAX_VERSION + 1];
  uint64_t bytes;        /* of durable chunks whose file is long enough */
  uint64_t total_bytes;
} ls_storage_paused;

/* Startup recovery of one game root. Without a journal the root is left
 * alone (one fstatat: cheap enough for every catalog root). With one: when
 * version.ini is a regular file naming the journal's version and no
 * .version.ini.tmp remains, the download had committed and the commit's
 * cleanup is finished (payload kept; with a format 2 journal whose chunk
 * map is gone, nothing is swept: the sweep was done, or that version.ini
 * is the version on disk, put back by a rollback or never parked). When version.ini names another
 * version, the download had not begun: the journal goes. A format 2
 * journal otherwise is a paused download: kept (a stale .version.ini.tmp
 * goes, a chunk map of another file list goes), *paused (may be NULL) says
 * how far it got. Anything else is rolled back: format 1 or without a
 * chunk map of its list as a failure (LS_ROLLBACK_FAILED), an unreadable
 * journal as a cancel. `done` (may be NULL) says which; but for NONE the
 * diag holds a sentence for the log. */
int ls_storage_recover(const char *game_dir, const char *id, ls_storage_recovery *done,
                       ls_storage_paused *paused, ls_diag *diag);

#endif
