/* Owns the file system helpers declared in core/fs.h. */
#include "core/fs.h"

#include "core/error.h"
#include "core/walk.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

int ls_read_file_at(int dir_fd, const char *path, size_t max, char **data, size_t *len,
                    ls_diag *diag)
{
  *data = NULL;
  *len = 0;
  /* O_NONBLOCK: a FIFO at path must not block the open (it is refused
   * below as not a regular file); reads of a regular file ignore it. */
  int fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0)
    return ls_diag_errno(diag, errno, "cannot open", path);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return ls_diag_errno(diag, e, "cannot stat", path);
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return ls_diag_set(diag, LS_EINVAL, "%s: not a regular file", path);
  }
  if ((uint64_t)st.st_size > max) {
    close(fd);
    return ls_diag_set(diag, LS_ETOOBIG, "%s: %lld bytes, more than the limit of %zu", path,
                       (long long)st.st_size, max);
  }
  char *buf = malloc((size_t)st.st_size + 1);
  if (!buf) {
    close(fd);
    return ls_diag_set(diag, LS_ENOMEM, "%s: out of memory", path);
  }
  size_t got = 0;
  while (got < (size_t)st.st_size) {
    ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      int e = errno;
      free(buf);
      close(fd);
      return ls_diag_errno(diag, e, "cannot read", path);
    }
    if (n == 0)
      break; /* file shrank under us: return what is there */
    got += (size_t)n;
  }
  close(fd);
  buf[got] = '\0';
  *data = buf;
  *len = got;
  return LS_OK;
}

bool ls_is_regular_at(int dir_fd, const char *name)
{
  struct stat st;
  return fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

ssize_t ls_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
  size_t got = 0;
  while (got < len) {
    ssize_t n = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return ls_err_from_errno(errno);
    if (n == 0)
      break; /* end of file */
    got += (size_t)n;
  }
  return (ssize_t)got;
}

static int write_all(int fd, const void *data, size_t len)
{
  const char *p = data;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return errno;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

int ls_write_file_atomic_at(int dir_fd, const char *name, const void *data, size_t len,
                            unsigned mode, ls_diag *diag)
{
  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s.tmp", name) >= (int)sizeof tmp)
    return ls_diag_set(diag, LS_EINVAL, "%s: name too long", name);
  int fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0)
    return ls_diag_errno(diag, errno, "cannot create", tmp);
  int e = fchmod(fd, mode) == 0 ? 0 : errno; /* a stale .tmp keeps its old mode */
  if (!e)
    e = write_all(fd, data, len);
  if (!e && fsync(fd) != 0)
    e = errno;
  if (close(fd) != 0 && !e)
    e = errno;
  if (!e && renameat(dir_fd, tmp, dir_fd, name) != 0)
    e = errno;
  if (e) {
    unlinkat(dir_fd, tmp, 0);
    return ls_diag_errno(diag, e, "cannot write", name);
  }
  if (fsync(dir_fd) != 0)
    return ls_diag_errno(diag, errno, "cannot fsync the directory of", name);
  return LS_OK;
}

int ls_write_file_atomic(const char *path, const void *data, size_t len, unsigned mode,
                         ls_diag *diag)
{
  char dir[4096];
  const char *slash = strrchr(path, '/');
  const char *name = slash ? slash + 1 : path;
  if (!slash)
    snprintf(dir, sizeof dir, ".");
  else if (slash == path)
    snprintf(dir, sizeof dir, "/");
  else if ((size_t)(slash - path) >= sizeof dir)
    return ls_diag_set(diag, LS_EINVAL, "%s: path too long", path);
  else
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return ls_diag_errno(diag, errno, "cannot open directory", dir);
  int rc = ls_write_file_atomic_at(dfd, name, data, len, mode, diag);
  close(dfd);
  return rc;
}

int ls_mkdir_p(const char *path, int private_dir, ls_diag *diag)
{
  char buf[4096];
  if (path[0] == '\0')
    return ls_diag_set(diag, LS_EINVAL, "empty directory path");
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
    return ls_diag_set(diag, LS_EINVAL, "%s: path too long", path);
  mode_t mode = private_dir ? 0700 : 0755;
  for (char *p = buf + 1; ; p++) {
    if (*p != '/' && *p != '\0')
      continue;
    char saved = *p;
    *p = '\0';
    if (mkdir(buf, mode) != 0 && errno != EEXIST)
      return ls_diag_errno(diag, errno, "cannot create directory", buf);
    *p = saved;
    if (saved == '\0')
      break;
  }
  struct stat st;
  if (stat(path, &st) != 0)
    return ls_diag_errno(diag, errno, "cannot stat", path);
  if (!S_ISDIR(st.st_mode))
    return ls_diag_set(diag, LS_EEXIST, "%s exists and is not a directory", path);
  return LS_OK;
}

