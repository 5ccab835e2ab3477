/* Owns the library index: its in-memory table of game entries and its
 * on-disk form (STATE_DIR/library.index).
 *
 * File format, all integers little-endian:
 *   "LSIDX001"                      magic and format version
 *   u32 game_count, then per game:
 *     str id, stamp version, u8 has_version [str version]
 *     u32 dir_count,  per dir:  str path, stamp
 *     u32 file_count, per file: str path, stamp, u32 chunk_size,
 *                               u32 chunk_count, chunk_count * 32 hash bytes
 *   32 bytes SHA-256 of everything before
 * where str = u32 length + bytes (no NUL) and stamp = u64 ino, u64 size,
 * i64 mtime_ns. Anything that does not parse exactly is rejected whole. */
#include "library/index.h"

#include "core/array.h"
#include "core/error.h"
#include "core/fs.h"

#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INDEX_MAGIC "LSIDX001"
#define INDEX_MAX_BYTES ((size_t)1 << 30)
#define INDEX_MAX_STR 4096
#define HASH_LEN 32

struct ls_index {
  char *path;
  size_t count, cap;
  ls_index_game *games; /* sorted by id */
  bool dirty;
  const char *rejected; /* why the file on disk was not used */
};

ls_stamp ls_stamp_of(const struct stat *st)
{
  return (ls_stamp){
    .ino = (uint64_t)st->st_ino,
    .size = (uint64_t)st->st_size,
    .mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec,
  };
}

bool ls_stamp_equal(ls_stamp a, ls_stamp b)
{
  return a.ino == b.ino && a.size == b.size && a.mtime_ns == b.mtime_ns;
}

void ls_index_game_clear(ls_index_game *g)
{
  free(g->id);
  free(g->version);
  for (size_t i = 0; i < g->dir_count; i++)
    free(g->dirs[i].path);
  free(g->dirs);
  for (size_t i = 0; i < g->file_count; i++) {
    free(g->files[i].path);
    free(g->files[i].hashes);
  }
  free(g->files);
  memset(g, 0, sizeof *g);
}

static void clear_games(ls_index *index)
{
  for (size_t i = 0; i < index->count; i++)
    ls_index_game_clear(&index->games[i]);
  free(index->games);
  index->games = NULL;
  index->count = index->cap = 0;
}

/* ---- lookup and update ---------------------------------------------- */

