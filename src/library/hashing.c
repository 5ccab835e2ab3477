/* Owns chunk hashing of payload files (library/hashing.h). */
#include "library/hashing.h"

#include "core/error.h"
#include "core/fs.h"

#include <errno.h>
#include <nettle/sha2.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_BLOCK (1u << 20)

void ls_sha256(const void *data, size_t len, uint8_t out[LS_SHA256_SIZE])
{
  struct sha256_ctx ctx;
  sha256_init(&ctx);
  sha256_update(&ctx, len, data);
  sha256_digest(&ctx, LS_SHA256_SIZE, out);
}

static int hash_chunks(int fd, uint64_t size, uint32_t chunk_size, uint8_t *hashes,
                       ls_diag *diag)
{
  uint8_t *buf = malloc(READ_BLOCK);
  if (!buf)
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  struct sha256_ctx ctx;
  sha256_init(&ctx);
  int rc = LS_OK;
  uint64_t off = 0;
  uint32_t chunk = 0;
  while (off < size) {
    uint64_t chunk_end = ((uint64_t)chunk + 1) * chunk_size;
    size_t want = (size_t)((chunk_end < size ? chunk_end : size) - off);
    if (want > READ_BLOCK)
      want = READ_BLOCK;
    ssize_t n = ls_pread_full(fd, buf, want, off);
    if (n != (ssize_t)want) {
      rc = n < 0 ? ls_diag_errno(diag, errno, "cannot read", "payload file")
                 : ls_diag_set(diag, LS_EIO, "payload file shrank while hashing");
      break;
    }
    sha256_update(&ctx, want, buf);
    off += want;
    if (off == chunk_end || off == size)
      sha256_digest(&ctx, LS_SHA256_SIZE, hashes + (size_t)chunk++ * LS_SHA256_SIZE);
  }
  free(buf);
  return rc;
}

int ls_hash_file_chunks(int fd, uint32_t chunk_size, ls_stamp *stamp, uint8_t **hashes,
                        uint32_t *count, ls_diag *diag)
{
  *hashes = NULL;
  *count = 0;
  struct stat before, after;
  if (chunk_size == 0)
    return ls_diag_set(diag, LS_EINVAL, "chunk size 0");
  if (fstat(fd, &before) != 0)
    return ls_diag_errno(diag, errno, "cannot stat", "payload file");
  uint64_t size = (uint64_t)before.st_size;
  uint64_t n = (size + chunk_size - 1) / chunk_size;
  if (n > UINT32_MAX)
    return ls_diag_set(diag, LS_ETOOBIG, "file too large to hash");
  uint8_t *out = n ? malloc((size_t)n * LS_SHA256_SIZE) : NULL;
  if (n && !out)
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  int rc = hash_chunks(fd, size, chunk_size, out, diag);
  if (rc == LS_OK && fstat(fd, &after) != 0)
    rc = ls_diag_errno(diag, errno, "cannot stat", "payload file");
  if (rc == LS_OK && !ls_stamp_equal(ls_stamp_of(&before), ls_stamp_of(&after)))
    rc = ls_diag_set(diag, LS_EIO, "payload file changed while hashing");
  if (rc != LS_OK) {
    free(out);
    return rc;
  }
  *stamp = ls_stamp_of(&before);
  *hashes = out;
  *count = (uint32_t)n;
  return LS_OK;
}
