/* Tests ls_array_reserve (core/array.h): growth, contents kept, overflow. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testrun.h"

#include "core/array.h"

#include <stdlib.h>

static void grows_by_doubling_and_keeps_contents(void **state)
{
  (void)state;
  int *v = NULL;
  size_t cap = 0;
  for (int i = 0; i < 1000; i++) {
    int *grown = ls_array_reserve(v, &cap, (size_t)i + 1, sizeof *v);
    assert_non_null(grown);
    v = grown;
    assert_true(cap >= (size_t)i + 1);
    v[i] = i * 3;
  }
  assert_int_equal(cap, 1024); /* 16, 32, ... 1024 */
  for (int i = 0; i < 1000; i++)
    assert_int_equal(v[i], i * 3);
  int *same = ls_array_reserve(v, &cap, 10, sizeof *v); /* room already */
  assert_ptr_equal(same, v);
  assert_int_equal(cap, 1024);
  free(v);
}

static void a_large_need_is_met_at_once(void **state)
{
  (void)state;
  size_t cap = 0;
  char *v = ls_array_reserve(NULL, &cap, 100000, 1);
  assert_non_null(v);
  assert_true(cap >= 100000);
  free(v);
}

static void overflow_fails_and_keeps_the_array(void **state)
{
  (void)state;
  size_t cap = 0;
  int *v = ls_array_reserve(NULL, &cap, 4, sizeof *v);
  assert_non_null(v);
  size_t before = cap;
  assert_null(ls_array_reserve(v, &cap, SIZE_MAX / 2, sizeof *v));
  assert_int_equal(cap, before);
  v[3] = 7; /* still ours */
  assert_int_equal(v[3], 7);
  free(v);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(grows_by_doubling_and_keeps_contents),
    cmocka_unit_test(a_large_need_is_met_at_once),
    cmocka_unit_test(overflow_fails_and_keeps_the_array),
  };
  return ls_run_tests(tests, NULL, NULL);
}
