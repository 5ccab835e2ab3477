/* Owns the libarchive unpacker object (install/unpack.h): its vtable, its
 * configuration, and the fallback policy around an extraction (which
 * external command runs when libarchive cannot read an archive, and the
 * tree check after it). The work is done by the other unpack_*.c files
 * (see install/unpack_parts.h). */
#include "install/unpack_parts.h"

#include "core/error.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static bool on_path(const char *prog)
{
  const char *path = getenv("PATH");
  if (!path || !*path)
    path = "/usr/local/bin:/usr/bin:/bin";
  for (const char *p = path; *p;) {
    size_t len = strcspn(p, ":");
    char full[PATH_MAX];
    if (len > 0 && snprintf(full, sizeof full, "%.*s/%s", (int)len, p, prog) < (int)sizeof full &&
        access(full, X_OK) == 0)
      return true;
    p += len;
    if (*p == ':')
      p++;
  }
  return false;
}

/* The fallback command template for this archive, NULL when none. */
static const char *fallback_template(const unpacker_state *st, bool is_rar)
{
  if (st && st->external_cmd)
    return st->external_cmd;
  if (is_rar && on_path("unrar"))
    return "unrar x -o+ -y -p- {archive} {dest}/";
  if (on_path("7z"))
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
  int rc = ls_unpack_external(tmpl, j->archive, j->dest, j->progress, j->progress_user, diag);
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

static bool la_is_archive(void *self, const char *path)
{
  (void)self;
  return ls_unpack_is_archive(path);
}

static int la_unpack(void *self, const char *archive, const char *dest_dir,
                     ls_unpack_progress_cb progress, void *progress_user, ls_diag *diag)
{
  ls_unpack_job j = {.archive = archive, .progress = progress, .progress_user = progress_user};
  if (!realpath(dest_dir, j.dest))
    return ls_diag_errno(diag, errno, "cannot resolve the destination", dest_dir);
  ls_volume_list vols;
  int rc = ls_unpack_volumes(archive, &vols, diag);
  if (rc != LS_OK)
    return rc;
  rc = ls_unpack_extract(&j, &vols, diag);
  ls_volume_list_free(&vols);
  if (rc == LS_OK && j.symlinks > 0)
    rc = check_tree_of(archive, j.dest, diag);
  if (rc != LS_OK && rc != LS_ECANCELED && j.fallback_ok) {
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
