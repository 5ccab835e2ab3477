/* Who may drive the web UI (docs/API.md "Logging in"): server-side
 * sessions, the one-time login token and its file (15 minutes from issue),
 * the UI password (a PBKDF2 hash in the state directory) and its change,
 * the rules that a UI off loopback needs it and that a change comes from
 * the page (CSRF), and the throttle of failed password attempts.
 * Thread-safe: every call takes the one lock. */
#ifndef LSD_AUTH_H
#define LSD_AUTH_H

#include "core/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define LSD_SESSION_ID_LEN 64 /* hex of 256 random bits */
#define LSD_TOKEN_LEN 64
#define LSD_SESSIONS_MAX 64
#define LSD_SESSION_SECONDS (7 * 24 * 3600)
#define LSD_LOGIN_TTL_MS (15 * 60 * 1000) /* a login address works this long after issue */
#define LSD_PASSWORD_MIN 8
#define LSD_PASSWORD_MAX 1024
#define LSD_COOKIE "lanspread_session"
/* Failed password attempts: this many per address (all of 127.0.0.0/8
 * being one), then one more each LSD_THROTTLE_SECONDS; the addresses
 * remembered are bounded. */
#define LSD_THROTTLE_FREE 5
#define LSD_THROTTLE_SECONDS 60
#define LSD_THROTTLE_ADDRESSES 256

typedef struct lsd_auth lsd_auth;

int lsd_auth_create(const char *state_dir, lsd_auth **out, ls_diag *diag);
void lsd_auth_free(lsd_auth *auth);

/* Makes a fresh one-time token for base_url ("http://HOST:PORT/") and
 * writes its login URL to STATE_DIR/login-url (0600). */
int lsd_auth_begin(lsd_auth *auth, const char *base_url, ls_diag *diag);
/* Copies the current login URL (a browser may spend it and make the next
 * meanwhile, so it is a copy); "" when there is none. */
void lsd_auth_login_url(lsd_auth *auth, char *out, size_t size);
/* Writes STATE_DIR/login.html (0600), a page that goes on to the current
 * login URL, and gives its file:// URL: what the browser is opened on
 * (a command line is readable by every local user, a 0600 file is not). */
#define LSD_LOGIN_PAGE "login.html"
int lsd_auth_login_page(lsd_auth *auth, char *file_url, size_t size, ls_diag *diag);
/* How long a login address works after it was issued (LSD_LOGIN_TTL_MS
 * unless a test says otherwise). */
void lsd_auth_set_login_ttl(lsd_auth *auth, long long ms);

/* Spends the token when it matches and is not older than its time limit
 * (a new one replaces it) and opens a session: sid gets its id. LS_EACCES
 * when it does not match, LS_ETIMEDOUT when it has expired. */
int lsd_auth_redeem(lsd_auth *auth, const char *token, char sid[LSD_SESSION_ID_LEN + 1]);
/* A session for the right password. LS_EACCES for a wrong one (or none
 * set), LS_EBUSY when `from` failed too often lately. */
int lsd_auth_password_login(lsd_auth *auth, const struct sockaddr *from, const char *password,
                            char sid[LSD_SESSION_ID_LEN + 1]);
bool lsd_auth_has_password(lsd_auth *auth);
/* Sets the UI password to next (NULL or "": removes it) for a session or a
 * local program. When one is set, current must be it: a wrong one counts
 * as a failed attempt of `from` (LS_EACCES, or LS_EBUSY while throttled);
 * LS_ESTATE when the password file changed meanwhile.
 * Every session ends but keep_sid's (NULL: none is kept). The caller
 * decides whether a UI may be without a password (lsd_gui_is_loopback). */
int lsd_auth_change_password(lsd_auth *auth, const struct sockaddr *from, const char *keep_sid,
                             const char *current, const char *next, ls_diag *diag);
/* "HOST:PORT" is an IPv4 loopback address (127.0.0.0/8). */
bool lsd_gui_is_loopback(const char *gui);
/* The CSRF rule of docs/API.md "Security": a request that changes state
 * (not GET or HEAD) with a session comes from the page itself: it has an
 * Origin (which passed the Host rule before; "null", which a browser sends
 * for a form posted under Referrer-Policy: no-referrer, names none) or
 * Sec-Fetch-Site: same-origin. Either header may be NULL. */
bool lsd_auth_csrf_ok(const char *method, const char *origin, const char *sec_fetch_site);
/* A UI on gui ("HOST:PORT") may serve: loopback, or a password is set.
 * LS_EACCES with the reason otherwise. */
int lsd_auth_check_gui(lsd_auth *auth, const char *gui, ls_diag *diag);
/* sid names a live session (an expired one is dropped). */
bool lsd_auth_session_valid(lsd_auth *auth, const char *sid);
void lsd_auth_logout(lsd_auth *auth, const char *sid);

/* For the command line (no daemon needed). Stores the hash of password
 * in STATE_DIR/ui-password (0600); a running daemon sees the new file at
 * its next check and ends every session. */
int lsd_auth_set_password(const char *state_dir, const char *password, ls_diag *diag);
/* For `lanspread --login-url`: a fresh login address of the daemon running
 * with state_dir (malloc'ed), written to its STATE_DIR/login-url, where the
 * daemon takes it from; the one there before no longer works. */
int lsd_auth_issue_login_url(const char *state_dir, char **url, ls_diag *diag);

/* Equal in time that depends only on the lengths. */
bool lsd_equal_secret(const char *want, const char *got);

#endif
