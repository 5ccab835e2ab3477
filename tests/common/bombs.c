/* The archive bombs of bombs.h. */
#include "bombs.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>

void t_zero_bomb(const char *path, bool xz, const char *prefix, size_t count, size_t each)
{
  struct archive *a = archive_write_new();
  if (xz) {
    assert_int_equal(archive_write_set_format_pax(a), ARCHIVE_OK);
    assert_int_equal(archive_write_add_filter_xz(a), ARCHIVE_OK);
  } else {
    assert_int_equal(archive_write_set_format_zip(a), ARCHIVE_OK);
    assert_int_equal(archive_write_zip_set_compression_deflate(a), ARCHIVE_OK);
  }
  assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
  char *zeros = calloc(1, 1u << 20);
  assert_non_null(zeros);
  for (size_t i = 0; i < count; i++) {
    struct archive_entry *ae = archive_entry_new();
    char name[256];
    snprintf(name, sizeof name, "%sz%zu.bin", prefix, i);
    archive_entry_set_pathname(ae, name);
    archive_entry_set_filetype(ae, AE_IFREG);
    archive_entry_set_perm(ae, 0644);
    archive_entry_set_size(ae, (la_int64_t)each);
    assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
    for (size_t done = 0; done < each;) {
      size_t n = each - done < (1u << 20) ? each - done : (1u << 20);
      assert_int_equal(archive_write_data(a, zeros, n), (la_ssize_t)n);
      done += n;
    }
    archive_entry_free(ae);
  }
  free(zeros);
  assert_int_equal(archive_write_close(a), ARCHIVE_OK);
  archive_write_free(a);
}
