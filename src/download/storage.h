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

#include <lanspread/error.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One download into one game root GAME_DIR/ID. */
typedef struct ls_storage ls_storage;

/* One payload file of the manifest: a relative '/'-separated path and its
 * size. The root-level "version.ini" (the sentinel) must be one of them. */
typedef struct ls_storage_file {
  const char *path;
  uint64_t size;
} ls_storage_file;

/* The largest version.ini accepted (it is buffered in memory). */
#define LS_STORAGE_VERSION_INI_MAX (64 * 1024)

/* Starts downloading `version` of game `id` into GAME_DIR/ID:
 * - settles a journal left by an interrupted download (ls_storage_recover);
 * - creates the root if missing (refused when it is a symbolic link);
 * - writes the journal (version + file list) atomically before anything else;
 * - parks an existing version.ini as .version.ini.discarded;
 * - creates every payload file except version.ini (parents made, no symlink
 *   followed at any component) at its size and pre-allocates it; existing
 *   content is kept (a file of another size is resized); version.ini is
 *   buffered in memory.
 * Paths must be relative, without empty, "." or ".." components, unique, and
 * must not start with a reserved root-level name (local/, .sync/, ...).
 * On failure after the journal was written, the transients are rolled back
 * and the payload discarded (as ls_storage_abort(s, true)) before returning;
 * *out stays NULL. */
int ls_storage_begin(const char *game_dir, const char *id, const char *version,
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
 * directories left empty), .version.ini.discarded and the journal.
 * An error before the commit point leaves the download uncommitted: call
 * ls_storage_abort. Once version.ini is renamed the result is LS_OK; if the
 * cleanup after it failed, diag->text says so (it is empty otherwise) and the
 * journal stays, so ls_storage_recover finishes the cleanup at next start. */
int ls_storage_commit(ls_storage *s, ls_diag *diag);

/* Rolls back an uncommitted download after a failure or a cancel (no write
 * may be in flight): deletes .version.ini.tmp and .version.ini.discarded (the
 * old sentinel is NOT restored), then with discard_payload deletes the
 * payload as ls_discard_cancelled_download does, then deletes the journal.
 * The runtime's failure and cancel paths both pass discard_payload = true.
 * LS_ESTATE (touching nothing) once the download is committed. A NULL s (a
 * begin that failed and already rolled back) is LS_OK. */
int ls_storage_abort(ls_storage *s, bool discard_payload, ls_diag *diag);

/* Closes the descriptors and frees s. Does not touch the disk: freeing an
 * unfinished download leaves its journal for ls_storage_recover. */
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
  LS_RECOVERY_DISCARDED, /* it had not: transients and payload discarded */
} ls_storage_recovery;

/* Startup recovery of one game root. Without a journal the root is left
 * alone (one fstatat: cheap enough for every catalog root). With one: when
 * version.ini is a regular file naming the journal's version and no
 * .version.ini.tmp remains, the download had committed and the commit's
 * cleanup is finished (payload kept); otherwise (also for an unreadable
 * journal) the transients are rolled back and the payload discarded. `done`
 * (may be NULL) says which; for the last two the diag holds a sentence for
 * the log. */
int ls_storage_recover(const char *game_dir, const char *id, ls_storage_recovery *done,
                       ls_diag *diag);

/* The journal .lanspread.download as recovery reads it: the version being
 * downloaded and the paths of its file list. */
typedef struct ls_storage_journal {
  char *version;
  char **paths;
  size_t count;
} ls_storage_journal;

/* Parses the journal's text, {"format": 1, "version": V, "files": [{"path":
 * P, ...}, ...]} (other members are ignored), every path a payload path
 * (library/layout.h). LS_EFORMAT with the reason in diag for anything else,
 * LS_ENOMEM; *out is empty on failure. Free with ls_storage_journal_free.
 * Recovery is its user; exposed for tests and the fuzzer. */
int ls_storage_journal_parse(const char *text, size_t len, ls_storage_journal *out,
                             ls_diag *diag);
void ls_storage_journal_free(ls_storage_journal *j);

#endif
