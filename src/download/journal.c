/* Owns the formats of the download journal and the chunk map
 * (download/journal.h): the manifest digest, the journal's JSON and the
 * map's bytes, both ways. */
#include "download/journal.h"

#include "core/error.h"
#include "core/hex.h"
#include "library/layout.h"
#include "proto/proto.h"

#include <jansson.h>
#include <nettle/sha2.h>
#include <stdlib.h>
#include <string.h>

#define HASH_LEN 32
#define DIGEST_TAG "lanspread manifest 1\n"
#define MAP_MAGIC "LSCHUNKS"
#define MAP_FORMAT 1u
#define MAP_HEADER (8 + 4 + 4 + LS_MANIFEST_DIGEST_LEN + 8)

/* ---- the digest ----------------------------------------------------------- */

static void put_u64(uint8_t *p, uint64_t v)
{
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

static void hash_u64(struct sha256_ctx *ctx, uint64_t v)
{
  uint8_t b[8];
  put_u64(b, v);
  sha256_update(ctx, sizeof b, b);
}

void ls_manifest_digest(uint32_t chunk_size, const ls_storage_file *files, size_t count,
                        uint8_t out[LS_MANIFEST_DIGEST_LEN])
{
  static const uint8_t unknown[HASH_LEN];
  struct sha256_ctx ctx;
  sha256_init(&ctx);
  sha256_update(&ctx, sizeof DIGEST_TAG - 1, (const uint8_t *)DIGEST_TAG);
  hash_u64(&ctx, chunk_size);
  hash_u64(&ctx, count);
  for (size_t i = 0; i < count; i++) {
    size_t len = strlen(files[i].path);
    hash_u64(&ctx, len);
    sha256_update(&ctx, len, (const uint8_t *)files[i].path);
    hash_u64(&ctx, files[i].size);
    uint64_t n = chunk_size ? ls_proto_chunk_count(files[i].size, chunk_size) : 0;
    for (uint64_t c = 0; c < n; c++)
      sha256_update(&ctx, HASH_LEN, files[i].sha256 ? files[i].sha256 + c * HASH_LEN : unknown);
  }
  sha256_digest(&ctx, LS_MANIFEST_DIGEST_LEN, out);
}

/* ---- the journal's text --------------------------------------------------- */

/* Unknown hashes are written as zeros (as the digest counts them): no
 * real chunk matches them. */
static json_t *hashes_json(const ls_storage_file *f, uint32_t chunk_size)
{
  uint64_t n = ls_proto_chunk_count(f->size, chunk_size);
  char *hex = malloc(n * HASH_LEN * 2 + 1);
  if (!hex)
    return NULL;
  if (f->sha256) {
    ls_hex_encode(f->sha256, n * HASH_LEN, hex);
  } else {
    memset(hex, '0', n * HASH_LEN * 2);
    hex[n * HASH_LEN * 2] = '\0';
  }
  json_t *s = json_string(hex);
  free(hex);
  return s;
}

char *ls_journal_text(const char *id, const char *version, uint32_t chunk_size,
                      const ls_storage_file *files, size_t count, const bool *created)
{
  uint8_t digest[LS_MANIFEST_DIGEST_LEN];
  char digest_hex[2 * LS_MANIFEST_DIGEST_LEN + 1];
  ls_manifest_digest(chunk_size, files, count, digest);
  ls_hex_encode(digest, sizeof digest, digest_hex);
  json_t *list = json_array();
  bool ok = list != NULL;
  for (size_t i = 0; ok && i < count; i++) {
    json_t *entry = json_pack("{s:s, s:I, s:o*}", "path", files[i].path, "size",
                              (json_int_t)files[i].size, "sha256",
                              hashes_json(&files[i], chunk_size));
    if (entry && created && created[i])
      json_object_set_new(entry, "created", json_true());
    ok = json_array_append_new(list, entry) == 0;
  }
  if (!ok) {
    json_decref(list);
    return NULL;
  }
  json_t *root = json_pack("{s:i, s:s, s:s, s:I, s:s, s:o}", "format", LS_JOURNAL_FORMAT, "id",
                           id, "version", version, "chunk_size", (json_int_t)chunk_size,
                           "digest", digest_hex, "files", list);
  char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
  json_decref(root);
  return text;
}

/* ---- parsing ---------------------------------------------------------------- */

void ls_storage_journal_free(ls_storage_journal *j)
{
  for (size_t i = 0; i < j->count; i++) {
    free(j->paths[i]);
    if (j->hashes)
      free(j->hashes[i]);
  }
  free(j->paths);
  free(j->hashes);
  free(j->created);
  free(j->sizes);
  free(j->version);
  memset(j, 0, sizeof *j);
}

/* A format 2 file's size and chunk hashes. */
static int parse_chunks(json_t *entry, size_t i, ls_storage_journal *j, ls_diag *diag)
{
  json_int_t size = -1;
  const char *hex = NULL;
  if (json_unpack(entry, "{s:I, s:s}", "size", &size, "sha256", &hex) != 0 || size < 0)
    return ls_diag_set(diag, LS_EFORMAT, "file %zu has no size or sha256", i + 1);
  uint64_t n = ls_proto_chunk_count((uint64_t)size, j->chunk_size);
  size_t len = strlen(hex); /* compared by division: n * 64 could wrap */
  if (len % (HASH_LEN * 2) != 0 || len / (HASH_LEN * 2) != n)
    return ls_diag_set(diag, LS_EFORMAT, "file %zu: sha256 must hold %llu hashes", i + 1,
                       (unsigned long long)n);
  j->sizes[i] = (uint64_t)size;
  j->chunk_count += n;
  if (n == 0)
    return LS_OK;
  if (!(j->hashes[i] = malloc(n * HASH_LEN)))
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  if (ls_hex_decode(hex, j->hashes[i], n * HASH_LEN) != LS_OK)
    return ls_diag_set(diag, LS_EFORMAT, "file %zu: sha256 is not lower-case hex", i + 1);
  return LS_OK;
}

static int parse_files(json_t *files, ls_storage_journal *j, ls_diag *diag)
{
  size_t n = json_array_size(files);
  j->paths = calloc(n ? n : 1, sizeof *j->paths);
  j->created = calloc(n ? n : 1, sizeof *j->created);
  if (!j->created)
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  if (j->format == LS_JOURNAL_FORMAT) {
    j->sizes = calloc(n ? n : 1, sizeof *j->sizes);
    j->hashes = calloc(n ? n : 1, sizeof *j->hashes);
  }
  if (!j->paths || (j->format == LS_JOURNAL_FORMAT && (!j->sizes || !j->hashes)))
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  for (size_t i = 0; i < n; i++) {
    json_t *entry = json_array_get(files, i);
    const char *path = NULL;
    ls_diag why;
    if (json_unpack(entry, "{s:s}", "path", &path) != 0)
      return ls_diag_set(diag, LS_EFORMAT, "file %zu has no path", i + 1);
    if (ls_layout_check_payload_path(path, &why) != LS_OK)
      return ls_diag_set(diag, LS_EFORMAT, "file %zu is not a payload path: %s", i + 1, why.text);
    if (!(j->paths[j->count++] = strdup(path)))
      return ls_diag_set(diag, LS_ENOMEM, "out of memory");
    j->created[i] = json_is_true(json_object_get(entry, "created"));
    if (j->format == LS_JOURNAL_FORMAT) {
      int rc = parse_chunks(entry, i, j, diag);
      if (rc != LS_OK)
        return rc;
    }
  }
  return LS_OK;
}

/* Format 2: the chunk size, and a digest that matches the list. */
static int parse_manifest_head(json_t *root, ls_storage_journal *j, ls_diag *diag)
{
  json_int_t chunk_size = 0;
  const char *digest = NULL;
  if (json_unpack(root, "{s:I, s:s}", "chunk_size", &chunk_size, "digest", &digest) != 0 ||
      chunk_size < 1 || chunk_size > LS_JOURNAL_MAX_CHUNK_SIZE)
    return ls_diag_set(diag, LS_EFORMAT, "no valid chunk_size and digest");
  if (ls_hex_decode(digest, j->digest, sizeof j->digest) != LS_OK)
    return ls_diag_set(diag, LS_EFORMAT, "the digest is not %d hex bytes",
                       LS_MANIFEST_DIGEST_LEN);
  j->chunk_size = (uint32_t)chunk_size;
  return LS_OK;
}

static int check_digest(const ls_storage_journal *j, ls_diag *diag)
{
  ls_storage_file *files = calloc(j->count ? j->count : 1, sizeof *files);
  if (!files)
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  for (size_t i = 0; i < j->count; i++)
    files[i] = (ls_storage_file){j->paths[i], j->sizes[i], j->hashes[i]};
  uint8_t digest[LS_MANIFEST_DIGEST_LEN];
  ls_manifest_digest(j->chunk_size, files, j->count, digest);
  free(files);
  if (memcmp(digest, j->digest, sizeof digest) != 0)
    return ls_diag_set(diag, LS_EFORMAT, "the digest does not match the file list");
  return LS_OK;
}

int ls_storage_journal_parse(const char *text, size_t len, ls_storage_journal *j,
                             ls_diag *diag)
{
  memset(j, 0, sizeof *j);
  json_error_t err;
  json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
  json_int_t format = 0;
  const char *version = NULL;
  json_t *files = NULL;
  int rc;
  if (!root)
    rc = ls_diag_set(diag, LS_EFORMAT, "not JSON (line %d, column %d)", err.line, err.column);
  else if (json_unpack(root, "{s:I, s:s, s:o}", "format", &format, "version", &version, "files",
                       &files) != 0 ||
           (format != 1 && format != LS_JOURNAL_FORMAT) || !json_is_array(files))
    rc = ls_diag_set(diag, LS_EFORMAT, "not a journal of format 1 or %d", LS_JOURNAL_FORMAT);
  else if (!(j->version = strdup(version)))
    rc = ls_diag_set(diag, LS_ENOMEM, "out of memory");
  else {
    j->format = (int)format;
    rc = j->format == LS_JOURNAL_FORMAT ? parse_manifest_head(root, j, diag) : LS_OK;
    if (rc == LS_OK)
      rc = parse_files(files, j, diag);
    if (rc == LS_OK && j->format == LS_JOURNAL_FORMAT)
      rc = check_digest(j, diag);
  }
  json_decref(root);
  if (rc != LS_OK)
    ls_storage_journal_free(j);
  return rc;
}

/* ---- the chunk map ---------------------------------------------------------- */

int ls_chunk_map_encode(const uint8_t digest[LS_MANIFEST_DIGEST_LEN], const uint8_t *bits,
                        size_t count, uint8_t **out, size_t *len)
{
  size_t nbits = ls_chunk_bits_size(count);
  size_t total = MAP_HEADER + nbits + HASH_LEN;
  uint8_t *p = calloc(1, total);
  if (!p)
    return LS_ENOMEM;
  memcpy(p, MAP_MAGIC, 8);
  p[8] = (uint8_t)MAP_FORMAT;
  memcpy(p + 16, digest, LS_MANIFEST_DIGEST_LEN);
  put_u64(p + 16 + LS_MANIFEST_DIGEST_LEN, count);
  memcpy(p + MAP_HEADER, bits, nbits);
  struct sha256_ctx ctx;
  sha256_init(&ctx);
  sha256_update(&ctx, MAP_HEADER + nbits, p);
  sha256_digest(&ctx, HASH_LEN, p + MAP_HEADER + nbits);
  *out = p;
  *len = total;
  return LS_OK;
}

int ls_chunk_map_decode(const uint8_t *data, size_t len,
                        const uint8_t digest[LS_MANIFEST_DIGEST_LEN], size_t count,
                        uint8_t *bits, ls_diag *diag)
{
  size_t nbits = ls_chunk_bits_size(count);
  if (len < MAP_HEADER + HASH_LEN || memcmp(data, MAP_MAGIC, 8) != 0 || data[8] != MAP_FORMAT)
    return ls_diag_set(diag, LS_EFORMAT, "not a chunk map");
  uint8_t check[HASH_LEN];
  struct sha256_ctx ctx;
  sha256_init(&ctx);
  sha256_update(&ctx, len - HASH_LEN, data);
  sha256_digest(&ctx, HASH_LEN, check);
  if (memcmp(check, data + len - HASH_LEN, HASH_LEN) != 0)
    return ls_diag_set(diag, LS_EFORMAT, "the chunk map is damaged");
  if (memcmp(data + 16, digest, LS_MANIFEST_DIGEST_LEN) != 0)
    return ls_diag_set(diag, LS_EFORMAT, "the chunk map belongs to another file list");
  if (get_u64(data + 16 + LS_MANIFEST_DIGEST_LEN) != count ||
      len != MAP_HEADER + nbits + HASH_LEN)
    return ls_diag_set(diag, LS_EFORMAT, "the chunk map has another chunk count");
  memcpy(bits, data + MAP_HEADER, nbits);
  if (count % 8)
    bits[nbits - 1] &= (uint8_t)((1u << (count % 8)) - 1); /* no bit past the last chunk */
  return LS_OK;
}
