/* Tests who may drive the daemon's web UI (apps/lanspread/auth.c): the UI
 * password's hash and its check (right, wrong, a tampered or malformed
 * file), its change from a session (the asking session stays, the others
 * end), the one-time login address (spent once, expired after its time
 * limit, replaced by lanspread --login-url's), the cap on sessions and
 * their revocation, the CSRF rule, the loopback rule and the throttle of
 * failed attempts per address. Real files in a temporary state directory,
 * the real KDF (each check costs about as long as a real login). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testrun.h"

#include "testutil.h"

#include "auth.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BASE "http://127.0.0.1:8360/"

static struct sockaddr_in address(const char *ip)
{
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(40000)};
  assert_int_equal(inet_pton(AF_INET, ip, &sin.sin_addr), 1);
  return sin;
}

static const struct sockaddr *sa(const struct sockaddr_in *sin)
{
  return (const struct sockaddr *)sin;
}

static lsd_auth *new_auth(const char *dir)
{
  lsd_auth *a = NULL;
  ls_diag diag;
  assert_int_equal(lsd_auth_create(dir, &a, &diag), LS_OK);
  return a;
}

static void sleep_ms(long ms)
{
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* The token of the login address the daemon keeps in DIR/login-url. */
static void current_token(lsd_auth *a, char token[LSD_TOKEN_LEN + 1])
{
  char url[1024];
  lsd_auth_login_url(a, url, sizeof url);
  const char *t = strstr(url, "login?token=");
  assert_non_null(t);
  snprintf(token, LSD_TOKEN_LEN + 1, "%s", t + strlen("login?token="));
  assert_int_equal(strlen(token), LSD_TOKEN_LEN);
}

static void login_with_token(lsd_auth *a, char sid[LSD_SESSION_ID_LEN + 1])
{
  char token[LSD_TOKEN_LEN + 1];
  current_token(a, token);
  assert_int_equal(lsd_auth_redeem(a, token, sid), LS_OK);
}

/* ---- the password -------------------------------------------------------- */

