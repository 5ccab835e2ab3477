/* Owns all file I/O of a download (download/storage.h): the journal, the
 * version-sentinel transaction, pre-allocation and chunk writes, commit,
 * rollback, discard and startup recovery. Every path inside the game
 * directory is reached with openat and O_NOFOLLOW from a directory
 * descriptor, so no symbolic link is ever followed. A payload file is open
 * only for the one write, read or sync that needs it: a game of any number
 * of files fits under any descriptor limit. */
#include "download/storage.h"

#include "core/error.h"
#include "core/fs.h"
#include "core/teststep.h"
#include "core/walk.h"
#include "library/hashing.h"
#include "library/layout.h"
#include "library/version_file.h"

#include <lanspread/catalog.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIR_MODE 0755
#define FILE_MODE 0644
#define SHOWN_MAX (PATH_MAX * 2 + 2) /* GAME_DIR/ID/REL, for diagnostics */

typedef struct slot {
  char *path;
  uint64_t size;
  size_t first_chunk; /* its first chunk's index */
  bool fresh;         /* created by begin */
  atomic_bool dirty;  /* written since the last sync */
} slot;

/* A sorted list of relative payload paths: what a commit keeps, what a
 * failure removes. */
typedef struct listing {
  const char **paths;
  size_t count;
} listing;

/* The version that was there when the download began, parked under a name
 * that says whether a file of it has been written since. */
typedef enum old_version {
  OLD_NONE,    /* there was none */
  OLD_INTACT,  /* parked as .version.ini.kept: a failure puts it back */
  OLD_CHANGED, /* parked as .version.ini.discarded: a file of it was written */
} old_version;

struct ls_storage {
  int game_fd;
  int root_fd;
  char *id;
  char *root_path; /* GAME_DIR/ID, for diagnostics */
  char *version;
  slot *files;
  size_t count;
  listing keep;
  listing orphans; /* made by the interrupted run, not in this list (owned) */
  bool *created;   /* per file: made by this download (journalled) */
  size_t sentinel; /* index of version.ini in files */
  pthread_mutex_t sentinel_lock; /* guards sentinel_buf and old */
  unsigned char *sentinel_buf;
  old_version old;
  uint32_t chunk_size;
  size_t nchunks;
  uint8_t digest[LS_MANIFEST_DIGEST_LEN];
  uint8_t *kept;   /* bitmap: durable at begin */
  ls_storage_resume resume;
  bool readonly;   /* a verification: nothing is written */
  bool dirs_synced;
  bool root_created;
  bool committed;
};

/* ---- names and paths ---------------------------------------------------- */

static bool is_sentinel_path(const char *path)
{
  return strcmp(path, LS_VERSION_FILE) == 0;
}

static void show(char *buf, const char *root_path, const char *rel)
{
  snprintf(buf, SHOWN_MAX, "%s/%s", root_path, rel);
}

