/* The library index: an on-disk cache of what each game root held, so that a
 * rescan of an unchanged root skips its payload files.
 *
 * A root is unchanged when the stamps (inode, size, mtime) of the root, of
 * version.ini and of every payload directory are as recorded:
 * adding, removing or renaming a payload file changes its directory's mtime.
 * In-place edits of a payload file do not; the local game monitor sees them
 * as inotify events and rescans that root deep (every file stat'ed), and
 * the periodic fallback scan is a deep one too.
 *
 * Per file the entry keeps path, size, mtime and inode; chunk hashes (the
 * request server fills them) are valid only while those four match.
 *
 * The file is a cache: a missing, truncated or corrupt index (bad magic,
 * bad checksum, bad lengths) is ignored and rebuilt, never trusted.
 * Not thread-safe: one owner at a time. */
#ifndef LS_LIBRARY_INDEX_H
#define LS_LIBRARY_INDEX_H

#include <lanspread/error.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

typedef struct ls_index ls_index;

/* The index's file name inside the state directory. */
#define LS_INDEX_FILE "library.index"

/* What identifies one version of a file or directory on disk. */
typedef struct ls_stamp {
  uint64_t ino;
  uint64_t size;
  int64_t mtime_ns;
} ls_stamp;

typedef struct ls_index_file {
  char *path;            /* relative to the game root */
  ls_stamp stamp;
  uint32_t chunk_size;   /* 0 when no hashes are cached */
  uint32_t chunk_count;
  uint8_t *hashes;       /* chunk_count * 32 bytes of SHA-256, or NULL */
} ls_index_file;

typedef struct ls_index_dir {
  char *path;            /* "" is the root itself */
  ls_stamp stamp;
} ls_index_dir;

typedef struct ls_index_game {
  char *id;
  ls_stamp version_stamp; /* zero when version.ini is absent */
  char *version;          /* parsed version, NULL when unknown */
  size_t dir_count;
  ls_index_dir *dirs;     /* dirs[0] is the root */
  size_t file_count;
  ls_index_file *files;   /* sorted by path */
} ls_index_game;

ls_stamp ls_stamp_of(const struct stat *st);
bool ls_stamp_equal(ls_stamp a, ls_stamp b);

/* Opens STATE_DIR/library.index; a missing or corrupt file gives an empty
 * index (ls_index_was_rebuilt tells which). Fails only on memory. */
int ls_index_open(const char *state_dir, ls_index **out, ls_diag *diag);
void ls_index_free(ls_index *index);
/* Why the loaded file was not used, or NULL when it was (or did not exist). */
const char *ls_index_rejected_reason(const ls_index *index);

/* Writes the index atomically (temp file, fsync, rename) when it changed. */
int ls_index_save(ls_index *index, ls_diag *diag);

const ls_index_game *ls_index_find(const ls_index *index, const char *id);
/* The entries sorted by id. */
size_t ls_index_count(const ls_index *index);
const ls_index_game *ls_index_at(const ls_index *index, size_t i);
/* Stores entry (taking ownership of its memory), replacing the old one. */
int ls_index_put(ls_index *index, ls_index_game *entry);
void ls_index_remove(ls_index *index, const char *id);
void ls_index_game_clear(ls_index_game *entry);

/* Chunk hashes of one payload file, valid only for that exact stamp.
 * get: LS_ENOENT when none are cached for this stamp. The pointer stays
 * valid until the index changes. */
int ls_index_get_hashes(const ls_index *index, const char *id, const char *path,
                        ls_stamp stamp, uint32_t chunk_size,
                        const uint8_t **hashes, uint32_t *chunk_count);
int ls_index_set_hashes(ls_index *index, const char *id, const char *path,
                        ls_stamp stamp, uint32_t chunk_size,
                        const uint8_t *hashes, uint32_t chunk_count);

#endif
