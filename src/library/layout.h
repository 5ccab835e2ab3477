/* The names inside a game root (docs/ARCHITECTURE.md, "Game roots") and how
 * to classify them. */
#ifndef LS_LIBRARY_LAYOUT_H
#define LS_LIBRARY_LAYOUT_H

#include <lanspread/error.h>
#include <stdbool.h>

#define LS_VERSION_FILE "version.ini"
#define LS_VERSION_TMP ".version.ini.tmp"
#define LS_VERSION_DISCARDED ".version.ini.discarded"
#define LS_VERSION_KEPT ".version.ini.kept"
#define LS_LOCAL_DIR "local"
#define LS_INSTALLING_DIR ".local.installing"
#define LS_BACKUP_DIR ".local.backup"
#define LS_OWNED_MARKER ".lanspread_owned"
#define LS_INTENT_FILE ".lanspread.json"
#define LS_DOWNLOAD_JOURNAL ".lanspread.download"
#define LS_CHUNK_MAP ".lanspread.chunks"
#define LS_SOFTLAN_MARKER ".softlan_game_installed"
#define LS_SYNC_DIR ".sync"

/* Root-level names that are not payload: install state, foreign markers,
 * version transients and our journal. version.ini is payload (peers download
 * it); local/ is not. */
bool ls_layout_is_reserved(const char *name);

/* A path the payload may hold: the relative-path rule (core/relpath.h),
 * and a first component that is not reserved. What the scan lists, what a
 * download may write, what an install looks for archives in. The diag
 * gets the reason ("reserved name", or the path rule's). */
int ls_layout_check_payload_path(const char *path, ls_diag *diag);

/* Root-level names whose changes must not trigger a rescan: every reserved
 * name except local/ (the install signal). */
bool ls_layout_is_quiet(const char *name);

/* Names that survive discarding a failed or cancelled download: local/, the
 * install state and the foreign markers. */
bool ls_layout_survives_discard(const char *name);

#endif
