/* The one rule for a relative path inside a game root: what a peer may name
 * in the protocol, what a download may write, what the catalog may launch,
 * what an archive may extract and where its symlinks may point. Reserved
 * root-level names are not this rule's business: callers that care ask
 * library/layout.h about the first component.
 *
 * A path is '/'-separated, relative, of components that are neither empty,
 * "." nor ".."; it has no control character (bytes 0x00-0x1F, 0x7F) and no
 * backslash, is valid UTF-8 (core/utf8.h), and keeps the limits below.
 * Every failure returns a negative LS_E* code (LS_EFORMAT for the form,
 * LS_ETOOBIG for a limit, LS_EINVAL for a NULL path) with a short noun
 * phrase in the diag ("absolute path", "'..' component", "deeper than 64
 * levels"), for the caller to put behind its own context. */
#ifndef LS_CORE_RELPATH_H
#define LS_CORE_RELPATH_H

#include <lanspread/error.h>
#include <stddef.h>

/* Bytes of a path, without the NUL: the protocol's path limit (and Linux's
 * PATH_MAX), so whatever we accept can be named on the wire and opened. */
#define LS_RELPATH_MAX_LEN 4096
/* Bytes of one component: NAME_MAX of Linux file systems. */
#define LS_RELPATH_MAX_NAME 255
/* Components of a path. Real game trees stay well below 20 levels (engine
 * content trees, bundled runtimes); 64 leaves them ample room. The length
 * limit alone would let "a/a/a/..." reach 2048 levels, which no walk should
 * have to follow: this cap is also the directory walker's (core/walk.h), so
 * a walk holds at most 64 directories open. */
#define LS_RELPATH_MAX_DEPTH 64

enum ls_relpath_flags {
  /* "." components are allowed and not counted ("./run.sh": the catalog's
   * launch path). */
  LS_RELPATH_ALLOW_DOT = 1 << 0,
  /* Empty components too (repeated or trailing '/'), and a path of no
   * component at all ("", ".", "./"): archive entry names, where "dir/" is
   * a directory and "./" the archive's root. Implies LS_RELPATH_ALLOW_DOT. */
  LS_RELPATH_ALLOW_EMPTY = 1 << 1,
};

/* The strict rule: the protocol's, the download's, the scan's. */
int ls_relpath_check(const char *path, ls_diag *diag);

/* The rule relaxed by flags (ls_relpath_flags). *depth (may be NULL) gets
 * the number of real components (0 only with LS_RELPATH_ALLOW_EMPTY). */
int ls_relpath_check_flags(const char *path, unsigned flags, size_t *depth, ls_diag *diag);

/* A symlink target relative to the directory of link_path (an archive
 * entry name, checked with LS_RELPATH_ALLOW_EMPTY): not empty, not
 * absolute, the same characters and limits as a path; ".." components are
 * allowed as long as, resolved lexically from the link's directory, they
 * never climb above the tree's root ("target outside the destination") and
 * the target never goes deeper than LS_RELPATH_MAX_DEPTH. */
int ls_relpath_check_link(const char *link_path, const char *target, ls_diag *diag);

#endif
