/* Owns the libFuzzer target of the library index's file
 * (src/library/index.c): STATE_DIR/library.index as ls_index_open reads it.
 *
 * The input is the file, written into a state directory of this run. It is
 * opened as it is, and when its trailing SHA-256 is wrong (the open must
 * then refuse it), once more with the right one, so that the fuzzer gets
 * past the checksum to the parser. A file is used whole or not at all: a
 * refused one gives an empty index and a reason. A loaded one holds entries
 * strictly sorted by id, each with its root directory and with files
 * strictly sorted by path, and every lookup finds what it holds; saved with
 * one more entry (so that it is written) and opened again, it holds the
 * same entries plus that one. -malloc_limit_mb catches an allocation that a
 * count larger than the file could hold would make. */
#include "fuzz_util.h"

#include "library/index.h"

#include <nettle/sha2.h>
#include <string.h>

#define DIGEST_LEN SHA256_DIGEST_SIZE

/* The hashes of a file, as the writer keeps them: chunk_size only counts
 * when there are hashes. */
static bool files_equal(const ls_index_file *a, const ls_index_file *b)
{
  if (strcmp(a->path, b->path) != 0 || !ls_stamp_equal(a->stamp, b->stamp) ||
      !a->hashes != !b->hashes)
    return false;
  return !a->hashes || (a->chunk_size == b->chunk_size && a->chunk_count == b->chunk_count &&
                        memcmp(a->hashes, b->hashes, (size_t)a->chunk_count * 32) == 0);
}

static bool games_equal(const ls_index_game *a, const ls_index_game *b)
{
  if (strcmp(a->id, b->id) != 0 || !ls_stamp_equal(a->version_stamp, b->version_stamp) ||
      !a->version != !b->version || (a->version && strcmp(a->version, b->version) != 0) ||
      a->dir_count != b->dir_count || a->file_count != b->file_count)
    return false;
  for (size_t i = 0; i < a->dir_count; i++)
    if (strcmp(a->dirs[i].path, b->dirs[i].path) != 0 ||
        !ls_stamp_equal(a->dirs[i].stamp, b->dirs[i].stamp))
      return false;
  for (size_t i = 0; i < a->file_count; i++)
    if (!files_equal(&a->files[i], &b->files[i]))
      return false;
  return true;
}

static void check_lookups(const ls_index *index, const ls_index_game *g)
{
  FUZZ_CHECK(ls_index_find(index, g->id) == g);
  for (size_t i = 0; i < g->file_count; i++) {
    const ls_index_file *f = &g->files[i];
    FUZZ_CHECK(i == 0 || strcmp(g->files[i - 1].path, f->path) < 0);
    const uint8_t *hashes = NULL;
    uint32_t count = 0;
    int rc = ls_index_get_hashes(index, g->id, f->path, f->stamp, f->chunk_size, &hashes, &count);
    if (f->hashes)
      FUZZ_CHECK(rc == LS_OK && hashes == f->hashes && count == f->chunk_count);
    else
      FUZZ_CHECK(rc == LS_ENOENT);
    ls_stamp other = f->stamp;
    other.mtime_ns++;
    FUZZ_CHECK(ls_index_get_hashes(index, g->id, f->path, other, f->chunk_size, &hashes,
                                   &count) == LS_ENOENT);
  }
}

static void check_loaded(const ls_index *index)
{
  FUZZ_CHECK(ls_index_rejected_reason(index) == NULL);
  size_t count = ls_index_count(index);
  for (size_t i = 0; i < count; i++) {
    const ls_index_game *g = ls_index_at(index, i);
    FUZZ_CHECK(g && g->id && g->dir_count >= 1 && g->dirs);
    FUZZ_CHECK(i == 0 || strcmp(ls_index_at(index, i - 1)->id, g->id) < 0);
    check_lookups(index, g);
  }
  FUZZ_CHECK(ls_index_at(index, count) == NULL);
}

/* An entry the index does not hold yet, as a scan would make it. */
static void make_probe(const ls_index *index, ls_index_game *g)
{
  char id[32];
  for (unsigned n = 0;; n++) {
    snprintf(id, sizeof id, "fuzz-probe-%u", n);
    if (!ls_index_find(index, id))
      break;
  }
  memset(g, 0, sizeof *g);
  g->id = strdup(id);
  g->version = strdup("1.0");
  g->version_stamp = (ls_stamp){1, 4, 5};
  g->dir_count = 1;
  g->dirs = calloc(1, sizeof *g->dirs);
  g->file_count = 1;
  g->files = calloc(1, sizeof *g->files);
  FUZZ_CHECK(g->id && g->version && g->dirs && g->files);
  g->dirs[0] = (ls_index_dir){strdup(""), {2, 4096, 6}};
  g->files[0] = (ls_index_file){strdup("a.bin"), {3, 10, 7}, 1 << 20, 1, calloc(1, 32)};
  FUZZ_CHECK(g->dirs[0].path && g->files[0].path && g->files[0].hashes);
}

/* Save with the probe, open again: the same entries. */
static void check_round_trip(ls_index *loaded, const char *state)
{
  ls_index_game probe;
  make_probe(loaded, &probe);
  FUZZ_CHECK(ls_index_put(loaded, &probe) == LS_OK);
  ls_diag diag = {{0}};
  fuzz_check_ok(ls_index_save(loaded, &diag), &diag, "save");
  ls_index *again;
  FUZZ_CHECK(ls_index_open(state, &again, &diag) == LS_OK);
  check_loaded(again);
  FUZZ_CHECK(ls_index_count(again) == ls_index_count(loaded));
  for (size_t i = 0; i < ls_index_count(loaded); i++)
    FUZZ_CHECK(games_equal(ls_index_at(loaded, i), ls_index_at(again, i)));
  ls_index_free(again);
}

/* Opens the file; true when it was used. */
static bool open_file(const char *state, const uint8_t *data, size_t size)
{
  fuzz_write(fuzz_path("%s/%s", state, LS_INDEX_FILE), data, size);
  ls_index *index;
  ls_diag diag;
  FUZZ_CHECK(ls_index_open(state, &index, &diag) == LS_OK);
  bool used = ls_index_rejected_reason(index) == NULL;
  if (used) {
    check_loaded(index);
    FUZZ_CHECK(ls_index_count(index) <= size / 65); /* the smallest entry on disk */
    check_round_trip(index, state);
  } else {
    FUZZ_CHECK(ls_index_count(index) == 0);
  }
  ls_index_free(index);
  return used;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static const char *state;
  if (!state) {
    state = strdup(fuzz_path("%s/state", fuzz_scratch_dir()));
    FUZZ_CHECK(state != NULL);
    fuzz_mkdir(state);
  }
  bool used = open_file(state, data, size);
  if (size < DIGEST_LEN)
    return 0;
  uint8_t *fixed = malloc(size);
  FUZZ_CHECK(fixed != NULL);
  memcpy(fixed, data, size);
  struct sha256_ctx ctx;
  sha256_init(&ctx);
  sha256_update(&ctx, size - DIGEST_LEN, data);
  sha256_digest(&ctx, DIGEST_LEN, fixed + size - DIGEST_LEN);
  if (memcmp(fixed, data, size) != 0) {
    FUZZ_CHECK(!used); /* a wrong checksum is refused */
    open_file(state, fixed, size);
  }
  free(fixed);
  return 0;
}
