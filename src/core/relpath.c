/* Owns the relative-path rule of core/relpath.h: one walk over the
 * components of a path, shared by every variant of the rule. */
#include "core/relpath.h"

#include "core/error.h"
#include "core/utf8.h"

#include <stdbool.h>
#include <string.h>

typedef enum comp_kind { COMP_EMPTY, COMP_DOT, COMP_DOTDOT, COMP_NAME } comp_kind;

/* The components of a path, one after the other: "a//b/" is "a", "", "b",
 * "". */
typedef struct cursor {
  const char *path;
  size_t len, pos;
  bool done;
} cursor;

static comp_kind kind_of(const char *s, size_t n)
{
  if (n == 0)
    return COMP_EMPTY;
  if (n == 1 && s[0] == '.')
    return COMP_DOT;
  if (n == 2 && s[0] == '.' && s[1] == '.')
    return COMP_DOTDOT;
  return COMP_NAME;
}

/* The next component: its length and kind; false after the last one. */
static bool next_component(cursor *c, size_t *n, comp_kind *kind)
{
  if (c->done)
    return false;
  const char *start = c->path + c->pos;
  const char *slash = memchr(start, '/', c->len - c->pos);
  *n = slash ? (size_t)(slash - start) : c->len - c->pos;
  *kind = kind_of(start, *n);
  c->pos += *n + 1;
  c->done = !slash;
  return true;
}

/* Length, characters and encoding; *len gets strlen(path). */
static int check_text(const char *path, size_t *len, ls_diag *diag)
{
  size_t n = strnlen(path, LS_RELPATH_MAX_LEN + 1);
  if (n > LS_RELPATH_MAX_LEN)
    return ls_diag_set(diag, LS_ETOOBIG, "longer than %d bytes", LS_RELPATH_MAX_LEN);
  int rc = ls_utf8_check_displayable(path, n, "", LS_EFORMAT, diag);
  if (rc != LS_OK)
    return rc;
  const char *slash = memchr(path, '\\', n);
  if (slash)
    return ls_diag_set(diag, LS_EFORMAT, "backslash at byte %zu", (size_t)(slash - path));
  *len = n;
  return LS_OK;
}

/* A real component of n bytes that makes the path depth components deep. */
static int check_name(size_t n, size_t depth, ls_diag *diag)
{
  if (n > LS_RELPATH_MAX_NAME)
    return ls_diag_set(diag, LS_ETOOBIG, "component longer than %d bytes", LS_RELPATH_MAX_NAME);
  if (depth > LS_RELPATH_MAX_DEPTH)
    return ls_diag_set(diag, LS_ETOOBIG, "deeper than %d levels", LS_RELPATH_MAX_DEPTH);
  return LS_OK;
}

int ls_relpath_check_flags(const char *path, unsigned flags, size_t *depth, ls_diag *diag)
{
  if (depth)
    *depth = 0;
  if (!path)
    return ls_diag_set(diag, LS_EINVAL, "no path");
  size_t len = 0;
  int rc = check_text(path, &len, diag);
  if (rc != LS_OK)
    return rc;
  if (path[0] == '/')
    return ls_diag_set(diag, LS_EFORMAT, "absolute path");
  bool empty_ok = flags & LS_RELPATH_ALLOW_EMPTY;
  bool dot_ok = empty_ok || (flags & LS_RELPATH_ALLOW_DOT);
  if (len == 0 && !empty_ok)
    return ls_diag_set(diag, LS_EFORMAT, "empty path");
  cursor c = {.path = path, .len = len};
  size_t n = 0, names = 0;
  comp_kind kind;
  while (rc == LS_OK && next_component(&c, &n, &kind)) {
    if (kind == COMP_EMPTY && !empty_ok)
      rc = ls_diag_set(diag, LS_EFORMAT, "empty component");
    else if (kind == COMP_DOT && !dot_ok)
      rc = ls_diag_set(diag, LS_EFORMAT, "'.' component");
    else if (kind == COMP_DOTDOT)
      rc = ls_diag_set(diag, LS_EFORMAT, "'..' component");
    else if (kind == COMP_NAME)
      rc = check_name(n, ++names, diag);
  }
  if (rc == LS_OK && names == 0 && !empty_ok)
    rc = ls_diag_set(diag, LS_EFORMAT, "only '.' components");
  if (rc == LS_OK && depth)
    *depth = names;
  return rc;
}

int ls_relpath_check(const char *path, ls_diag *diag)
{
  return ls_relpath_check_flags(path, 0, NULL, diag);
}

int ls_relpath_check_link(const char *link_path, const char *target, ls_diag *diag)
{
  size_t link_depth = 0, len = 0;
  int rc = ls_relpath_check_flags(link_path, LS_RELPATH_ALLOW_EMPTY, &link_depth, diag);
  if (rc == LS_OK && !target)
    rc = ls_diag_set(diag, LS_EINVAL, "no target");
  if (rc == LS_OK)
    rc = check_text(target, &len, diag);
  if (rc != LS_OK)
    return rc;
  if (len == 0)
    return ls_diag_set(diag, LS_EFORMAT, "empty target");
  if (target[0] == '/')
    return ls_diag_set(diag, LS_EFORMAT, "absolute target");
  /* depth of the link's directory: the link itself is not one of its levels */
  size_t depth = link_depth > 0 ? link_depth - 1 : 0, n = 0;
  cursor c = {.path = target, .len = len};
  comp_kind kind;
  while (rc == LS_OK && next_component(&c, &n, &kind)) {
    if (kind == COMP_DOTDOT && depth == 0)
      rc = ls_diag_set(diag, LS_EFORMAT, "target outside the destination");
    else if (kind == COMP_DOTDOT)
      depth--;
    else if (kind == COMP_NAME)
      rc = check_name(n, ++depth, diag);
  }
  return rc;
}