/* Position of id, or where it would be inserted; *found tells which. */
static size_t find_pos(const ls_index *index, const char *id, bool *found)
{
  size_t lo = 0, hi = index->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(index->games[mid].id, id);
    if (c == 0) {
      *found = true;
      return mid;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = false;
  return lo;
}

const ls_index_game *ls_index_find(const ls_index *index, const char *id)
{
  bool found;
  size_t pos = find_pos(index, id, &found);
  return found ? &index->games[pos] : NULL;
}

size_t ls_index_count(const ls_index *index)
{
  return index->count;
}

const ls_index_game *ls_index_at(const ls_index *index, size_t i)
{
  return i < index->count ? &index->games[i] : NULL;
}

int ls_index_put(ls_index *index, ls_index_game *entry)
{
  bool found;
  size_t pos = find_pos(index, entry->id, &found);
  if (found) {
    ls_index_game_clear(&index->games[pos]);
  } else {
    ls_index_game *games =
      ls_array_reserve(index->games, &index->cap, index->count + 1, sizeof *games);
    if (!games)
      return LS_ENOMEM;
    index->games = games;
    memmove(&index->games[pos + 1], &index->games[pos],
            (index->count - pos) * sizeof *index->games);
    index->count++;
  }
  index->games[pos] = *entry;
  memset(entry, 0, sizeof *entry);
  index->dirty = true;
  return LS_OK;
}

void ls_index_remove(ls_index *index, const char *id)
{
  bool found;
  size_t pos = find_pos(index, id, &found);
  if (!found)
    return;
  ls_index_game_clear(&index->games[pos]);
  memmove(&index->games[pos], &index->games[pos + 1],
          (index->count - pos - 1) * sizeof *index->games);
  index->count--;
  index->dirty = true;
}

static int compare_file_path(const void *key, const void *elem)
{
  return strcmp(key, ((const ls_index_file *)elem)->path);
}

static ls_index_file *find_file(const ls_index *index, const char *id, const char *path)
{
  const ls_index_game *g = ls_index_find(index, id);
  if (!g)
    return NULL;
  return bsearch(path, g->files, g->file_count, sizeof *g->files, compare_file_path);
}

int ls_index_get_hashes(const ls_index *index, const char *id, const char *path,
                        ls_stamp stamp, uint32_t chunk_size,
                        const uint8_t **hashes, uint32_t *chunk_count)
{
  const ls_index_file *f = find_file(index, id, path);
  if (!f || !f->hashes || f->chunk_size != chunk_size || !ls_stamp_equal(f->stamp, stamp))
    return LS_ENOENT;
  *hashes = f->hashes;
  *chunk_count = f->chunk_count;
  return LS_OK;
}

int ls_index_set_hashes(ls_index *index, const char *id, const char *path,
                        ls_stamp stamp, uint32_t chunk_size,
                        const uint8_t *hashes, uint32_t chunk_count)
{
  ls_index_file *f = find_file(index, id, path);
  if (!f || !ls_stamp_equal(f->stamp, stamp))
    return LS_ENOENT; /* the file changed since the scan: rescan first */
  uint8_t *copy = malloc((size_t)chunk_count * HASH_LEN + 1);
  if (!copy)
    return LS_ENOMEM;
  memcpy(copy, hashes, (size_t)chunk_count * HASH_LEN);
  free(f->hashes);
  f->hashes = copy;
  f->chunk_size = chunk_size;
  f->chunk_count = chunk_count;
  index->dirty = true;
  return LS_OK;
}

/* ---- serialisation --------------------------------------------------- */

typedef struct writer {
  uint8_t *buf;
  size_t len, cap;
  bool failed;
} writer;

static void put_bytes(writer *w, const void *p, size_t n)
{
  if (w->failed || n == 0)
    return;
  if (w->len + n > w->cap) {
    size_t cap = w->cap ? w->cap : 4096;
    while (cap < w->len + n)
      cap *= 2;
    uint8_t *buf = realloc(w->buf, cap);
    if (!buf) {
      w->failed = true;
      return;
    }
    w->buf = buf;
    w->cap = cap;
  }
  memcpy(w->buf + w->len, p, n);
  w->len += n;
}

static void put_u32(writer *w, uint32_t v)
{
  uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
  put_bytes(w, b, 4);
}

static void put_u64(writer *w, uint64_t v)
{
  put_u32(w, (uint32_t)v);
  put_u32(w, (uint32_t)(v >> 32));
}

static void put_str(writer *w, const char *s)
{
  size_t n = strlen(s);
  put_u32(w, (uint32_t)n);
  put_bytes(w, s, n);
}

static void put_stamp(writer *w, ls_stamp s)
{
  put_u64(w, s.ino);
  put_u64(w, s.size);
  put_u64(w, (uint64_t)s.mtime_ns);
}

static void put_game(writer *w, const ls_index_game *g)
{
  put_str(w, g->id);
  put_stamp(w, g->version_stamp);
  uint8_t has_version = g->version != NULL;
  put_bytes(w, &has_version, 1);
  if (has_version)
    put_str(w, g->version);
  put_u32(w, (uint32_t)g->dir_count);
  for (size_t i = 0; i < g->dir_count; i++) {
    put_str(w, g->dirs[i].path);
    put_stamp(w, g->dirs[i].stamp);
  }
  put_u32(w, (uint32_t)g->file_count);
  for (size_t i = 0; i < g->file_count; i++) {
    const ls_index_file *f = &g->files[i];
    uint32_t chunks = f->hashes ? f->chunk_count : 0;
    put_str(w, f->path);
    put_stamp(w, f->stamp);
    put_u32(w, f->hashes ? f->chunk_size : 0);
    put_u32(w, chunks);
    put_bytes(w, f->hashes, (size_t)chunks * HASH_LEN);
  }
}

int ls_index_save(ls_index *index, ls_diag *diag)
{
  if (!index->dirty)
    return LS_OK;
  writer w = {0};
  put_bytes(&w, INDEX_MAGIC, 8);
  put_u32(&w, (uint32_t)index->count);
  for (size_t i = 0; i < index->count; i++)
    put_game(&w, &index->games[i]);
  uint8_t digest[HASH_LEN];
  if (!w.failed) {
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, w.len, w.buf);
    sha256_digest(&ctx, sizeof digest, digest);
    put_bytes(&w, digest, sizeof digest);
  }
  int rc = w.failed ? ls_diag_set(diag, LS_ENOMEM, "index: out of memory")
                    : ls_write_file_atomic(index->path, w.buf, w.len, 0600, diag);
  free(w.buf);
  if (rc == LS_OK)
    index->dirty = false;
  return rc;
}

/* ---- parsing --------------------------------------------------------- */

typedef struct reader {
  const uint8_t *p, *end;
  bool bad;
} reader;

static const uint8_t *take(reader *r, size_t n)
{
  if (r->bad || (size_t)(r->end - r->p) < n) {
    r->bad = true;
    return NULL;
  }
  const uint8_t *at = r->p;
  r->p += n;
  return at;
}

