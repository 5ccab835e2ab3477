/* Tests per-chunk SHA-256 of payload files against hashing each chunk by
 * hand, at the edges: empty file, exact multiples, a short last chunk. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testrun.h"

#include "testutil.h"

#include "library/hashing.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void check_size(const char *dir, size_t size, uint32_t chunk)
{
  uint8_t *data = malloc(size + 1);
  for (size_t i = 0; i < size; i++)
    data[i] = (uint8_t)(i * 131 + (i >> 9));
  const char *path = t_path("%s/f%zu", dir, size);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, data, size), (ssize_t)size);

  uint8_t *hashes;
  uint32_t count;
  ls_stamp stamp;
  assert_int_equal(ls_hash_file_chunks(fd, chunk, &stamp, &hashes, &count, NULL), 0);
  assert_int_equal(count, (size + chunk - 1) / chunk);
  assert_int_equal(stamp.size, size);
  for (uint32_t c = 0; c < count; c++) {
    size_t off = (size_t)c * chunk, n = size - off < chunk ? size - off : chunk;
    uint8_t want[32];
    ls_sha256(data + off, n, want);
    assert_memory_equal(hashes + (size_t)c * 32, want, 32);
  }
  free(hashes);
  free(data);
  close(fd);
}

static void chunks_match_hand_hashing(void **state)
{
  (void)state;
  char *dir = t_tempdir();
  check_size(dir, 0, 4096);
  check_size(dir, 1, 4096);
  check_size(dir, 4096, 4096);
  check_size(dir, 4097, 4096);
  check_size(dir, 3 * 1048576 + 5, 1048576);
  check_size(dir, 5 * 1048576, 2 * 1048576); /* chunks larger than one read */
}

static void known_vector(void **state)
{
  (void)state;
  uint8_t out[32];
  ls_sha256("abc", 3, out);
  static const uint8_t want[32] = {
    0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
    0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
  assert_memory_equal(out, want, 32);
}

static void bad_input_is_refused(void **state)
{
  (void)state;
  char *dir = t_tempdir();
  t_write(dir, "x", "data");
  int fd = open(t_path("%s/x", dir), O_RDONLY);
  uint8_t *h;
  uint32_t n;
  ls_stamp st;
  assert_int_equal(ls_hash_file_chunks(fd, 0, &st, &h, &n, NULL), LS_EINVAL);
  close(fd);
  assert_int_equal(ls_hash_file_chunks(fd, 4, &st, &h, &n, NULL), LS_EIO); /* closed fd */
  assert_null(h);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(chunks_match_hand_hashing),
    cmocka_unit_test(known_vector),
    cmocka_unit_test(bad_input_is_refused),
  };
  return ls_run_tests(tests, NULL, NULL);
}
