/* The game catalog: which games this program knows.
 *
 * A catalog is a JSON file: {"games": [{"id": "...", "name": "...", ...}]}.
 * Only catalog ids are announced, served, downloaded or deleted. A loaded
 * catalog is immutable, so any thread may read it while its owner keeps it. */
#ifndef LANSPREAD_CATALOG_H
#define LANSPREAD_CATALOG_H

#include <lanspread/error.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ls_catalog ls_catalog;

/* A version pin: "versions": {"2.0": "sha256:<64 hex>"} names the manifest
 * digest (download/pin.h, docs/PROTOCOL.md) of that version's file list. */
#define LS_CATALOG_PIN_PREFIX "sha256:"
#define LS_CATALOG_PIN_LEN 32
typedef struct ls_catalog_pin {
  const char *version;
  uint8_t digest[LS_CATALOG_PIN_LEN];
} ls_catalog_pin;

typedef struct ls_catalog_game {
  const char *id;          /* safe directory name, unique */
  const char *name;
  const char *description; /* NULL when absent */
  const char *genre;       /* NULL when absent */
  const char *launch;      /* executable relative to local/, NULL when absent */
  int max_players;         /* 0 when unknown */
  uint64_t size;           /* bytes, 0 when unknown */
  const ls_catalog_pin *pins; /* sorted by version (byte order); NULL when none */
  size_t pin_count;
} ls_catalog_game;

/* Loading. On failure *out is NULL and diag says "FILE:LINE:COLUMN: reason".
 * A malformed or invalid catalog gives LS_EFORMAT; a file that cannot be read
 * gives LS_ENOENT, LS_EACCES, LS_ETOOBIG (over 16 MiB) or LS_EIO, and then
 * the diag names the file and the system's reason instead. Unknown fields are
 * ignored; a symlink to the catalog file is followed. */
int ls_catalog_load_file(const char *path, ls_catalog **out, ls_diag *diag);
int ls_catalog_load_buffer(const char *data, size_t len, const char *source_name,
                           ls_catalog **out, ls_diag *diag);
/* The sample catalog compiled into the program: the default. */
int ls_catalog_load_builtin(ls_catalog **out, ls_diag *diag);
void ls_catalog_free(ls_catalog *catalog);

/* Games sorted by id. */
size_t ls_catalog_count(const ls_catalog *catalog);
const ls_catalog_game *ls_catalog_at(const ls_catalog *catalog, size_t i);
/* NULL when id is not in the catalog. */
const ls_catalog_game *ls_catalog_find(const ls_catalog *catalog, const char *id);

/* The digest the catalog pins for this version of the game, or NULL when
 * the version is not pinned. */
const uint8_t *ls_catalog_pin_of(const ls_catalog_game *game, const char *version);

/* True when id can be a game root's directory name: 1 to 64 characters of
 * [A-Za-z0-9._-], starting with a letter or digit. */
bool ls_catalog_id_is_safe(const char *id);

#endif
