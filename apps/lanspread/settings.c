/* Owns the daemon's config file: JSON with game_dir, name, static_peers and
 * gui, read at start and written atomically whenever the page changes a
 * setting, and the checks that keep bad values out of it. */
#include "settings.h"

#include "core/error.h"
#include "core/fs.h"
#include "core/addr.h"
#include "core/utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_CONFIG_BYTES (64 * 1024)
#define MAX_NAME 64

static bool has_control_chars(const char *s)
{
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f)
      return true;
  return false;
}

static bool has_dot_component(const char *path)
{
  for (const char *p = path; (p = strchr(p, '/')) != NULL;) {
    p++;
    size_t n = strcspn(p, "/");
    if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
      return true;
  }
  return false;
}

/* A missing game directory can be made when its nearest existing ancestor
 * is a writable directory. */
static int check_creatable(const char *path, ls_diag *diag)
{
  char parent[PATH_MAX];
  snprintf(parent, sizeof parent, "%s", path);
  for (;;) {
    char *slash = strrchr(parent, '/');
    if (!slash)
      return ls_diag_set(diag, LS_EINVAL, "%s cannot be created", path);
    *(slash == parent ? slash + 1 : slash) = '\0';
    struct stat st;
    if (stat(parent, &st) != 0) {
      if (errno == ENOENT && slash != parent)
        continue;
      return ls_diag_errno(diag, errno, "cannot create the game directory under", parent);
    }
    if (!S_ISDIR(st.st_mode))
      return ls_diag_set(diag, LS_EINVAL, "%s cannot be created: %s is not a directory", path,
                         parent);
    if (access(parent, W_OK) != 0)
      return ls_diag_errno(diag, errno, "cannot create the game directory in", parent);
    return LS_OK;
  }
}

int lsd_check_game_dir(const char *path, lsd_dir_mode mode, ls_diag *diag)
{
  if (!path || !*path)
    return ls_diag_set(diag, LS_EINVAL, "choose a game directory");
  if (path[0] != '/')
    return ls_diag_set(diag, LS_EINVAL, "'%s' is not an absolute path (it must start with /)",
                       path);
  if (strlen(path) >= PATH_MAX || has_control_chars(path))
    return ls_diag_set(diag, LS_EINVAL, "'%.64s...' is not a usable path", path);
  if (has_dot_component(path))
    return ls_diag_set(diag, LS_EINVAL, "'%s': write the path without '.' or '..' parts", path);
  bool missing = access(path, F_OK) != 0 && (errno == ENOENT || errno == ENOTDIR);
  if (missing && mode == LSD_DIR_MAY_CREATE)
    return check_creatable(path, diag);
  if (missing && mode == LSD_DIR_CREATE) {
    int rc = check_creatable(path, diag);
    if (rc == LS_OK)
      rc = ls_mkdir_p(path, 0, diag);
    if (rc != LS_OK)
      return rc;
  }
  int rc = ls_check_game_dir(path, diag);
  if (rc == LS_ENOENT && mode == LSD_DIR_EXISTS)
    return ls_diag_set(diag, LS_ENOENT, "%s does not exist (tick 'create it' to make it)", path);
  return rc;
}

int lsd_check_host_port(const char *addr, ls_diag *diag)
{
  struct sockaddr_storage ss;
  return ls_parse_host_port(addr ? addr : "", &ss, diag);
}

int lsd_check_name(const char *name, ls_diag *diag)
{
  if (!name || !*name || strlen(name) > MAX_NAME ||
      !ls_utf8_displayable(name, strlen(name), NULL, NULL)) /* what peers accept */
    return ls_diag_set(diag, LS_EINVAL, "the name must be 1 to %d printable characters",
                       MAX_NAME);
  return LS_OK;
}

void lsd_settings_free(lsd_settings *s)
{
  free(s->game_dir);
  free(s->name);
  free(s->gui);
  for (size_t i = 0; i < s->static_peer_count; i++)
    free(s->static_peers[i]);
  memset(s, 0, sizeof *s);
}

static int dup_or_null(char **dst, const char *src)
{
  *dst = src ? strdup(src) : NULL;
  return src && !*dst ? LS_ENOMEM : LS_OK;
}

int lsd_settings_copy(lsd_settings *dst, const lsd_settings *src)
{
  lsd_settings t = {0};
  int rc = dup_or_null(&t.game_dir, src->game_dir);
  if (rc == LS_OK)
    rc = dup_or_null(&t.name, src->name);
  if (rc == LS_OK)
    rc = dup_or_null(&t.gui, src->gui);
  for (size_t i = 0; rc == LS_OK && i < src->static_peer_count; i++) {
    rc = dup_or_null(&t.static_peers[i], src->static_peers[i]);
    t.static_peer_count = i + 1;
  }
  if (rc != LS_OK) {
    lsd_settings_free(&t);
    return rc;
  }
  *dst = t;
  return LS_OK;
}

json_t *lsd_settings_json(const lsd_settings *s)
{
  json_t *peers = json_array();
  for (size_t i = 0; i < s->static_peer_count; i++)
    json_array_append_new(peers, json_string(s->static_peers[i]));
  return json_pack("{s:s?, s:s?, s:o, s:s}", "game_dir", s->game_dir, "name", s->name,
                   "static_peers", peers, "gui", s->gui ? s->gui : LSD_DEFAULT_GUI);
}

/* A string field of obj: absent (LS_OK, *out untouched), null (NULL) or a
 * string; anything else is refused. */
static int string_field(json_t *obj, const char *key, bool *present, const char **out,
                        ls_diag *diag)
{
  json_t *v = json_object_get(obj, key);
  *present = v != NULL;
  if (!v || json_is_null(v)) {
    *out = NULL;
    return LS_OK;
  }
  if (!json_is_string(v))
    return ls_diag_set(diag, LS_EINVAL, "'%s' must be a string", key);
  *out = json_string_value(v);
  return LS_OK;
}