static void password_hash_is_checked_and_tampering_fails(void **state)
{
  (void)state;
  char *dir = t_tempdir();
  ls_diag diag;
  assert_int_equal(lsd_auth_set_password(dir, "short", &diag), LS_EINVAL);
  assert_int_equal(lsd_auth_set_password(dir, "correct horse", &diag), LS_OK);
  const char *file = t_path("%s/ui-password", dir);
  struct stat st;
  assert_int_equal(stat(file, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  size_t len;
  char *text = t_read(file, &len);
  assert_non_null(strstr(text, "pbkdf2-sha256 600000 "));
  assert_null(strstr(text, "correct horse"));

  lsd_auth *a = new_auth(dir);
  assert_true(lsd_auth_has_password(a));
  struct sockaddr_in from = address("10.0.0.1");
  char sid[LSD_SESSION_ID_LEN + 1];
  assert_int_equal(lsd_auth_password_login(a, sa(&from), "correct horse", sid), LS_OK);
  assert_true(lsd_auth_session_valid(a, sid));
  assert_int_equal(lsd_auth_password_login(a, sa(&from), "correct horsf", sid), LS_EACCES);
  assert_int_equal(lsd_auth_password_login(a, sa(&from), NULL, sid), LS_EACCES);

  /* One hex digit of the stored hash changed: the right password fails. */
  char *last = text + len - 2;
  *last = *last == '0' ? '1' : '0';
  t_write(dir, "ui-password", text);
  assert_int_equal(lsd_auth_password_login(a, sa(&from), "correct horse", sid), LS_EACCES);
  /* A malformed file is no password. */
  t_write(dir, "ui-password", "pbkdf2-sha256 12 zz zz\n");
  assert_false(lsd_auth_has_password(a));
  free(text);
  lsd_auth_free(a);
}

static void a_password_change_keeps_only_the_asking_session(void **state)
{
  (void)state;
  char *dir = t_tempdir();
  lsd_auth *a = new_auth(dir);
  ls_diag diag;
  assert_int_equal(lsd_auth_begin(a, BASE, &diag), LS_OK);
  char mine[LSD_SESSION_ID_LEN + 1], other[LSD_SESSION_ID_LEN + 1];
  login_with_token(a, mine);
  login_with_token(a, other);
  struct sockaddr_in from = address("127.0.0.1");

  /* None set yet: no current password is asked for. */
  assert_int_equal(lsd_auth_change_password(a, sa(&from), mine, NULL, "tiny", &diag), LS_EINVAL);
  assert_true(lsd_auth_session_valid(a, other));
  assert_int_equal(lsd_auth_change_password(a, sa(&from), mine, NULL, "first password", &diag),
                   LS_OK);
  assert_true(lsd_auth_has_password(a));
  assert_true(lsd_auth_session_valid(a, mine));
  assert_false(lsd_auth_session_valid(a, other));

  /* Now the current one is needed. */
  assert_int_equal(lsd_auth_change_password(a, sa(&from), mine, "wrong password", "second one",
                                            &diag), LS_EACCES);
  assert_non_null(strstr(diag.text, "current password is wrong"));
  assert_int_equal(lsd_auth_change_password(a, sa(&from), mine, NULL, "second one", &diag),
                   LS_EACCES);
  char sid[LSD_SESSION_ID_LEN + 1];
  assert_int_equal(lsd_auth_password_login(a, sa(&from), "first password", sid), LS_OK);
  assert_int_equal(lsd_auth_change_password(a, sa(&from), mine, "first password", "second one",
                                            &diag), LS_OK);
  assert_true(lsd_auth_session_valid(a, mine));
  assert_false(lsd_auth_session_valid(a, sid));
  assert_int_equal(lsd_auth_password_login(a, sa(&from), "first password", sid), LS_EACCES);
  assert_int_equal(lsd_auth_password_login(a, sa(&from), "second one", sid), LS_OK);

  /* Removed: no password, and no file. */
  assert_int_equal(lsd_auth_change_password(a, sa(&from), NULL, "second one", "", &diag), LS_OK);
  assert_false(lsd_auth_has_password(a));
  assert_false(t_exists(t_path("%s/ui-password", dir)));
  assert_false(lsd_auth_session_valid(a, mine));
  lsd_auth_free(a);
}

/* ---- the throttle -------------------------------------------------------- */

static void failed_attempts_are_throttled_per_address(void **state)
{
  (void)state;
  char *dir = t_tempdir();
  lsd_auth *a = new_auth(dir);
  char sid[LSD_SESSION_ID_LEN + 1];
  struct sockaddr_in x = address("192.168.1.9"), y = address("192.168.1.10");
  /* Without a password every attempt fails, and counts. */
  for (int i = 0; i < LSD_THROTTLE_FREE; i++)
    assert_int_equal(lsd_auth_password_login(a, sa(&x), "anything", sid), LS_EACCES);
  assert_int_equal(lsd_auth_password_login(a, sa(&x), "anything", sid), LS_EBUSY);
  assert_int_equal(lsd_auth_password_login(a, sa(&y), "anything", sid), LS_EACCES);

  /* A wrong current password counts too: x is throttled even for the
   * right one, y is not. */
  ls_diag diag;
  assert_int_equal(lsd_auth_set_password(dir, "the password", &diag), LS_OK);
  assert_int_equal(lsd_auth_change_password(a, sa(&x), NULL, "the password", "another one",
                                            &diag), LS_EBUSY);
  assert_int_equal(lsd_auth_password_login(a, sa(&x), "the password", sid), LS_EBUSY);
  assert_int_equal(lsd_auth_password_login(a, sa(&y), "the password", sid), LS_OK);

  /* The table is bounded: after LSD_THROTTLE_ADDRESSES others, x is
   * forgotten (the oldest goes first). */
  assert_int_equal(lsd_auth_change_password(a, sa(&y), NULL, "the password", "", &diag), LS_OK);
  for (int i = 0; i < LSD_THROTTLE_ADDRESSES; i++) {
    char ip[32];
    snprintf(ip, sizeof ip, "10.1.%d.%d", i / 250, i % 250 + 1);
    struct sockaddr_in o = address(ip);
    assert_int_equal(lsd_auth_password_login(a, sa(&o), "anything", sid), LS_EACCES);
  }
  assert_int_equal(lsd_auth_password_login(a, sa(&x), "anything", sid), LS_EACCES);
  lsd_auth_free(a);
}

/* Every loopback address is this machine: a local program that picks a
 * fresh source address of 127.0.0.0/8 for each guess is throttled as one. */
static void loopback_addresses_are_throttled_as_one(void **state)
{
  (void)state;
  char *dir = t_tempdir();
  lsd_auth *a = new_auth(dir);
  char sid[LSD_SESSION_ID_LEN + 1];
  for (int i = 0; i < LSD_THROTTLE_FREE; i++) {
    char ip[32];
    snprintf(ip, sizeof ip, "127.0.%d.%d", i, i + 1);
    struct sockaddr_in o = address(ip);
    assert_int_equal(lsd_auth_password_login(a, sa(&o), "anything", sid), LS_EACCES);
  }
  struct sockaddr_in fresh = address("127.200.1.2"), home = address("127.0.0.1"),
                     lan = address("192.168.1.9");
  assert_int_equal(lsd_auth_password_login(a, sa(&fresh), "anything", sid), LS_EBUSY);
  assert_int_equal(lsd_auth_password_login(a, sa(&home), "anything", sid), LS_EBUSY);
  assert_int_equal(lsd_auth_password_login(a, sa(&lan), "anything", sid), LS_EACCES);
  lsd_auth_free(a);
}

/* ---- the one-time login address ------------------------------------------ */

static void a_login_address_works_once_and_expires(void **state)
{
  (void)state;
  char *dir = t_tempdir();
  lsd_auth *a = new_auth(dir);
  ls_diag diag;
  lsd_auth_set_login_ttl(a, 400);
  assert_int_equal(lsd_auth_begin(a, BASE, &diag), LS_OK);
  struct stat st;
  assert_int_equal(stat(t_path("%s/login-url", dir), &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);

  char token[LSD_TOKEN_LEN + 1], sid[LSD_SESSION_ID_LEN + 1];
  current_token(a, token);
  assert_int_equal(lsd_auth_redeem(a, "0123", sid), LS_EACCES);
  assert_int_equal(lsd_auth_redeem(a, NULL, sid), LS_EACCES);
  assert_int_equal(lsd_auth_redeem(a, token, sid), LS_OK);
  assert_true(lsd_auth_session_valid(a, sid));
  assert_int_equal(lsd_auth_redeem(a, token, sid), LS_EACCES); /* spent */

  current_token(a, token);
  sleep_ms(600);
  assert_int_equal(lsd_auth_redeem(a, token, sid), LS_ETIMEDOUT);

  /* lanspread --login-url: a fresh address, the old one dead. */
  char *url = NULL;
  assert_int_equal(lsd_auth_issue_login_url(dir, &url, &diag), LS_OK);
  assert_true(strncmp(url, BASE "login?token=", strlen(BASE) + 12) == 0);
  char fresh[LSD_TOKEN_LEN + 1];
  current_token(a, fresh);
  assert_string_equal(fresh, url + strlen(BASE) + 12);
  assert_string_not_equal(fresh, token);
  assert_int_equal(lsd_auth_redeem(a, token, sid), LS_EACCES);
  assert_int_equal(lsd_auth_redeem(a, fresh, sid), LS_OK);
  free(url);
  /* Not as another user than the daemon's: it could not read the file. */
  if (geteuid() == 0) {
    assert_int_equal(chown(dir, 65534, 65534), 0);
    assert_int_equal(lsd_auth_issue_login_url(dir, &url, &diag), LS_EACCES);
    assert_non_null(strstr(diag.text, "sudo -u"));
    assert_int_equal(chown(dir, 0, 0), 0);
  }
  lsd_auth_free(a);
  assert_false(t_exists(t_path("%s/login-url", dir)));
  assert_int_equal(lsd_auth_issue_login_url(dir, &url, &diag), LS_ENOENT);
  assert_non_null(strstr(diag.text, "is lanspread running"));
}

/* ---- sessions ------------------------------------------------------------ */

static void sessions_are_capped_and_revoked(void **state)
{
  (void)state;
  char *dir = t_tempdir();
  lsd_auth *a = new_auth(dir);
  ls_diag diag;
  assert_int_equal(lsd_auth_begin(a, BASE, &diag), LS_OK);
  static char sids[LSD_SESSIONS_MAX + 1][LSD_SESSION_ID_LEN + 1];
  for (int i = 0; i <= LSD_SESSIONS_MAX; i++)
    login_with_token(a, sids[i]);
  /* One more than the cap: the oldest went. */
  assert_false(lsd_auth_session_valid(a, sids[0]));
  for (int i = 1; i <= LSD_SESSIONS_MAX; i++)
    assert_true(lsd_auth_session_valid(a, sids[i]));
  assert_false(lsd_auth_session_valid(a, NULL));
  assert_false(lsd_auth_session_valid(a, ""));
  char forged[LSD_SESSION_ID_LEN + 1];
  memcpy(forged, sids[1], sizeof forged);
  forged[0] = forged[0] == 'a' ? 'b' : 'a';
  assert_false(lsd_auth_session_valid(a, forged));

  lsd_auth_logout(a, sids[1]);
  assert_false(lsd_auth_session_valid(a, sids[1]));
  assert_true(lsd_auth_session_valid(a, sids[2]));

  /* A new password (lanspread --set-ui-password, while the daemon runs)
   * ends every session. */
  assert_int_equal(lsd_auth_set_password(dir, "set from the CLI", &diag), LS_OK);
  for (int i = 2; i <= LSD_SESSIONS_MAX; i++)
    assert_false(lsd_auth_session_valid(a, sids[i]));
  lsd_auth_free(a);
}

/* ---- request rules ------------------------------------------------------- */

static void csrf_rule_wants_the_pages_origin(void **state)
{
  (void)state;
  assert_true(lsd_auth_csrf_ok("GET", NULL, NULL));
  assert_true(lsd_auth_csrf_ok("HEAD", NULL, "cross-site"));
  assert_false(lsd_auth_csrf_ok("POST", NULL, NULL));
  assert_false(lsd_auth_csrf_ok("PUT", NULL, "cross-site"));
  assert_false(lsd_auth_csrf_ok("DELETE", NULL, "same-site"));
  assert_false(lsd_auth_csrf_ok("POST", NULL, "none"));
  assert_true(lsd_auth_csrf_ok("POST", NULL, "same-origin"));
  assert_true(lsd_auth_csrf_ok("PUT", "http://127.0.0.1:8360", NULL));
  /* A form posted under Referrer-Policy: no-referrer: Origin "null". */
  assert_false(lsd_auth_csrf_ok("POST", "null", NULL));
  assert_false(lsd_auth_csrf_ok("POST", "null", "cross-site"));
  assert_true(lsd_auth_csrf_ok("POST", "null", "same-origin"));
}

static void only_loopback_goes_without_a_password(void **state)
{
  (void)state;
  assert_true(lsd_gui_is_loopback("127.0.0.1:8360"));
  assert_true(lsd_gui_is_loopback("127.3.4.5:0"));
  assert_false(lsd_gui_is_loopback("0.0.0.0:8360"));
  assert_false(lsd_gui_is_loopback("192.168.1.2:8360"));
  assert_false(lsd_gui_is_loopback("nonsense"));
  char *dir = t_tempdir();
  lsd_auth *a = new_auth(dir);
  ls_diag diag;
  assert_int_equal(lsd_auth_check_gui(a, "127.0.0.1:8360", &diag), LS_OK);
  assert_int_equal(lsd_auth_check_gui(a, "0.0.0.0:8360", &diag), LS_EACCES);
  assert_non_null(strstr(diag.text, "set a UI password first"));
  assert_int_equal(lsd_auth_set_password(dir, "for the LAN", &diag), LS_OK);
  assert_int_equal(lsd_auth_check_gui(a, "0.0.0.0:8360", &diag), LS_OK);
  lsd_auth_free(a);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(password_hash_is_checked_and_tampering_fails),
    cmocka_unit_test(a_password_change_keeps_only_the_asking_session),
    cmocka_unit_test(failed_attempts_are_throttled_per_address),
    cmocka_unit_test(loopback_addresses_are_throttled_as_one),
    cmocka_unit_test(a_login_address_works_once_and_expires),
    cmocka_unit_test(sessions_are_capped_and_revoked),
    cmocka_unit_test(csrf_rule_wants_the_pages_origin),
    cmocka_unit_test(only_loopback_goes_without_a_password),
  };
  return ls_run_tests(tests, NULL, NULL);
}
