/* The daemon's settings: what the config file holds, how it is read and
 * written, and the checks every value passes before it is stored. */
#ifndef LSD_SETTINGS_H
#define LSD_SETTINGS_H

#include <jansson.h>
#include <lanspread/error.h>
#include <stdbool.h>
#include <stddef.h>

#define LSD_MAX_STATIC_PEERS 64
#define LSD_DEFAULT_GUI "127.0.0.1:8360"
#define LSD_DEFAULT_UI_FALLBACK "127.0.0.1:0" /* when LSD_DEFAULT_GUI is taken */

typedef struct lsd_settings {
  char *game_dir;     /* NULL: not chosen yet (the page shows its setup screen) */
  char *name;         /* NULL: the host name */
  char *static_peers[LSD_MAX_STATIC_PEERS];
  size_t static_peer_count;
  char *gui;          /* HOST:PORT of the web UI */
} lsd_settings;

/* Reads the config file; a missing file gives empty settings. A file that
 * is not valid JSON or holds a wrong value is refused with its name. */
int lsd_settings_load(const char *path, lsd_settings *out, ls_diag *diag);
/* Writes the config file atomically (its directory is created). */
int lsd_settings_save(const char *path, const lsd_settings *s, ls_diag *diag);
/* Takes the fields present in obj ("game_dir", "name", "static_peers",
 * "gui") into s after checking all of them; nothing changes on error. */
int lsd_settings_update(lsd_settings *s, json_t *obj, ls_diag *diag);
int lsd_settings_copy(lsd_settings *dst, const lsd_settings *src);
void lsd_settings_free(lsd_settings *s);
json_t *lsd_settings_json(const lsd_settings *s);

/* Checks of single values. HOST:PORT is checked (and a name resolved) as
 * the runtime will. A game directory is an absolute path without
 * '.' or '..' parts to a writable directory; with LSD_DIR_MAY_CREATE a
 * missing one passes when it could be created, LSD_DIR_CREATE makes it. */
typedef enum { LSD_DIR_EXISTS, LSD_DIR_MAY_CREATE, LSD_DIR_CREATE } lsd_dir_mode;
int lsd_check_game_dir(const char *path, lsd_dir_mode mode, ls_diag *diag);
int lsd_check_host_port(const char *addr, ls_diag *diag);
int lsd_check_name(const char *name, ls_diag *diag);

#endif
