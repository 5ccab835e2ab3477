/* Tests the natural version ordering. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testrun.h"

#include <lanspread/version.h>

#define OLDER(a, b)                                   \
  do {                                                \
    assert_true(ls_version_cmp((a), (b)) < 0);        \
    assert_true(ls_version_cmp((b), (a)) > 0);        \
  } while (0)

static void numbers_compare_by_value(void **state)
{
  (void)state;
  OLDER("2.9", "2.10");
  OLDER("1.2.3", "1.2.10");
  OLDER("20231231", "20240115");
  OLDER("9", "10");
  OLDER("99999999999999999999998", "99999999999999999999999"); /* no overflow */
  assert_int_equal(ls_version_cmp("1.0", "1.0"), 0);
}

static void leading_zeros(void **state)
{
  (void)state;
  OLDER("1.09", "1.10");
  OLDER("007", "8");
  /* Same value, different text: ordered, never equal, and consistent. */
  assert_true(ls_version_cmp("1.01", "1.1") != 0);
  assert_int_equal(ls_version_cmp("1.01", "1.1"), -ls_version_cmp("1.1", "1.01"));
  OLDER("1.01", "1.2");
  OLDER("0001", "2");
}

static void mixed_text_and_digits(void **state)
{
  (void)state;
  OLDER("v1.9", "v1.10");
  OLDER("1.0", "1.0a");       /* prefix is older */
  OLDER("1.0a", "1.0b");
  OLDER("build9-r2", "build10-r1");
  OLDER("1.0-beta2", "1.0-beta10");
  OLDER("alpha", "beta");
  OLDER("1", "a");           /* digits sort before letters (ASCII) */
}

static void empty_and_null(void **state)
{
  (void)state;
  OLDER(NULL, "0");
  OLDER("", "0");
  OLDER("", "a");
  assert_int_equal(ls_version_cmp(NULL, ""), 0);
  assert_int_equal(ls_version_cmp(NULL, NULL), 0);
}

static void order_is_transitive(void **state)
{
  (void)state;
  const char *sorted[] = {"", "0", "00", "1", "1.0", "1.0.1", "1.0a", "1.01", "1.1",
                          "1.2", "1.10", "2", "10", "a", "b1", "b2", "b10"};
  size_t n = sizeof sorted / sizeof sorted[0];
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < n; j++) {
      int c = ls_version_cmp(sorted[i], sorted[j]);
      if (i < j)
        assert_true(c < 0);
      else if (i > j)
        assert_true(c > 0);
      else
        assert_int_equal(c, 0);
    }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(numbers_compare_by_value),
    cmocka_unit_test(leading_zeros),
    cmocka_unit_test(mixed_text_and_digits),
    cmocka_unit_test(empty_and_null),
    cmocka_unit_test(order_is_transitive),
  };
  return ls_run_tests(tests, NULL, NULL);
}
