/* The libarchive unpacker: the ls_unpacker implementation that extracts RAR4,
 * RAR5, zip, 7z and tar archives (detected by content) safely into a
 * directory, with an external command (or unrar / 7z found on PATH) as the
 * fallback for archives libarchive cannot read; plus the helpers the install
 * transaction needs around it (volume ordering, tree safety check, fsync).
 *
 * Safety model (see unpack_archive.c and unpack_tree.c for the details):
 * - every entry name is checked by us (not absolute, no ".." component) and
 *   prefixed with realpath(dest_dir) before archive_write_header; libarchive
 *   runs with SECURE_SYMLINKS | SECURE_NODOTDOT | TIME | PERM. NOT with
 *   SECURE_NOABSOLUTEPATHS: it refuses the prefixed (absolute) path itself;
 *   our own check of the archive's name replaces it;
 * - symlink targets are checked lexically per entry (absolute or escaping
 *   targets are refused), and after extraction every symlink under dest_dir
 *   is resolved for real (realpath): one pointing outside is removed and the
 *   unpack fails; device nodes, FIFOs and sockets are refused;
 * - hardlink targets get the same name checks and may not pass through a
 *   symlink;
 * - no setuid, setgid or sticky bit, no group or world write bit on
 *   anything extracted (masked per entry; after an external command, and
 *   when the umask would let libarchive's implicit directories have them,
 *   by the tree check);
 * - the extraction limits (install/unpack_limits.h) are checked while
 *   writing on every path; the external command is watched, its files
 *   capped (RLIMIT_FSIZE), killed with its process group when over, and
 *   confined with bubblewrap when bwrap works here (ls_unpack_sandboxed).
 * Names: each unpack runs under a thread-local C.UTF-8 locale (uselocale),
 * so RAR Unicode names convert without touching the process-wide locale. */
#ifndef LS_INSTALL_UNPACK_H
#define LS_INSTALL_UNPACK_H

#include "install/unpacker.h"

#include <lanspread/error.h>
#include <stdbool.h>
#include <stddef.h>

/* Fills *out with the libarchive unpacker. external_cmd (may be NULL) is the
 * --unpacker template, e.g. "unrar x -o+ -y {archive} {dest}/": split into
 * words without a shell ('...' and "..." group, backslash escapes outside
 * single quotes); {archive} and {dest} are replaced inside each word, so a
 * path with spaces stays one argument. LS_EINVAL when the template is empty,
 * has an unterminated quote or lacks {archive} or {dest}. Free with
 * ls_unpacker_libarchive_free. */
int ls_unpacker_libarchive(ls_unpacker *out, const char *external_cmd, ls_diag *diag);
void ls_unpacker_libarchive_free(ls_unpacker *u);

/* fsync of every regular file and directory under dir (dir included),
 * never following symlinks. The install transaction calls it before its
 * commit point: libarchive never fsyncs. */
int ls_fsync_tree(const char *dir, ls_diag *diag);

/* The volumes of the archive set starting at `archive`, in order: just
 * `archive` unless its content is a RAR volume. RAR sets are named
 * NAME.partN.EXT (N numeric, any width, from 1) or NAME.EXT, NAME.r00,
 * NAME.r01, ... Fails (LS_EFORMAT, diag naming the file) when `archive` is
 * not the first volume, when a volume is missing or duplicated, or when a
 * RAR5 volume's header number does not match its place (LS_ENOENT for a
 * missing one). */
typedef struct ls_volume_list {
  char **paths; /* count entries, then NULL (for archive_read_open_filenames) */
  size_t count;
} ls_volume_list;
int ls_unpack_volumes(const char *archive, ls_volume_list *out, ls_diag *diag);
void ls_volume_list_free(ls_volume_list *v);

/* Runs an external unpacker template (see ls_unpacker_libarchive) on archive
 * and dest_dir without a shell, stdin and stdout on /dev/null, in a process
 * group of its own, keeping the last 4 KiB of stderr for the diag on
 * failure (exit status or signal). When ls_unpack_sandboxed, it runs under
 * bwrap: the whole file system read-only but dest_dir, no network, no
 * capabilities, killed with us. limits (NULL: this archive's alone) is
 * watched: dest_dir is counted every 250 ms or so (less often when a count
 * is slow) and at the end, every file is capped at what the game may still
 * write (RLIMIT_FSIZE), and the group is killed over a limit (LS_ELIMIT,
 * LS_ENOSPC; also when the command failed having filled its budget).
 * progress (may be NULL) gets the bytes counted; false kills the command
 * (LS_ECANCELED). Does not check the tree: see ls_unpack_check_tree. */
int ls_unpack_external(const char *cmd_template, const char *archive, const char *dest_dir,
                       ls_unpack_limits *limits, ls_unpack_progress_cb progress,
                       void *progress_user, ls_diag *diag);

/* True when an external unpacker runs confined (bwrap is on PATH and can
 * make its namespaces here: tried once per process, the first call). When
 * false, why (may be NULL) says what is missing, for the one warning the
 * runtime logs at start. */
bool ls_unpack_sandboxed(char *why, size_t why_size);

/* Walks dest_dir (no symlink following): removes every symlink that
 * resolves outside dest_dir (or is absolute / uses ".." and dangles) and
 * every device node, FIFO and socket; clears the bits
 * (setuid, setgid, sticky, group and world write) on every file and
 * directory, dest_dir included. LS_EFORMAT naming the first offender when
 * anything was removed. */
int ls_unpack_check_tree(const char *dest_dir, ls_diag *diag);

#endif
