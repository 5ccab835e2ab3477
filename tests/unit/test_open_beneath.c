/* Tests ls_open_beneath (src/node/serve.h), how the server opens the file a
 * peer names: regular files beneath the game root only, no symlink in any
 * component, and never a wait: a FIFO (or a device) a hostile game root
 * holds is refused at once instead of blocking the loop until a writer
 * comes. The same for ls_read_file_at (core/fs.h), how every small file
 * (settings, catalog, party key, journal) is read. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testrun.h"

#include "testutil.h"

#include "core/fs.h"
#include "node/serve.h"

#include <fcntl.h>
#include <stdlib.h>

#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void on_alarm(int sig)
{
  (void)sig;
  static const char msg[] = "an open of a FIFO blocked\n";
  (void)!write(2, msg, sizeof msg - 1);
  _exit(3);
}

static void opens_regular_files_only_and_never_blocks(void **state)
{
  (void)state;
  const char *dir = t_tempdir();
  t_write(dir, "g/data/a.eti", "payload");
  t_write(dir, "outside.eti", "secret");
  t_symlink("../outside.eti", dir, "g/link.eti");
  t_symlink("data", dir, "g/dirlink");
  assert_int_equal(mkfifo(t_path("%s/g/fifo.eti", dir), 0644), 0);
  signal(SIGALRM, on_alarm);
  alarm(5); /* a blocking open fails the test instead of hanging it */

  ls_diag diag;
  int fd = ls_open_beneath(dir, "g", "data/a.eti", &diag);
  assert_true(fd >= 0);
  char buf[16] = {0};
  assert_int_equal(read(fd, buf, sizeof buf), 7); /* a blocking read works */
  assert_string_equal(buf, "payload");
  close(fd);

  assert_int_equal(ls_open_beneath(dir, "g", "fifo.eti", &diag), LS_EINVAL);
  assert_non_null(strstr(diag.text, "not a regular file"));
  assert_true(ls_open_beneath(dir, "g", "link.eti", &diag) < 0);
  assert_true(ls_open_beneath(dir, "g", "dirlink/a.eti", &diag) < 0);
  assert_true(ls_open_beneath(dir, "g", "../outside.eti", &diag) < 0);
  assert_true(ls_open_beneath(dir, "g", "data", &diag) < 0);
  alarm(0);
}

static void read_file_refuses_a_fifo_without_waiting(void **state)
{
  (void)state;
  const char *dir = t_tempdir();
  assert_int_equal(mkfifo(t_path("%s/key", dir), 0600), 0);
  signal(SIGALRM, on_alarm);
  alarm(5);
  char *data = NULL;
  size_t len = 0;
  ls_diag diag;
  assert_int_equal(ls_read_file_at(AT_FDCWD, t_path("%s/key", dir), 4096, &data, &len, &diag),
                   LS_EINVAL);
  assert_non_null(strstr(diag.text, "not a regular file"));
  alarm(0);
  t_write(dir, "plain", "read as before");
  assert_int_equal(ls_read_file_at(AT_FDCWD, t_path("%s/plain", dir), 4096, &data, &len, &diag),
                   LS_OK);
  assert_string_equal(data, "read as before");
  free(data);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(opens_regular_files_only_and_never_blocks),
    cmocka_unit_test(read_file_refuses_a_fifo_without_waiting),
  };
  return ls_run_tests(tests, NULL, NULL);
}
