/* Owns the directory walker of core/walk.h: its stack of open directories
 * and the path buffer it builds entry paths in. */
#include "core/walk.h"

#include "core/error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OPEN_DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
/* Room for LS_WALK_MAX_DEPTH + 1 components (the one past the cap is named
 * in its error), each with its '/', and the NUL. */
#define PATH_CAP ((LS_WALK_MAX_DEPTH + 1) * (NAME_MAX + 1) + 1)
#define SHOWN_MAX 240 /* bytes of a path shown in a diag */

/* One open directory: the root (level 0) or an entered directory. */
typedef struct frame {
  DIR *dir;
  size_t path_len; /* its path is the first path_len bytes of walker.path */
  size_t name_off; /* where its name starts in walker.path */
  struct stat st;
} frame;

typedef struct walker {
  const char *root; /* the root's name, for diags; NULL when walked by descriptor */
  unsigned flags;
  ls_walk_cb cb;
  void *ctx;
  ls_diag *diag;
  size_t open; /* frames in use: stack[open - 1] is being read */
  frame stack[LS_WALK_MAX_DEPTH + 1];
  char path[PATH_CAP];
} walker;

/* The current path for a diag, under the root's name when the walk has
 * one; a long one keeps its start and its end. */
static const char *shown(const walker *w, char buf[SHOWN_MAX + 1])
{
  char full[PATH_CAP + 256];
  snprintf(full, sizeof full, "%.200s%s%s", w->root ? w->root : "",
           w->root && w->path[0] ? "/" : "", w->root || w->path[0] ? w->path : ".");
  size_t n = strlen(full), head = SHOWN_MAX / 2, tail = SHOWN_MAX - head - 3;
  if (n <= SHOWN_MAX) {
    memcpy(buf, full, n + 1);
  } else {
    memcpy(buf, full, head);
    memcpy(buf + head, "...", 3);
    memcpy(buf + head + 3, full + n - tail, tail + 1);
  }
  return buf;
}

static int fail_errno(walker *w, int e, const char *what)
{
  char buf[SHOWN_MAX + 1];
  return ls_diag_errno(w->diag, e, what, shown(w, buf));
}

static ls_walk_type type_of(mode_t mode)
{
  if (S_ISREG(mode))
    return LS_WALK_FILE;
  if (S_ISDIR(mode))
    return LS_WALK_DIR;
  return S_ISLNK(mode) ? LS_WALK_SYMLINK : LS_WALK_OTHER;
}

/* Opens dir_fd/name (dir_fd itself when name is NULL) as the next frame;
 * LS_OK without a frame when an entry vanished. */
static int push(walker *w, int dir_fd, const char *name, size_t path_len, size_t name_off,
                const struct stat *st)
{
  int fd = openat(dir_fd, name ? name : ".", OPEN_DIR_FLAGS);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  if (!d) {
    int e = errno;
    char buf[SHOWN_MAX + 1];
    if (fd >= 0)
      close(fd);
    if (e == ENOENT && w->open > 0)
      return LS_OK;
    if (e == ENOTDIR || e == ELOOP) /* not a directory (any more): a file or a symlink */
      return ls_diag_set(w->diag, LS_EINVAL,
                         "%s is not a directory (symbolic links are never followed)",
                         shown(w, buf));
    return fail_errno(w, e, "cannot open directory");
  }
  frame *f = &w->stack[w->open++];
  *f = (frame){.dir = d, .path_len = path_len, .name_off = name_off};
  if (st)
    f->st = *st;
  return LS_OK;
}

/* Closes the frame being read, after its POST visit when asked for. */
static int pop(walker *w)
{
  frame *f = &w->stack[w->open - 1];
  int rc = LS_OK;
  if (w->open > 1 && (w->flags & LS_WALK_POSTORDER)) {
    w->path[f->path_len] = '\0';
    ls_walk_entry e = {.dir_fd = dirfd(w->stack[w->open - 2].dir),
                       .name = w->path + f->name_off,
                       .path = w->path,
                       .depth = w->open - 1,
                       .type = LS_WALK_DIR,
                       .visit = LS_WALK_POST,
                       .st = &f->st,
                       .fd = dirfd(f->dir)};
    rc = w->cb(w->ctx, &e, w->diag);
  }
  closedir(f->dir);
  w->open--;
  return rc < 0 ? rc : LS_OK;
}

/* Visits the entry `name` of the frame being read, and enters it when it
 * is a directory the callback did not skip. */
static int visit(walker *w, const char *name)
{
  frame *f = &w->stack[w->open - 1];
  size_t depth = w->open, n = strlen(name);
  size_t off = f->path_len ? f->path_len + 1 : 0;
  if (n > NAME_MAX)
    return ls_diag_set(w->diag, LS_ETOOBIG, "an entry name longer than %d bytes", NAME_MAX);
  if (f->path_len)
    w->path[f->path_len] = '/';
  memcpy(w->path + off, name, n + 1);
  char buf[SHOWN_MAX + 1];
  if (depth > LS_WALK_MAX_DEPTH)
    return ls_diag_set(w->diag, LS_ETOOBIG, "deeper than %d levels: %s", LS_WALK_MAX_DEPTH,
                       shown(w, buf));
  struct stat st;
  if (fstatat(dirfd(f->dir), name, &st, AT_SYMLINK_NOFOLLOW) != 0)
    return errno == ENOENT ? LS_OK : fail_errno(w, errno, "cannot stat");
  ls_walk_entry e = {.dir_fd = dirfd(f->dir),
                     .name = w->path + off,
                     .path = w->path,
                     .depth = depth,
                     .type = type_of(st.st_mode),
                     .visit = LS_WALK_PRE,
                     .st = &st,
                     .fd = -1};
  int rc = w->cb(w->ctx, &e, w->diag);
  if (rc < 0)
    return rc;
  bool enter = e.type == LS_WALK_DIR && rc != LS_WALK_SKIP &&
               !((w->flags & LS_WALK_SKIP_DEEP) && depth == LS_WALK_MAX_DEPTH);
  if (!enter)
    return LS_OK;
  return push(w, dirfd(f->dir), w->path + off, off + n, off, &st);
}

int ls_walk(int dir_fd, const char *name, unsigned flags, ls_walk_cb cb, void *ctx,
            ls_diag *diag)
{
  walker *w = malloc(sizeof *w);
  if (!w)
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  *w = (walker){.root = name, .flags = flags, .cb = cb, .ctx = ctx, .diag = diag};
  int rc = push(w, dir_fd, name, 0, 0, NULL);
  while (rc == LS_OK && w->open > 0) {
    frame *f = &w->stack[w->open - 1];
    errno = 0;
    struct dirent *de = readdir(f->dir);
    if (!de && errno != 0) {
      w->path[f->path_len] = '\0';
      rc = fail_errno(w, errno, "cannot read directory");
    } else if (!de) {
      rc = pop(w);
    } else if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
      rc = visit(w, de->d_name);
    }
  }
  while (w->open > 0)
    closedir(w->stack[--w->open].dir);
  free(w);
  return rc;
}
