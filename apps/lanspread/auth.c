/* Owns who may drive the web UI (docs/API.md "Logging in"): the table of
 * server-side sessions, the one-time login token and STATE_DIR/login-url,
 * the UI password's hash in STATE_DIR/ui-password (PBKDF2-HMAC-SHA256, a
 * random salt, its iteration count in the file), the rule that a UI off
 * loopback needs a password, and the throttle of failed password attempts
 * per address. A new password file (written by
 * `lanspread --set-ui-password`, maybe while the daemon runs) is noticed
 * at the next check and ends every session. */
#include "auth.h"

#include "core/addr.h"
#include "core/fs.h"
#include "core/hex.h"

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
#define PASSWORD_MAX 1024
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
  char token[LSD_TOKEN_LEN + 1];
  char login_url[LOGIN_URL_MAX + LSD_TOKEN_LEN + 16];
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

/* Reads the password file again when it changed since the last read; a
 * change (a new, removed or unreadable file) ends every session. Called
 * with the lock held. A malformed file counts as no password. */
static void refresh_password(lsd_auth *a)
{
  char path[4096];
  path_in(a->state_dir, "ui-password", path, sizeof path);
  struct stat st = {0};
  if (stat(path, &st) != 0)
    memset(&st, 0, sizeof st);
  if (same_stamp(&st, &a->pw.stamp))
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

int lsd_auth_set_password(const char *state_dir, const char *password, ls_diag *diag)
{
  size_t n = strlen(password);
  if (n < 8 || n > PASSWORD_MAX)
    return ls_diag_set(diag, LS_EINVAL, "a UI password has 8 to %d bytes", PASSWORD_MAX);
  int rc = ls_mkdir_p(state_dir, 1, diag);
  if (rc != LS_OK)
    return rc;
  uint8_t salt[SALT_BYTES], hash[HASH_BYTES];
  if (getrandom(salt, sizeof salt, 0) != (ssize_t)sizeof salt)
    return ls_diag_errno(diag, errno, "cannot make a salt:", "getrandom");
  derive(password, KDF_ITERATIONS, salt, hash);
  char salt_hex[2 * SALT_BYTES + 1], hash_hex[2 * HASH_BYTES + 1], line[256], path[4096];
  ls_hex_encode(salt, sizeof salt, salt_hex);
  ls_hex_encode(hash, sizeof hash, hash_hex);
  int len = snprintf(line, sizeof line, "pbkdf2-sha256 %u %s %s\n", KDF_ITERATIONS, salt_hex,
                     hash_hex);
  path_in(state_dir, "ui-password", path, sizeof path);
  return ls_write_file_atomic(path, line, (size_t)len, 0600, diag);
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

/* A fresh token and its URL in STATE_DIR/login-url. Lock held (or not yet
 * shared). */
static int new_token(lsd_auth *a, ls_diag *diag)
{
  int rc = random_hex(a->token, LSD_TOKEN_LEN, diag);
  if (rc != LS_OK)
    return rc;
  int n = snprintf(a->login_url, sizeof a->login_url, "%slogin?token=%s", a->base_url, a->token);
  char path[4096];
  path_in(a->state_dir, "login-url", path, sizeof path);
  char line[sizeof a->login_url + 1];
  snprintf(line, sizeof line, "%s\n", a->login_url);
  return ls_write_file_atomic(path, line, (size_t)n + 1, 0600, diag);
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
  snprintf(out, size, "%s", a->login_url);
  pthread_mutex_unlock(&a->lock);
}

int lsd_auth_redeem(lsd_auth *a, const char *token, char sid[LSD_SESSION_ID_LEN + 1])
{
  pthread_mutex_lock(&a->lock);
  int rc = LS_EACCES;
  if (a->token[0] && lsd_equal_secret(a->token, token)) {
    ls_diag diag;
    a->token[0] = '\0'; /* spent, even if the next cannot be written */
    if (new_token(a, &diag) != LS_OK)
      fprintf(stderr, "lanspread: no new login URL: %s\n", diag.text);
    rc = open_session(a, sid);
  }
  pthread_mutex_unlock(&a->lock);
  return rc;
}

int lsd_auth_read_login_url(const char *state_dir, char **url, ls_diag *diag)
{
  char path[4096];
  path_in(state_dir, "login-url", path, sizeof path);
  size_t len;
  int rc = ls_read_file_at(AT_FDCWD, path, LOGIN_URL_MAX * 2, url, &len, diag);
  if (rc == LS_ENOENT)
    return ls_diag_set(diag, rc, "%s does not exist: is lanspread running with this state "
                                 "directory (--state-dir)?", path);
  if (rc == LS_OK && len > 0 && (*url)[len - 1] == '\n')
    (*url)[len - 1] = '\0';
  return rc;
}

/* ---- passwords ----------------------------------------------------------- */

static bool same_address(const struct sockaddr_storage *a, const struct sockaddr *b)
{
  if (a->ss_family != b->sa_family)
    return false;
  if (b->sa_family == AF_INET)
    return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
           ((const struct sockaddr_in *)b)->sin_addr.s_addr;
  if (b->sa_family == AF_INET6)
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
  return true;
}

/* from's entry (a free or the oldest one when it has none). */
static failures *failures_of(lsd_auth *a, const struct sockaddr *from, double now)
{
  failures *pick = &a->failed[0];
  for (size_t i = 0; i < LSD_THROTTLE_ADDRESSES; i++) {
    failures *f = &a->failed[i];
    if (f->from.ss_family && same_address(&f->from, from)) {
      if (now - f->since >= LSD_THROTTLE_SECONDS)
        f->count = 0, f->since = now;
      return f;
    }
    if (!f->from.ss_family || f->since < pick->since)
      pick = f;
  }
  memset(pick, 0, sizeof *pick);
  memcpy(&pick->from, from,
         from->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
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
  const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
  bool loopback = ss.ss_family == AF_INET && (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
  if (loopback || lsd_auth_has_password(a))
    return LS_OK;
  return ls_diag_set(diag, LS_EACCES,
                     "the UI address %s is not loopback: set a UI password first "
                     "(lanspread --set-ui-password), or use --gui 127.0.0.1:PORT", gui);
}

/* The KDF runs outside the lock (session checks go on meanwhile) but
 * under kdf_lock, one attempt at a time, which bounds what attempts cost.
 * An attempt counts as failed until it succeeds, so attempts at once from
 * one address cannot pass the throttle. */
int lsd_auth_password_login(lsd_auth *a, const struct sockaddr *from, const char *pass,
                            char sid[LSD_SESSION_ID_LEN + 1])
{
  pthread_mutex_lock(&a->lock);
  refresh_password(a);
  failures *f = failures_of(a, from, now_s());
  if (f->count >= LSD_THROTTLE_FREE) {
    pthread_mutex_unlock(&a->lock);
    return LS_EBUSY;
  }
  f->count++;
  pw_hash pw = a->pw;
  pthread_mutex_unlock(&a->lock);

  bool ok = false;
  if (pw.set && pass && strlen(pass) <= PASSWORD_MAX) {
    uint8_t hash[HASH_BYTES];
    pthread_mutex_lock(&a->kdf_lock);
    derive(pass, pw.iterations, pw.salt, hash);
    pthread_mutex_unlock(&a->kdf_lock);
    ok = memeql_sec(hash, pw.hash, HASH_BYTES);
  }

  pthread_mutex_lock(&a->lock);
  refresh_password(a);
  ok = ok && same_stamp(&pw.stamp, &a->pw.stamp); /* not changed meanwhile */
  int rc = ok ? open_session(a, sid) : LS_EACCES;
  if (ok) {
    f = failures_of(a, from, now_s());
    f->count -= f->count > 0;
  }
  pthread_mutex_unlock(&a->lock);
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
  if (a->base_url[0])
    unlink(path); /* its token dies with this daemon */
  pthread_mutex_destroy(&a->lock);
  pthread_mutex_destroy(&a->kdf_lock);
  free(a->state_dir);
  free(a);
}
