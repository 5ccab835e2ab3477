/* The extraction limits of an install: what the archives of one game may
 * write, checked by every unpacker path WHILE it writes (libarchive, which
 * also reads RAR, in unpack_archive.c; the external command in
 * unpack_external.c), so an archive from a hostile peer cannot fill the
 * disk. One rule, one struct, the constants below; docs/ARCHITECTURE.md,
 * "Extraction limits", says why these numbers.
 *
 * The rule, for one install (every archive of the game):
 * - game budget: the files written (their sizes, holes included) never
 *   exceed LS_UNPACK_GAME_RATIO x the bytes of the downloaded payload +
 *   LS_UNPACK_GAME_SLACK, nor the destination filesystem's free space (for
 *   unprivileged users, f_bavail) at the start minus LS_UNPACK_DISK_RESERVE;
 * - free space: every LS_UNPACK_SPACE_CHECK bytes, the filesystem must
 *   still have LS_UNPACK_DISK_RESERVE free (other writers share it);
 * - expansion ratio: per archive, the data written never exceeds
 *   LS_UNPACK_RATIO x the archive bytes read so far + LS_UNPACK_RATIO_FREE;
 * - entries: at most LS_UNPACK_MAX_ENTRIES (files, directories, links) per
 *   game.
 * A refusal is LS_ELIMIT (LS_ENOSPC for the free-space bound) with a diag
 * naming the archive and the limit; it comes before the write that would
 * pass the limit, so nothing on disk ever exceeds it. */
#ifndef LS_INSTALL_UNPACK_LIMITS_H
#define LS_INSTALL_UNPACK_LIMITS_H

#include <lanspread/error.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#define LS_UNPACK_GAME_RATIO 32u                    /* budget per payload byte */
#define LS_UNPACK_GAME_SLACK ((uint64_t)64 << 20)   /* + this, for tiny payloads */
#define LS_UNPACK_RATIO 1000u                       /* per archive byte read ... */
#define LS_UNPACK_RATIO_FREE ((uint64_t)64 << 20)   /* ... after this much */
#define LS_UNPACK_MAX_ENTRIES 1000000u              /* per game */
#define LS_UNPACK_DISK_RESERVE ((uint64_t)64 << 20) /* left free on the filesystem */
#define LS_UNPACK_SPACE_CHECK ((uint64_t)64 << 20)  /* free space re-checked this often */

/* The numbers of the rule: ls_unpack_rule_default() gives the constants
 * above; tests pass smaller ones. */
typedef struct ls_unpack_rule {
  uint64_t game_ratio, game_slack; /* budget = game_ratio x declared + game_slack */
  uint64_t ratio, ratio_free;      /* per archive: written <= ratio x read + ratio_free */
  uint64_t max_entries;            /* per game */
  uint64_t disk_reserve;           /* bytes the filesystem keeps free */
} ls_unpack_rule;

ls_unpack_rule ls_unpack_rule_default(void);

/* The state of one install's limits: begun once, then shared by the unpacks
 * of every archive of the game (one thread at a time). */
typedef struct ls_unpack_limits {
  ls_unpack_rule rule;
  char dest[PATH_MAX];       /* the destination, for statvfs */
  uint64_t declared;         /* payload bytes the budget was computed from */
  uint64_t budget;           /* bytes the game may write in all */
  bool budget_by_space;      /* the free space, not the payload, set the budget */
  uint64_t bytes;            /* file bytes so far, every archive */
  uint64_t entries;          /* entries so far, every archive */
  uint64_t next_space_check; /* bytes at which statvfs runs again */
  /* the archive being extracted */
  uint64_t archive_size;     /* bytes of its volumes */
  uint64_t archive_base;     /* bytes before it */
  uint64_t archive_data;     /* data written from it */
  uint64_t archive_read;     /* the most of it read so far */
} ls_unpack_limits;

/* Starts the limits of one install into dest_dir (which exists) for a
 * payload of `declared` bytes; rule NULL: the default. Fails only when the
 * destination's filesystem cannot be asked (statvfs). */
int ls_unpack_limits_begin(ls_unpack_limits *l, const ls_unpack_rule *rule, const char *dest_dir,
                           uint64_t declared, ls_diag *diag);
/* The next archive (a volume set of `size` bytes) starts. */
void ls_unpack_limits_archive(ls_unpack_limits *l, uint64_t size);
/* Before one more entry of `archive` is made. */
int ls_unpack_limits_entry(ls_unpack_limits *l, const char *archive, ls_diag *diag);
/* Before the files grow by n bytes (a declared size, or data past it). */
int ls_unpack_limits_grow(ls_unpack_limits *l, const char *archive, uint64_t n, ls_diag *diag);
/* Before n bytes of data are written, `read` bytes of the archive having
 * been read: the expansion ratio. */
int ls_unpack_limits_data(ls_unpack_limits *l, const char *archive, uint64_t n, uint64_t read,
                          ls_diag *diag);
/* For an unpacker we only watch (the external command): the destination
 * holds `bytes` of files in `entries` entries now; checks every limit, the
 * archive's own part against the ratio to its whole size. */
int ls_unpack_limits_observe(ls_unpack_limits *l, const char *archive, uint64_t bytes,
                             uint64_t entries, ls_diag *diag);
/* Bytes the game may still write. */
uint64_t ls_unpack_limits_left(const ls_unpack_limits *l);

#endif
