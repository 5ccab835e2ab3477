/* The unpacker interface: how an install extracts one payload archive into a
 * directory. The install transaction calls it; the libarchive unpacker
 * (install/unpack.c) implements it, with an external command (--unpacker)
 * as an alternative and a fallback. Called on worker threads. */
#ifndef LS_INSTALL_UNPACKER_H
#define LS_INSTALL_UNPACKER_H

#include "install/unpack_limits.h"

#include <lanspread/error.h>
#include <stdbool.h>
#include <stdint.h>

/* Progress of one archive: bytes written so far (of the uncompressed
 * entries). Return false to cancel (the unpack then fails LS_ECANCELED). */
typedef bool (*ls_unpack_progress_cb)(void *user, uint64_t bytes_done);

typedef struct ls_unpacker {
  /* Extracts every entry of `archive` (a file path; volumes of a multi-volume
   * set are found next to it) into the existing directory `dest_dir`, safely:
   * no absolute paths, no "..", nothing through or to a symlink outside
   * dest_dir, no device files. Modes are kept without setuid, setgid,
   * sticky and group or world write bits; mtimes are kept. `limits` (begun
   * by the caller for the whole game, shared by its archives) is checked
   * while writing; NULL: limits of this archive alone (its size as the
   * payload). On failure returns an LS_E* code with a diag naming the
   * archive and the reason (LS_ELIMIT, LS_ENOSPC: a limit); what was
   * written stays (the caller removes dest_dir). */
  int (*unpack)(void *self, const char *archive, const char *dest_dir, ls_unpack_limits *limits,
                ls_unpack_progress_cb progress, void *progress_user, ls_diag *diag);
  /* True when `path` is an archive this unpacker should extract, decided by
   * content (not by extension); false for files that are not archives and
   * for later volumes of a multi-volume set (extracted with the first). */
  bool (*is_archive)(void *self, const char *path);
  void *self;
} ls_unpacker;

#endif
