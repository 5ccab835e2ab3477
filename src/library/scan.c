/* Owns scan_local_library: turning game roots on disk into ls_local_game
 * entries, walking a payload only when the index cannot vouch for it. */
#include "library/library.h"

#include "core/array.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/walk.h"
#include "library/index.h"
#include "library/layout.h"
#include "library/version_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FILES_PER_GAME 100000
#define VERSION_FILE_MAX (64 * 1024)

/* A growing list of index files and dirs, filled by the payload walk. */
typedef struct walk {
  ls_index_game *entry;
  size_t file_cap, dir_cap;
  ls_scan_stats *stats;
  ls_diag *diag;
} walk;

#define COUNT(stats, field)   \
  do {                        \
    if (stats)                \
      (stats)->field++;       \
  } while (0)

static int add_dir(walk *w, const char *path, const struct stat *st)
{
  ls_index_game *e = w->entry;
  ls_index_dir *dirs = ls_array_reserve(e->dirs, &w->dir_cap, e->dir_count + 1, sizeof *dirs);
  if (!dirs)
    return LS_ENOMEM;
  e->dirs = dirs;
  char *copy = strdup(path);
  if (!copy)
    return LS_ENOMEM;
  e->dirs[e->dir_count++] = (ls_index_dir){copy, ls_stamp_of(st)};
  return LS_OK;
}

static int add_file(walk *w, const char *path, const struct stat *st)
{
  ls_index_game *e = w->entry;
  if (e->file_count >= MAX_FILES_PER_GAME)
    return ls_diag_set(w->diag, LS_ETOOBIG, "%s: more than %d payload files", e->id,
                       MAX_FILES_PER_GAME);
  ls_index_file *files =
    ls_array_reserve(e->files, &w->file_cap, e->file_count + 1, sizeof *files);
  if (!files)
    return LS_ENOMEM;
  e->files = files;
  char *copy = strdup(path);
  if (!copy)
    return LS_ENOMEM;
  e->files[e->file_count++] = (ls_index_file){.path = copy, .stamp = ls_stamp_of(st)};
  return LS_OK;
}

/* One entry of the payload walk: files are recorded, directories recorded
 * and entered; symlinks, special files, reserved names and paths the path
 * rule refuses (no peer could ask for them) are not payload. */
static int walk_visit(void *ctx, const ls_walk_entry *e, ls_diag *diag)
{
  walk *w = ctx;
  (void)diag;
  if (ls_layout_check_payload_path(e->path, NULL) != LS_OK)
    return LS_WALK_SKIP;
  if (e->type == LS_WALK_FILE) {
    COUNT(w->stats, files_statted);
    return add_file(w, e->path, e->st);
  }
  if (e->type != LS_WALK_DIR)
    return LS_OK;
  COUNT(w->stats, dirs_opened);
  return add_dir(w, e->path, e->st);
}

static int compare_index_files(const void *a, const void *b)
{
  return strcmp(((const ls_index_file *)a)->path, ((const ls_index_file *)b)->path);
}

/* Keeps the cached chunk hashes of files whose stamp did not change. */
static void carry_hashes(ls_index_game *fresh, const ls_index_game *old)
{
  if (!old)
    return;
  size_t j = 0;
  for (size_t i = 0; i < fresh->file_count; i++) {
    ls_index_file *f = &fresh->files[i];
    while (j < old->file_count && strcmp(old->files[j].path, f->path) < 0)
      j++;
    if (j == old->file_count)
      return;
    const ls_index_file *o = &old->files[j];
    if (o->hashes && strcmp(o->path, f->path) == 0 && ls_stamp_equal(o->stamp, f->stamp)) {
      f->hashes = malloc((size_t)o->chunk_count * 32);
      if (f->hashes) {
        memcpy(f->hashes, o->hashes, (size_t)o->chunk_count * 32);
        f->chunk_size = o->chunk_size;
        f->chunk_count = o->chunk_count;
      }
    }
  }
}

