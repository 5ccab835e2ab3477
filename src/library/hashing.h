/* Per-chunk SHA-256 of payload files: what a peer announces in GameFiles and
 * what a downloader checks every chunk against. Blocking: run it on a
 * worker thread (≈0.7 ms per MiB with SHA-NI). */
#ifndef LS_LIBRARY_HASHING_H
#define LS_LIBRARY_HASHING_H

#include "library/index.h"

#include <lanspread/error.h>
#include <stdint.h>

#define LS_SHA256_SIZE 32

/* Hashes the open regular file fd chunk by chunk with large reads, never
 * holding more than one read buffer. *stamp is the file's stamp taken before
 * reading; the result is LS_EIO ("changed while hashing") when the stamp
 * differs afterwards. *hashes is malloc'ed: count * 32 bytes (NULL for an
 * empty file). */
int ls_hash_file_chunks(int fd, uint32_t chunk_size, ls_stamp *stamp, uint8_t **hashes,
                        uint32_t *count, ls_diag *diag);

/* SHA-256 of a buffer. */
void ls_sha256(const void *data, size_t len, uint8_t out[LS_SHA256_SIZE]);

#endif
