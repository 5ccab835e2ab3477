/* Owns who may drive the web UI (docs/API.md "Logging in"): the table of
 * server-side sessions, the one-time login token in STATE_DIR/login-url
 * (the file is its one source, its mtime the time of issue, after which it
 * works for LSD_LOGIN_TTL_MS), the UI password's hash in
 * STATE_DIR/ui-password (PBKDF2-HMAC-SHA256, a random salt, its iteration
 * count in the file) and its change from the UI, the rules that a UI off
 * loopback needs a password and that a change comes from the page (CSRF),
 * and the throttle of failed password attempts per address. A new password
 * file (written by `lanspread --set-ui-password` or the UI, maybe while
 * the daemon runs) is noticed at the next check and ends every session
 * (but the one that changed it from the UI). STATE_DIR/login.html (0600)
 * is the page the browser is opened on, which goes on to the login
 * address: that address on a command line (xdg-open's, the browser's)
 * would be readable by every local user in /proc/PID/cmdline. */
#include "auth.h"

#include "core/addr.h"
#include "core/fs.h"
#include "core/hex.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <nettle/memops.h>
#include <nettle/pbkdf2.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KDF_ITERATIONS 600000u /* OWASP's figure for PBKDF2-HMAC-SHA256 (2023) */
#define SALT_BYTES 16
#define HASH_BYTES 32
#define LOGIN_URL_MAX 512

typedef struct session {
  char id[LSD_SESSION_ID_LEN + 1]; /* empty: a free entry */
  double expires;                   /* monotonic seconds */
} session;

typedef struct failures {
  struct sockaddr_storage from; /* ss_family 0: a free entry */
  unsigned count;               /* in the window that began at since */
  double since;
} failures;

typedef struct pw_hash {
  bool set;
  unsigned iterations;
  uint8_t salt[SALT_BYTES], hash[HASH_BYTES];
  struct stat stamp; /* of the file read; st_ino 0 when there was none */
} pw_hash;

struct lsd_auth {
  pthread_mutex_t lock;     /* everything below */
  pthread_mutex_t kdf_lock; /* one password check at a time */
  char *state_dir;
  char base_url[LOGIN_URL_MAX];
  char token[LSD_TOKEN_LEN + 1];      /* as STATE_DIR/login-url holds it; "" for none */
  char login_url[LOGIN_URL_MAX + LSD_TOKEN_LEN + 16];
  struct stat token_stamp;            /* of that file as last read or written */
  long long token_ttl_ms;
  pw_hash pw;
  session sessions[LSD_SESSIONS_MAX];
  failures failed[LSD_THROTTLE_ADDRESSES];
};

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static long long ms_of(const struct timespec *ts)
{
  return (long long)ts->tv_sec * 1000 + ts->tv_nsec / 1000000;
}

static int random_hex(char *out, size_t hex_len, ls_diag *diag)
{
  uint8_t raw[64];
  if (hex_len / 2 > sizeof raw || getrandom(raw, hex_len / 2, 0) != (ssize_t)(hex_len / 2))
    return ls_diag_errno(diag, errno, "cannot make a random secret:", "getrandom");
  ls_hex_encode(raw, hex_len / 2, out);
  out[hex_len] = '\0';
  return LS_OK;
}

bool lsd_equal_secret(const char *want, const char *got)
{
  size_t n = strlen(want);
  return got && strlen(got) == n && memeql_sec(want, got, n);
}

static void path_in(const char *state_dir, const char *name, char *out, size_t size)
{
  snprintf(out, size, "%s/%s", state_dir, name);
}

/* ---- the password file ------------------------------------------------- */

static void derive(const char *password, unsigned iterations, const uint8_t salt[SALT_BYTES],
                   uint8_t out[HASH_BYTES])
{
  pbkdf2_hmac_sha256(strlen(password), (const uint8_t *)password, iterations, SALT_BYTES, salt,
                     HASH_BYTES, out);
}

