/* The download journal (docs/ARCHITECTURE.md, "Resume"): the two files that
 * let a download survive a crash, a stop and a pause.
 *
 * - .lanspread.download says what is being downloaded: the version, the
 *   chunk size and the file list with every chunk's SHA-256, and the
 *   manifest digest over all of it. Written atomically once per begin.
 * - .lanspread.chunks says which chunks are durable: a bitmap naming the
 *   digest it belongs to, rewritten atomically after each batch of data
 *   syncs. A chunk is marked only once its bytes were fdatasync'ed.
 *
 * This file owns their formats, encoding and parsing; the storage decides
 * when they are written. Pure functions on memory: no file I/O here. */
#ifndef LS_DOWNLOAD_JOURNAL_H
#define LS_DOWNLOAD_JOURNAL_H

#include <lanspread/error.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LS_JOURNAL_FORMAT 2       /* format 1 (no chunk hashes) is not resumable */
#define LS_MANIFEST_DIGEST_LEN 32
#define LS_JOURNAL_MAX ((size_t)64 << 20)
#define LS_JOURNAL_MAX_CHUNK_SIZE ((uint32_t)64 << 20)

/* One payload file of a download: a relative '/'-separated path, its size
 * and its chunk hashes (ls_proto_chunk_count(size, chunk_size) × 32 bytes;
 * NULL when unknown: no chunk of it is ever kept across a begin). */
typedef struct ls_storage_file {
  const char *path;
  uint64_t size;
  const uint8_t *sha256;
} ls_storage_file;

/* The SHA-256 over the chunk size and, in order, every file's path, size
 * and chunk hashes: two downloads of the same digest number the same bytes
 * the same way. */
void ls_manifest_digest(uint32_t chunk_size, const ls_storage_file *files, size_t count,
                        uint8_t out[LS_MANIFEST_DIGEST_LEN]);

/* The journal .lanspread.download as recovery and resume read it. */
typedef struct ls_storage_journal {
  int format;            /* 1 or LS_JOURNAL_FORMAT */
  char *version;
  char **paths;
  size_t count;
  /* format 2 only (zero / NULL for format 1) */
  uint64_t *sizes;
  uint8_t **hashes;      /* per file; NULL for an empty file */
  bool *created;         /* per file: the download made it (absent: false) */
  uint32_t chunk_size;
  uint8_t digest[LS_MANIFEST_DIGEST_LEN];
  size_t chunk_count;    /* of all files together */
} ls_storage_journal;

/* The journal's text (malloc'ed, NUL-terminated), or NULL without memory.
 * created (NULL: none) marks the files the download made: a failure
 * removes those, and keeps what was there before it began. */
char *ls_journal_text(const char *id, const char *version, uint32_t chunk_size,
                      const ls_storage_file *files, size_t count, const bool *created);

/* Parses the journal's text: {"format": 1, "version": V, "files": [{"path":
 * P, ...}]} or {"format": 2, "version", "chunk_size", "digest", "files":
 * [{"path", "size", "sha256", optional "created": true}]} (other members
 * are ignored), every path a
 * payload path (library/layout.h), a format 2 digest that matches what it
 * lists. LS_EFORMAT with the reason in diag for anything else, LS_ENOMEM;
 * *out is empty on failure. Free with ls_storage_journal_free. */
int ls_storage_journal_parse(const char *text, size_t len, ls_storage_journal *out,
                             ls_diag *diag);
void ls_storage_journal_free(ls_storage_journal *j);

/* ---- the chunk map (.lanspread.chunks) ---- */

/* Bytes of a bitmap of n chunks (bit k is byte k / 8, bit k % 8). */
static inline size_t ls_chunk_bits_size(size_t n)
{
  return (n + 7) / 8;
}
static inline bool ls_chunk_bit(const uint8_t *bits, size_t k)
{
  return bits[k / 8] >> (k % 8) & 1;
}
static inline void ls_chunk_bit_set(uint8_t *bits, size_t k)
{
  bits[k / 8] |= (uint8_t)(1u << (k % 8));
}

/* The map file's bytes for the bitmap of `count` chunks under `digest`
 * (malloc'ed into *out, *len bytes), or LS_ENOMEM. */
int ls_chunk_map_encode(const uint8_t digest[LS_MANIFEST_DIGEST_LEN], const uint8_t *bits,
                        size_t count, uint8_t **out, size_t *len);

/* Reads a map file's bytes into bits (ls_chunk_bits_size(count) bytes, the
 * caller's). LS_EFORMAT (diag says why) when it is not a map, is damaged,
 * names another digest or another chunk count. */
int ls_chunk_map_decode(const uint8_t *data, size_t len,
                        const uint8_t digest[LS_MANIFEST_DIGEST_LEN], size_t count,
                        uint8_t *bits, ls_diag *diag);

#endif
