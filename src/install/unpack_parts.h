/* What the files of the libarchive unpacker share among themselves; other
 * modules use install/unpack.h, the module's public face.
 *   unpack.c          the unpacker object and its fallback policy
 *   unpack_rar.c      RAR main headers, volume discovery and order
 *   unpack_archive.c  detection by content, entry checks, libarchive extraction
 *   unpack_external.c the external command runner and its confinement (bwrap)
 *   unpack_tree.c     the tree check after an extraction (offenders, modes,
 *                     sizes), fsync of a tree
 *   unpack_limits.c   the extraction limits every path checks (unpack_limits.h) */
#ifndef LS_INSTALL_UNPACK_PARTS_H
#define LS_INSTALL_UNPACK_PARTS_H

#include "install/unpack.h"

#include "core/error.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define LS_UNPACK_SNIFF_BYTES 512 /* what detection reads of a file's start */

static inline int diag_oom(ls_diag *diag)
{
  return ls_diag_set(diag, LS_ENOMEM, "out of memory");
}

/* ---- unpack_rar.c ---- */

/* What a RAR file's main header says. */
typedef struct ls_rar_info {
  int version;        /* 0: not RAR; 4 or 5 */
  bool header_known;  /* the main header was read */
  bool volume;        /* part of a multi-volume set */
  bool first_known;   /* RAR4 "first volume" flag set */
  long volume_number; /* RAR5: 0 for the first volume, -1 unknown */
} ls_rar_info;

/* From the first n bytes of a file. */
void ls_rar_parse(const unsigned char *b, size_t n, ls_rar_info *ri);
/* From the file at path (version 0 when unreadable or not RAR). */
void ls_rar_sniff(const char *path, ls_rar_info *ri);
/* True when a RAR file is a later volume of a set, by header and name. */
bool ls_rar_is_later_volume(const char *path, const ls_rar_info *ri);
/* Reads up to cap bytes from the start of a regular file; negative (errno
 * set) on failure. */
ssize_t ls_unpack_read_head(const char *path, unsigned char *buf, size_t cap);

/* ---- unpack_archive.c ---- */

/* One extraction of an archive (a volume set) into dest. */
typedef struct ls_unpack_job {
  const char *archive;
  char dest[PATH_MAX];   /* realpath(dest_dir) */
  ls_unpack_limits *limits; /* the game's, or one of this archive alone */
  ls_unpack_progress_cb progress;
  void *progress_user;
  uint64_t bytes;          /* data written from this archive */
  uint64_t last_report;
  size_t symlinks;       /* symlinks created: the tree check runs when > 0 */
  size_t entries;        /* entries extracted */
  uint64_t entry_size;   /* the current file: its declared size, counted up front */
  uint64_t entry_end;    /* the current file: the end of its data so far */
  bool fallback_ok;      /* the failure may be fixed by unrar/7z/--unpacker */
  bool unsupported;      /* libarchive said "unsupported", not "corrupt" */
} ls_unpack_job;

/* The unpacker's is_archive (install/unpacker.h), by content. */
bool ls_unpack_is_archive(const char *path);
/* Extracts the volumes with libarchive, every entry checked first. */
int ls_unpack_extract(ls_unpack_job *j, const ls_volume_list *vols, ls_diag *diag);

/* The bits every extracted file and directory loses: setuid, setgid,
 * sticky, group and world write. */
#define LS_UNPACK_MODE_MASK 0755

/* ---- unpack_tree.c ---- */

/* What a walk of an extracted tree counted: bytes of regular files
 * (st_size) and entries (everything below the root). */
typedef struct ls_tree_count {
  uint64_t bytes, entries;
} ls_tree_count;

/* Counts dest_dir without changing anything. */
int ls_unpack_count_tree(const char *dest_dir, ls_tree_count *out, ls_diag *diag);

/* ---- unpack_external.c ---- */

/* The executable prog (a path, or a name looked up on PATH) in out; false
 * when there is none. ls_unpack_can_exec: the same, without the path. */
bool ls_unpack_find_exec(const char *prog, char *out, size_t size);
bool ls_unpack_can_exec(const char *prog);
/* LS_EINVAL (diag) unless the template splits and holds {archive} and
 * {dest}. */
int ls_unpack_check_template(const char *tmpl, ls_diag *diag);

#endif
