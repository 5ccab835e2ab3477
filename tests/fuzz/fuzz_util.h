/* What the fuzz targets share: FUZZ_CHECK, the one way a target reports a
 * broken invariant (an abort, so libFuzzer saves the input as a crash), and
 * for the targets that parse files, a scratch directory, a game directory
 * and small file helpers that abort on failure (a harness that cannot set
 * up its files has nothing to say about the code under test). */
#ifndef LS_FUZZ_UTIL_H
#define LS_FUZZ_UTIL_H

#include <lanspread/error.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef FUZZ_CHECK
#define FUZZ_CHECK(cond)                                                        \
  do {                                                                          \
    if (!(cond)) {                                                              \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);  \
      abort();                                                                  \
    }                                                                           \
  } while (0)
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* FUZZ_CHECK(rc == LS_OK) that prints what failed and the diag first. */
void fuzz_check_ok(int rc, const ls_diag *diag, const char *what);

/* A directory of this run, made on the first call: under /dev/shm when it
 * is writable (tmpfs: the fsyncs of the code under test cost nothing), else
 * under $TMPDIR or /tmp. Removed at exit (not after a crash). */
const char *fuzz_scratch_dir(void);

/* For the targets whose code under test changes a game root: a game
 * directory of this run, SCRATCH/games, made on the first call with another
 * game root in it ("other", holding a.bin) and a file outside it
 * (SCRATCH/outside); fuzz_surroundings_intact says whether both are still
 * there. */
const char *fuzz_game_dir(void);
bool fuzz_surroundings_intact(void);
/* Its root "g" made again for one input, holding only version.ini naming
 * 1.0 (a downloaded game); the root's path. */
const char *fuzz_fresh_game_root(void);

/* snprintf into one of a few static rotating buffers (PATH_MAX each). */
const char *fuzz_path(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Creates or truncates path with these bytes. */
void fuzz_write(const char *path, const void *data, size_t len);
/* mkdir of one directory (its parent must exist). */
void fuzz_mkdir(const char *path);
/* rm -rf; a missing path is fine. */
void fuzz_rmtree(const char *path);
/* Whether path exists (without following a last symlink). */
bool fuzz_exists(const char *path);

#endif
