/* File system helpers shared by every module: whole-file reads with a cap,
 * atomic writes, directory creation, tree removal and tree fsync, free
 * space, and sizes as users read them. */
#ifndef LS_CORE_FS_H
#define LS_CORE_FS_H

#include <lanspread/error.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Reads a whole file of at most max bytes into a malloc'ed, NUL-terminated
 * buffer. LS_ETOOBIG when it is larger; LS_EINVAL, without waiting, when it
 * is not a regular file (a FIFO, a device). dir_fd may be AT_FDCWD. */
int ls_read_file_at(int dir_fd, const char *path, size_t max, char **data, size_t *len,
                    ls_diag *diag);

/* dir_fd/name is a regular file (a symbolic link is not followed). */
bool ls_is_regular_at(int dir_fd, const char *name);

/* Reads len bytes at off into buf, again after EINTR and short reads.
 * Returns len; fewer (what was there) only when the file ends first; or a
 * negative LS_E* code, with errno left as the failed pread set it. */
ssize_t ls_pread_full(int fd, void *buf, size_t len, uint64_t off);

/* Writes data to dir_fd/name atomically: "name.tmp", fsync, rename, fsync of
 * the directory. mode is the new file's permission bits. */
int ls_write_file_atomic_at(int dir_fd, const char *name, const void *data, size_t len,
                            unsigned mode, ls_diag *diag);
int ls_write_file_atomic(const char *path, const void *data, size_t len, unsigned mode,
                         ls_diag *diag);

/* mkdir -p with mode 0755 (0700 when private is set, for state dirs). */
int ls_mkdir_p(const char *path, int private_dir, ls_diag *diag);

/* Takes away the permission bits of path that `mode` does not have (a file
 * of 0644 given 0600 becomes 0600), without following a symbolic link. A
 * missing path is no error. *old_mode gets the bits before a change, 0
 * when none was needed. */
int ls_restrict_mode(const char *path, unsigned mode, unsigned *old_mode, ls_diag *diag);

/* A state directory (both programs' one rule): created 0700 when missing
 * (with its missing parents), and an existing one whose mode lets group or
 * others in is chmod'ed to 0700 (a path that is a symbolic link: the
 * directory it names). When it was, note gets a sentence for the
 * caller's log ("state directory D had mode 0755: it is 0700 now");
 * otherwise note->text is empty. note may be NULL. */
int ls_state_dir_prepare(const char *path, ls_diag *note, ls_diag *diag);

/* rm -rf of dir_fd/name, never following symlinks and never leaving the
 * tree (core/walk.h). A missing name is success. A tree deeper than the
 * walker's cap is removed too: in passes, each moving what lies below the
 * cap up to the top of the tree. */
int ls_rmtree_at(int dir_fd, const char *name, ls_diag *diag);

/* fsync of every regular file and directory of the tree dir_fd/name (the
 * directory included, last), never following symlinks (they are durable
 * with their directory). A tree deeper than the walker's cap fails with
 * LS_ETOOBIG. */
int ls_fsync_tree_at(int dir_fd, const char *name, ls_diag *diag);

/* fsync of a directory by path. */
int ls_fsync_dir(const char *path, ls_diag *diag);

/* A usable game directory: exists, is a directory, is writable; else a
 * sentence saying which not. */
int ls_check_game_dir(const char *dir, ls_diag *diag);

/* $XDG_<var>/lanspread[/sub], or ~/<fallback>/lanspread[/sub] when the
 * variable is unset or relative (the XDG base directory rules); malloc'ed,
 * NULL when out of memory. */
/* Free bytes of the filesystem holding path, as an unprivileged user may
 * use them (f_bavail). */
int ls_free_space(const char *path, uint64_t *out, ls_diag *diag);

/* "512 B", "3.4 MiB", "240.0 GiB": bytes as a user reads them (binary
 * units); returns out. */
const char *ls_format_size(uint64_t bytes, char out[24]);

char *ls_user_dir(const char *xdg_var, const char *fallback, const char *sub);

#endif