/* True when every directory recorded in the entry still has its stamp. */
static bool dirs_unchanged(int root_fd, const struct stat *root_st, const ls_index_game *e)
{
  if (e->dir_count == 0 || !ls_stamp_equal(e->dirs[0].stamp, ls_stamp_of(root_st)))
    return false;
  for (size_t i = 1; i < e->dir_count; i++) {
    struct stat st;
    if (fstatat(root_fd, e->dirs[i].path, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISDIR(st.st_mode) || !ls_stamp_equal(e->dirs[i].stamp, ls_stamp_of(&st)))
      return false;
  }
  return true;
}

/* Copies an index entry's payload into game->files and game->size. */
static int fill_files(ls_local_game *game, const ls_index_game *e)
{
  game->files = e->file_count ? calloc(e->file_count, sizeof *game->files) : NULL;
  if (e->file_count && !game->files)
    return LS_ENOMEM;
  game->size = 0;
  for (size_t i = 0; i < e->file_count; i++) {
    game->files[i].path = strdup(e->files[i].path);
    if (!game->files[i].path)
      return LS_ENOMEM;
    game->files[i].size = e->files[i].stamp.size;
    game->file_count = i + 1;
    game->size += e->files[i].stamp.size;
  }
  return LS_OK;
}

/* Builds a fresh index entry for the root by walking its payload. */
static int walk_root(int root_fd, const char *id, const struct stat *root_st,
                     ls_index_game *entry, ls_scan_stats *stats, ls_diag *diag)
{
  ls_scan_stats unused = {0};
  walk w = {.entry = entry, .stats = stats ? stats : &unused, .diag = diag};
  entry->id = strdup(id);
  if (!entry->id)
    return LS_ENOMEM;
  COUNT(w.stats, dirs_opened);
  int rc = add_dir(&w, "", root_st);
  if (rc == LS_OK)
    rc = ls_walk(root_fd, NULL, LS_WALK_SKIP_DEEP, walk_visit, &w, diag);
  if (rc == LS_OK && entry->file_count > 1)
    qsort(entry->files, entry->file_count, sizeof *entry->files, compare_index_files);
  return rc;
}

/* Reads and parses version.ini unless the index already knows it. */
static int read_version(int root_fd, const struct stat *vst, const ls_index_game *old,
                        ls_index_game *entry, ls_diag *diag)
{
  entry->version_stamp = ls_stamp_of(vst);
  if (old && ls_stamp_equal(old->version_stamp, entry->version_stamp)) {
    entry->version = old->version ? strdup(old->version) : NULL;
    return old->version && !entry->version ? LS_ENOMEM : LS_OK;
  }
  char *text;
  size_t len;
  ls_diag ignored;
  int rc = ls_read_file_at(root_fd, LS_VERSION_FILE, VERSION_FILE_MAX, &text, &len, &ignored);
  if (rc == LS_ENOMEM)
    return ls_diag_set(diag, rc, "out of memory");
  if (rc != LS_OK)
    return LS_OK; /* unreadable or huge: downloaded, version unknown */
  entry->version = ls_version_file_parse(text, len);
  free(text);
  return LS_OK;
}

static int scan_open_root(int root_fd, const char *id, ls_index *index, bool deep,
                          ls_local_game *game, ls_scan_stats *stats, ls_diag *diag)
{
  struct stat root_st, vst, lst;
  if (fstat(root_fd, &root_st) != 0)
    return ls_diag_errno(diag, errno, "cannot stat game root", id);
  game->downloaded = fstatat(root_fd, LS_VERSION_FILE, &vst, AT_SYMLINK_NOFOLLOW) == 0 &&
                     S_ISREG(vst.st_mode);
  game->installed = fstatat(root_fd, LS_LOCAL_DIR, &lst, AT_SYMLINK_NOFOLLOW) == 0 &&
                    S_ISDIR(lst.st_mode);

  const ls_index_game *old = index ? ls_index_find(index, id) : NULL;
  bool reuse = old && !deep && dirs_unchanged(root_fd, &root_st, old) &&
               (game->downloaded ? ls_stamp_equal(old->version_stamp, ls_stamp_of(&vst))
                                 : old->version_stamp.ino == 0);
  ls_index_game fresh = {0};
  int rc = LS_OK;
  if (reuse) {
    COUNT(stats, roots_reused);
  } else {
    COUNT(stats, roots_walked);
    rc = walk_root(root_fd, id, &root_st, &fresh, stats, diag);
    if (rc == LS_OK && game->downloaded)
      rc = read_version(root_fd, &vst, old, &fresh, diag);
    if (rc == LS_OK)
      carry_hashes(&fresh, old);
  }
  const ls_index_game *use = reuse ? old : &fresh;
  if (rc == LS_OK && game->downloaded && use->version)
    rc = (game->version = strdup(use->version)) ? LS_OK : LS_ENOMEM;
  if (rc == LS_OK)
    rc = fill_files(game, use);
  if (rc == LS_OK && !reuse && index)
    rc = ls_index_put(index, &fresh);
  ls_index_game_clear(&fresh);
  return rc;
}

int ls_scan_game(int game_dir_fd, const char *id, ls_index *index, bool deep,
                 ls_local_game *game, ls_scan_stats *stats, ls_diag *diag)
{
  memset(game, 0, sizeof *game);
  COUNT(stats, roots_seen);
  int root_fd = openat(game_dir_fd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (root_fd < 0) {
    int e = errno;
    if (index)
      ls_index_remove(index, id);
    if (e == ENOENT || e == ENOTDIR || e == ELOOP)
      return LS_ENOENT; /* absent, a file, or a symlink: not a game root */
    return ls_diag_errno(diag, e, "cannot open game root", id);
  }
  game->id = strdup(id);
  int rc = game->id ? scan_open_root(root_fd, id, index, deep, game, stats, diag) : LS_ENOMEM;
  close(root_fd);
  if (rc != LS_OK)
    ls_local_game_clear(game);
  return rc;
}

static int compare_games(const void *a, const void *b)
{
  return strcmp(((const ls_local_game *)a)->id, ((const ls_local_game *)b)->id);
}

/* Drops index entries of games that were not found in this full scan. */
static void prune_index(ls_index *index, const ls_catalog *catalog, const ls_library *lib)
{
  for (size_t i = 0; i < ls_catalog_count(catalog); i++) {
    const char *id = ls_catalog_at(catalog, i)->id;
    if (!ls_library_find(lib, id) && ls_index_find(index, id))
      ls_index_remove(index, id);
  }
}

static int append_game(ls_library *lib, size_t *cap, ls_local_game *game)
{
  ls_local_game *games = ls_array_reserve(lib->games, cap, lib->count + 1, sizeof *games);
  if (!games)
    return LS_ENOMEM;
  lib->games = games;
  lib->games[lib->count++] = *game;
  return LS_OK;
}

/* One library scan: what it scans with and what it found so far. */
typedef struct library_scan {
  const ls_catalog *catalog;
  ls_index *index;
  bool deep;
  ls_library *out;
  size_t cap;
  ls_scan_stats *stats;
} library_scan;

/* A child of GAME_DIR: scanned when it is a catalog id, never entered. */
static int scan_child(void *ctx, const ls_walk_entry *e, ls_diag *diag)
{
  library_scan *ls = ctx;
  if (!ls_catalog_find(ls->catalog, e->name))
    return LS_WALK_SKIP;
  ls_local_game game;
  int rc = ls_scan_game(e->dir_fd, e->name, ls->index, ls->deep, &game, ls->stats, diag);
  if (rc == LS_ENOENT)
    return LS_WALK_SKIP;
  if (rc == LS_OK && !ls_local_game_is_present(&game)) {
    ls_local_game_clear(&game);
    return LS_WALK_SKIP;
  }
  if (rc == LS_OK)
    rc = append_game(ls->out, &ls->cap, &game);
  if (rc != LS_OK)
    ls_local_game_clear(&game);
  return rc == LS_OK ? LS_WALK_SKIP : rc;
}

int ls_scan_local_library(const char *game_dir, const ls_catalog *catalog, ls_index *index,
                          bool deep, ls_library *out, ls_scan_stats *stats, ls_diag *diag)
{
  memset(out, 0, sizeof *out);
  int dir_fd = open(game_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0)
    return ls_diag_errno(diag, errno, "cannot open game directory", game_dir);
  library_scan ls = {catalog, index, deep, out, 0, stats};
  int rc = ls_walk(dir_fd, NULL, 0, scan_child, &ls, diag);
  close(dir_fd);
  if (rc == LS_OK && out->count > 1)
    qsort(out->games, out->count, sizeof *out->games, compare_games);
  if (rc != LS_OK)
    ls_library_clear(out);
  else if (index)
    prune_index(index, catalog, out);
  return rc;
}
