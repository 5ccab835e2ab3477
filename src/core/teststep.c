/* Owns the crash-injection hook of test builds (core/teststep.h). */
#include "core/teststep.h"

#ifdef LS_TEST_HOOKS
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ls_test_step_hook step_hook;
static void *step_hook_user;

void ls_test_set_step_hook(ls_test_step_hook hook, void *user)
{
  step_hook = hook;
  step_hook_user = user;
}

void ls_test_step(const char *op, const char *step)
{
  char full[128];
  snprintf(full, sizeof full, "%s:%s", op, step);
  if (step_hook)
    step_hook(step_hook_user, full);
  const char *at = getenv("LS_TEST_CRASH_AT");
  if (at && strcmp(at, full) == 0)
    raise(SIGKILL);
}
#else
typedef int ls_teststep_unused; /* ISO C wants a translation unit to hold something */
#endif
