/* The runner every test program's main calls, and the one way a test skips.
 *
 * cmocka counts a skipped test as passed (its program exits 0), so CTest
 * would report a test that could not run as passed. ls_skip records the
 * skip and prints why; ls_run_tests runs the group like
 * cmocka_run_group_tests and exits LS_SKIP_EXIT (CTest's SKIP_RETURN_CODE,
 * set on every test in tests/CMakeLists.txt) when nothing failed but
 * something skipped, so CTest reports the program as Skipped. A program in
 * which some tests pass and one skips is reported skipped.
 *
 * This header brings cmocka in (with its prerequisites) and turns cmocka's
 * bare skip() into ls_skip, so no skip can pass unnoticed. */
#ifndef LS_TESTRUN_H
#define LS_TESTRUN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#define LS_SKIP_EXIT 77

/* Skips the running test: records it and prints "skipped: <why>". */
#define ls_skip(...) (ls_skip_record(__VA_ARGS__), _skip(__FILE__, __LINE__))
void ls_skip_record(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#undef skip
#define skip() ls_skip("no reason given")

/* main's return value: 1 when a test failed, else LS_SKIP_EXIT when one
 * skipped, else 0. */
#define ls_run_tests(group, setup, teardown) \
  (ls_apply_test_filter(), ls_run_result(cmocka_run_group_tests(group, setup, teardown)))
int ls_run_result(int failed);
/* LS_TEST_FILTER=PATTERN (cmocka's wildcards) runs only the tests it names. */
void ls_apply_test_filter(void);

#endif
