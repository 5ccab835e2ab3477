/* Tests the party key's rule and fingerprint (lanspread/peer.h, on
 * src/node/party.c) and the daemon's party key setting
 * (apps/lanspread/partykey.c): the value a PUT may send, the file it is
 * kept in (0600, removed to clear), what the API shows of it, and
 * --party-key-file fixing it. The fingerprint is checked against a value
 * computed outside the program (Python's hashlib), so it stays the same
 * across versions: people compare it between machines. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testrun.h"

#include "testutil.h"

#include "partykey.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define KEY "the party of 3 December 2026"
#define KEY_FINGERPRINT "991e370a" /* sha256("...fingerprint v1\0" || sha256("...key v1\0" || KEY))[:4] */

static void fingerprint_follows_the_key_file_rule(void **state)
{
  (void)state;
  char fp[LS_PEER_PARTY_FINGERPRINT_LEN + 1], again[LS_PEER_PARTY_FINGERPRINT_LEN + 1];
  ls_diag diag;
  assert_int_equal(ls_party_key_check(KEY, strlen(KEY), fp, &diag), LS_OK);
  assert_string_equal(fp, KEY_FINGERPRINT);
  const char *padded = " \t" KEY "\r\n\n";
  assert_int_equal(ls_party_key_check(padded, strlen(padded), again, &diag), LS_OK);
  assert_string_equal(again, fp);
  assert_int_equal(ls_party_key_check("another key, 16+", 16, again, &diag), LS_OK);
  assert_string_not_equal(again, fp);
  assert_int_equal(ls_party_key_check("  fifteen chars  ", 17, again, &diag), LS_EINVAL);
  assert_non_null(strstr(diag.text, "at least 16 characters (it has 13)"));

  char *dir = t_tempdir();
  t_write(dir, "key", "\n  " KEY "  \n");
  assert_int_equal(ls_party_key_file_fingerprint(t_path("%s/key", dir), again, &diag), LS_OK);
  assert_string_equal(again, fp);
  t_write(dir, "short", "0123456789abcde\n");
  assert_int_equal(ls_party_key_file_fingerprint(t_path("%s/short", dir), again, &diag),
                   LS_EINVAL);
  assert_non_null(strstr(diag.text, "party key file"));
}

static void check(json_t *value, int want, const char *words)
{
  const char *secret;
  char fp[LS_PEER_PARTY_FINGERPRINT_LEN + 1];
  ls_diag diag = {{0}};
  assert_int_equal(lsd_party_check(value, &secret, fp, &diag), want);
  if (words)
    assert_non_null(strstr(diag.text, words));
  json_decref(value);
}

static void the_setting_refuses_bad_values(void **state)
{
  (void)state;
  check(json_string("short"), LS_EINVAL, "at least 16");
  check(json_integer(12345678901234567), LS_EINVAL, "must be a string");
  check(json_stringn("sixteen chars ok\0and more", 25), LS_EINVAL, "NUL");
  char big[LSD_PARTY_KEY_MAX + 2];
  memset(big, 'k', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  check(json_string(big), LS_EINVAL, "at most 1024");
  big[LSD_PARTY_KEY_MAX] = '\0';
  check(json_string(big), LS_OK, NULL);

  const char *secret = "x";
  char fp[LS_PEER_PARTY_FINGERPRINT_LEN + 1];
  ls_diag diag;
  json_t *v = json_string("");
  assert_int_equal(lsd_party_check(v, &secret, fp, &diag), LS_OK);
  assert_null(secret); /* "" clears */
  assert_string_equal(fp, "");
  json_decref(v);
  v = json_null();
  assert_int_equal(lsd_party_check(v, &secret, fp, &diag), LS_OK);
  assert_null(secret);
  json_decref(v);
}

static void the_setting_is_a_private_file(void **state)
{
  (void)state;
  char *dir = t_tempdir();
  lsd_party p;
  lsd_party_init(&p, dir, NULL);
  assert_false(p.fixed);
  assert_string_equal(p.file, "");
  assert_false(lsd_party_changes(&p, ""));
  assert_true(lsd_party_changes(&p, KEY_FINGERPRINT));
  ls_diag diag;
  assert_int_equal(lsd_party_store(&p, dir, KEY, KEY_FINGERPRINT, &diag), LS_OK);
  const char *file = t_path("%s/party-key", dir);
  struct stat st;
  assert_int_equal(stat(file, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_false(lsd_party_changes(&p, KEY_FINGERPRINT));
  assert_true(lsd_party_changes(&p, ""));
  json_t *j = lsd_party_json(&p);
  char *text = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
  assert_string_equal(text, "{\"fingerprint\":\"" KEY_FINGERPRINT "\",\"fixed\":false,\"set\":true}");
  free(text);
  json_decref(j);

  /* The next start finds it. */
  lsd_party back;
  lsd_party_init(&back, dir, NULL);
  assert_string_equal(back.file, file);
  assert_string_equal(back.fingerprint, KEY_FINGERPRINT);

  assert_int_equal(lsd_party_store(&p, dir, NULL, "", &diag), LS_OK);
  assert_false(t_exists(file));
  j = lsd_party_json(&p);
  text = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
  assert_string_equal(text, "{\"fingerprint\":null,\"fixed\":false,\"set\":false}");
  free(text);
  json_decref(j);
}

static void the_command_line_fixes_it(void **state)
{
  (void)state;
  char *dir = t_tempdir();
  t_write(dir, "given.key", KEY "\n");
  t_write(dir, "party-key", "a key set in the UI earlier\n");
  lsd_party p;
  lsd_party_init(&p, dir, t_path("%s/given.key", dir));
  assert_true(p.fixed);
  assert_string_equal(p.file, t_path("%s/given.key", dir));
  assert_string_equal(p.fingerprint, KEY_FINGERPRINT);
  /* An unreadable file: no fingerprint (the runtime's start says why). */
  lsd_party_init(&p, dir, t_path("%s/missing.key", dir));
  assert_true(p.fixed);
  assert_string_equal(p.fingerprint, "");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(fingerprint_follows_the_key_file_rule),
    cmocka_unit_test(the_setting_refuses_bad_values),
    cmocka_unit_test(the_setting_is_a_private_file),
    cmocka_unit_test(the_command_line_fixes_it),
  };
  return ls_run_tests(tests, NULL, NULL);
}
