/* Owns the unpacker's tree check (ls_unpack_check_tree): a walk of an
 * extracted tree (core/walk.h) that removes every symlink resolving outside
 * it and every device node, FIFO and socket, and masks the modes of files
 * and directories (LS_UNPACK_MODE_MASK); the count of a tree's bytes and
 * entries for the extraction limits (ls_unpack_count_tree); and
 * ls_fsync_tree, by path. */
#include "install/unpack_parts.h"

#include "core/error.h"
#include "core/fs.h"
#include "core/relpath.h"
#include "core/walk.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The tree check: the realpath of the destination, the first offence. */
typedef struct check_ctx {
  const char *root;
  int rc;
} check_ctx;

static bool under_root(const char *root, const char *path)
{
  size_t n = strlen(root);
  return strncmp(root, path, n) == 0 && (path[n] == '/' || path[n] == '\0' ||
                                         (n == 1 && root[0] == '/'));
}

/* Resolves the link for real; a dangling one escapes when its target is
 * absolute or climbs with "..". */
static bool symlink_escapes(const check_ctx *c, const ls_walk_entry *e)
{
  char full[PATH_MAX], real[PATH_MAX];
  if (snprintf(full, sizeof full, "%s/%s", c->root, e->path) < (int)sizeof full &&
      realpath(full, real))
    return !under_root(c->root, real);
  char target[PATH_MAX];
  ssize_t n = readlinkat(e->dir_fd, e->name, target, sizeof target - 1);
  if (n < 0)
    return true;
  target[n] = '\0';
  return ls_relpath_check_flags(target, LS_RELPATH_ALLOW_EMPTY, NULL, NULL) != LS_OK;
}

static void remove_offender(check_ctx *c, const ls_walk_entry *e, const char *what,
                            ls_diag *diag)
{
  unlinkat(e->dir_fd, e->name, 0);
  if (c->rc == LS_OK)
    c->rc = ls_diag_set(diag, LS_EFORMAT, "%s/%s: removed a %s", c->root, e->path, what);
}

/* Clears the masked bits of a file or directory (never a symlink: the walk
 * said what it is, and AT_SYMLINK_NOFOLLOW refuses one that replaced it). */
static int mask_mode(int dir_fd, const char *name, const char *shown, mode_t mode,
                     ls_diag *diag)
{
  mode_t perm = mode & 07777;
  if ((perm & ~(mode_t)LS_UNPACK_MODE_MASK) == 0)
    return LS_OK;
  if (fchmodat(dir_fd, name, perm & LS_UNPACK_MODE_MASK, AT_SYMLINK_NOFOLLOW) != 0)
    return ls_diag_errno(diag, errno, "cannot clear the mode bits of", shown);
  return LS_OK;
}

static int check_visit(void *ctx, const ls_walk_entry *e, ls_diag *diag)
{
  check_ctx *c = ctx;
  mode_t mode = e->st->st_mode;
  if (e->type == LS_WALK_SYMLINK && symlink_escapes(c, e))
    remove_offender(c, e, "symlink pointing outside the destination", diag);
  else if (e->type == LS_WALK_OTHER)
    remove_offender(c, e, S_ISFIFO(mode) ? "FIFO" : S_ISSOCK(mode) ? "socket" : "device node",
                    diag);
  else if (e->type == LS_WALK_FILE || e->type == LS_WALK_DIR)
    return mask_mode(e->dir_fd, e->name, e->path, mode, diag);
  return LS_OK;
}

int ls_unpack_check_tree(const char *dest_dir, ls_diag *diag)
{
  char *root = realpath(dest_dir, NULL);
  if (!root)
    return ls_diag_errno(diag, errno, "cannot resolve", dest_dir);
  check_ctx c = {.root = root};
  struct stat st;
  int rc = lstat(root, &st) == 0 ? LS_OK : ls_diag_errno(diag, errno, "cannot stat", root);
  if (rc == LS_OK)
    rc = mask_mode(AT_FDCWD, root, root, st.st_mode, diag);
  if (rc == LS_OK)
    rc = ls_walk(AT_FDCWD, root, 0, check_visit, &c, diag);
  free(root);
  return rc != LS_OK ? rc : c.rc;
}

static int count_visit(void *ctx, const ls_walk_entry *e, ls_diag *diag)
{
  (void)diag;
  ls_tree_count *n = ctx;
  n->entries++;
  if (e->type == LS_WALK_FILE)
    n->bytes += (uint64_t)e->st->st_size;
  return LS_OK;
}

int ls_unpack_count_tree(const char *dest_dir, ls_tree_count *out, ls_diag *diag)
{
  *out = (ls_tree_count){0};
  return ls_walk(AT_FDCWD, dest_dir, 0, count_visit, out, diag); /* too deep: LS_ETOOBIG */
}

int ls_fsync_tree(const char *dir, ls_diag *diag)
{
  return ls_fsync_tree_at(AT_FDCWD, dir, diag);
}
