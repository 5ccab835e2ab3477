/* Owns the table of error messages and the diag helpers. */
#include "core/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *ls_strerror(int err)
{
  switch (err) {
  case LS_OK: return "success";
  case LS_ENOMEM: return "out of memory";
  case LS_EINVAL: return "invalid argument";
  case LS_EIO: return "input/output error";
  case LS_ENOENT: return "not found";
  case LS_EFORMAT: return "malformed input";
  case LS_EBUSY: return "busy: an operation is already running";
  case LS_ECANCELED: return "cancelled";
  case LS_EPROTO: return "protocol error";
  case LS_ETOOBIG: return "too big";
  case LS_EUNSUPPORTED: return "not supported";
  case LS_ETIMEDOUT: return "timed out";
  case LS_EEXIST: return "already exists";
  case LS_ENOSPC: return "no space left on device";
  case LS_EACCES: return "permission denied";
  case LS_ESTATE: return "not allowed in the current state";
  default: return "unknown error";
  }
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
