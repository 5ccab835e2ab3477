/* Owns scan_local_library: turning game roots on disk into ls_local_game
 * entries, walking a payload only when the index cannot vouch for it. */
#include "library/library.h"

#include "core/array.h"
#include "core/error.h"
#include "core/fs.h"
#include "library/index.h"
#include "library/layout.h"
#include "library/version_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DEPTH 32
#define MAX_FILES_PER_GAME 100000
#define VERSION_FILE_MAX (64 * 1024)

/* A growing list of index files and dirs, filled by the payload walk. */
typedef struct walk {
  int root_fd;
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

static int walk_dir(walk *w, int dir_fd, const char *rel, int depth);

/* One directory entry of the payload: files are recorded, directories
 * walked, symlinks and special files ignored. */
static int walk_entry(walk *w, int dir_fd, const char *rel, const char *name, int depth)
{
  char path[4096];
  int n = rel[0] ? snprintf(path, sizeof path, "%s/%s", rel, name)
                 : snprintf(path, sizeof path, "%s", name);
  if (n < 0 || (size_t)n >= sizeof path)
    return LS_OK; /* unservable name: not payload */
  struct stat st;
  if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
    return errno == ENOENT ? LS_OK : ls_diag_errno(w->diag, errno, "cannot stat", path);
  if (S_ISREG(st.st_mode)) {
    COUNT(w->stats, files_statted);
    return add_file(w, path, &st);
  }
  if (!S_ISDIR(st.st_mode) || depth >= MAX_DEPTH)
    return LS_OK;
  int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? LS_OK : ls_diag_errno(w->diag, errno, "cannot open", path);
  struct stat dst;
  int rc = fstat(fd, &dst) == 0 ? add_dir(w, path, &dst) : LS_EIO;
  if (rc == LS_OK)
    rc = walk_dir(w, fd, path, depth + 1);
  close(fd);
  return rc;
}

/* Walks the directory open as fd (consumed) whose payload path is rel. */
static int walk_dir(walk *w, int fd, const char *rel, int depth)
{
  int dfd = dup(fd);
  DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
  if (!d) {
    if (dfd >= 0)
      close(dfd);
    return ls_diag_errno(w->diag, errno, "cannot read directory", rel[0] ? rel : w->entry->id);
  }
  COUNT(w->stats, dirs_opened);
  int rc = LS_OK;
  struct dirent *de;
  while (rc == LS_OK && (de = readdir(d)) != NULL) {
    const char *name = de->d_name;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
      continue;
    if (depth == 0 && ls_layout_is_reserved(name))
      continue;
    rc = walk_entry(w, fd, rel, name, depth);
  }
  closedir(d);
  return rc;
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
  walk w = {.root_fd = root_fd, .entry = entry, .stats = stats ? stats : &unused, .diag = diag};
  entry->id = strdup(id);
  if (!entry->id)
    return LS_ENOMEM;
  int rc = add_dir(&w, "", root_st);
  if (rc == LS_OK)
    rc = walk_dir(&w, root_fd, "", 0);
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

static int scan_dir_entries(DIR *d, int dir_fd, const ls_catalog *catalog, ls_index *index,
                            bool deep, ls_library *out, ls_scan_stats *stats, ls_diag *diag)
{
  size_t cap = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (!ls_catalog_find(catalog, de->d_name))
      continue;
    ls_local_game game;
    int rc = ls_scan_game(dir_fd, de->d_name, index, deep, &game, stats, diag);
    if (rc == LS_ENOENT)
      continue;
    if (rc == LS_OK && !ls_local_game_is_present(&game)) {
      ls_local_game_clear(&game);
      continue;
    }
    if (rc == LS_OK)
      rc = append_game(out, &cap, &game);
    if (rc != LS_OK) {
      ls_local_game_clear(&game);
      return rc;
    }
  }
  if (out->count > 1)
    qsort(out->games, out->count, sizeof *out->games, compare_games);
  return LS_OK;
}

int ls_scan_local_library(const char *game_dir, const ls_catalog *catalog, ls_index *index,
                          bool deep, ls_library *out, ls_scan_stats *stats, ls_diag *diag)
{
  memset(out, 0, sizeof *out);
  int dir_fd = open(game_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0)
    return ls_diag_errno(diag, errno, "cannot open game directory", game_dir);
  int dup_fd = dup(dir_fd);
  DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
  if (!d) {
    int e = errno;
    if (dup_fd >= 0)
      close(dup_fd);
    close(dir_fd);
    return ls_diag_errno(diag, e, "cannot read game directory", game_dir);
  }
  int rc = scan_dir_entries(d, dir_fd, catalog, index, deep, out, stats, diag);
  closedir(d);
  close(dir_fd);
  if (rc != LS_OK)
    ls_library_clear(out);
  else if (index)
    prune_index(index, catalog, out);
  return rc;
}
