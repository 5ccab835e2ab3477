/* Owns the skip record of testrun.h: how many tests of this program
 * skipped, and the exit status that tells CTest. */
#include "testrun.h"

#include <stdio.h>
#include <stdlib.h>

static int skipped;

void ls_skip_record(const char *fmt, ...)
{
  char why[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  skipped++;
  print_message("skipped: %s\n", why);
}

int ls_run_result(int failed)
{
  if (failed)
    return 1;
  if (skipped) {
    print_message("%d test(s) skipped: exit %d, reported as skipped\n", skipped, LS_SKIP_EXIT);
    return LS_SKIP_EXIT;
  }
  return 0;
}

void ls_apply_test_filter(void)
{
  const char *filter = getenv("LS_TEST_FILTER");
  if (filter && *filter)
    cmocka_set_test_filter(filter);
}