static int compare_paths(const void *a, const void *b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool listing_has(const listing *l, const char *rel)
{
  return l->count && bsearch(&rel, l->paths, l->count, sizeof *l->paths, compare_paths);
}

/* Prefixes the diag's text with "PREFIX: ". */
static int diag_prefix(ls_diag *diag, int err, const char *prefix)
{
  if (diag) {
    char text[LS_DIAG_MAX];
    snprintf(text, sizeof text, "%s", diag->text);
    ls_diag_set(diag, err, "%s: %s", prefix, text);
  }
  return err;
}

/* ---- opening without following links ---------------------------------- */

static int open_game_dir(const char *game_dir, int *fd, ls_diag *diag)
{
  *fd = open(game_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  return *fd >= 0 ? LS_OK : ls_diag_errno(diag, errno, "cannot open game directory", game_dir);
}

/* The diag of a failed O_NOFOLLOW open of dir_fd/name: a symbolic link is
 * refused as such, anything else reported with its errno text. */
static int open_failure(int dir_fd, const char *name, int e, const char *what,
                        const char *shown, ls_diag *diag)
{
  struct stat st;
  if ((e == ELOOP || e == ENOTDIR) && fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
      S_ISLNK(st.st_mode))
    return ls_diag_set(diag, LS_EINVAL, "%s is a symbolic link: refusing to follow it", shown);
  return ls_diag_errno(diag, e, what, shown);
}

/* Opens dir_fd/name as a directory (with create, makes it first). */
static int open_subdir(int dir_fd, const char *name, bool create, const char *shown, int *out,
                       ls_diag *diag)
{
  if (create && mkdirat(dir_fd, name, DIR_MODE) != 0 && errno != EEXIST)
    return ls_diag_errno(diag, errno, "cannot create directory", shown);
  *out = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (*out < 0)
    return open_failure(dir_fd, name, errno, "cannot open directory", shown, diag);
  return LS_OK;
}

/* Opens the directory made of the first dir_len characters of rel (0: the
 * root itself), walking each component from root_fd. */
static int open_rel_dir(int root_fd, const char *root_path, const char *rel, size_t dir_len,
                        bool create, int *out, ls_diag *diag)
{
  int fd = fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
  if (fd < 0)
    return ls_diag_errno(diag, errno, "cannot open", root_path);
  size_t pos = 0;
  while (pos < dir_len) {
    const char *slash = memchr(rel + pos, '/', dir_len - pos);
    size_t end = slash ? (size_t)(slash - rel) : dir_len;
    char name[NAME_MAX + 1], shown[SHOWN_MAX];
    if (end - pos > NAME_MAX) {
      close(fd);
      return ls_diag_set(diag, LS_EINVAL, "%s/%s: name too long", root_path, rel);
    }
    memcpy(name, rel + pos, end - pos);
    name[end - pos] = '\0';
    snprintf(shown, sizeof shown, "%s/%.*s", root_path, (int)end, rel);
    int next = -1;
    int rc = open_subdir(fd, name, create, shown, &next, diag);
    close(fd);
    if (rc != LS_OK)
      return rc;
    fd = next;
    pos = end + 1;
  }
  *out = fd;
  return LS_OK;
}

/* Opens the directory holding rel; *base is rel's last component. */
static int open_parent(int root_fd, const char *root_path, const char *rel, bool create,
                       int *out, const char **base, ls_diag *diag)
{
  const char *slash = strrchr(rel, '/');
  *base = slash ? slash + 1 : rel;
  return open_rel_dir(root_fd, root_path, rel, slash ? (size_t)(slash - rel) : 0, create, out,
                      diag);
}

/* Opens GAME_DIR/ID; LS_ENOENT without a diag when it does not exist. */
static int open_root(int game_fd, const char *id, const char *root_path, int *out,
                     ls_diag *diag)
{
  *out = openat(game_fd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (*out >= 0)
    return LS_OK;
  if (errno == ENOENT)
    return LS_ENOENT;
  return open_failure(game_fd, id, errno, "cannot open game root", root_path, diag);
}

static int pwrite_all(int fd, const void *data, size_t len, uint64_t offset)
{
  const char *p = data;
  while (len > 0) {
    ssize_t n = pwrite(fd, p, len, (off_t)offset);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return errno;
    if (n == 0)
      return EIO;
    p += n;
    len -= (size_t)n;
    offset += (uint64_t)n;
  }
  return 0;
}

/* Opens the payload file of slot f (flags: O_RDONLY or O_WRONLY) for one
 * operation; refused unless it is a regular file. */
static int open_slot(const ls_storage *s, const slot *f, int flags, int *fd, ls_diag *diag)
{
  char shown[SHOWN_MAX];
  show(shown, s->root_path, f->path);
  int dir_fd = -1;
  const char *base = NULL;
  int rc = open_parent(s->root_fd, s->root_path, f->path, false, &dir_fd, &base, diag);
  if (rc != LS_OK)
    return rc;
  *fd = openat(dir_fd, base, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (*fd < 0)
    rc = open_failure(dir_fd, base, errno, "cannot open", shown, diag);
  close(dir_fd);
  struct stat st;
  if (rc == LS_OK && (fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode))) {
    close(*fd);
    *fd = -1;
    rc = ls_diag_set(diag, LS_EINVAL, "%s is not a regular file", shown);
  }
  return rc;
}

/* fsync (whole: the commit) or fdatasync of a payload file. */
static int sync_slot(const ls_storage *s, const slot *f, bool whole, ls_diag *diag)
{
  int fd = -1;
  int rc = open_slot(s, f, O_RDONLY, &fd, diag);
  if (rc != LS_OK)
    return rc;
  if ((whole ? fsync(fd) : fdatasync(fd)) != 0) {
    char shown[SHOWN_MAX];
    show(shown, s->root_path, f->path);
    rc = ls_diag_errno(diag, errno, whole ? "cannot fsync" : "cannot fdatasync", shown);
  }
  close(fd);
  return rc;
}

/* ---- removal ------------------------------------------------------------ */

static int remove_name(int root_fd, const char *root_path, const char *name, ls_diag *diag)
{
  int rc = ls_rmtree_at(root_fd, name, diag);
  return rc == LS_OK ? LS_OK : diag_prefix(diag, rc, root_path);
}

/* The commit's temporary sentinel and both names of a parked one. */
static int remove_version_transients(int root_fd, const char *root_path, ls_diag *diag)
{
  int rc = remove_name(root_fd, root_path, LS_VERSION_TMP, diag);
  if (rc == LS_OK)
    rc = remove_name(root_fd, root_path, LS_VERSION_DISCARDED, diag);
  if (rc == LS_OK)
    rc = remove_name(root_fd, root_path, LS_VERSION_KEPT, diag);
  return rc;
}

static int fsync_root(int root_fd, const char *root_path, ls_diag *diag)
{
  return fsync(root_fd) == 0 ? LS_OK : ls_diag_errno(diag, errno, "cannot fsync", root_path);
}

/* The chunk map, then the journal. */
static int remove_journal(int root_fd, const char *root_path, ls_diag *diag)
{
  int rc = remove_name(root_fd, root_path, LS_CHUNK_MAP, diag);
  if (rc == LS_OK) {
    ls_test_step("download", "map-dropped");
    rc = remove_name(root_fd, root_path, LS_DOWNLOAD_JOURNAL, diag);
  }
  return rc == LS_OK ? fsync_root(root_fd, root_path, diag) : rc;
}

/* A root's payload, as a walk of its top level: removes every entry except
 * the discard survivors and the journal. */
typedef struct discard_ctx {
  int root_fd;
  const char *root_path;
} discard_ctx;

static int discard_visit(void *ctx, const ls_walk_entry *e, ls_diag *diag)
{
  const discard_ctx *c = ctx;
  if (ls_layout_survives_discard(e->name) || strcmp(e->name, LS_DOWNLOAD_JOURNAL) == 0)
    return LS_WALK_SKIP;
  int rc = remove_name(c->root_fd, c->root_path, e->name, diag);
  return rc == LS_OK ? LS_WALK_SKIP : rc;
}

static int discard_payload_entries(int root_fd, const char *root_path, ls_diag *diag)
{
  discard_ctx c = {root_fd, root_path};
  return ls_walk(root_fd, NULL, 0, discard_visit, &c, diag);
}

static void remove_root_if_empty(int game_fd, const char *id)
{
  if (unlinkat(game_fd, id, AT_REMOVEDIR) == 0)
    fsync(game_fd);
}

/* The discard of a failed or cancelled download on an open root (what
 * survives: ls_layout_survives_discard): the chunk map first (a journal
 * without one is no longer resumable, so a discard cut short by a crash is
 * finished by recovery), the payload, the journal, then the root when it
 * is empty. */
static int discard_root(int game_fd, int root_fd, const char *id, const char *root_path,
                        ls_diag *diag)
{
  int rc = remove_name(root_fd, root_path, LS_CHUNK_MAP, diag);
  if (rc == LS_OK)
    rc = fsync_root(root_fd, root_path, diag);
  if (rc == LS_OK) {
    ls_test_step("discard", "map-removed");
    rc = discard_payload_entries(root_fd, root_path, diag);
  }
  if (rc == LS_OK) {
    ls_test_step("discard", "payload-removed");
    rc = remove_journal(root_fd, root_path, diag);
  }
  if (rc == LS_OK)
    remove_root_if_empty(game_fd, id);
  return rc;
}

/* The rollback of a cancelled download: transients (the old sentinel is
 * not restored), then the payload, journal last. */
static int cancel_download(int game_fd, int root_fd, const char *id, const char *root_path,
                           ls_diag *diag)
{
  int rc = remove_version_transients(root_fd, root_path, diag);
  return rc == LS_OK ? discard_root(game_fd, root_fd, id, root_path, diag) : rc;
}

/* ---- removing by a list ---------------------------------------------------- */

static int sweep_error(ls_diag *diag, int e, const char *what, const char *root_path,
                       const char *rel)
{
  return ls_diag_set(diag, ls_err_from_errno(e), "%s %s/%s: %s", what, root_path, rel,
                     strerror(e));
}

typedef struct sweep_ctx {
  const listing *list;
  bool listed; /* remove what the list names (a failure), or what it does not (a commit) */
  const char *root_path;
} sweep_ctx;

/* Deletes the files the sweep is for, then directories left empty; at the
 * root, reserved names and version.ini are never touched. Nothing below
 * the path rule's depth can be listed: such a subtree goes whole after a
 * commit and stays after a failure. */
static int sweep_visit(void *ctx, const ls_walk_entry *e, ls_diag *diag)
{
  const sweep_ctx *c = ctx;
  if (e->depth == 1 && (ls_layout_is_reserved(e->name) || is_sentinel_path(e->name)))
    return LS_WALK_SKIP;
  if (e->visit == LS_WALK_POST) {
    if (unlinkat(e->dir_fd, e->name, AT_REMOVEDIR) != 0 && errno != ENOTEMPTY &&
        errno != EEXIST && errno != ENOENT)
      return sweep_error(diag, errno, "cannot delete directory", c->root_path, e->path);
    return LS_OK;
  }
  if (e->type == LS_WALK_DIR && e->depth == LS_WALK_MAX_DEPTH) {
    int rc = c->listed ? LS_OK : remove_name(e->dir_fd, c->root_path, e->name, diag);
    return rc == LS_OK ? LS_WALK_SKIP : rc;
  }
  if (e->type == LS_WALK_DIR || listing_has(c->list, e->path) != c->listed)
    return LS_OK;
  if (unlinkat(e->dir_fd, e->name, 0) == 0 || errno == ENOENT)
    return LS_OK;
  return sweep_error(diag, errno, "cannot delete", c->root_path, e->path);
}

static int sweep(int root_fd, const listing *list, bool listed, const char *root_path,
                 ls_diag *diag)
{
  sweep_ctx c = {list, listed, root_path};
  return ls_walk(root_fd, NULL, LS_WALK_POSTORDER, sweep_visit, &c, diag);
}

/* ---- the rollback of a failure ------------------------------------------ */

/* The files a failure removes, sorted: those the download made, and every
 * one it lists once it wrote into a file of the old version (which is then
 * no version at all). */
static int undo_listing(const char *const *paths, const bool *created, size_t count,
                        bool old_intact, listing *out, ls_diag *diag)
{
  out->count = 0;
  out->paths = calloc(count ? count : 1, sizeof *out->paths);
  if (!out->paths)
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  for (size_t i = 0; i < count; i++)
    if (!old_intact || (created && created[i]))
      out->paths[out->count++] = paths[i];
  qsort(out->paths, out->count, sizeof *out->paths, compare_paths);
  return LS_OK;
}

/* Puts the parked version.ini of an intact old version back. */
static int restore_sentinel(int root_fd, const char *root_path, ls_diag *diag)
{
  if (renameat(root_fd, LS_VERSION_KEPT, root_fd, LS_VERSION_FILE) != 0) {
    char shown[SHOWN_MAX];
    show(shown, root_path, LS_VERSION_KEPT);
    return ls_diag_errno(diag, errno, "cannot put back", shown);
  }
  ls_test_step("undo", "sentinel-restored");
  return fsync_root(root_fd, root_path, diag);
}

/* The rollback of a failed download: what it wrote goes, what was there
 * before it began stays. The chunk map first (a journal without one is not
 * resumable, so recovery finishes a rollback cut short), then the files it
 * made (all it lists once a file of the old version was written), then the
 * old version.ini back when that version is intact, the journal last. */
static int undo_download(int game_fd, int root_fd, const char *id, const char *root_path,
                         const char *const *paths, const bool *created, size_t count,
                         ls_diag *diag)
{
  bool intact = ls_is_regular_at(root_fd, LS_VERSION_KEPT);
  bool untouched = intact || ls_is_regular_at(root_fd, LS_VERSION_FILE); /* never parked */
  listing undo = {0};
  int rc = remove_name(root_fd, root_path, LS_VERSION_TMP, diag);
  if (rc == LS_OK)
    rc = remove_name(root_fd, root_path, LS_CHUNK_MAP, diag);
  if (rc == LS_OK)
    rc = fsync_root(root_fd, root_path, diag);
  if (rc == LS_OK)
    rc = undo_listing(paths, created, count, untouched, &undo, diag);
  if (rc == LS_OK) {
    ls_test_step("undo", "map-removed");
    rc = sweep(root_fd, &undo, true, root_path, diag);
  }
  free(undo.paths);
  if (rc == LS_OK && intact)
    rc = restore_sentinel(root_fd, root_path, diag);
  if (rc == LS_OK)
    rc = remove_version_transients(root_fd, root_path, diag);
  if (rc == LS_OK)
    rc = remove_journal(root_fd, root_path, diag);
  if (rc == LS_OK)
    remove_root_if_empty(game_fd, id);
  return rc;
}

/* undo_download of an open storage: what it lists, what it made. */
static int undo_storage(ls_storage *s, ls_diag *diag)
{
  const char **paths = calloc(s->count ? s->count : 1, sizeof *paths);
  if (!paths)
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  for (size_t i = 0; i < s->count; i++)
    paths[i] = s->files[i].path;
  int rc = undo_download(s->game_fd, s->root_fd, s->id, s->root_path, paths, s->created,
                         s->count, diag);
  free(paths);
  return rc;
}

/* What follows the commit point: stale payload (what keep does not list;
 * NULL: none is left), the parked sentinel, the journal. */
static int finish_commit(int root_fd, const char *root_path, const listing *keep,
                         ls_diag *diag)
{
  int rc = fsync_root(root_fd, root_path, diag);
  if (rc == LS_OK && keep)
    rc = sweep(root_fd, keep, false, root_path, diag);
  if (rc == LS_OK) {
    ls_test_step("download", "stale-removed");
    rc = remove_version_transients(root_fd, root_path, diag);
  }
  if (rc == LS_OK)
    rc = remove_journal(root_fd, root_path, diag);
  return rc;
}

/* ---- the journal and the chunk map --------------------------------------- */

static int write_journal(ls_storage *s, const ls_storage_file *files, ls_diag *diag)
{
  char *text = ls_journal_text(s->id, s->version, s->chunk_size, files, s->count, s->created);
  if (!text)
    return ls_diag_set(diag, LS_ENOMEM, "%s: out of memory for the journal", s->root_path);
  int rc = ls_write_file_atomic_at(s->root_fd, LS_DOWNLOAD_JOURNAL, text, strlen(text),
                                   FILE_MODE, diag);
  free(text);
  return rc == LS_OK ? LS_OK : diag_prefix(diag, rc, s->root_path);
}

static int write_map(int root_fd, const char *root_path, const uint8_t *digest,
                     const uint8_t *bits, size_t count, ls_diag *diag)
{
  uint8_t *data = NULL;
  size_t len = 0;
  if (ls_chunk_map_encode(digest, bits, count, &data, &len) != LS_OK)
    return ls_diag_set(diag, LS_ENOMEM, "%s: out of memory for the chunk map", root_path);
  int rc = ls_write_file_atomic_at(root_fd, LS_CHUNK_MAP, data, len, FILE_MODE, diag);
  free(data);
  return rc == LS_OK ? LS_OK : diag_prefix(diag, rc, root_path);
}

static int journal_read(int root_fd, ls_storage_journal *j, ls_diag *diag)
{
  char *text = NULL;
  size_t len = 0;
  int rc = ls_read_file_at(root_fd, LS_DOWNLOAD_JOURNAL, LS_JOURNAL_MAX, &text, &len, diag);
  if (rc == LS_OK)
    rc = ls_storage_journal_parse(text, len, j, diag);
  free(text);
  return rc;
}

/* The download had committed: version.ini names its version and the
 * sentinel's temporary file is gone. */
static bool sentinel_committed(int root_fd, const char *version)
{
  struct stat st;
  if (fstatat(root_fd, LS_VERSION_TMP, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
    return false;
  if (!ls_is_regular_at(root_fd, LS_VERSION_FILE))
    return false;
  char *text = NULL;
  size_t len = 0;
  if (ls_read_file_at(root_fd, LS_VERSION_FILE, LS_STORAGE_VERSION_INI_MAX, &text, &len,
                      NULL) != LS_OK)
    return false;
  char *found = ls_version_file_parse(text, len);
  bool same = found && strcmp(found, version) == 0;
  free(found);
  free(text);
  return same;
}

/* ---- recovery ----------------------------------------------------------- */

static uint32_t chunk_len(uint64_t size, uint32_t chunk_size, uint64_t c)
{
  uint64_t off = c * chunk_size;
  return (uint32_t)(size - off < chunk_size ? size - off : chunk_size);
}

/* The size of root_fd/rel on disk: 0 when it is missing or not a regular
 * file (no link followed). */
static bool stat_payload(int root_fd, const char *root_path, const char *rel, struct stat *st)
{
  int dir_fd = -1;
  const char *base = NULL;
  if (open_parent(root_fd, root_path, rel, false, &dir_fd, &base, NULL) != LS_OK)
    return false;
  bool ok = fstatat(dir_fd, base, st, AT_SYMLINK_NOFOLLOW) == 0;
  close(dir_fd);
  return ok;
}

static uint64_t size_on_disk(int root_fd, const char *root_path, const char *rel)
{
  struct stat st;
  bool ok = stat_payload(root_fd, root_path, rel, &st) && S_ISREG(st.st_mode);
  return ok ? (uint64_t)st.st_size : 0;
}

/* The durable chunks of an interrupted download: *bits (malloc'ed) from a
 * chunk map of the journal's digest, less every chunk whose file on disk
 * ends before the chunk does. LS_EFORMAT (diag says why) when the journal
 * is not resumable or the map is missing, damaged or of another list. */
static int load_durable(int root_fd, const char *root_path, const ls_storage_journal *j,
                        uint8_t **bits, ls_diag *diag)
{
  *bits = NULL;
  if (j->format != LS_JOURNAL_FORMAT)
    return ls_diag_set(diag, LS_EFORMAT, "a journal of format %d cannot be resumed", j->format);
  size_t nbits = ls_chunk_bits_size(j->chunk_count);
  char *data = NULL;
  size_t len = 0;
  int rc = ls_read_file_at(root_fd, LS_CHUNK_MAP, nbits + 4096, &data, &len, diag);
  uint8_t *b = calloc(1, nbits ? nbits : 1);
  if (rc == LS_OK && !b)
    rc = ls_diag_set(diag, LS_ENOMEM, "out of memory");
  if (rc == LS_OK)
    rc = ls_chunk_map_decode((const uint8_t *)data, len, j->digest, j->chunk_count, b, diag);
  free(data);
  if (rc != LS_OK) {
    free(b);
    return rc == LS_ENOMEM ? rc : LS_EFORMAT;
  }
  for (size_t i = 0, k = 0; i < j->count; i++) {
    uint64_t n = ls_proto_chunk_count(j->sizes[i], j->chunk_size);
    uint64_t on_disk = n ? size_on_disk(root_fd, root_path, j->paths[i]) : 0;
    for (uint64_t c = 0; c < n; c++, k++)
      if (on_disk < c * j->chunk_size + chunk_len(j->sizes[i], j->chunk_size, c))
        b[k / 8] &= (uint8_t)~(1u << (k % 8));
  }
  *bits = b;
  return LS_OK;
}

static uint64_t durable_bytes(const ls_storage_journal *j, const uint8_t *bits)
{
  uint64_t bytes = 0;
  for (size_t i = 0, k = 0; i < j->count; i++) {
    uint64_t n = ls_proto_chunk_count(j->sizes[i], j->chunk_size);
    for (uint64_t c = 0; c < n; c++, k++)
      if (ls_chunk_bit(bits, k))
        bytes += chunk_len(j->sizes[i], j->chunk_size, c);
  }
  return bytes;
}

/* What recovery found, for a begin that resumes: the journal and its
 * durable chunks. */
typedef struct found_download {
  ls_storage_journal journal;
  uint8_t *durable;
} found_download;

static void found_free(found_download *f)
{
  ls_storage_journal_free(&f->journal);
  free(f->durable);
  f->durable = NULL;
}

static int recover_committed(int root_fd, const char *root_path, ls_storage_journal *j,
                             ls_storage_recovery *done, ls_diag *diag)
{
  qsort(j->paths, j->count, sizeof *j->paths, compare_paths);
  listing keep = {(const char **)j->paths, j->count};
  /* A format 2 journal without its chunk map: the commit's sweep was done
   * (the map goes after it, with the journal), or this is no commit but
   * the version on disk, of the journal's version, given back by a
   * rollback or not yet parked (a repair, a download of that version): no
   * file of it may go. */
  bool swept = j->format == LS_JOURNAL_FORMAT && !ls_is_regular_at(root_fd, LS_CHUNK_MAP);
  int rc = finish_commit(root_fd, root_path, swept ? NULL : &keep, diag);
  if (rc == LS_OK) {
    *done = LS_RECOVERY_COMPLETED;
    ls_diag_set(diag, LS_OK, "%s: finished the cleanup of the committed download of version %s",
                root_path, j->version);
  }
  return rc;
}

/* A paused download: the commit's temporary sentinel (if a crash left one)
 * goes; everything else stays. */
static int recover_paused(int root_fd, const char *root_path, found_download *f,
                          ls_storage_recovery *done, ls_storage_paused *paused, ls_diag *diag)
{
  int rc = remove_name(root_fd, root_path, LS_VERSION_TMP, diag);
  if (rc != LS_OK)
    return rc;
  *done = LS_RECOVERY_PAUSED;
  uint64_t total = 0;
  for (size_t i = 0; i < f->journal.count; i++)
    total += f->journal.sizes[i];
  uint64_t bytes = durable_bytes(&f->journal, f->durable);
  if (paused) {
    snprintf(paused->version, sizeof paused->version, "%s", f->journal.version);
    paused->bytes = bytes;
    paused->total_bytes = total;
  }
  ls_diag_set(diag, LS_OK, "%s: kept the interrupted download of version %s as paused "
              "(%llu of %llu bytes durable)", root_path, f->journal.version,
              (unsigned long long)bytes, (unsigned long long)total);
  return LS_OK;
}

/* An interrupted download that cannot resume is rolled back as a failure
 * (from what its journal lists); with an unreadable journal, as a cancel. */
static int recover_discarded(int game_fd, int root_fd, const char *id, const char *root_path,
                             const ls_storage_journal *j, const char *why,
                             ls_storage_recovery *done, ls_diag *diag)
{
  int rc = j->version ? undo_download(game_fd, root_fd, id, root_path,
                                      (const char *const *)j->paths, j->created, j->count, diag)
                      : cancel_download(game_fd, root_fd, id, root_path, diag);
  if (rc != LS_OK)
    return rc;
  *done = LS_RECOVERY_DISCARDED;
  if (j->version)
    ls_diag_set(diag, LS_OK, "%s: discarded the interrupted download of version %s (%s)",
                root_path, j->version, why);
  else
    ls_diag_set(diag, LS_OK, "%s: discarded an interrupted download (unreadable journal: %s)",
                root_path, why);
  return LS_OK;
}

/* The one decision of what an interrupted download left (see
 * ls_storage_recover). With `found`, a paused download's journal and
 * durable chunks are handed over instead of freed. */
static int recover_root(int game_fd, int root_fd, const char *id, const char *root_path,
                        ls_storage_recovery *done, ls_storage_paused *paused,
                        found_download *found, ls_diag *diag)
{
  found_download f = {0};
  ls_diag why = {{0}};
  int rc;
  int jrc = journal_read(root_fd, &f.journal, &why);
  if (jrc == LS_OK && sentinel_committed(root_fd, f.journal.version)) {
    rc = recover_committed(root_fd, root_path, &f.journal, done, diag);
  } else if (jrc == LS_OK && ls_is_regular_at(root_fd, LS_VERSION_FILE)) {
    rc = remove_version_transients(root_fd, root_path, diag); /* begin never parked it */
    if (rc == LS_OK)
      rc = remove_journal(root_fd, root_path, diag);
    if (rc == LS_OK) {
      *done = LS_RECOVERY_UNSTARTED;
      ls_diag_set(diag, LS_OK, "%s: dropped the journal of a download of version %s that had "
                  "not begun", root_path, f.journal.version);
    }
  } else if (jrc == LS_OK &&
             (jrc = load_durable(root_fd, root_path, &f.journal, &f.durable, &why)) == LS_OK) {
    rc = recover_paused(root_fd, root_path, &f, done, paused, diag);
    if (rc == LS_OK && found) {
      *found = f;
      return LS_OK;
    }
  } else {
    rc = recover_discarded(game_fd, root_fd, id, root_path, &f.journal, why.text, done, diag);
  }
  found_free(&f);
  return rc;
}

/* ls_storage_recover, optionally handing a paused download over. */
static int recover_at(const char *game_dir, const char *id, ls_storage_recovery *done,
                      ls_storage_paused *paused, found_download *found, ls_diag *diag)
{
  ls_storage_recovery ignored;
  done = done ? done : &ignored;
  *done = LS_RECOVERY_NONE;
  if (!ls_catalog_id_is_safe(id))
    return ls_diag_set(diag, LS_EINVAL, "'%s' is not a game id", id ? id : "");
  int game_fd = -1;
  int rc = open_game_dir(game_dir, &game_fd, diag);
  if (rc != LS_OK)
    return rc;
  char journal_rel[NAME_MAX + sizeof LS_DOWNLOAD_JOURNAL + 2];
  snprintf(journal_rel, sizeof journal_rel, "%s/%s", id, LS_DOWNLOAD_JOURNAL);
  struct stat st;
  if (fstatat(game_fd, journal_rel, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    close(game_fd);
    return LS_OK; /* no journal: not ours to touch */
  }
  char *root_path = NULL;
  int root_fd = -1;
  if (asprintf(&root_path, "%s/%s", game_dir, id) < 0) {
    close(game_fd);
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  }
  rc = open_root(game_fd, id, root_path, &root_fd, diag);
  if (rc == LS_OK) {
    rc = recover_root(game_fd, root_fd, id, root_path, done, paused, found, diag);
    close(root_fd);
  } else if (rc == LS_EINVAL || rc == LS_ENOENT) {
    rc = LS_OK; /* a symlinked root is not a game root; a vanished one has nothing left */
    if (diag)
      diag->text[0] = '\0';
  }
  free(root_path);
  close(game_fd);
  return rc;
}

int ls_storage_recover(const char *game_dir, const char *id, ls_storage_recovery *done,
                       ls_storage_paused *paused, ls_diag *diag)
{
  return recover_at(game_dir, id, done, paused, NULL, diag);
}

int ls_discard_cancelled_download(const char *game_dir, const char *id, ls_diag *diag)
{
  if (!ls_catalog_id_is_safe(id))
    return ls_diag_set(diag, LS_EINVAL, "'%s' is not a game id", id ? id : "");
  int game_fd = -1, root_fd = -1;
  int rc = open_game_dir(game_dir, &game_fd, diag);
  if (rc != LS_OK)
    return rc;
  char *root_path = NULL;
  if (asprintf(&root_path, "%s/%s", game_dir, id) < 0) {
    close(game_fd);
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  }
  rc = open_root(game_fd, id, root_path, &root_fd, diag);
  if (rc == LS_OK) {
    rc = discard_root(game_fd, root_fd, id, root_path, diag);
    close(root_fd);
  } else if (rc == LS_ENOENT) {
    rc = LS_OK;
  }
  free(root_path);
  close(game_fd);
  return rc;
}

/* ---- begin -------------------------------------------------------------- */

static int check_files(const ls_storage_file *files, size_t count, size_t *sentinel,
                       ls_diag *diag)
{
  bool found = false;
  for (size_t i = 0; i < count; i++) {
    const char *p = files[i].path;
    ls_diag why;
    if (ls_layout_check_payload_path(p, &why) != LS_OK)
      return ls_diag_set(diag, LS_EINVAL, "unsafe payload path '%.300s': %s", p ? p : "(null)",
                         why.text);
    if (files[i].size > (uint64_t)INT64_MAX)
      return ls_diag_set(diag, LS_ETOOBIG, "%s: size %llu too large", p,
                         (unsigned long long)files[i].size);
    if (is_sentinel_path(p)) {
      if (files[i].size > LS_STORAGE_VERSION_INI_MAX)
        return ls_diag_set(diag, LS_ETOOBIG, "%s: %llu bytes, more than %d", p,
                           (unsigned long long)files[i].size, LS_STORAGE_VERSION_INI_MAX);
      found = true;
      *sentinel = i;
    }
  }
  if (!found)
    return ls_diag_set(diag, LS_EINVAL, "the file list has no %s", LS_VERSION_FILE);
  return LS_OK;
}

static int check_request(const char *id, const char *version, const ls_storage_file *files,
                         size_t count, size_t *sentinel, ls_diag *diag)
{
  if (!ls_catalog_id_is_safe(id))
    return ls_diag_set(diag, LS_EINVAL, "'%s' is not a game id", id ? id : "");
  if (!version || !*version)
    return ls_diag_set(diag, LS_EINVAL, "%s: empty version", id);
  if (count > 0 && !files)
    return ls_diag_set(diag, LS_EINVAL, "%s: no file list", id);
  int rc = check_files(files, count, sentinel, diag);
  return rc == LS_OK ? LS_OK : diag_prefix(diag, rc, id);
}

static int build_listing(ls_storage *s, ls_diag *diag)
{
  s->keep.paths = calloc(s->count, sizeof *s->keep.paths);
  if (!s->keep.paths)
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  for (size_t i = 0; i < s->count; i++)
    s->keep.paths[i] = s->files[i].path;
  s->keep.count = s->count;
  qsort(s->keep.paths, s->count, sizeof *s->keep.paths, compare_paths);
  for (size_t i = 1; i < s->count; i++)
    if (strcmp(s->keep.paths[i - 1], s->keep.paths[i]) == 0)
      return ls_diag_set(diag, LS_EINVAL, "%s: '%s' is listed twice", s->id, s->keep.paths[i]);
  return LS_OK;
}

static int storage_new(const char *game_dir, const char *id, const char *version,
                       uint32_t chunk_size, const ls_storage_file *files, size_t count,
                       size_t sentinel, ls_storage **out, ls_diag *diag)
{
  ls_storage *s = calloc(1, sizeof *s);
  if (!s)
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  s->game_fd = s->root_fd = -1;
  pthread_mutex_init(&s->sentinel_lock, NULL);
  *out = s;
  s->id = strdup(id);
  s->version = strdup(version);
  s->files = calloc(count ? count : 1, sizeof *s->files);
  s->created = calloc(count ? count : 1, sizeof *s->created);
  s->sentinel_buf = calloc(1, files[sentinel].size + 1);
  if (!s->id || !s->version || !s->files || !s->created || !s->sentinel_buf ||
      asprintf(&s->root_path, "%s/%s", game_dir, id) < 0) {
    s->root_path = NULL;
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  }
  s->sentinel = sentinel;
  s->chunk_size = chunk_size;
  for (size_t i = 0; i < count; i++, s->count++) {
    s->files[i].size = files[i].size;
    s->files[i].first_chunk = s->nchunks;
    s->nchunks += ls_proto_chunk_count(files[i].size, chunk_size);
    if (!(s->files[i].path = strdup(files[i].path)))
      return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  }
  if (!(s->kept = calloc(1, ls_chunk_bits_size(s->nchunks) + 1)))
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  ls_manifest_digest(chunk_size, files, count, s->digest);
  return build_listing(s, diag);
}

/* ---- resuming ------------------------------------------------------------ */

/* The index of `path` in the journal's list (sorted into `order`), or -1. */
static long journal_find(const ls_storage_journal *j, const size_t *order, const char *path)
{
  size_t lo = 0, hi = j->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(j->paths[order[mid]], path);
    if (c == 0)
      return (long)order[mid];
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return -1;
}

static int compare_journal_paths(const void *a, const void *b, void *journal)
{
  const ls_storage_journal *j = journal;
  return strcmp(j->paths[*(const size_t *)a], j->paths[*(const size_t *)b]);
}

/* The first chunk index of each file of the journal. */
static int journal_chunk_starts(const ls_storage_journal *j, size_t **starts)
{
  size_t *st = calloc(j->count ? j->count : 1, sizeof *st);
  if (!st)
    return LS_ENOMEM;
  for (size_t i = 0, k = 0; i < j->count; i++) {
    st[i] = k;
    k += ls_proto_chunk_count(j->sizes[i], j->chunk_size);
  }
  *starts = st;
  return LS_OK;
}

/* The chunks of file i of the new list that the journal's durable chunks
 * hold: same path, index, length and hash. */
static void keep_file_chunks(ls_storage *s, size_t i, const ls_storage_file *f,
                             const found_download *old, long o, const size_t *starts)
{
  const ls_storage_journal *j = &old->journal;
  if (!f->sha256 || i == s->sentinel || j->chunk_size != s->chunk_size)
    return;
  uint64_t n_new = ls_proto_chunk_count(f->size, s->chunk_size);
  uint64_t n_old = ls_proto_chunk_count(j->sizes[o], j->chunk_size);
  for (uint64_t c = 0; c < n_new && c < n_old; c++) {
    if (chunk_len(f->size, s->chunk_size, c) != chunk_len(j->sizes[o], j->chunk_size, c) ||
        !ls_chunk_bit(old->durable, starts[o] + c) ||
        memcmp(f->sha256 + c * 32, j->hashes[o] + c * 32, 32) != 0)
      continue;
    ls_chunk_bit_set(s->kept, s->files[i].first_chunk + c);
    s->resume.kept_chunks++;
    s->resume.kept_bytes += chunk_len(f->size, s->chunk_size, c);
  }
}

static size_t count_bits(const uint8_t *bits, size_t n)
{
  size_t total = 0;
  for (size_t k = 0; k < n; k++)
    total += ls_chunk_bit(bits, k);
  return total;
}

/* The files the interrupted run made that the new list does not name: the
 * new journal would not know them, so begin removes them first (else a
 * failure would give the old version back with them, and a scan would
 * serve them as its files). */
static int find_orphans(ls_storage *s, const ls_storage_journal *j, ls_diag *diag)
{
  s->orphans.paths = calloc(j->count ? j->count : 1, sizeof *s->orphans.paths);
  if (!s->orphans.paths)
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  for (size_t o = 0; o < j->count; o++) {
    if (!j->created[o] || listing_has(&s->keep, j->paths[o]))
      continue;
    if (!(s->orphans.paths[s->orphans.count] = strdup(j->paths[o])))
      return ls_diag_set(diag, LS_ENOMEM, "out of memory");
    s->orphans.count++;
  }
  qsort(s->orphans.paths, s->orphans.count, sizeof *s->orphans.paths, compare_paths);
  return LS_OK;
}

/* What of an interrupted download the new file list keeps. */
static int match_kept(ls_storage *s, const ls_storage_file *files, const found_download *old,
                      ls_diag *diag)
{
  const ls_storage_journal *j = &old->journal;
  s->resume.resumed = true;
  s->resume.manifest_changed = strcmp(j->version, s->version) != 0 ||
                               memcmp(j->digest, s->digest, sizeof s->digest) != 0;
  size_t *order = calloc(j->count ? j->count : 1, sizeof *order);
  size_t *starts = NULL;
  if (!order || journal_chunk_starts(j, &starts) != LS_OK) {
    free(order);
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < j->count; i++)
    order[i] = i;
  qsort_r(order, j->count, sizeof *order, compare_journal_paths, (void *)j);
  for (size_t i = 0; i < s->count; i++) {
    long o = journal_find(j, order, files[i].path);
    if (o >= 0) {
      keep_file_chunks(s, i, &files[i], old, o, starts);
      s->created[i] = j->created[o]; /* an earlier run made it */
    }
  }
  size_t durable = count_bits(old->durable, j->chunk_count);
  s->resume.dropped_chunks = durable - s->resume.kept_chunks;
  free(order);
  free(starts);
  return find_orphans(s, j, diag);
}

/* ---- creating the payload ------------------------------------------------ */

static int make_root(ls_storage *s, const char *game_dir, ls_diag *diag)
{
  int rc = open_game_dir(game_dir, &s->game_fd, diag);
  if (rc != LS_OK)
    return rc;
  if (mkdirat(s->game_fd, s->id, DIR_MODE) == 0)
    s->root_created = true;
  else if (errno != EEXIST)
    return ls_diag_errno(diag, errno, "cannot create game root", s->root_path);
  return open_subdir(s->game_fd, s->id, false, s->root_path, &s->root_fd, diag);
}

/* Which payload files this download makes (those missing now, and those
 * an earlier run of it made), and whether it will resize a file that was
 * there before (which changes the old version). */
static bool mark_created(ls_storage *s)
{
  bool resizes_old = false;
  for (size_t i = 0; i < s->count; i++) {
    struct stat st;
    if (i == s->sentinel || s->created[i])
      continue;
    if (!stat_payload(s->root_fd, s->root_path, s->files[i].path, &st))
      s->created[i] = true;
    else if (S_ISREG(st.st_mode) && (uint64_t)st.st_size != s->files[i].size)
      resizes_old = true;
  }
  return resizes_old;
}

/* The old version is no longer intact: its parked version.ini is renamed
 * so that a failure does not put it back. Caller holds sentinel_lock or is
 * begin. */
static int old_version_changed(ls_storage *s, ls_diag *diag)
{
  if (s->old != OLD_INTACT)
    return LS_OK;
  if (renameat(s->root_fd, LS_VERSION_KEPT, s->root_fd, LS_VERSION_DISCARDED) != 0) {
    char shown[SHOWN_MAX];
    show(shown, s->root_path, LS_VERSION_KEPT);
    return ls_diag_errno(diag, errno, "cannot rename", shown);
  }
  s->old = OLD_CHANGED;
  return fsync_root(s->root_fd, s->root_path, diag);
}

/* Parks an existing version.ini: as .version.ini.kept while no file of its
 * version is written, as .version.ini.discarded when begin resizes one. A
 * resumed download finds it parked by its earlier run. */
static int park_sentinel(ls_storage *s, bool resizes_old, ls_diag *diag)
{
  char shown[SHOWN_MAX];
  show(shown, s->root_path, LS_VERSION_FILE);
  int rc = remove_name(s->root_fd, s->root_path, LS_VERSION_TMP, diag);
  if (rc != LS_OK)
    return rc;
  struct stat st;
  if (fstatat(s->root_fd, LS_VERSION_FILE, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno != ENOENT)
      return ls_diag_errno(diag, errno, "cannot stat", shown);
    s->old = ls_is_regular_at(s->root_fd, LS_VERSION_KEPT)        ? OLD_INTACT
             : ls_is_regular_at(s->root_fd, LS_VERSION_DISCARDED) ? OLD_CHANGED
                                                                  : OLD_NONE;
    return resizes_old ? old_version_changed(s, diag) : LS_OK;
  }
  rc = remove_name(s->root_fd, s->root_path, LS_VERSION_DISCARDED, diag);
  if (rc == LS_OK)
    rc = remove_name(s->root_fd, s->root_path, LS_VERSION_KEPT, diag);
  if (rc != LS_OK)
    return rc;
  const char *parked = resizes_old ? LS_VERSION_DISCARDED : LS_VERSION_KEPT;
  if (renameat(s->root_fd, LS_VERSION_FILE, s->root_fd, parked) != 0)
    return ls_diag_errno(diag, errno, "cannot park", shown);
  s->old = resizes_old ? OLD_CHANGED : OLD_INTACT;
  return fsync_root(s->root_fd, s->root_path, diag);
}

/* Sizes an open payload file and pre-allocates it. fallocate(2) rather than
 * posix_fallocate: glibc emulates the latter by writing a byte per block
 * where the file system lacks fallocate; we fall back to the sparse size. */
static int size_payload_file(int fd, uint64_t size, const char *shown, ls_diag *diag)
{
  struct stat st;
  if (fstat(fd, &st) != 0)
    return ls_diag_errno(diag, errno, "cannot stat", shown);
  if (!S_ISREG(st.st_mode))
    return ls_diag_set(diag, LS_EINVAL, "%s is not a regular file", shown);
  if ((uint64_t)st.st_size != size && ftruncate(fd, (off_t)size) != 0)
    return ls_diag_errno(diag, errno, "cannot resize", shown);
  if (size > 0 && fallocate(fd, 0, 0, (off_t)size) != 0 && errno != EOPNOTSUPP &&
      errno != ENOSYS)
    return ls_diag_errno(diag, errno, "cannot pre-allocate", shown);
  return LS_OK;
}

static int create_payload_file(ls_storage *s, slot *f, ls_diag *diag)
{
  char shown[SHOWN_MAX];
  show(shown, s->root_path, f->path);
  int dir_fd = -1;
  const char *base = NULL;
  int rc = open_parent(s->root_fd, s->root_path, f->path, true, &dir_fd, &base, diag);
  if (rc != LS_OK)
    return rc;
  int fd = openat(dir_fd, base, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, FILE_MODE);
  f->fresh = fd >= 0;
  if (fd < 0 && errno == EEXIST)
    fd = openat(dir_fd, base, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    rc = open_failure(dir_fd, base, errno, "cannot create", shown, diag);
  close(dir_fd);
  if (rc == LS_OK) {
    rc = size_payload_file(fd, f->size, shown, diag);
    close(fd);
  }
  return rc;
}

static int create_payload(ls_storage *s, ls_diag *diag)
{
  for (size_t i = 0; i < s->count; i++) {
    if (i == s->sentinel)
      continue;
    int rc = create_payload_file(s, &s->files[i], diag);
    if (rc != LS_OK)
      return rc;
  }
  return LS_OK;
}

/* After a begin failure: roll back what was started, keeping the first
 * diag (a cleanup failure is appended). */
static void undo_begin(ls_storage *s, bool journal_written, ls_diag *diag)
{
  if (!journal_written) {
    if (s->root_created && s->root_fd >= 0)
      remove_root_if_empty(s->game_fd, s->id);
    return;
  }
  ls_diag cleanup = {""};
  if (undo_storage(s, &cleanup) != LS_OK && diag) {
    size_t used = strlen(diag->text);
    snprintf(diag->text + used, sizeof diag->text - used, " (rollback failed: %s)",
             cleanup.text);
  }
}

/* Begin's writes: the journal and the map of what is kept first, then the
 * sentinel parked, then the payload files. */
static int begin_on_disk(ls_storage *s, const char *game_dir, const ls_storage_file *files,
                         bool *journal_written, ls_diag *diag)
{
  int rc = make_root(s, game_dir, diag);
  if (rc == LS_OK && s->orphans.count) /* the old journal still names them */
    rc = sweep(s->root_fd, &s->orphans, true, s->root_path, diag);
  bool resizes_old = rc == LS_OK && mark_created(s);
  if (rc == LS_OK)
    *journal_written = (rc = write_journal(s, files, diag)) == LS_OK;
  if (rc == LS_OK) {
    ls_test_step("download", "journal-written");
    rc = write_map(s->root_fd, s->root_path, s->digest, s->kept, s->nchunks, diag);
  }
  if (rc == LS_OK) {
    ls_test_step("download", "map-written");
    rc = park_sentinel(s, resizes_old, diag);
  }
  if (rc == LS_OK) {
    ls_test_step("download", "sentinel-parked");
    rc = create_payload(s, diag);
  }
  if (rc == LS_OK)
    ls_test_step("download", "payload-created");
  return rc;
}

/* The disk must hold what the download still has to write: each payload
 * file's size less what it occupies already (a resume, an update). Checked
 * first, before anything is allocated or written, so a file list that
 * claims more than the disk has fails at once, with both figures. */
static int check_space(const char *game_dir, const char *id, const ls_storage_file *files,
                       size_t count, ls_diag *diag)
{
  uint64_t need = 0, have;
  for (size_t i = 0; i < count; i++) {
    char path[PATH_MAX];
    struct stat st;
    uint64_t used = 0;
    if (snprintf(path, sizeof path, "%s/%s/%s", game_dir, id, files[i].path) < (int)sizeof path &&
        lstat(path, &st) == 0 && S_ISREG(st.st_mode))
      used = (uint64_t)st.st_blocks * 512u;
    uint64_t more = files[i].size > used ? files[i].size - used : 0;
    need = more > UINT64_MAX - need ? UINT64_MAX : need + more;
  }
  int rc = ls_free_space(game_dir, &have, diag);
  if (rc != LS_OK || need <= have)
    return rc;
  char need_text[24], have_text[24];
  return ls_diag_set(diag, LS_ENOSPC, "%s/%s needs %s more on disk, %s is free", game_dir, id,
                     ls_format_size(need, need_text), ls_format_size(have, have_text));
}

int ls_storage_begin(const char *game_dir, const char *id, const char *version,
                     uint32_t chunk_size, const ls_storage_file *files, size_t count,
                     ls_storage **out, ls_diag *diag)
{
  *out = NULL;
  size_t sentinel = 0;
  int rc = check_request(id, version, files, count, &sentinel, diag);
  if (rc == LS_OK && (chunk_size < 1 || chunk_size > LS_JOURNAL_MAX_CHUNK_SIZE))
    rc = ls_diag_set(diag, LS_EINVAL, "%s: chunk size %u", id, chunk_size);
  if (rc == LS_OK)
    rc = check_space(game_dir, id, files, count, diag);
  found_download old = {0};
  if (rc == LS_OK)
    rc = recover_at(game_dir, id, NULL, NULL, &old, diag);
  if (rc != LS_OK)
    return rc;
  ls_storage *s = NULL;
  rc = storage_new(game_dir, id, version, chunk_size, files, count, sentinel, &s, diag);
  if (rc == LS_OK && old.durable)
    rc = match_kept(s, files, &old, diag);
  found_free(&old);
  bool journal_written = false;
  if (rc == LS_OK)
    rc = begin_on_disk(s, game_dir, files, &journal_written, diag);
  if (rc != LS_OK) {
    if (s)
      undo_begin(s, journal_written, diag);
    ls_storage_free(s);
    return rc;
  }
  *out = s;
  return LS_OK;
}

ls_storage_resume ls_storage_get_resume(const ls_storage *s)
{
  return s->resume;
}

size_t ls_storage_chunk_count(const ls_storage *s)
{
  return s->nchunks;
}

bool ls_storage_chunk_kept(const ls_storage *s, size_t k)
{
  return k < s->nchunks && ls_chunk_bit(s->kept, k);
}

bool ls_storage_file_fresh(const ls_storage *s, size_t file_index)
{
  return file_index < s->count && s->files[file_index].fresh;
}

/* ---- verification: read-only opening and probes ------------------------- */


int ls_storage_open_readonly(const char *game_dir, const char *id, uint32_t chunk_size,
                             const ls_storage_file *files, size_t count, ls_storage **out,
                             ls_diag *diag)
{
  *out = NULL;
  size_t sentinel = 0;
  int rc = check_request(id, "-", files, count, &sentinel, diag);
  if (rc == LS_OK && (chunk_size < 1 || chunk_size > LS_JOURNAL_MAX_CHUNK_SIZE))
    rc = ls_diag_set(diag, LS_EINVAL, "%s: chunk size %u", id, chunk_size);
  if (rc != LS_OK)
    return rc;
  ls_storage *s = NULL;
  rc = storage_new(game_dir, id, "-", chunk_size, files, count, sentinel, &s, diag);
  if (rc == LS_OK)
    rc = open_game_dir(game_dir, &s->game_fd, diag);
  if (rc == LS_OK && (rc = open_root(s->game_fd, id, s->root_path, &s->root_fd, diag)) ==
                         LS_ENOENT)
    rc = ls_diag_set(diag, LS_ENOENT, "%s does not exist", s->root_path);
  if (rc != LS_OK) {
    ls_storage_free(s);
    return rc;
  }
  s->readonly = true;
  s->committed = true; /* nothing to commit or abort */
  *out = s;
  return LS_OK;
}

int ls_storage_probe(ls_storage *s, size_t file_index, uint64_t offset, uint32_t len,
                     const uint8_t hash[32], void *buf, bool *match, ls_diag *diag)
{
  *match = false;
  if (file_index >= s->count)
    return ls_diag_set(diag, LS_EINVAL, "%s: no file #%zu in this download", s->root_path,
                       file_index);
  const slot *f = &s->files[file_index];
  int fd = -1;
  if ((file_index == s->sentinel && !s->readonly) ||
      open_slot(s, f, O_RDONLY, &fd, NULL) != LS_OK)
    return LS_OK; /* buffered, or not on disk as a regular file */
  /* A hole (never written) or a range past the end holds nothing. */
  bool data = len == 0 || lseek(fd, (off_t)offset, SEEK_DATA) == (off_t)offset;
  ssize_t got = data && len > 0 ? ls_pread_full(fd, buf, len, offset) : (ssize_t)len;
  int e = errno;
  close(fd);
  if (got < 0) {
    char shown[SHOWN_MAX];
    show(shown, s->root_path, f->path);
    return ls_diag_errno(diag, e, "cannot read", shown);
  }
  if (!data || (size_t)got != len)
    return LS_OK;
  uint8_t digest[LS_SHA256_SIZE];
  ls_sha256(buf, len, digest);
  *match = memcmp(digest, hash, sizeof digest) == 0;
  return LS_OK;
}

/* ---- writes ------------------------------------------------------------- */

int ls_storage_write(ls_storage *s, size_t file_index, uint64_t offset, const void *data,
                     size_t len, ls_diag *diag)
{
  if (file_index >= s->count)
    return ls_diag_set(diag, LS_EINVAL, "%s: no file #%zu in this download", s->root_path,
                       file_index);
  const slot *f = &s->files[file_index];
  if (offset > f->size || len > f->size - offset)
    return ls_diag_set(diag, LS_EINVAL, "%s/%s: %zu bytes at offset %llu pass its size of %llu",
                       s->root_path, f->path, len, (unsigned long long)offset,
                       (unsigned long long)f->size);
  if (file_index == s->sentinel) {
    pthread_mutex_lock(&s->sentinel_lock);
    memcpy(s->sentinel_buf + offset, data, len);
    pthread_mutex_unlock(&s->sentinel_lock);
    return LS_OK;
  }
  int rc = LS_OK;
  if (!s->created[file_index]) { /* a file that was there before: its version changes now */
    pthread_mutex_lock(&s->sentinel_lock);
    rc = old_version_changed(s, diag);
    pthread_mutex_unlock(&s->sentinel_lock);
  }
  int fd = -1;
  if (rc == LS_OK)
    rc = open_slot(s, f, O_WRONLY, &fd, diag);
  if (rc != LS_OK)
    return rc;
  int e = pwrite_all(fd, data, len, offset);
  /* Start writeback now, so the commit's fsync finds little left to do
   * (a 512 MiB download otherwise waits ~0.6 s for it at the end). */
  if (!e)
    sync_file_range(fd, (off64_t)offset, (off64_t)len, SYNC_FILE_RANGE_WRITE);
  close(fd);
  if (e) {
    char shown[SHOWN_MAX];
    show(shown, s->root_path, f->path);
    return ls_diag_errno(diag, e, "cannot write", shown);
  }
  atomic_store(&s->files[file_index].dirty, true); /* after the write: see ls_storage_sync */
  return LS_OK;
}

static int sync_payload_dirs(ls_storage *s, ls_diag *diag);

/* ---- sync: making chunks durable ---------------------------------------- */

int ls_storage_sync(ls_storage *s, const uint8_t *bits, ls_diag *diag)
{
  if (s->readonly || s->committed)
    return ls_diag_set(diag, LS_ESTATE, "%s: nothing to sync", s->root_path);
  for (size_t i = 0; i < s->count; i++) {
    slot *f = &s->files[i];
    if (!atomic_exchange(&f->dirty, false))
      continue;
    int rc = sync_slot(s, f, false, diag);
    if (rc != LS_OK) {
      atomic_store(&f->dirty, true);
      return rc;
    }
  }
  ls_test_step("download", "data-synced");
  if (!s->dirs_synced) { /* the files begin created must survive too */
    int rc = sync_payload_dirs(s, diag);
    if (rc != LS_OK)
      return rc;
    s->dirs_synced = true;
  }
  size_t nbits = ls_chunk_bits_size(s->nchunks);
  uint8_t *map = malloc(nbits + 1);
  if (!map)
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  memcpy(map, bits, nbits);
  const slot *v = &s->files[s->sentinel]; /* buffered: never durable before the commit */
  for (uint64_t c = 0; c < ls_proto_chunk_count(v->size, s->chunk_size); c++)
    map[(v->first_chunk + c) / 8] &= (uint8_t)~(1u << ((v->first_chunk + c) % 8));
  int rc = write_map(s->root_fd, s->root_path, s->digest, map, s->nchunks, diag);
  free(map);
  if (rc == LS_OK)
    ls_test_step("download", "map-synced");
  return rc;
}

/* ---- commit ------------------------------------------------------------- */

/* Every directory that holds a payload file, the root included. */
static int sync_payload_dirs(ls_storage *s, ls_diag *diag)
{
  const char *prev = NULL;
  size_t prev_len = 0;
  for (size_t i = 0; i < s->keep.count; i++) { /* sorted: equal parents are adjacent */
    const char *p = s->keep.paths[i];
    const char *slash = strrchr(p, '/');
    size_t len = slash ? (size_t)(slash - p) : 0;
    if (prev && len == prev_len && strncmp(p, prev, len) == 0)
      continue;
    /* The root and every ancestor too: a directory made by begin is an entry
     * of its parent. */
    for (size_t end = 0; end <= len; end++) {
      if (end != 0 && end != len && p[end] != '/')
        continue;
      int fd = -1;
      int rc = open_rel_dir(s->root_fd, s->root_path, p, end, false, &fd, diag);
      if (rc != LS_OK)
        return rc;
      rc = fsync(fd) == 0 ? LS_OK : ls_diag_errno(diag, errno, "cannot fsync a directory of", p);
      close(fd);
      if (rc != LS_OK)
        return rc;
    }
    prev = p;
    prev_len = len;
  }
  return LS_OK;
}

static int sync_payload(ls_storage *s, ls_diag *diag)
{
  for (size_t i = 0; i < s->count; i++) {
    int rc = i == s->sentinel ? LS_OK : sync_slot(s, &s->files[i], true, diag);
    if (rc != LS_OK)
      return rc;
  }
  return sync_payload_dirs(s, diag);
}

static int check_sentinel_version(ls_storage *s, ls_diag *diag)
{
  size_t len = s->files[s->sentinel].size;
  char *found = ls_version_file_parse((const char *)s->sentinel_buf, len);
  bool same = found && strcmp(found, s->version) == 0;
  int rc = same ? LS_OK
                : ls_diag_set(diag, LS_EPROTO, "%s/%s names version '%s', not the expected '%s'",
                              s->root_path, LS_VERSION_FILE, found ? found : "(unknown)",
                              s->version);
  free(found);
  return rc;
}

/* Writes version.ini through .version.ini.tmp; the rename is the commit. */
static int write_sentinel(ls_storage *s, ls_diag *diag)
{
  char shown[SHOWN_MAX];
  show(shown, s->root_path, LS_VERSION_TMP);
  int fd = openat(s->root_fd, LS_VERSION_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                  FILE_MODE);
  if (fd < 0)
    return open_failure(s->root_fd, LS_VERSION_TMP, errno, "cannot create", shown, diag);
  int e = pwrite_all(fd, s->sentinel_buf, s->files[s->sentinel].size, 0);
  if (!e && fsync(fd) != 0)
    e = errno;
  if (close(fd) != 0 && !e)
    e = errno;
  if (e) {
    unlinkat(s->root_fd, LS_VERSION_TMP, 0);
    return ls_diag_errno(diag, e, "cannot write", shown);
  }
  if (renameat(s->root_fd, LS_VERSION_TMP, s->root_fd, LS_VERSION_FILE) != 0) {
    e = errno;
    unlinkat(s->root_fd, LS_VERSION_TMP, 0);
    return ls_diag_set(diag, ls_err_from_errno(e), "cannot rename %s to %s: %s", shown,
                       LS_VERSION_FILE, strerror(e));
  }
  s->committed = true;
  return LS_OK;
}

int ls_storage_commit(ls_storage *s, ls_diag *diag)
{
  if (diag)
    diag->text[0] = '\0';
  if (s->committed)
    return ls_diag_set(diag, LS_ESTATE, "%s: the download is already committed", s->root_path);
  int rc = sync_payload(s, diag);
  if (rc == LS_OK) {
    ls_test_step("download", "payload-synced");
    rc = check_sentinel_version(s, diag);
  }
  if (rc == LS_OK)
    rc = write_sentinel(s, diag);
  if (rc != LS_OK)
    return rc;
  ls_test_step("download", "committed");
  ls_diag cleanup = {""};
  if (finish_commit(s->root_fd, s->root_path, &s->keep, &cleanup) != LS_OK)
    ls_diag_set(diag, LS_OK, "committed, but the cleanup failed (recovery will finish it): %s",
                cleanup.text);
  return LS_OK;
}

/* ---- abort and free ----------------------------------------------------- */

int ls_storage_abort(ls_storage *s, ls_storage_rollback how, ls_diag *diag)
{
  if (!s)
    return LS_OK;
  if (s->committed)
    return ls_diag_set(diag, LS_ESTATE, "%s: the download is committed: nothing to abort",
                       s->root_path);
  if (how == LS_ROLLBACK_CANCELLED)
    return cancel_download(s->game_fd, s->root_fd, s->id, s->root_path, diag);
  return undo_storage(s, diag);
}

void ls_storage_free(ls_storage *s)
{
  if (!s)
    return;
  for (size_t i = 0; i < s->count; i++)
    free(s->files[i].path);
  if (s->root_fd >= 0)
    close(s->root_fd);
  if (s->game_fd >= 0)
    close(s->game_fd);
  pthread_mutex_destroy(&s->sentinel_lock);
  free(s->keep.paths);
  for (size_t i = 0; i < s->orphans.count; i++)
    free((char *)s->orphans.paths[i]);
  free(s->orphans.paths);
  free(s->files);
  free(s->created);
  free(s->sentinel_buf);
  free(s->kept);
  free(s->root_path);
  free(s->version);
  free(s->id);
  free(s);
}
