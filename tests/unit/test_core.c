/* Tests the small core helpers that replaced copies: lower-case hex
 * (core/hex.h), ls_pread_full (core/fs.h) on real files, including a
 * kernel file that answers every pread short, and the state directory's
 * mode (ls_state_dir_prepare, ls_restrict_mode). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testrun.h"

#include "testutil.h"

#include "core/fs.h"
#include "core/hex.h"

#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void hex_round_trip(void **state)
{
  (void)state;
  static const uint8_t bytes[] = {0x00, 0x01, 0x7f, 0xab, 0xff};
  char hex[2 * sizeof bytes + 1];
  ls_hex_encode(bytes, sizeof bytes, hex);
  assert_string_equal(hex, "00017fabff");
  uint8_t back[sizeof bytes];
  assert_int_equal(ls_hex_decode(hex, back, sizeof back), LS_OK);
  assert_memory_equal(back, bytes, sizeof bytes);

  /* a peer id: the SHA-256 of nothing, as every tool prints it */
  uint8_t digest[SHA256_DIGEST_SIZE];
  struct sha256_ctx ctx;
  sha256_init(&ctx);
  sha256_digest(&ctx, sizeof digest, digest);
  char id[2 * SHA256_DIGEST_SIZE + 1];
  ls_hex_encode(digest, sizeof digest, id);
  assert_string_equal(id, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  assert_true(ls_hex_is_lower(id, 64));
}

static void hex_refuses_other_forms(void **state)
{
  (void)state;
  static const char *const bad[] = {"00017FABFF", " 0017fabff", "00017fabf", "00017fabfg",
                                    "0001 7fabf", ""};
  uint8_t out[5];
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (ls_hex_decode(bad[i], out, sizeof out) != LS_EFORMAT)
      fail_msg("'%s' decoded", bad[i]);
    assert_false(ls_hex_is_lower(bad[i], 10));
  }
  assert_true(ls_hex_is_lower("", 0));
}

static void pread_full_short_tail(void **state)
{
  (void)state;
  char *tmp = t_tempdir();
  t_write(tmp, "ten", "0123456789");
  int fd = open(t_path("%s/ten", tmp), O_RDONLY | O_CLOEXEC);
  assert_true(fd >= 0);
  char buf[32] = {0};
  assert_int_equal(ls_pread_full(fd, buf, 10, 0), 10);
  assert_memory_equal(buf, "0123456789", 10);
  memset(buf, 0, sizeof buf);
  assert_int_equal(ls_pread_full(fd, buf, 16, 4), 6); /* the file ends first */
  assert_memory_equal(buf, "456789", 6);
  assert_int_equal(ls_pread_full(fd, buf, 16, 10), 0);
  assert_int_equal(ls_pread_full(fd, buf, 16, 1000), 0);
  assert_int_equal(ls_pread_full(fd, buf, 0, 0), 0);
  close(fd);
  assert_true(ls_pread_full(fd, buf, 16, 0) < 0); /* closed: an LS_E* code */
  int dir = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  assert_true(ls_pread_full(dir, buf, 16, 0) < 0);
  close(dir);
}

/* /proc/kallsyms answers each read with about a page: one pread comes back
 * short, ls_pread_full loops until it has all it asked for. */
static void pread_full_loops_over_short_reads(void **state)
{
  (void)state;
  enum { WANT = 64 * 1024 };
  int fd = open("/proc/kallsyms", O_RDONLY | O_CLOEXEC);
  assert_true(fd >= 0);
  char *once = malloc(WANT), *full = malloc(WANT), *by_read = malloc(WANT);
  ssize_t n = pread(fd, once, WANT, 0);
  assert_true(n > 0 && n < WANT);
  assert_int_equal(ls_pread_full(fd, full, WANT, 0), WANT);
  size_t got = 0;
  while (got < WANT) {
    ssize_t r = read(fd, by_read + got, WANT - got);
    assert_true(r > 0);
    got += (size_t)r;
  }
  assert_memory_equal(full, by_read, WANT);
  free(once);
  free(full);
  free(by_read);
  close(fd);
}

static unsigned mode_of(const char *path)
{
  struct stat st;
  assert_int_equal(lstat(path, &st), 0);
  return (unsigned)st.st_mode & 07777;
}

static void state_dir_is_made_and_kept_private(void **state)
{
  (void)state;
  char *dir = t_tempdir();
  ls_diag note, diag;
  const char *fresh = t_path("%s/a/b/state", dir);
  assert_int_equal(ls_state_dir_prepare(fresh, &note, &diag), LS_OK);
  assert_int_equal(mode_of(fresh), 0700);
  assert_string_equal(note.text, "");
  assert_int_equal(chmod(fresh, 0755), 0);
  assert_int_equal(ls_state_dir_prepare(fresh, &note, &diag), LS_OK);
  assert_int_equal(mode_of(fresh), 0700);
  assert_non_null(strstr(note.text, "had mode 0755"));
  assert_int_equal(ls_state_dir_prepare(fresh, &note, &diag), LS_OK);
  assert_string_equal(note.text, ""); /* said once */
  t_write(dir, "file", "x");
  assert_int_equal(ls_state_dir_prepare(t_path("%s/file", dir), &note, &diag), LS_EEXIST);
  /* A state directory that is a symbolic link (kept on another disk) is
   * the directory it names: made private, not refused. */
  const char *elsewhere = t_path("%s/elsewhere", dir), *link = t_path("%s/link", dir);
  assert_int_equal(mkdir(elsewhere, 0755), 0);
  assert_int_equal(symlink(elsewhere, link), 0);
  if (ls_state_dir_prepare(link, &note, &diag) != LS_OK)
    fail_msg("a linked state directory: %s", diag.text);
  assert_int_equal(mode_of(elsewhere), 0700);
}

static void restrict_mode_takes_bits_away_only(void **state)
{
  (void)state;
  char *dir = t_tempdir();
  t_write(dir, "key", "secret");
  const char *key = t_path("%s/key", dir);
  unsigned old;
  ls_diag diag;
  assert_int_equal(chmod(key, 0644), 0);
  assert_int_equal(ls_restrict_mode(key, 0600, &old, &diag), LS_OK);
  assert_int_equal(old, 0644);
  assert_int_equal(mode_of(key), 0600);
  assert_int_equal(chmod(key, 0400), 0);
  assert_int_equal(ls_restrict_mode(key, 0600, &old, &diag), LS_OK);
  assert_int_equal(old, 0);
  assert_int_equal(mode_of(key), 0400); /* narrower stays */
  assert_int_equal(ls_restrict_mode(t_path("%s/none", dir), 0600, &old, &diag), LS_OK);
  /* A symbolic link is not followed: its target keeps its mode. */
  assert_int_equal(chmod(key, 0644), 0);
  t_symlink(key, dir, "link");
  assert_int_not_equal(ls_restrict_mode(t_path("%s/link", dir), 0600, &old, &diag), LS_OK);
  assert_int_equal(mode_of(key), 0644);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(hex_round_trip),
    cmocka_unit_test(hex_refuses_other_forms),
    cmocka_unit_test(pread_full_short_tail),
    cmocka_unit_test(pread_full_loops_over_short_reads),
    cmocka_unit_test(state_dir_is_made_and_kept_private),
    cmocka_unit_test(restrict_mode_takes_bits_away_only),
  };
  return ls_run_tests(tests, NULL, NULL);
}