static uint32_t get_u32(reader *r)
{
  const uint8_t *b = take(r, 4);
  return b ? (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24
           : 0;
}

static uint64_t get_u64(reader *r)
{
  uint64_t lo = get_u32(r);
  return lo | (uint64_t)get_u32(r) << 32;
}

static ls_stamp get_stamp(reader *r)
{
  ls_stamp s;
  s.ino = get_u64(r);
  s.size = get_u64(r);
  s.mtime_ns = (int64_t)get_u64(r);
  return s;
}

static char *get_str(reader *r)
{
  uint32_t n = get_u32(r);
  if (n > INDEX_MAX_STR) {
    r->bad = true;
    return NULL;
  }
  const uint8_t *b = take(r, n);
  if (!b || memchr(b, '\0', n)) {
    r->bad = true;
    return NULL;
  }
  char *s = malloc(n + 1);
  if (!s) {
    r->bad = true;
    return NULL;
  }
  memcpy(s, b, n);
  s[n] = '\0';
  return s;
}

/* A count of items that each take at least min_size bytes: bounded by what
 * is left, so a corrupt count cannot make us allocate gigabytes. */
static uint32_t get_count(reader *r, size_t min_size)
{
  uint32_t n = get_u32(r);
  if (!r->bad && (size_t)(r->end - r->p) / min_size < n)
    r->bad = true;
  return r->bad ? 0 : n;
}

static void get_file(reader *r, ls_index_file *f)
{
  f->path = get_str(r);
  f->stamp = get_stamp(r);
  f->chunk_size = get_u32(r);
  f->chunk_count = get_count(r, HASH_LEN);
  if (f->chunk_count == 0)
    return;
  const uint8_t *h = take(r, (size_t)f->chunk_count * HASH_LEN);
  f->hashes = h ? malloc((size_t)f->chunk_count * HASH_LEN) : NULL;
  if (!f->hashes)
    r->bad = true;
  else
    memcpy(f->hashes, h, (size_t)f->chunk_count * HASH_LEN);
}

static bool paths_sorted(const ls_index_game *g)
{
  for (size_t i = 1; i < g->file_count; i++)
    if (strcmp(g->files[i - 1].path, g->files[i].path) >= 0)
      return false;
  return true;
}

static void get_game(reader *r, ls_index_game *g)
{
  g->id = get_str(r);
  g->version_stamp = get_stamp(r);
  const uint8_t *has_version = take(r, 1);
  if (has_version && *has_version)
    g->version = get_str(r);
  g->dir_count = get_count(r, 4 + 24);
  g->dirs = g->dir_count ? calloc(g->dir_count, sizeof *g->dirs) : NULL;
  if (g->dir_count && !g->dirs)
    r->bad = true;
  for (size_t i = 0; i < g->dir_count && !r->bad; i++) {
    g->dirs[i].path = get_str(r);
    g->dirs[i].stamp = get_stamp(r);
  }
  g->file_count = get_count(r, 4 + 24 + 8);
  g->files = g->file_count ? calloc(g->file_count, sizeof *g->files) : NULL;
  if (g->file_count && !g->files)
    r->bad = true;
  for (size_t i = 0; i < g->file_count && !r->bad; i++)
    get_file(r, &g->files[i]);
  if (!r->bad && (g->dir_count == 0 || !paths_sorted(g)))
    r->bad = true;
}

static const char *parse_index(ls_index *index, const uint8_t *data, size_t len)
{
  if (len < 8 + 4 + HASH_LEN || memcmp(data, INDEX_MAGIC, 8) != 0)
    return "not an index file of this version";
  uint8_t digest[HASH_LEN];
  struct sha256_ctx ctx;
  sha256_init(&ctx);
  sha256_update(&ctx, len - HASH_LEN, data);
  sha256_digest(&ctx, sizeof digest, digest);
  if (memcmp(digest, data + len - HASH_LEN, HASH_LEN) != 0)
    return "checksum mismatch";
  reader r = {data + 8, data + len - HASH_LEN, false};
  uint32_t count = get_count(&r, 4 + 24 + 1 + 8);
  for (uint32_t i = 0; i < count && !r.bad; i++) {
    ls_index_game g = {0};
    get_game(&r, &g);
    const ls_index_game *prev = index->count ? &index->games[index->count - 1] : NULL;
    if (!r.bad && prev && strcmp(prev->id, g.id) >= 0)
      r.bad = true; /* ids must be strictly sorted */
    if (r.bad || ls_index_put(index, &g) != LS_OK) {
      ls_index_game_clear(&g);
      r.bad = true;
    }
  }
  if (r.bad || r.p != r.end) {
    clear_games(index);
    return "malformed entries";
  }
  return NULL;
}

int ls_index_open(const char *state_dir, ls_index **out, ls_diag *diag)
{
  *out = NULL;
  ls_index *index = calloc(1, sizeof *index);
  size_t plen = strlen(state_dir) + sizeof "/" LS_INDEX_FILE;
  if (index)
    index->path = malloc(plen);
  if (!index || !index->path) {
    free(index);
    return ls_diag_set(diag, LS_ENOMEM, "index: out of memory");
  }
  snprintf(index->path, plen, "%s/%s", state_dir, LS_INDEX_FILE);
  char *data;
  size_t len;
  ls_diag ignored;
  int rc = ls_read_file_at(AT_FDCWD, index->path, INDEX_MAX_BYTES, &data, &len, &ignored);
  if (rc == LS_OK) {
    index->rejected = parse_index(index, (const uint8_t *)data, len);
    free(data);
  } else if (rc != LS_ENOENT) {
    index->rejected = "unreadable";
  }
  index->dirty = index->rejected != NULL || rc == LS_ENOENT;
  *out = index;
  return LS_OK;
}

void ls_index_free(ls_index *index)
{
  if (!index)
    return;
  clear_games(index);
  free(index->path);
  free(index);
}

const char *ls_index_rejected_reason(const ls_index *index)
{
  return index->rejected;
}
