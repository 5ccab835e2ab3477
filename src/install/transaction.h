/* Install transactions: install, update and uninstall of
 * one game root through the intent log .lanspread.json and the reserved
 * directories .local.installing/ and .local.backup/; the removal of a
 * downloaded game; the startup recovery of a transaction a crash interrupted.
 * The state machine (phases, what is on disk, what recovery does) is in
 * docs/ARCHITECTURE.md, "Install transactions".
 *
 * No symbolic link is followed inside the game directory. Blocking: every
 * call does file I/O and fsyncs; run it on a worker thread. The caller runs
 * at most one operation per game at a time (the monitor's operation gate). */
#ifndef LS_INSTALL_TRANSACTION_H
#define LS_INSTALL_TRANSACTION_H

#include "install/unpacker.h"

#include <lanspread/error.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ls_catalog;

/* Progress of an install or update: `done` of `total` bytes. `total` is an
 * estimate: the sum of the sizes of the archives (first volumes only), and
 * `done` counts each archive's uncompressed bytes capped at its size, so it
 * never passes `total` and never goes back; the last call has done == total.
 * Return false to cancel (the operation then rolls back, LS_ECANCELED). */
typedef bool (*ls_install_progress_cb)(void *user, uint64_t done, uint64_t total);

/* Installs game `id` from the archives of GAME_DIR/ID, or updates it when it
 * is already installed (local/ is a directory): the archives (regular files
 * of the payload, root-level reserved names and symlinks excluded, for which
 * unpacker->is_archive is true) are extracted in byte order of their
 * relative paths into .local.installing/, fsynced, and swapped in as local/.
 * First settles a leftover transaction (as ls_recover_game_root).
 * Refusals: LS_EINVAL (unsafe id, root not a real directory), LS_ENOENT ("not
 * downloaded": no root; "no archive to install"), LS_ESTATE ("not downloaded":
 * no regular version.ini; a download in flight; local/ not a directory; a
 * reserved directory that is not ours in the way).
 * The extraction is held to one set of extraction limits for the game
 * (install/unpack_limits.h), scaled by the payload's bytes (every payload
 * file): over one, LS_ELIMIT (LS_ENOSPC for the disk's reserve).
 * A failure before the commit point (an unpacker error, a limit, a cancel,
 * an I/O error) rolls back: .local.installing/ removed, local/ untouched (absent or
 * the old tree), intent cleared; the unpacker's diag (naming the archive) is
 * returned. Once the new tree is local/ the result is LS_OK; if the cleanup
 * after that failed, diag->text says so (it is empty otherwise) and the
 * intent stays for ls_recover_game_root. */
int ls_install_game(const char *game_dir, const char *id, const ls_unpacker *unpacker,
                    ls_install_progress_cb progress, void *progress_user, ls_diag *diag);

/* Uninstalls game `id`: local/ is moved to .local.backup/ (the commit point)
 * and deleted; the payload stays. LS_ENOENT without a root, LS_ESTATE
 * ("not installed") without a local/ directory; LS_EINVAL and the other
 * refusals as for ls_install_game. LS_OK with a non-empty diag when the
 * deletion of the backup failed (finished by recovery). */
int ls_uninstall_game(const char *game_dir, const char *id, ls_diag *diag);

/* Deletes the whole root GAME_DIR/ID (ls_rmtree_at: no symlink followed)
 * of a downloaded, not installed game. Refused: LS_EINVAL for an unsafe id
 * or a root that is a symbolic link or not a directory; LS_ENOENT when the
 * id is not in `catalog` (checked unless NULL) or there is no root;
 * LS_ESTATE when local/ exists ("installed: uninstall it first"), an install
 * or a download is in flight or unfinished, or there is no regular
 * root-level version.ini ("not downloaded"). */
int ls_remove_downloaded_game(const char *game_dir, const struct ls_catalog *catalog,
                              const char *id, ls_diag *diag);

typedef enum ls_txn_op {
  LS_TXN_OP_NONE,
  LS_TXN_OP_INSTALL,
  LS_TXN_OP_UPDATE,
  LS_TXN_OP_UNINSTALL,
} ls_txn_op;

/* The phase an intent log names (docs/ARCHITECTURE.md, "Install
 * transactions"). */
typedef enum ls_txn_phase {
  LS_TXN_PHASE_EXTRACTING, /* install, update: .local.installing/ is ours */
  LS_TXN_PHASE_SWAPPING,   /* update: the new tree is complete; .local.backup/ is ours */
  LS_TXN_PHASE_REMOVING,   /* uninstall: .local.backup/ is ours */
} ls_txn_phase;

/* What an intent log says: an operation and a phase that belongs to it. */
typedef struct ls_txn_intent {
  ls_txn_op op;
  ls_txn_phase phase;
} ls_txn_intent;

/* Parses the text of an intent log (.lanspread.json), {"format": 1, "op":
 * OP, "phase": PHASE, ...} (other members are ignored). LS_EFORMAT with the
 * reason in diag for anything else, which recovery treats as a corrupt
 * intent: it proves nothing. Recovery is its user; exposed for tests and
 * the fuzzer. */
int ls_txn_intent_parse(const char *text, size_t len, ls_txn_intent *out, ls_diag *diag);

typedef enum ls_txn_recovery_outcome {
  LS_TXN_RECOVERY_NOTHING,        /* no intent, no leftover of ours */
  LS_TXN_RECOVERY_ROLLED_BACK,    /* stopped before its commit point: old state back */
  LS_TXN_RECOVERY_ROLLED_FORWARD, /* stopped after it: the new state finished */
  LS_TXN_RECOVERY_CLEANED,        /* no usable intent: marked leftovers settled */
} ls_txn_recovery_outcome;

/* What ls_recover_game_root found and did. */
typedef struct ls_txn_recovery_report {
  ls_txn_recovery_outcome outcome;
  ls_txn_op op;            /* the intent's operation; NONE without a valid intent */
  bool intent_unreadable;  /* an intent that was corrupt or of an unknown format */
  bool foreign_installing; /* .local.installing exists, not proven ours: untouched */
  bool foreign_backup;     /* .local.backup exists, not proven ours: untouched */
} ls_txn_recovery_report;

/* Startup recovery of GAME_DIR/ID: combines the intent with the file system,
 * rolls an interrupted transaction forward past its commit point or back
 * before it, and deletes .local.installing/ or .local.backup/ only when the
 * intent or their .lanspread_owned marker proves they are ours. Afterwards
 * local/ is absent or holds a complete old or new tree, and no reserved
 * directory of ours, no intent and no intent temp file is left. A corrupt
 * intent proves nothing: it is deleted, and only marked directories are
 * settled. A missing root is LS_OK (nothing); a root that is a symlink or not
 * a directory is LS_EINVAL. report may be NULL; the diag (may be NULL) gets
 * a sentence for the log whenever something was done or left alone (it is
 * empty otherwise). */
int ls_recover_game_root(const char *game_dir, const char *id, ls_txn_recovery_report *report,
                         ls_diag *diag);


#endif
