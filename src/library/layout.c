/* Owns the classification of root-level names in a game root, and which
 * paths the payload may hold. */
#include "library/layout.h"

#include "core/error.h"
#include "core/relpath.h"

#include <string.h>

static bool name_in(const char *name, const char *const *set)
{
  for (; *set; set++)
    if (strcmp(name, *set) == 0)
      return true;
  return false;
}

static const char *const discard_survivors[] = {
  LS_LOCAL_DIR, LS_INSTALLING_DIR, LS_BACKUP_DIR, LS_INTENT_FILE,
  LS_SOFTLAN_MARKER, LS_SYNC_DIR, NULL,
};

/* The ".tmp" names are what atomic writes of the journal and the intent log
 * leave behind after a crash mid-write. */
static const char *const transients[] = {
  LS_VERSION_TMP, LS_VERSION_DISCARDED, LS_VERSION_KEPT, LS_DOWNLOAD_JOURNAL,
  LS_DOWNLOAD_JOURNAL ".tmp", LS_CHUNK_MAP, LS_CHUNK_MAP ".tmp", LS_INTENT_FILE ".tmp", NULL,
};

bool ls_layout_survives_discard(const char *name)
{
  return name_in(name, discard_survivors);
}

bool ls_layout_is_reserved(const char *name)
{
  return name_in(name, discard_survivors) || name_in(name, transients);
}

bool ls_layout_is_quiet(const char *name)
{
  return ls_layout_is_reserved(name) && strcmp(name, LS_LOCAL_DIR) != 0;
}

int ls_layout_check_payload_path(const char *path, ls_diag *diag)
{
  int rc = ls_relpath_check(path, diag);
  if (rc != LS_OK)
    return rc;
  char first[LS_RELPATH_MAX_NAME + 1];
  size_t n = strcspn(path, "/"); /* at most LS_RELPATH_MAX_NAME: checked above */
  memcpy(first, path, n);
  first[n] = '\0';
  if (ls_layout_is_reserved(first))
    return ls_diag_set(diag, LS_EINVAL, "reserved name %s", first);
  return LS_OK;
}
