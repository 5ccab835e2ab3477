/* Owns the unpacker's tree check (ls_unpack_check_tree): a walk of an
 * extracted tree (core/walk.h) that removes every symlink resolving outside
 * it and every device node, FIFO and socket; and ls_fsync_tree, by path. */
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

static int check_visit(void *ctx, const ls_walk_entry *e, ls_diag *diag)
{
  check_ctx *c = ctx;
  mode_t mode = e->st->st_mode;
  if (e->type == LS_WALK_SYMLINK && symlink_escapes(c, e))
    remove_offender(c, e, "symlink pointing outside the destination", diag);
  else if (e->type == LS_WALK_OTHER)
    remove_offender(c, e, S_ISFIFO(mode) ? "FIFO" : S_ISSOCK(mode) ? "socket" : "device node",
                    diag);
  return LS_OK;
}

int ls_unpack_check_tree(const char *dest_dir, ls_diag *diag)
{
  char *root = realpath(dest_dir, NULL);
  if (!root)
    return ls_diag_errno(diag, errno, "cannot resolve", dest_dir);
  check_ctx c = {.root = root};
  int rc = ls_walk(AT_FDCWD, root, 0, check_visit, &c, diag);
  free(root);
  return rc != LS_OK ? rc : c.rc;
}

int ls_fsync_tree(const char *dir, ls_diag *diag)
{
  return ls_fsync_tree_at(AT_FDCWD, dir, diag);
}
