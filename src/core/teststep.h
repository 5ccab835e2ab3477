/* Crash injection for tests (test builds only, LS_TEST_HOOKS): the one
 * mechanism by which a crash-safe operation marks its step boundaries.
 *
 * At every boundary the operation calls ls_test_step("OP:STEP") (for
 * example "update:local-moved-to-backup", "download:map-synced"). A test
 * may set a hook that sees every name (to learn the steps), and the
 * process raises SIGKILL at the boundary named by the environment variable
 * LS_TEST_CRASH_AT. Without LS_TEST_HOOKS, ls_test_step compiles to
 * nothing. */
#ifndef LS_CORE_TESTSTEP_H
#define LS_CORE_TESTSTEP_H

#ifdef LS_TEST_HOOKS
typedef void (*ls_test_step_hook)(void *user, const char *step);
/* Not thread-safe: set it before starting operations; NULL removes it. */
void ls_test_set_step_hook(ls_test_step_hook hook, void *user);
void ls_test_step(const char *op, const char *step);
#else
static inline void ls_test_step(const char *op, const char *step)
{
  (void)op;
  (void)step;
}
#endif

#endif
