/* The local game library: what GAME_DIR holds, game by game.
 *
 * A scan looks only at direct child directories of GAME_DIR whose name is a
 * catalog id. Symlinks are never followed: a symlinked game root, a symlinked
 * version.ini or local/, and symlinks inside the payload are ignored. */
#ifndef LS_LIBRARY_LIBRARY_H
#define LS_LIBRARY_LIBRARY_H

#include <lanspread/catalog.h>
#include <lanspread/error.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ls_index ls_index;

/* One payload file, relative to the game root ("a/b.eti"). */
typedef struct ls_file_info {
  char *path;
  uint64_t size;
} ls_file_info;

/* What one game root holds. */
typedef struct ls_local_game {
  char *id;
  bool downloaded;       /* a regular root-level version.ini exists */
  bool installed;        /* local/ is a directory */
  char *version;         /* from version.ini; NULL when unknown or not downloaded */
  uint64_t size;         /* payload bytes */
  size_t file_count;
  ls_file_info *files;   /* payload, sorted by path */
} ls_local_game;

/* All present game roots, sorted by id. */
typedef struct ls_library {
  size_t count;
  ls_local_game *games;
} ls_library;

/* What a scan did: the proof that a warm rescan skips the payload. Scans
 * add to the counters; zero them first. */
typedef struct ls_scan_stats {
  unsigned roots_seen;     /* catalog game roots looked at */
  unsigned roots_reused;   /* taken from the index without a payload walk */
  unsigned roots_walked;   /* payload walked */
  unsigned files_statted;  /* payload files stat'ed during walks */
  unsigned dirs_opened;    /* payload directories read during walks */
} ls_scan_stats;

/* What the peer announces for one downloaded catalog game. */
typedef struct ls_game_summary {
  const char *id;
  const char *name;
  const char *version;
  uint64_t size;
} ls_game_summary;

/* Scans one game root GAME_DIR/id (game_dir_fd is an open O_DIRECTORY fd).
 * Returns LS_ENOENT when the root is absent (or not a real directory), with
 * *game left empty. `index` and `stats` may be NULL. `deep` stats every
 * payload file even when the index says the root is unchanged. */
int ls_scan_game(int game_dir_fd, const char *id, ls_index *index, bool deep,
                 ls_local_game *game, ls_scan_stats *stats, ls_diag *diag);

/* scan_local_library: every catalog game root in game_dir. */
int ls_scan_local_library(const char *game_dir, const ls_catalog *catalog,
                          ls_index *index, bool deep, ls_library *out,
                          ls_scan_stats *stats, ls_diag *diag);

void ls_local_game_clear(ls_local_game *game);
void ls_library_clear(ls_library *lib);
const ls_local_game *ls_library_find(const ls_library *lib, const char *id);
/* A game root counts as present when it is downloaded, installed, or holds
 * any payload (say, a partial download); an empty root does not. */
bool ls_local_game_is_present(const ls_local_game *game);
/* Puts game into lib (taking ownership), replacing the entry with the same
 * id; a game that is not present removes the entry. */
int ls_library_put(ls_library *lib, ls_local_game *game);

/* The protocol summaries: downloaded catalog games only. Returns how many
 * were written; *out is malloc'ed (free it), strings point into lib/catalog. */
int ls_library_summaries(const ls_library *lib, const ls_catalog *catalog,
                         ls_game_summary **out, size_t *count);

#endif
