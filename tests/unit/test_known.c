/* Owns the tests of the peers of earlier sessions (peer/known.c): the file
 * is read leniently (bad lines skipped), this session's peers count as new
 * until the next start, and the file keeps at most LS_KNOWN_PEERS_MAX ids,
 * the newest. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testrun.h"

#include "testutil.h"

#include "peer/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A peer id made of one repeated hex digit pattern from n. */
static const char *id_of(unsigned n)
{
  static char id[LS_PROTO_PEER_ID_LEN + 1];
  for (int i = 0; i < LS_PROTO_PEER_ID_LEN; i += 8)
    snprintf(id + i, 9, "%08x", n);
  return id;
}

static void test_earlier_sessions_are_known(void **state)
{
  (void)state;
  ls_peer p = {.state_dir = t_tempdir()};
  char text[512];
  snprintf(text, sizeof text, "%s\nnot an id\n%.63s\n", id_of(1), id_of(2));
  t_write(p.state_dir, "known-peers", text);
  assert_int_equal(ls_known_load(&p), LS_OK);
  assert_true(ls_known_before(&p, id_of(1)));
  assert_false(ls_known_before(&p, id_of(2))); /* its line was cut */
  ls_known_saw(&p, id_of(3));
  assert_false(ls_known_before(&p, id_of(3))); /* new in this session */
  ls_known_save_and_free(&p);

  assert_int_equal(ls_known_load(&p), LS_OK); /* the next session */
  assert_true(ls_known_before(&p, id_of(1)));
  assert_true(ls_known_before(&p, id_of(3)));
  ls_known_save_and_free(&p);
}

static void test_no_file_knows_nobody(void **state)
{
  (void)state;
  ls_peer p = {.state_dir = t_tempdir()};
  assert_int_equal(ls_known_load(&p), LS_OK);
  assert_false(ls_known_before(&p, id_of(1)));
  ls_known_save_and_free(&p); /* nobody seen: nothing written */
  assert_false(t_exists(t_path("%s/known-peers", p.state_dir)));
}

static void test_the_newest_are_kept(void **state)
{
  (void)state;
  ls_peer p = {.state_dir = t_tempdir()};
  assert_int_equal(ls_known_load(&p), LS_OK);
  for (unsigned n = 0; n < LS_KNOWN_PEERS_MAX + 10; n++)
    ls_known_saw(&p, id_of(n));
  ls_known_save_and_free(&p);
  assert_int_equal(ls_known_load(&p), LS_OK);
  assert_false(ls_known_before(&p, id_of(9)));
  assert_true(ls_known_before(&p, id_of(10)));
  assert_true(ls_known_before(&p, id_of(LS_KNOWN_PEERS_MAX + 9)));
  ls_known_save_and_free(&p);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_earlier_sessions_are_known),
    cmocka_unit_test(test_no_file_knows_nobody),
    cmocka_unit_test(test_the_newest_are_kept),
  };
  return ls_run_tests(tests, NULL, NULL);
}
