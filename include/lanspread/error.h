/* Error codes of the Lanspread library.
 *
 * Every fallible function returns 0 (LS_OK) or one of these negative codes.
 * Functions that can say more (which file, which line, which errno) also
 * take an optional `ls_diag *` and fill its text. */
#ifndef LANSPREAD_ERROR_H
#define LANSPREAD_ERROR_H

enum {
  LS_OK = 0,
  LS_ENOMEM = -1,       /* out of memory */
  LS_EINVAL = -2,       /* invalid argument */
  LS_EIO = -3,          /* input/output error (the diag names file and errno) */
  LS_ENOENT = -4,       /* no such game, file or directory */
  LS_EFORMAT = -5,      /* malformed input: catalog, index, message */
  LS_EBUSY = -6,        /* an operation is already running on that game */
  LS_ECANCELED = -7,    /* cancelled */
  LS_EPROTO = -8,       /* protocol violation by a peer */
  LS_ETOOBIG = -9,      /* over a size limit */
  LS_EUNSUPPORTED = -10,/* not supported (format, platform) */
  LS_ETIMEDOUT = -11,   /* timed out */
  LS_EEXIST = -12,      /* already exists */
  LS_ENOSPC = -13,      /* no space left on device */
  LS_EACCES = -14,      /* permission denied */
  LS_ESTATE = -15,      /* not allowed in the current state */
  LS_ECORRUPT = -16,    /* data failed its SHA-256 check */
  LS_ENOPEER = -17,     /* no connected peer has it or can supply it */
  LS_EPAUSED = -18,     /* stopped and kept, to be resumed later */
  LS_ELIMIT = -19,      /* an archive goes past an extraction limit (size, ratio, entries) */
  LS_EPIN = -20,        /* a peer's file list is not the one the catalog pins for its version */
};

/* A human-readable description of an error code; never NULL. */
const char *ls_strerror(int err);
/* The code's name, "LS_ENOSPC" for LS_ENOSPC ("LS_OK" for 0): what events
 * and replies carry in their "code" field. "LS_EUNKNOWN" for other values. */
const char *ls_error_name(int err);
/* The code of a name ls_error_name returns; LS_EINVAL for any other text. */
int ls_error_from_name(const char *name);

/* Detail of a failure: what, where and why, in one sentence. */
#define LS_DIAG_MAX 512
typedef struct ls_diag {
  char text[LS_DIAG_MAX];
} ls_diag;

#endif
