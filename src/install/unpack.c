/* Owns the libarchive unpacker object (install/unpack.h): its vtable, its
 * configuration, and the policy around an extraction (the limits of an
 * archive unpacked alone, which external command runs when libarchive
 * cannot read an archive, and when the tree check runs). The work is done
 * by the other unpack_*.c files (see install/unpack_parts.h). */
#include "install/unpack_parts.h"

#include "core/error.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define INSTALL_HINT "install unrar (non-free) or p7zip-full, or pass --unpacker"

typedef struct unpacker_state {
  char *external_cmd; /* NULL: none configured */
} unpacker_state;

/* ls_unpack_check_tree, with the archive's name in front of the diag. */
static int check_tree_of(const char *archive, const char *dest, ls_diag *diag)
{
  int rc = ls_unpack_check_tree(dest, diag);
  if (rc != LS_OK && diag) {
    char text[LS_DIAG_MAX];
    snprintf(text, sizeof text, "%s", diag->text);
    ls_diag_set(diag, rc, "%s: %s", archive, text);
  }
  return rc;
}

/* ==== fallback ============================================================ */

/* The fallback command template for this archive, NULL when none. */
static const char *fallback_template(const unpacker_state *st, bool is_rar)
{
  if (st && st->external_cmd)
    return st->external_cmd;
  if (is_rar && ls_unpack_can_exec("unrar"))
    return "unrar x -o+ -y -p- {archive} {dest}/";
  if (ls_unpack_can_exec("7z"))
    return "7z x -y -o{dest} {archive}";
  return NULL;
}

static int run_fallback(const unpacker_state *st, ls_unpack_job *j, const char *la_msg,
                        ls_diag *diag)
{
  ls_rar_info ri;
  ls_rar_sniff(j->archive, &ri);
  const char *tmpl = fallback_template(st, ri.version != 0);
  if (!tmpl)
    return ls_diag_set(diag, j->unsupported ? LS_EUNSUPPORTED : LS_EFORMAT,
                       "%s: libarchive cannot extract it (%s); " INSTALL_HINT, j->archive,
                       la_msg);
  int rc = ls_unpack_external(tmpl, j->archive, j->dest, j->limits, j->progress,
                              j->progress_user, diag);
  if (rc != LS_OK && rc != LS_ECANCELED) {
    char ext[LS_DIAG_MAX];
    snprintf(ext, sizeof ext, "%s", diag ? diag->text : "");
    return ls_diag_set(diag, rc, "%s (libarchive: %s)", ext, la_msg);
  }
  if (rc == LS_OK)
    rc = check_tree_of(j->archive, j->dest, diag);
  return rc;
}

/* ==== the vtable ========================================================== */

/* True unless the umask clears group and world write: libarchive makes the
 * directories an archive does not list with 0777 & ~umask, so then the
 * tree check masks them. Read from /proc (umask(2) would change it). */
static bool umask_is_weak(void)
{
  FILE *f = fopen("/proc/self/status", "re");
  if (!f)
    return true;
  char line[256];
  unsigned mask = 0;
  bool found = false;
  while (!found && fgets(line, sizeof line, f))
    found = sscanf(line, "Umask: %o", &mask) == 1;
  fclose(f);
  return !found || (mask & 022) != 022;
}

static uint64_t volumes_size(const ls_volume_list *vols)
{
  uint64_t sum = 0;
  for (size_t i = 0; i < vols->count; i++) {
    struct stat st;
    if (stat(vols->paths[i], &st) == 0 && S_ISREG(st.st_mode))
      sum += (uint64_t)st.st_size;
  }
  return sum;
}

/* The game's limits, or (NULL) the limits of this archive alone. */
static int start_limits(ls_unpack_job *j, ls_unpack_limits *game, ls_unpack_limits *alone,
                        const ls_volume_list *vols, ls_diag *diag)
{
  uint64_t size = volumes_size(vols);
  j->limits = game;
  if (!game) {
    int rc = ls_unpack_limits_begin(alone, NULL, j->dest, size, diag);
    if (rc != LS_OK)
      return rc;
    j->limits = alone;
  }
  ls_unpack_limits_archive(j->limits, size);
  return LS_OK;
}

static bool la_is_archive(void *self, const char *path)
{
  (void)self;
  return ls_unpack_is_archive(path);
}

static int la_unpack(void *self, const char *archive, const char *dest_dir,
                     ls_unpack_limits *limits, ls_unpack_progress_cb progress,
                     void *progress_user, ls_diag *diag)
{
  ls_unpack_job j = {.archive = archive, .progress = progress, .progress_user = progress_user};
  if (!realpath(dest_dir, j.dest))
    return ls_diag_errno(diag, errno, "cannot resolve the destination", dest_dir);
  ls_volume_list vols;
  int rc = ls_unpack_volumes(archive, &vols, diag);
  if (rc != LS_OK)
    return rc;
  ls_unpack_limits alone;
  rc = start_limits(&j, limits, &alone, &vols, diag);
  if (rc == LS_OK)
    rc = ls_unpack_extract(&j, &vols, diag);
  ls_volume_list_free(&vols);
  if (rc == LS_OK && (j.symlinks > 0 || umask_is_weak()))
    rc = check_tree_of(archive, j.dest, diag);
  bool limit = rc == LS_ELIMIT || rc == LS_ENOSPC; /* no second try at a limit */
  if (rc != LS_OK && rc != LS_ECANCELED && !limit && j.fallback_ok) {
    char la_msg[LS_DIAG_MAX];
    snprintf(la_msg, sizeof la_msg, "%s", diag ? diag->text : "error");
    const char *msg = strncmp(la_msg, archive, strlen(archive)) == 0 &&
                              la_msg[strlen(archive)] == ':'
                          ? la_msg + strlen(archive) + 2
                          : la_msg;
    rc = run_fallback(self, &j, msg, diag);
  }
  return rc;
}

int ls_unpacker_libarchive(ls_unpacker *out, const char *external_cmd, ls_diag *diag)
{
  *out = (ls_unpacker){0};
  if (external_cmd) {
    int rc = ls_unpack_check_template(external_cmd, diag);
    if (rc != LS_OK)
      return rc;
  }
  unpacker_state *st = calloc(1, sizeof *st);
  if (!st || (external_cmd && !(st->external_cmd = strdup(external_cmd)))) {
    free(st);
    return diag_oom(diag);
  }
  *out = (ls_unpacker){.unpack = la_unpack, .is_archive = la_is_archive, .self = st};
  return LS_OK;
}

void ls_unpacker_libarchive_free(ls_unpacker *u)
{
  if (!u || !u->self)
    return;
  unpacker_state *st = u->self;
  free(st->external_cmd);
  free(st);
  *u = (ls_unpacker){0};
}