int ls_restrict_mode(const char *path, unsigned mode, unsigned *old_mode, ls_diag *diag)
{
  *old_mode = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0 && errno == ENOENT)
    return LS_OK;
  if (fd < 0)
    return ls_diag_errno(diag, errno, "cannot open", path);
  struct stat st = {0};
  int e = fstat(fd, &st) == 0 ? 0 : errno;
  unsigned bits = (unsigned)st.st_mode & 07777;
  if (!e && (bits & ~mode) && fchmod(fd, bits & mode) != 0)
    e = errno;
  else if (!e && (bits & ~mode))
    *old_mode = bits;
  close(fd);
  return e ? ls_diag_errno(diag, e, "cannot restrict the mode of", path) : LS_OK;
}

int ls_state_dir_prepare(const char *path, ls_diag *note, ls_diag *diag)
{
  if (note)
    note->text[0] = '\0';
  int rc = ls_mkdir_p(path, 1, diag);
  unsigned old = 0;
  /* The directory the path names: a state directory that is a link (kept
   * on another disk) is the user's choice, unlike a link inside it. */
  char *real = rc == LS_OK ? realpath(path, NULL) : NULL;
  if (rc == LS_OK && !real)
    rc = ls_diag_errno(diag, errno, "cannot resolve", path);
  if (rc == LS_OK)
    rc = ls_restrict_mode(real, 0700, &old, diag);
  free(real);
  if (rc == LS_OK && old && note)
    ls_diag_set(note, LS_OK, "state directory %s had mode %04o, open to other users: it is "
                "0700 now", path, old);
  return rc;
}

/* ---- rm -rf ------------------------------------------------------------- */

/* One removal: the top of the tree being removed, and how many directories
 * this pass moved up to it. */
typedef struct rm_pass {
  int top_fd;
  const char *top;
  unsigned long hoisted, serial;
} rm_pass;

/* TOP/REL for a diag, REL cut to fit. */
static const char *in_tree(const char *top, const char *rel, char buf[512])
{
  snprintf(buf, 512, "%s/%.400s", top, rel);
  return buf;
}

/* A directory at the walker's depth cap cannot be entered: it moves up to
 * the top of the tree (under a free name of ours), where the next pass
 * takes it apart. Renaming over an empty directory is fine: it is doomed
 * too. */
static int hoist(rm_pass *p, const ls_walk_entry *e, ls_diag *diag)
{
  for (int tries = 0; tries < 1000; tries++) {
    char name[64];
    snprintf(name, sizeof name, ".lanspread-rm.%lu", p->serial++);
    if (renameat(e->dir_fd, e->name, p->top_fd, name) == 0) {
      p->hoisted++;
      return LS_OK;
    }
    if (errno != EEXIST && errno != ENOTEMPTY && errno != ENOTDIR && errno != EISDIR)
      break;
  }
  char buf[512];
  return ls_diag_errno(diag, errno, "cannot move up", in_tree(p->top, e->path, buf));
}

static int rm_visit(void *ctx, const ls_walk_entry *e, ls_diag *diag)
{
  rm_pass *p = ctx;
  bool dir = e->type == LS_WALK_DIR;
  if (dir && e->visit == LS_WALK_PRE) {
    if (e->depth < LS_WALK_MAX_DEPTH)
      return LS_OK; /* emptied first, removed at its POST visit */
    int rc = hoist(p, e, diag);
    return rc == LS_OK ? LS_WALK_SKIP : rc;
  }
  if (unlinkat(e->dir_fd, e->name, dir ? AT_REMOVEDIR : 0) == 0 || errno == ENOENT)
    return LS_OK;
  char buf[512];
  return ls_diag_errno(diag, errno, dir ? "cannot delete directory" : "cannot delete",
                       in_tree(p->top, e->path, buf));
}

