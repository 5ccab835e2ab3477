/* Owns the table of error messages and the diag helpers. */
#include "core/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* One row per code: its name and its description. */
static const struct {
  int code;
  const char *name, *text;
} errors[] = {
  {LS_OK, "LS_OK", "success"},
  {LS_ENOMEM, "LS_ENOMEM", "out of memory"},
  {LS_EINVAL, "LS_EINVAL", "invalid argument"},
  {LS_EIO, "LS_EIO", "input/output error"},
  {LS_ENOENT, "LS_ENOENT", "not found"},
  {LS_EFORMAT, "LS_EFORMAT", "malformed input"},
  {LS_EBUSY, "LS_EBUSY", "busy: an operation is already running"},
  {LS_ECANCELED, "LS_ECANCELED", "cancelled"},
  {LS_EPROTO, "LS_EPROTO", "protocol error"},
  {LS_ETOOBIG, "LS_ETOOBIG", "too big"},
  {LS_EUNSUPPORTED, "LS_EUNSUPPORTED", "not supported"},
  {LS_ETIMEDOUT, "LS_ETIMEDOUT", "timed out"},
  {LS_EEXIST, "LS_EEXIST", "already exists"},
  {LS_ENOSPC, "LS_ENOSPC", "no space left on device"},
  {LS_EACCES, "LS_EACCES", "permission denied"},
  {LS_ESTATE, "LS_ESTATE", "not allowed in the current state"},
  {LS_ECORRUPT, "LS_ECORRUPT", "data failed its SHA-256 check"},
  {LS_ENOPEER, "LS_ENOPEER", "no connected peer can supply it"},
  {LS_EPAUSED, "LS_EPAUSED", "paused: kept to be resumed"},
  {LS_ELIMIT, "LS_ELIMIT", "archive expands beyond its extraction limit"},
  {LS_EPIN, "LS_EPIN", "file list does not match the catalog's pin for its version"},
};
#define ERROR_COUNT (sizeof errors / sizeof errors[0])

const char *ls_strerror(int err)
{
  for (size_t i = 0; i < ERROR_COUNT; i++)
    if (errors[i].code == err)
      return errors[i].text;
  return "unknown error";
}

const char *ls_error_name(int err)
{
  for (size_t i = 0; i < ERROR_COUNT; i++)
    if (errors[i].code == err)
      return errors[i].name;
  return "LS_EUNKNOWN";
}

int ls_error_from_name(const char *name)
{
  for (size_t i = 0; name && i < ERROR_COUNT; i++)
    if (strcmp(errors[i].name, name) == 0)
      return errors[i].code;
  return LS_EINVAL;
}

int ls_diag_set(ls_diag *diag, int err, const char *fmt, ...)
{
  if (diag) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(diag->text, sizeof diag->text, fmt, ap);
    va_end(ap);
  }
  return err;
}

int ls_err_from_errno(int e)
{
  switch (e) {
  case 0: return LS_OK;
  case ENOMEM: return LS_ENOMEM;
  case ENOENT: case ENOTDIR: return LS_ENOENT;
  case ENOSPC: case EDQUOT: return LS_ENOSPC;
  case EACCES: case EPERM: case EROFS: return LS_EACCES;
  case EEXIST: case ENOTEMPTY: return LS_EEXIST;
  case EINVAL: return LS_EINVAL;
  case ECANCELED: return LS_ECANCELED;
  case ETIMEDOUT: return LS_ETIMEDOUT;
  default: return LS_EIO;
  }
}

int ls_diag_errno(ls_diag *diag, int e, const char *what, const char *path)
{
  return ls_diag_set(diag, ls_err_from_errno(e), "%s %s: %s", what, path, strerror(e));
}
