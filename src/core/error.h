/* Internal helpers to fill an ls_diag and map errno to LS_E* codes. */
#ifndef LS_CORE_ERROR_H
#define LS_CORE_ERROR_H

#include <lanspread/error.h>

/* Formats the diag (if not NULL) and returns err, so callers can write
 * `return ls_diag_set(diag, LS_EFORMAT, "...", ...);`. */
int ls_diag_set(ls_diag *diag, int err, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));

/* The LS_E* code closest to an errno value. */
int ls_err_from_errno(int e);

/* "WHAT PATH: strerror(e)" into the diag; returns ls_err_from_errno(e). */
int ls_diag_errno(ls_diag *diag, int e, const char *what, const char *path);

#endif