int ls_rmtree_at(int dir_fd, const char *name, ls_diag *diag)
{
  struct stat st;
  if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
    return errno == ENOENT ? LS_OK : ls_diag_errno(diag, errno, "cannot stat", name);
  if (!S_ISDIR(st.st_mode)) {
    if (unlinkat(dir_fd, name, 0) != 0 && errno != ENOENT)
      return ls_diag_errno(diag, errno, "cannot delete", name);
    return LS_OK;
  }
  int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return ls_diag_errno(diag, errno, "cannot open directory", name);
  rm_pass p = {.top_fd = fd, .top = name};
  int rc;
  do { /* each pass removes 64 levels of a deeper tree and moves the rest up */
    p.hoisted = 0;
    rc = ls_walk(fd, NULL, LS_WALK_POSTORDER, rm_visit, &p, diag);
  } while (rc == LS_OK && p.hoisted > 0);
  close(fd);
  if (rc != LS_OK)
    return rc;
  if (unlinkat(dir_fd, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
    return ls_diag_errno(diag, errno, "cannot delete directory", name);
  return LS_OK;
}

/* ---- fsync of a tree ------------------------------------------------------- */

static int fsync_visit(void *ctx, const ls_walk_entry *e, ls_diag *diag)
{
  const char *top = ctx;
  int fd = -1, rc = LS_OK;
  if (e->visit == LS_WALK_POST)
    fd = e->fd;
  else if (e->type == LS_WALK_FILE)
    fd = openat(e->dir_fd, e->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  else
    return LS_OK; /* directories at POST; symlinks are durable with their directory */
  char buf[512];
  if (fd < 0 || fsync(fd) != 0)
    rc = ls_diag_errno(diag, errno, "cannot fsync", in_tree(top, e->path, buf));
  if (fd >= 0 && fd != e->fd)
    close(fd);
  return rc;
}

int ls_fsync_tree_at(int dir_fd, const char *name, ls_diag *diag)
{
  int rc = ls_walk(dir_fd, name, LS_WALK_POSTORDER, fsync_visit, (void *)name, diag);
  if (rc != LS_OK)
    return rc;
  int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 || fsync(fd) != 0)
    rc = ls_diag_errno(diag, errno, "cannot fsync", name);
  if (fd >= 0)
    close(fd);
  return rc;
}

int ls_fsync_dir(const char *path, ls_diag *diag)
{
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return ls_diag_errno(diag, errno, "cannot open directory", path);
  int rc = fsync(fd) == 0 ? LS_OK : ls_diag_errno(diag, errno, "cannot fsync", path);
  close(fd);
  return rc;
}

int ls_check_game_dir(const char *dir, ls_diag *diag)
{
  struct stat st;
  if (!dir || !*dir)
    return ls_diag_set(diag, LS_EINVAL, "no game directory given");
  if (stat(dir, &st) != 0)
    return ls_diag_errno(diag, errno, "game directory", dir);
  if (!S_ISDIR(st.st_mode))
    return ls_diag_set(diag, LS_EINVAL, "game directory %s is not a directory", dir);
  if (access(dir, W_OK) != 0)
    return ls_diag_errno(diag, errno, "game directory not writable:", dir);
  return LS_OK;
}

char *ls_user_dir(const char *xdg_var, const char *fallback, const char *sub)
{
  const char *xdg = getenv(xdg_var), *home = getenv("HOME");
  char buf[4096];
  if (xdg && xdg[0] == '/')
    snprintf(buf, sizeof buf, "%s/lanspread%s%s", xdg, sub ? "/" : "", sub ? sub : "");
  else
    snprintf(buf, sizeof buf, "%s/%s/lanspread%s%s", home && *home ? home : "/tmp", fallback,
             sub ? "/" : "", sub ? sub : "");
  return strdup(buf);
}

int ls_free_space(const char *path, uint64_t *out, ls_diag *diag)
{
  struct statvfs sv;
  if (statvfs(path, &sv) != 0)
    return ls_diag_errno(diag, errno, "cannot read the free space of", path);
  *out = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
  return LS_OK;
}

const char *ls_format_size(uint64_t bytes, char out[24])
{
  static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) {
    snprintf(out, 24, "%u B", (unsigned)bytes);
    return out;
  }
  double v = (double)bytes / 1024.0;
  size_t u = 0;
  while (v >= 1024.0 && u + 1 < sizeof units / sizeof units[0]) {
    v /= 1024.0;
    u++;
  }
  snprintf(out, 24, "%.1f %s", v, units[u]);
  return out;
}