int lsd_settings_update(lsd_settings *s, json_t *obj, ls_diag *diag)
{
  if (!json_is_object(obj))
    return ls_diag_set(diag, LS_EINVAL, "the settings must be a JSON object");
  json_t *create = json_object_get(obj, "create");
  if (create && !json_is_boolean(create))
    return ls_diag_set(diag, LS_EINVAL, "'create' must be true or false");
  bool has_dir = false, has_name = false, has_gui = false;
  const char *dir = NULL, *name = NULL, *gui = NULL;
  int rc = string_field(obj, "game_dir", &has_dir, &dir, diag);
  if (rc == LS_OK && has_dir && !dir)
    rc = ls_diag_set(diag, LS_EINVAL, "'game_dir' cannot be cleared; choose another directory");
  if (rc == LS_OK)
    rc = string_field(obj, "name", &has_name, &name, diag);
  if (rc == LS_OK)
    rc = string_field(obj, "gui", &has_gui, &gui, diag);
  if (rc != LS_OK)
    return rc;
  if (has_name && name && *name == '\0')
    name = NULL; /* empty: back to the host name */
  json_t *peers = json_object_get(obj, "static_peers");
  if (peers && !json_is_array(peers))
    return ls_diag_set(diag, LS_EINVAL, "'static_peers' must be a list of HOST:PORT strings");
  if (peers && json_array_size(peers) > LSD_MAX_STATIC_PEERS)
    return ls_diag_set(diag, LS_EINVAL, "at most %d static peers", LSD_MAX_STATIC_PEERS);
  size_t i;
  json_t *p;
  json_array_foreach(peers, i, p) {
    if (!json_is_string(p))
      return ls_diag_set(diag, LS_EINVAL, "'static_peers' must be a list of HOST:PORT strings");
    if ((rc = lsd_check_host_port(json_string_value(p), diag)) != LS_OK)
      return rc;
  }
  if (has_name && name && (rc = lsd_check_name(name, diag)) != LS_OK)
    return rc;
  if (has_gui && gui && (rc = lsd_check_host_port(gui, diag)) != LS_OK)
    return rc;
  char *real_dir = NULL;
  if (has_dir) {
    lsd_dir_mode mode = json_is_true(create) ? LSD_DIR_CREATE : LSD_DIR_EXISTS;
    if ((rc = lsd_check_game_dir(dir, mode, diag)) != LS_OK)
      return rc;
    if (!(real_dir = realpath(dir, NULL)))
      return ls_diag_errno(diag, errno, "game directory", dir);
  }

  lsd_settings t;
  if (lsd_settings_copy(&t, s) != LS_OK) {
    free(real_dir);
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  }
  bool ok = true;
  if (has_dir) {
    free(t.game_dir);
    t.game_dir = real_dir;
  }
  if (has_name) {
    free(t.name);
    ok = dup_or_null(&t.name, name) == LS_OK;
  }
  if (has_gui) {
    free(t.gui);
    ok = ok && dup_or_null(&t.gui, gui) == LS_OK;
  }
  if (peers) {
    for (size_t k = 0; k < t.static_peer_count; k++)
      free(t.static_peers[k]);
    t.static_peer_count = 0;
    json_array_foreach(peers, i, p) {
      ok = ok && dup_or_null(&t.static_peers[i], json_string_value(p)) == LS_OK;
      t.static_peer_count = i + 1;
    }
  }
  if (!ok) {
    lsd_settings_free(&t);
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  }
  lsd_settings_free(s);
  *s = t;
  return LS_OK;
}

int lsd_settings_load(const char *path, lsd_settings *out, ls_diag *diag)
{
  memset(out, 0, sizeof *out);
  char *data;
  size_t len;
  int rc = ls_read_file_at(AT_FDCWD, path, MAX_CONFIG_BYTES, &data, &len, diag);
  if (rc == LS_ENOENT)
    return LS_OK;
  if (rc != LS_OK)
    return rc;
  json_error_t err;
  json_t *obj = json_loadb(data, len, JSON_REJECT_DUPLICATES, &err);
  free(data);
  if (!obj)
    return ls_diag_set(diag, LS_EFORMAT, "%s:%d:%d: %s", path, err.line, err.column, err.text);
  /* The stored game directory may be gone by now: keep it, the runtime
   * start says so and the page offers to choose another. */
  json_t *dir = json_object_get(obj, "game_dir");
  if (json_is_string(dir) && json_string_value(dir)[0] == '/') {
    out->game_dir = strdup(json_string_value(dir));
    json_object_del(obj, "game_dir");
  }
  rc = lsd_settings_update(out, obj, diag);
  json_decref(obj);
  if (rc != LS_OK) {
    char reason[LS_DIAG_MAX];
    snprintf(reason, sizeof reason, "%s", diag->text);
    lsd_settings_free(out);
    return ls_diag_set(diag, rc, "%s: %s", path, reason);
  }
  return LS_OK;
}

int lsd_settings_save(const char *path, const lsd_settings *s, ls_diag *diag)
{
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash && slash != dir) {
    *slash = '\0';
    int rc = ls_mkdir_p(dir, 1, diag);
    if (rc != LS_OK)
      return rc;
  }
  json_t *obj = lsd_settings_json(s);
  char *text = json_dumps(obj, JSON_INDENT(2) | JSON_SORT_KEYS);
  json_decref(obj);
  if (!text)
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  int rc = ls_write_file_atomic(path, text, strlen(text), 0600, diag);
  free(text);
  return rc;
}