static bool hex_field(const char *text, size_t bytes, uint8_t *out)
{
  if (strlen(text) != bytes * 2 || !ls_hex_is_lower(text, bytes * 2))
    return false;
  for (size_t i = 0; i < bytes; i++)
    if (sscanf(text + 2 * i, "%2hhx", &out[i]) != 1)
      return false;
  return true;
}

/* "pbkdf2-sha256 ITERATIONS SALT HASH\n" (hex). */
static int parse_password(const char *text, pw_hash *pw)
{
  char salt[2 * SALT_BYTES + 2], hash[2 * HASH_BYTES + 2];
  unsigned iterations;
  if (sscanf(text, "pbkdf2-sha256 %u %33s %65s", &iterations, salt, hash) != 3 ||
      iterations < 1000 || !hex_field(salt, SALT_BYTES, pw->salt) ||
      !hex_field(hash, HASH_BYTES, pw->hash))
    return LS_EFORMAT;
  pw->iterations = iterations;
  pw->set = true;
  return LS_OK;
}

static bool same_stamp(const struct stat *a, const struct stat *b)
{
  return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
         a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* STATE_DIR/name's stamp now in *now (zeros when it is missing); true when
 * it is not *seen, i.e. the file must be read again. */
static bool state_file_changed(const lsd_auth *a, const char *name, const struct stat *seen,
                               char path[4096], struct stat *now)
{
  path_in(a->state_dir, name, path, 4096);
  if (stat(path, now) != 0)
    memset(now, 0, sizeof *now);
  return !same_stamp(now, seen);
}

/* Reads the password file again when it changed since the last read; a
 * change (a new, removed or unreadable file) ends every session. Called
 * with the lock held. A malformed file counts as no password. */
static void refresh_password(lsd_auth *a)
{
  char path[4096];
  struct stat st;
  if (!state_file_changed(a, "ui-password", &a->pw.stamp, path, &st))
    return;
  pw_hash pw = {.stamp = st};
  char *text = NULL;
  size_t len;
  ls_diag diag;
  if (st.st_ino && ls_read_file_at(AT_FDCWD, path, 4096, &text, &len, &diag) == LS_OK &&
      parse_password(text, &pw) != LS_OK)
    fprintf(stderr, "lanspread: %s is malformed: no UI password is set\n", path);
  free(text);
  a->pw = pw;
  memset(a->sessions, 0, sizeof a->sessions); /* none yet at the first read */
}

static int check_new_password(const char *password, ls_diag *diag)
{
  size_t n = strlen(password);
  if (n < LSD_PASSWORD_MIN || n > LSD_PASSWORD_MAX)
    return ls_diag_set(diag, LS_EINVAL, "a UI password has %d to %d bytes", LSD_PASSWORD_MIN,
                       LSD_PASSWORD_MAX);
  return LS_OK;
}

/* The password file's line for password: a fresh salt, then the KDF. */
static int hash_line(const char *password, char line[256], size_t *len, ls_diag *diag)
{
  int rc = check_new_password(password, diag);
  if (rc != LS_OK)
    return rc;
  uint8_t salt[SALT_BYTES], hash[HASH_BYTES];
  if (getrandom(salt, sizeof salt, 0) != (ssize_t)sizeof salt)
    return ls_diag_errno(diag, errno, "cannot make a salt:", "getrandom");
  derive(password, KDF_ITERATIONS, salt, hash);
  char salt_hex[2 * SALT_BYTES + 1], hash_hex[2 * HASH_BYTES + 1];
  ls_hex_encode(salt, sizeof salt, salt_hex);
  ls_hex_encode(hash, sizeof hash, hash_hex);
  *len = (size_t)snprintf(line, 256, "pbkdf2-sha256 %u %s %s\n", KDF_ITERATIONS, salt_hex,
                          hash_hex);
  return LS_OK;
}

int lsd_auth_set_password(const char *state_dir, const char *password, ls_diag *diag)
{
  char line[256], path[4096];
  size_t len = 0;
  int rc = hash_line(password, line, &len, diag);
  if (rc == LS_OK)
    rc = ls_state_dir_prepare(state_dir, NULL, diag);
  path_in(state_dir, "ui-password", path, sizeof path);
  return rc == LS_OK ? ls_write_file_atomic(path, line, len, 0600, diag) : rc;
}

/* ---- sessions ------------------------------------------------------------ */

/* Opens a session in a free or expired entry, else in place of the one
 * due to expire first. */
static int open_session(lsd_auth *a, char sid[LSD_SESSION_ID_LEN + 1])
{
  double now = now_s();
  session *pick = &a->sessions[0];
  for (size_t i = 0; i < LSD_SESSIONS_MAX; i++) {
    session *s = &a->sessions[i];
    if (!s->id[0] || s->expires <= now) {
      pick = s;
      break;
    }
    if (s->expires < pick->expires)
      pick = s;
  }
  ls_diag diag;
  int rc = random_hex(pick->id, LSD_SESSION_ID_LEN, &diag);
  if (rc != LS_OK)
    return rc;
  pick->expires = now + LSD_SESSION_SECONDS;
  memcpy(sid, pick->id, LSD_SESSION_ID_LEN + 1);
  return LS_OK;
}

/* The live session named sid, or NULL. Called with the lock held. */
static session *find_session(lsd_auth *a, const char *sid)
{
  refresh_password(a);
  if (!sid || strlen(sid) != LSD_SESSION_ID_LEN)
    return NULL;
  double now = now_s();
  session *found = NULL;
  for (size_t i = 0; i < LSD_SESSIONS_MAX; i++) { /* every entry: no early exit */
    session *s = &a->sessions[i];
    if (s->id[0] && memeql_sec(s->id, sid, LSD_SESSION_ID_LEN))
      found = s;
  }
  if (found && found->expires <= now) {
    memset(found, 0, sizeof *found);
    found = NULL;
  }
  return found;
}

bool lsd_auth_session_valid(lsd_auth *a, const char *sid)
{
  pthread_mutex_lock(&a->lock);
  bool ok = find_session(a, sid) != NULL;
  pthread_mutex_unlock(&a->lock);
  return ok;
}

void lsd_auth_logout(lsd_auth *a, const char *sid)
{
  pthread_mutex_lock(&a->lock);
  session *s = find_session(a, sid);
  if (s)
    memset(s, 0, sizeof *s);
  pthread_mutex_unlock(&a->lock);
}

/* ---- the one-time token -------------------------------------------------- */

/* STATE_DIR/login-url is the token's one source: the daemon writes it at
 * start and after each login, `lanspread --login-url` writes a fresh one
 * (lsd_auth_issue_login_url), and the file's modification time is when it
 * was issued. */

/* The token of a login URL ("BASE" "login?token=" 64 hex), or NULL; base
 * gets what comes before "login?token=". */
static const char *token_of(const char *url, char *base, size_t base_size)
{
  const char *t = strstr(url, "login?token=");
  if (!t || (size_t)(t - url) >= base_size)
    return NULL;
  snprintf(base, base_size, "%.*s", (int)(t - url), url);
  t += strlen("login?token=");
  return strlen(t) == LSD_TOKEN_LEN && ls_hex_is_lower(t, LSD_TOKEN_LEN) ? t : NULL;
}

/* Writes a fresh token for base to the login-url file of state_dir; url
 * gets its URL, st the file's stamp after. */
static int write_token(const char *state_dir, const char *base, char token[LSD_TOKEN_LEN + 1],
                       char *url, size_t url_size, struct stat *st, ls_diag *diag)
{
  int rc = random_hex(token, LSD_TOKEN_LEN, diag);
  if (rc != LS_OK)
    return rc;
  int n = snprintf(url, url_size, "%slogin?token=%s", base, token);
  char path[4096], line[LOGIN_URL_MAX + LSD_TOKEN_LEN + 32];
  path_in(state_dir, "login-url", path, sizeof path);
  snprintf(line, sizeof line, "%s\n", url);
  rc = ls_write_file_atomic(path, line, (size_t)n + 1, 0600, diag);
  if (rc == LS_OK && stat(path, st) != 0)
    rc = ls_diag_errno(diag, errno, "cannot stat", path);
  return rc;
}

/* A fresh token and its URL in STATE_DIR/login-url. Lock held (or not yet
 * shared). */
static int new_token(lsd_auth *a, ls_diag *diag)
{
  int rc = write_token(a->state_dir, a->base_url, a->token, a->login_url, sizeof a->login_url,
                       &a->token_stamp, diag);
  if (rc != LS_OK)
    a->token[0] = '\0';
  return rc;
}

/* Reads the token file again when it changed (--login-url wrote another).
 * Lock held. A missing or malformed file leaves no token. */
static void refresh_token(lsd_auth *a)
{
  char path[4096];
  struct stat st;
  if (!state_file_changed(a, "login-url", &a->token_stamp, path, &st))
    return;
  a->token_stamp = st;
  a->token[0] = '\0';
  char *text = NULL, base[LOGIN_URL_MAX];
  size_t len;
  ls_diag diag;
  if (!st.st_ino || ls_read_file_at(AT_FDCWD, path, LOGIN_URL_MAX * 2, &text, &len, &diag) != LS_OK)
    return;
  text[strcspn(text, "\n")] = '\0';
  const char *t = token_of(text, base, sizeof base);
  if (t) {
    snprintf(a->token, sizeof a->token, "%s", t);
    snprintf(a->login_url, sizeof a->login_url, "%s", text);
  }
  free(text);
}

static bool token_expired(const lsd_auth *a)
{
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return ms_of(&now) >= ms_of(&a->token_stamp.st_mtim) + a->token_ttl_ms;
}

void lsd_auth_set_login_ttl(lsd_auth *a, long long ms)
{
  pthread_mutex_lock(&a->lock);
  a->token_ttl_ms = ms;
  pthread_mutex_unlock(&a->lock);
}

int lsd_auth_begin(lsd_auth *a, const char *base_url, ls_diag *diag)
{
  pthread_mutex_lock(&a->lock);
  snprintf(a->base_url, sizeof a->base_url, "%s", base_url);
  int rc = new_token(a, diag);
  pthread_mutex_unlock(&a->lock);
  return rc;
}

void lsd_auth_login_url(lsd_auth *a, char *out, size_t size)
{
  pthread_mutex_lock(&a->lock);
  refresh_token(a);
  snprintf(out, size, "%s", a->token[0] ? a->login_url : "");
  pthread_mutex_unlock(&a->lock);
}

int lsd_auth_redeem(lsd_auth *a, const char *token, char sid[LSD_SESSION_ID_LEN + 1])
{
  pthread_mutex_lock(&a->lock);
  refresh_token(a);
  int rc = LS_EACCES;
  if (a->token[0] && lsd_equal_secret(a->token, token)) {
    rc = LS_ETIMEDOUT;
    if (!token_expired(a)) {
      ls_diag diag;
      a->token[0] = '\0'; /* spent, even if the next cannot be written */
      if (new_token(a, &diag) != LS_OK)
        fprintf(stderr, "lanspread: no new login URL: %s\n", diag.text);
      rc = open_session(a, sid);
    }
  }
  pthread_mutex_unlock(&a->lock);
  return rc;
}

/* "file://" and path, percent-encoded but for unreserved bytes and '/'. */
static void file_url_of(const char *path, char *out, size_t size)
{
  static const char keep[] = "-._~/";
  size_t n = (size_t)snprintf(out, size, "file://");
  for (const unsigned char *p = (const unsigned char *)path; *p && n + 4 < size; p++) {
    if ((*p < 0x80 && isalnum(*p)) || strchr(keep, *p))
      out[n++] = (char)*p;
    else
      n += (size_t)snprintf(out + n, size - n, "%%%02X", *p);
  }
  out[n] = '\0';
}

int lsd_auth_login_page(lsd_auth *a, char *file_url, size_t size, ls_diag *diag)
{
  char url[sizeof a->login_url], path[4096], *dir = realpath(a->state_dir, NULL);
  lsd_auth_login_url(a, url, sizeof url);
  if (!dir)
    return ls_diag_errno(diag, errno, "cannot resolve", a->state_dir);
  path_in(dir, LSD_LOGIN_PAGE, path, sizeof path);
  free(dir);
  if (!url[0])
    return ls_diag_set(diag, LS_ENOENT, "no login address");
  char *page = NULL; /* the URL is http://IPv4:PORT/login?token=HEX: nothing to escape */
  int n = asprintf(&page,
                   "<!DOCTYPE html>\n<meta charset=\"utf-8\">\n"
                   "<meta name=\"referrer\" content=\"no-referrer\">\n"
                   "<meta http-equiv=\"refresh\" content=\"0;url=%s\">\n<title>Lanspread</title>\n"
                   "<p><a href=\"%s\">Log in to Lanspread</a></p>\n",
                   url, url);
  if (n < 0)
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  int rc = ls_write_file_atomic(path, page, (size_t)n, 0600, diag);
  explicit_bzero(page, (size_t)n);
  free(page);
  if (rc == LS_OK)
    file_url_of(path, file_url, size);
  return rc;
}

int lsd_auth_issue_login_url(const char *state_dir, char **url, ls_diag *diag)
{
  char path[4096], base[LOGIN_URL_MAX], token[LSD_TOKEN_LEN + 1];
  path_in(state_dir, "login-url", path, sizeof path);
  char *text = NULL;
  size_t len;
  int rc = ls_read_file_at(AT_FDCWD, path, LOGIN_URL_MAX * 2, &text, &len, diag);
  if (rc == LS_ENOENT)
    return ls_diag_set(diag, rc, "%s does not exist: is lanspread running with this state "
                                 "directory (--state-dir)?", path);
  if (rc != LS_OK)
    return rc;
  text[strcspn(text, "\n")] = '\0';
  bool ok = token_of(text, base, sizeof base) != NULL;
  free(text);
  if (!ok)
    return ls_diag_set(diag, LS_EFORMAT, "%s does not hold a login address", path);
  /* The daemon reads the file this writes: another user's file (root's,
   * after a sudo without -u) would lock it out of its own logins. */
  struct stat dir;
  if (stat(state_dir, &dir) != 0)
    return ls_diag_errno(diag, errno, "cannot stat", state_dir);
  if (dir.st_uid != geteuid())
    return ls_diag_set(diag, LS_EACCES, "%s belongs to another user: run this as the user "
                                        "lanspread runs as (sudo -u USER)", state_dir);
  size_t size = LOGIN_URL_MAX + LSD_TOKEN_LEN + 16;
  struct stat st;
  if (!(*url = malloc(size)))
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  rc = write_token(state_dir, base, token, *url, size, &st, diag);
  if (rc != LS_OK) {
    free(*url);
    *url = NULL;
  }
  return rc;
}

/* ---- passwords ----------------------------------------------------------- */

/* The address the throttle counts an attempt of `from` against: every
 * loopback address (127.0.0.0/8) is this machine, so they count as one
 * (a local program would otherwise pick a fresh source address for each
 * guess and never be throttled). */
static struct sockaddr_storage throttled_address(const struct sockaddr *from)
{
  struct sockaddr_storage key = {0};
  memcpy(&key, from,
         from->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
  if (ls_addr_is_loopback4(from))
    ((struct sockaddr_in *)&key)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return key;
}

/* from's entry (a free or the oldest one when it has none). */
static failures *failures_of(lsd_auth *a, const struct sockaddr *peer, double now)
{
  struct sockaddr_storage key = throttled_address(peer);
  const struct sockaddr *from = (const struct sockaddr *)&key;
  failures *pick = &a->failed[0];
  for (size_t i = 0; i < LSD_THROTTLE_ADDRESSES; i++) {
    failures *f = &a->failed[i];
    if (f->from.ss_family && ls_addr_same_ip((const struct sockaddr *)&f->from, from)) {
      if (now - f->since >= LSD_THROTTLE_SECONDS)
        f->count = 0, f->since = now;
      return f;
    }
    if (!f->from.ss_family || f->since < pick->since)
      pick = f;
  }
  memset(pick, 0, sizeof *pick);
  pick->from = key;
  pick->since = now;
  return pick;
}

bool lsd_auth_has_password(lsd_auth *a)
{
  pthread_mutex_lock(&a->lock);
  refresh_password(a);
  bool set = a->pw.set;
  pthread_mutex_unlock(&a->lock);
  return set;
}

/* A UI reachable from other machines needs a password: a login address
 * alone would let whoever reads it over the LAN in. */
int lsd_auth_check_gui(lsd_auth *a, const char *gui, ls_diag *diag)
{
  struct sockaddr_storage ss;
  int rc = ls_parse_host_port(gui, &ss, diag);
  if (rc != LS_OK)
    return rc;
  if (lsd_gui_is_loopback(gui) || lsd_auth_has_password(a))
    return LS_OK;
  return ls_diag_set(diag, LS_EACCES,
                     "the UI address %s is not loopback: set a UI password first "
                     "(lanspread --set-ui-password), or use --gui 127.0.0.1:PORT", gui);
}

bool lsd_gui_is_loopback(const char *gui)
{
  struct sockaddr_storage ss;
  ls_diag diag;
  if (ls_parse_host_port(gui, &ss, &diag) != LS_OK)
    return false;
  return ls_addr_is_loopback4((const struct sockaddr *)&ss);
}

bool lsd_auth_csrf_ok(const char *method, const char *origin, const char *sec_fetch_site)
{
  bool safe = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
  bool named = origin && strcmp(origin, "null") != 0; /* "null" names no origin */
  return safe || named || (sec_fetch_site && strcmp(sec_fetch_site, "same-origin") == 0);
}

/* Checks pass against the password of *seen (read under the lock): LS_OK,
 * LS_EACCES (wrong, or none set), LS_EBUSY (from failed too often lately).
 * The KDF runs outside the lock (session checks go on meanwhile) but
 * under kdf_lock, one attempt at a time, which bounds what attempts cost.
 * An attempt counts as failed until it succeeds, so attempts at once from
 * one address cannot pass the throttle. */
static int check_password(lsd_auth *a, const struct sockaddr *from, const char *pass,
                          pw_hash *seen)
{
  pthread_mutex_lock(&a->lock);
  refresh_password(a);
  failures *f = failures_of(a, from, now_s());
  if (f->count >= LSD_THROTTLE_FREE) {
    pthread_mutex_unlock(&a->lock);
    return LS_EBUSY;
  }
  f->count++;
  *seen = a->pw;
  pthread_mutex_unlock(&a->lock);

  bool ok = false;
  if (seen->set && pass && strlen(pass) <= LSD_PASSWORD_MAX) {
    uint8_t hash[HASH_BYTES];
    pthread_mutex_lock(&a->kdf_lock);
    derive(pass, seen->iterations, seen->salt, hash);
    pthread_mutex_unlock(&a->kdf_lock);
    ok = memeql_sec(hash, seen->hash, HASH_BYTES);
  }
  if (ok) {
    pthread_mutex_lock(&a->lock);
    f = failures_of(a, from, now_s());
    f->count -= f->count > 0;
    pthread_mutex_unlock(&a->lock);
  }
  return ok ? LS_OK : LS_EACCES;
}

int lsd_auth_password_login(lsd_auth *a, const struct sockaddr *from, const char *pass,
                            char sid[LSD_SESSION_ID_LEN + 1])
{
  pw_hash pw;
  int rc = check_password(a, from, pass, &pw);
  if (rc != LS_OK)
    return rc;
  pthread_mutex_lock(&a->lock);
  refresh_password(a);
  /* not changed meanwhile */
  rc = same_stamp(&pw.stamp, &a->pw.stamp) ? open_session(a, sid) : LS_EACCES;
  pthread_mutex_unlock(&a->lock);
  return rc;
}

/* Writes line to STATE_DIR/ui-password (NULL: removes it), which ends every
 * session but keep_sid's. Lock held. */
static int replace_password(lsd_auth *a, const char *keep_sid, const char *line, size_t len,
                            ls_diag *diag)
{
  session *kept = find_session(a, keep_sid), copy = {0};
  if (kept)
    copy = *kept;
  char path[4096];
  path_in(a->state_dir, "ui-password", path, sizeof path);
  int rc = LS_OK;
  if (line)
    rc = ls_write_file_atomic(path, line, len, 0600, diag);
  else if (unlink(path) != 0 && errno != ENOENT)
    rc = ls_diag_errno(diag, errno, "cannot remove", path);
  refresh_password(a); /* a change: every session ends */
  if (copy.id[0] && !find_session(a, copy.id)) {
    session *free_entry = &a->sessions[0];
    for (size_t i = 0; i < LSD_SESSIONS_MAX && free_entry->id[0]; i++)
      free_entry = &a->sessions[i];
    *free_entry = copy;
  }
  return rc;
}

int lsd_auth_change_password(lsd_auth *a, const struct sockaddr *from, const char *keep_sid,
                             const char *current, const char *next, ls_diag *diag)
{
  char line[256];
  size_t len = 0;
  bool clear = !next || !*next;
  int rc = clear ? LS_OK : check_new_password(next, diag);
  if (rc != LS_OK)
    return rc;
  pw_hash pw = {0};
  if (lsd_auth_has_password(a)) {
    rc = check_password(a, from, current, &pw);
    if (rc == LS_EBUSY)
      return ls_diag_set(diag, rc, "too many wrong passwords: wait a minute");
    if (rc != LS_OK)
      return ls_diag_set(diag, rc, "the current password is wrong");
  }
  if (!clear) { /* the KDF, one at a time as for a check */
    pthread_mutex_lock(&a->kdf_lock);
    rc = hash_line(next, line, &len, diag);
    pthread_mutex_unlock(&a->kdf_lock);
    if (rc != LS_OK)
      return rc;
  }
  pthread_mutex_lock(&a->lock);
  refresh_password(a);
  if (pw.set && !same_stamp(&pw.stamp, &a->pw.stamp))
    rc = ls_diag_set(diag, LS_ESTATE, "the password changed meanwhile: try again");
  else
    rc = replace_password(a, keep_sid, clear ? NULL : line, len, diag);
  pthread_mutex_unlock(&a->lock);
  explicit_bzero(line, sizeof line);
  return rc;
}

/* ---- create and free ----------------------------------------------------- */

int lsd_auth_create(const char *state_dir, lsd_auth **out, ls_diag *diag)
{
  lsd_auth *a = calloc(1, sizeof *a);
  if (!a || !(a->state_dir = strdup(state_dir))) {
    free(a);
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  }
  pthread_mutex_init(&a->lock, NULL);
  pthread_mutex_init(&a->kdf_lock, NULL);
  a->token_ttl_ms = LSD_LOGIN_TTL_MS;
  refresh_password(a);
  *out = a;
  return LS_OK;
}

void lsd_auth_free(lsd_auth *a)
{
  if (!a)
    return;
  char path[4096];
  path_in(a->state_dir, "login-url", path, sizeof path);
  if (a->base_url[0]) { /* its token dies with this daemon */
    unlink(path);
    path_in(a->state_dir, LSD_LOGIN_PAGE, path, sizeof path);
    unlink(path);
  }
  pthread_mutex_destroy(&a->lock);
  pthread_mutex_destroy(&a->kdf_lock);
  free(a->state_dir);
  free(a);
}
