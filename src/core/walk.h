/* The one directory walker: every walk over a directory tree (scans, the
 * monitor's listing, download storage, install trees, the unpacker's tree
 * check, rm -rf, fsync of a tree) goes through ls_walk.
 *
 * Safe on a tree an outsider made: iterative (a heap-allocated stack of
 * open directories, never recursion), at most LS_WALK_MAX_DEPTH levels
 * (the relative-path rule's depth, core/relpath.h), every directory opened
 * with openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
 * O_CLOEXEC), every entry lstat'ed with fstatat(parent, name,
 * AT_SYMLINK_NOFOLLOW): a symlink is reported as one and never followed,
 * also when it replaces a directory during the walk (the open fails). Its
 * memory is bounded: one walker struct (about 30 KiB) and, per open level,
 * one descriptor and one DIR buffer (glibc: 32 KiB). */
#ifndef LS_CORE_WALK_H
#define LS_CORE_WALK_H

#include "core/relpath.h"

#include <lanspread/error.h>
#include <stddef.h>
#include <sys/stat.h>

#define LS_WALK_MAX_DEPTH LS_RELPATH_MAX_DEPTH

typedef enum ls_walk_type {
  LS_WALK_FILE,    /* a regular file */
  LS_WALK_DIR,     /* a directory (a real one: symlinks are LS_WALK_SYMLINK) */
  LS_WALK_SYMLINK, /* a symbolic link, never followed */
  LS_WALK_OTHER,   /* a device node, FIFO or socket */
} ls_walk_type;

typedef enum ls_walk_visit {
  LS_WALK_PRE,  /* every entry, before a directory's own entries */
  LS_WALK_POST, /* with LS_WALK_POSTORDER: a directory after its entries */
} ls_walk_visit;

enum ls_walk_flags {
  /* Also visit each entered directory after its entries (rm -rf, fsync). */
  LS_WALK_POSTORDER = 1 << 0,
  /* Directories at depth LS_WALK_MAX_DEPTH are visited but not entered.
   * Without it, an entry below that depth fails the walk with LS_ETOOBIG. */
  LS_WALK_SKIP_DEEP = 1 << 1,
};

/* A callback's answer to the PRE visit of a directory: do not enter it (no
 * entries, no POST visit). Any other positive answer counts as LS_OK. */
#define LS_WALK_SKIP 1

typedef struct ls_walk_entry {
  int dir_fd;            /* the directory holding the entry, for *at() calls */
  const char *name;      /* the entry's name in dir_fd */
  const char *path;      /* from the walk's root, '/'-separated: "a/b/name" */
  size_t depth;          /* components of path: 1 for the root's own entries */
  ls_walk_type type;
  ls_walk_visit visit;
  const struct stat *st; /* the entry's lstat */
  int fd;                /* POST visit: the directory itself, open; else -1 */
} ls_walk_entry;

/* Called for each visit; the entry and its strings live until it returns.
 * It may remove or rename the entry. A negative LS_E* code stops the walk
 * and is ls_walk's result (the callback fills the diag). */
typedef int (*ls_walk_cb)(void *ctx, const ls_walk_entry *e, ls_diag *diag);

/* Walks the tree below dir_fd/name (name NULL: below dir_fd itself, read
 * through a descriptor of its own) in readdir order, pre-order, and with
 * LS_WALK_POSTORDER post-order too. The root itself is not visited. An
 * entry that vanishes before it is visited is skipped. Fails with the
 * callback's code, LS_ETOOBIG for an entry deeper than LS_WALK_MAX_DEPTH,
 * or the errno's code when a directory cannot be opened or read, or when
 * an entry cannot be lstat'ed (the diag names its path). */
int ls_walk(int dir_fd, const char *name, unsigned flags, ls_walk_cb cb, void *ctx,
            ls_diag *diag);

#endif
