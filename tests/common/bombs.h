/* Archive bombs for the extraction-limit tests (test_unpack,
 * test_transaction): archives of zeros that compress to almost nothing,
 * written with libarchive's writer. */
#ifndef LS_TEST_BOMBS_H
#define LS_TEST_BOMBS_H

#include <stdbool.h>
#include <stddef.h>

/* PATH gets `count` entries PREFIXzN.bin of `each` zero bytes: a zip
 * (deflate) or, xz true, an xz-compressed pax tar. Fails the test on error. */
void t_zero_bomb(const char *path, bool xz, const char *prefix, size_t count, size_t each);

#endif
