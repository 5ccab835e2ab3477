/* Owns the game catalog (lanspread/catalog.h): loading and validating the
 * catalog JSON, the immutable sorted game table with each game's version
 * pins, and lookups by id and version. */
#include <lanspread/catalog.h>

#include "core/error.h"
#include "core/utf8.h"
#include "core/fs.h"
#include "core/hex.h"
#include "core/json_locate.h"
#include "core/relpath.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The sample catalog, embedded by CMake from data/catalog.json. */
extern const unsigned char ls_builtin_catalog[];
extern const size_t ls_builtin_catalog_len;

#define CATALOG_MAX_BYTES ((size_t)16 << 20)
#define ID_MAX_LEN 64
#define MAX_PLAYERS_LIMIT 1024
#define BUILTIN_SOURCE "<builtin catalog>"
#define VERSION_MAX_LEN 128 /* the protocol's limit of a version */

struct ls_catalog {
  size_t count;
  char *strings;            /* every string of every game, NUL-terminated, after games[] */
  ls_catalog_game games[]; /* sorted by id */
};

/* What the loader needs to word an error. */
typedef struct load_ctx {
  const char *text;
  size_t len;
  const char *source;
  ls_diag *diag;
} load_ctx;

/* A validated entry whose strings still point into the json_t tree. */
typedef struct pending_game {
  ls_catalog_game game;
  size_t index;           /* position in the "games" array */
  const json_t *versions; /* the validated "versions" object, or NULL */
} pending_game;

static bool is_alnum(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool ls_catalog_id_is_safe(const char *id)
{
  if (!id || !is_alnum(id[0]))
    return false;
  for (size_t n = 1; id[n]; n++) {
    char c = id[n];
    if (n >= ID_MAX_LEN || !(is_alnum(c) || c == '.' || c == '_' || c == '-'))
      return false;
  }
  return true;
}

/* Quotes s for an error message: printable ASCII as is, the rest as \xNN,
 * cut after 64 bytes. */
static const char *quoted(const char *s, char *buf, size_t size)
{
  size_t o = 0;
  buf[o++] = '"';
  for (size_t i = 0; s[i] && o + 8 < size; i++) {
    unsigned char c = (unsigned char)s[i];
    if (i == ID_MAX_LEN) {
      o += (size_t)snprintf(buf + o, size - o, "...");
      break;
    }
    if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\')
      buf[o++] = (char)c;
    else
      o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
  }
  buf[o++] = '"';
  buf[o] = '\0';
  return buf;
}

static const char *type_name(const json_t *v)
{
  switch (json_typeof(v)) {
  case JSON_OBJECT: return "an object";
  case JSON_ARRAY: return "an array";
  case JSON_STRING: return "a string";
  case JSON_INTEGER: return "an integer";
  case JSON_REAL: return "a real number";
  case JSON_TRUE: case JSON_FALSE: return "a boolean";
  case JSON_NULL: return "null";
  }
  return "an unknown type";
}

/* Fills the diag with "SOURCE:LINE:COLUMN: reason", the position being where
 * the value at path starts; returns LS_EFORMAT. */
static int fail_at(const load_ctx *ctx, const ls_json_step *path, size_t depth,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int fail_at(const load_ctx *ctx, const ls_json_step *path, size_t depth,
                   const char *fmt, ...)
{
  char reason[LS_DIAG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(reason, sizeof reason, fmt, ap);
  va_end(ap);
  ls_json_pos pos;
  if (ls_json_locate(ctx->text, ctx->len, path, depth, &pos) != LS_OK)
    return ls_diag_set(ctx->diag, LS_EFORMAT, "%s: %s", ctx->source, reason);
  return ls_diag_set(ctx->diag, LS_EFORMAT, "%s:%d:%d: %s", ctx->source, pos.line,
                     pos.column, reason);
}

/* fail_at for games[i] (key NULL) or games[i].key. */
static int fail_at_game(const load_ctx *ctx, size_t i, const char *key, const char *fmt, ...)
  __attribute__((format(printf, 4, 5)));

static int fail_at_game(const load_ctx *ctx, size_t i, const char *key, const char *fmt, ...)
{
  char reason[LS_DIAG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(reason, sizeof reason, fmt, ap);
  va_end(ap);
  ls_json_step path[3] = {LS_JSON_KEY("games"), LS_JSON_INDEX(i), LS_JSON_KEY(key)};
  return fail_at(ctx, path, key ? 3 : 2, "%s", reason);
}

static int syntax_error(const char *source, const json_error_t *err, ls_diag *diag)
{
  if (json_error_code(err) == json_error_out_of_memory)
    return ls_diag_set(diag, LS_ENOMEM, "%s: out of memory", source);
  int line = err->line < 1 ? 1 : err->line;
  int column = err->column < 1 ? 1 : err->column;
  return ls_diag_set(diag, LS_EFORMAT, "%s:%d:%d: %s", source, line, column, err->text);
}

/* games[i].key as a string (borrowed from the json_t). *out is NULL when the
 * field is absent and not required. */
static int get_string(const load_ctx *ctx, const json_t *entry, size_t i, const char *key,
                      bool required, const char **out)
{
  *out = NULL;
  const json_t *v = json_object_get(entry, key);
  if (!v) {
    if (!required)
      return LS_OK;
    return fail_at_game(ctx, i, NULL, "games[%zu]: missing required field \"%s\"", i, key);
  }
  if (!json_is_string(v))
    return fail_at_game(ctx, i, key, "games[%zu].%s must be a string, not %s", i, key,
                        type_name(v));
  const char *s = json_string_value(v);
  if (strlen(s) != json_string_length(v))
    return fail_at_game(ctx, i, key, "games[%zu].%s contains a NUL character", i, key);
  if (required && s[0] == '\0')
    return fail_at_game(ctx, i, key, "games[%zu].%s must not be empty", i, key);
  *out = s;
  return LS_OK;
}

/* games[i].key as an integer in [min, max]; *out untouched when absent. */
static int get_integer(const load_ctx *ctx, const json_t *entry, size_t i, const char *key,
                       json_int_t min, json_int_t max, json_int_t *out)
{
  const json_t *v = json_object_get(entry, key);
  if (!v)
    return LS_OK;
  if (!json_is_integer(v))
    return fail_at_game(ctx, i, key, "games[%zu].%s must be an integer, not %s", i, key,
                        type_name(v));
  json_int_t n = json_integer_value(v);
  if (n < min || n > max)
    return fail_at_game(ctx, i, key, "games[%zu].%s must be between %lld and %lld, not %lld",
                        i, key, (long long)min, (long long)max, (long long)n);
  *out = n;
  return LS_OK;
}

static int check_id(const load_ctx *ctx, size_t i, const char *id)
{
  if (ls_catalog_id_is_safe(id))
    return LS_OK;
  char q[ID_MAX_LEN * 4 + 16];
  return fail_at_game(ctx, i, "id",
                      "unsafe id %s: an id is 1 to %d characters of [A-Za-z0-9._-] "
                      "starting with a letter or digit",
                      quoted(id, q, sizeof q), ID_MAX_LEN);
}

/* A path below local/ by the path rule; "." components are harmless.
 * NULs never get here (get_string refuses them). */
static int check_launch(const load_ctx *ctx, size_t i, const char *launch)
{
  ls_diag why;
  if (!launch || ls_relpath_check_flags(launch, LS_RELPATH_ALLOW_DOT, NULL, &why) == LS_OK)
    return LS_OK;
  char q[ID_MAX_LEN * 4 + 16];
  return fail_at_game(ctx, i, "launch",
                      "unsafe launch path %s (%s): it must be relative to local/, without "
                      "\"..\", empty components or backslashes",
                      quoted(launch, q, sizeof q), why.text);
}

/* A name is shown to users and sent to peers: the display rule of
 * core/utf8.h (peers refuse a name that breaks it). */
static int check_name(const load_ctx *ctx, size_t i, const char *name)
{
  size_t at;
  uint32_t cp;
  if (ls_utf8_displayable(name, strlen(name), &at, &cp))
    return LS_OK;
  return fail_at_game(ctx, i, "name", "games[%zu].name: control character U+%04X at byte %zu",
                      i, (unsigned)cp, at);
}

/* One pin of games[i].versions: a version as the protocol has it (1 to 128
 * bytes of displayable UTF-8) and "sha256:" with 64 lower-case hex digits. */
static int check_pin(const load_ctx *ctx, size_t i, const char *version, const json_t *v)
{
  ls_json_step path[4] = {LS_JSON_KEY("games"), LS_JSON_INDEX(i), LS_JSON_KEY("versions"),
                          LS_JSON_KEY(version)};
  size_t len = strlen(version), at;
  uint32_t cp;
  char q[ID_MAX_LEN * 4 + 16];
  if (len == 0 || len > VERSION_MAX_LEN || !ls_utf8_displayable(version, len, &at, &cp))
    return fail_at(ctx, path, 4, "games[%zu].versions: version %s must be 1 to %d bytes of "
                   "displayable UTF-8", i, quoted(version, q, sizeof q), VERSION_MAX_LEN);
  const char *text = json_is_string(v) ? json_string_value(v) : NULL;
  size_t prefix = sizeof LS_CATALOG_PIN_PREFIX - 1;
  uint8_t digest[LS_CATALOG_PIN_LEN];
  if (!text || strncmp(text, LS_CATALOG_PIN_PREFIX, prefix) != 0 ||
      strlen(text) != prefix + 2 * LS_CATALOG_PIN_LEN ||
      ls_hex_decode(text + prefix, digest, sizeof digest) != LS_OK)
    return fail_at(ctx, path, 4, "games[%zu].versions.%s must be \"sha256:\" and 64 "
                   "lower-case hex digits (the manifest digest of that version), not %s",
                   i, quoted(version, q, sizeof q), text ? "that text" : type_name(v));
  return LS_OK;
}

/* games[i].versions: an object of pins, or absent. */
static int check_versions(const load_ctx *ctx, const json_t *entry, size_t i,
                          const json_t **out)
{
  const json_t *versions = json_object_get(entry, "versions");
  *out = versions;
  if (!versions)
    return LS_OK;
  if (!json_is_object(versions))
    return fail_at_game(ctx, i, "versions", "games[%zu].versions must be an object of "
                        "\"VERSION\": \"sha256:...\" pins, not %s", i, type_name(versions));
  const char *version;
  const json_t *v;
  json_object_foreach((json_t *)versions, version, v) {
    int rc = check_pin(ctx, i, version, v);
    if (rc != LS_OK)
      return rc;
  }
  return LS_OK;
}

/* Validates games[i] into *out (strings borrowed from entry). */
static int read_game(const load_ctx *ctx, const json_t *entry, size_t i, pending_game *out)
{
  if (!json_is_object(entry))
    return fail_at_game(ctx, i, NULL, "games[%zu] must be an object, not %s", i,
                        type_name(entry));
  ls_catalog_game *g = &out->game;
  json_int_t players = 0, size = 0;
  int rc;
  if ((rc = get_string(ctx, entry, i, "id", true, &g->id)) != LS_OK ||
      (rc = check_id(ctx, i, g->id)) != LS_OK ||
      (rc = get_string(ctx, entry, i, "name", true, &g->name)) != LS_OK ||
      (rc = check_name(ctx, i, g->name)) != LS_OK ||
      (rc = get_string(ctx, entry, i, "description", false, &g->description)) != LS_OK ||
      (rc = get_string(ctx, entry, i, "genre", false, &g->genre)) != LS_OK ||
      (rc = get_string(ctx, entry, i, "launch", false, &g->launch)) != LS_OK ||
      (rc = check_launch(ctx, i, g->launch)) != LS_OK ||
      (rc = get_integer(ctx, entry, i, "max_players", 1, MAX_PLAYERS_LIMIT, &players)) != LS_OK ||
      (rc = get_integer(ctx, entry, i, "size", 0, LLONG_MAX, &size)) != LS_OK ||
      (rc = check_versions(ctx, entry, i, &out->versions)) != LS_OK)
    return rc;
  g->max_players = (int)players;
  g->size = (uint64_t)size;
  out->index = i;
  return LS_OK;
}

/* The "games" array of the top-level object. */
static int get_games_array(const load_ctx *ctx, const json_t *root, const json_t **games)
{
  if (!json_is_object(root))
    return fail_at(ctx, NULL, 0, "the top level must be an object with a \"games\" array, not %s",
                   type_name(root));
  *games = json_object_get(root, "games");
  if (!*games)
    return fail_at(ctx, NULL, 0, "missing required field \"games\" (an array of games)");
  if (!json_is_array(*games)) {
    ls_json_step path[1] = {LS_JSON_KEY("games")};
    return fail_at(ctx, path, 1, "\"games\" must be an array, not %s", type_name(*games));
  }
  return LS_OK;
}

/* By id, then by position in the file, so equal ids stay in file order. */
static int compare_pending(const void *a, const void *b)
{
  const pending_game *x = a, *y = b;
  int c = strcmp(x->game.id, y->game.id);
  if (c != 0)
    return c;
  return x->index < y->index ? -1 : x->index > y->index;
}

/* The pair of equal ids to report, in games sorted by id then position: of
 * every group of equal ids, its first two members; of those pairs, the one
 * whose second occurrence comes first in the file (the earliest problem). */
static const pending_game *first_duplicate(const pending_game *games, size_t n)
{
  const pending_game *best = NULL;
  for (size_t k = 1; k < n; k++) {
    bool starts_group = k < 2 || strcmp(games[k - 2].game.id, games[k].game.id) != 0;
    if (starts_group && strcmp(games[k - 1].game.id, games[k].game.id) == 0 &&
        (!best || games[k].index < best[1].index))
      best = &games[k - 1];
  }
  return best;
}

/* Refuses a repeated id at its second occurrence, naming the first. */
static int check_duplicates(const load_ctx *ctx, const pending_game *games, size_t n)
{
  const pending_game *dup = first_duplicate(games, n);
  if (!dup)
    return LS_OK;
  size_t first = dup[0].index, second = dup[1].index;
  ls_json_step path[3] = {LS_JSON_KEY("games"), LS_JSON_INDEX(first), LS_JSON_KEY("id")};
  ls_json_pos pos = {0, 0, 0};
  ls_json_locate(ctx->text, ctx->len, path, 3, &pos);
  char q[ID_MAX_LEN * 4 + 16];
  return fail_at_game(ctx, second, "id",
                      "duplicate id %s in games[%zu]: games[%zu] at line %d column %d has it "
                      "already", quoted(dup->game.id, q, sizeof q), second, first, pos.line,
                      pos.column);
}

static size_t string_bytes(const char *s)
{
  return s ? strlen(s) + 1 : 0;
}

static size_t game_string_bytes(const pending_game *p)
{
  const ls_catalog_game *g = &p->game;
  size_t n = string_bytes(g->id) + string_bytes(g->name) + string_bytes(g->description) +
             string_bytes(g->genre) + string_bytes(g->launch);
  const char *version;
  const json_t *v;
  json_object_foreach((json_t *)p->versions, version, v)
    n += string_bytes(version);
  return n;
}

static int compare_pin(const void *a, const void *b)
{
  return strcmp(((const ls_catalog_pin *)a)->version, ((const ls_catalog_pin *)b)->version);
}

/* Copies s to *cursor and advances it; NULL stays NULL. */
static const char *copy_string(const char *s, char **cursor)
{
  if (!s)
    return NULL;
  size_t n = strlen(s) + 1;
  char *dst = memcpy(*cursor, s, n);
  *cursor += n;
  return dst;
}

/* Copies the game's validated pins to *pins (advanced past them), sorted. */
static void copy_pins(const pending_game *src, ls_catalog_game *dst, ls_catalog_pin **pins,
                      char **cursor)
{
  dst->pins = NULL;
  dst->pin_count = json_object_size(src->versions);
  if (dst->pin_count == 0)
    return;
  ls_catalog_pin *first = *pins;
  const char *version;
  const json_t *v;
  json_object_foreach((json_t *)src->versions, version, v) {
    ls_catalog_pin *pin = (*pins)++;
    pin->version = copy_string(version, cursor);
    ls_hex_decode(json_string_value(v) + sizeof LS_CATALOG_PIN_PREFIX - 1, pin->digest,
                  sizeof pin->digest);
  }
  qsort(first, dst->pin_count, sizeof *first, compare_pin);
  dst->pins = first;
}

/* One allocation holds the catalog, its games, their pins and all their
 * strings. */
static int build_catalog(const pending_game *games, size_t n, ls_catalog **out, ls_diag *diag,
                         const char *source)
{
  size_t strings = 0, pins = 0;
  for (size_t k = 0; k < n; k++) {
    strings += game_string_bytes(&games[k]);
    pins += json_object_size(games[k].versions);
  }
  size_t head = sizeof(ls_catalog) + n * sizeof(ls_catalog_game) + pins * sizeof(ls_catalog_pin);
  ls_catalog *c = malloc(head + strings);
  if (!c)
    return ls_diag_set(diag, LS_ENOMEM, "%s: out of memory", source);
  c->count = n;
  c->strings = (char *)c + head;
  char *cursor = c->strings;
  ls_catalog_pin *pin = (ls_catalog_pin *)&c->games[n];
  for (size_t k = 0; k < n; k++) {
    const ls_catalog_game *src = &games[k].game;
    ls_catalog_game *dst = &c->games[k];
    *dst = *src;
    dst->id = copy_string(src->id, &cursor);
    dst->name = copy_string(src->name, &cursor);
    dst->description = copy_string(src->description, &cursor);
    dst->genre = copy_string(src->genre, &cursor);
    dst->launch = copy_string(src->launch, &cursor);
    copy_pins(&games[k], dst, &pin, &cursor);
  }
  *out = c;
  return LS_OK;
}

/* Validates every game of the parsed root, then builds the catalog. */
static int load_games(const load_ctx *ctx, const json_t *root, ls_catalog **out)
{
  const json_t *array = NULL;
  int rc = get_games_array(ctx, root, &array);
  if (rc != LS_OK)
    return rc;
  size_t n = json_array_size(array);
  pending_game *games = calloc(n ? n : 1, sizeof *games);
  if (!games)
    return ls_diag_set(ctx->diag, LS_ENOMEM, "%s: out of memory", ctx->source);
  for (size_t i = 0; i < n && rc == LS_OK; i++)
    rc = read_game(ctx, json_array_get(array, i), i, &games[i]);
  if (rc == LS_OK) {
    qsort(games, n, sizeof *games, compare_pending);
    rc = check_duplicates(ctx, games, n);
  }
  if (rc == LS_OK)
    rc = build_catalog(games, n, out, ctx->diag, ctx->source);
  free(games);
  return rc;
}

int ls_catalog_load_buffer(const char *data, size_t len, const char *source_name,
                           ls_catalog **out, ls_diag *diag)
{
  const char *source = source_name ? source_name : "<buffer>";
  if (!out)
    return ls_diag_set(diag, LS_EINVAL, "%s: no place to store the catalog", source);
  *out = NULL;
  if (!data && len > 0)
    return ls_diag_set(diag, LS_EINVAL, "%s: no data", source);
  if (len > CATALOG_MAX_BYTES)
    return ls_diag_set(diag, LS_ETOOBIG, "%s: %zu bytes, more than the catalog limit of %zu",
                       source, len, CATALOG_MAX_BYTES);
  if (!data)
    data = "";
  json_error_t jerr;
  json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!root)
    return syntax_error(source, &jerr, diag);
  load_ctx ctx = {.text = data, .len = len, .source = source, .diag = diag};
  int rc = load_games(&ctx, root, out);
  json_decref(root);
  return rc;
}

/* Reads the catalog file. Symlinks are resolved first because
 * ls_read_file_at refuses a symlink as the last component, and a catalog
 * given on the command line may well be one. */
static int read_catalog_file(const char *path, char **data, size_t *len, ls_diag *diag)
{
  char *file = realpath(path, NULL);
  if (!file)
    return ls_diag_errno(diag, errno, "cannot open", path);
  ls_diag inner = {{0}};
  int rc = ls_read_file_at(AT_FDCWD, file, CATALOG_MAX_BYTES, data, len, &inner);
  if (rc != LS_OK && strcmp(file, path) == 0)
    ls_diag_set(diag, rc, "%s", inner.text);
  else if (rc != LS_OK)
    ls_diag_set(diag, rc, "%s: %s", path, inner.text); /* name what the user gave */
  free(file);
  if (rc == LS_EINVAL)
    return LS_EIO; /* not a regular file: a problem of the file, not of the argument */
  return rc;
}

int ls_catalog_load_file(const char *path, ls_catalog **out, ls_diag *diag)
{
  if (!out)
    return ls_diag_set(diag, LS_EINVAL, "no place to store the catalog");
  *out = NULL;
  if (!path)
    return ls_diag_set(diag, LS_EINVAL, "no catalog path");
  char *data;
  size_t len;
  int rc = read_catalog_file(path, &data, &len, diag);
  if (rc != LS_OK)
    return rc;
  rc = ls_catalog_load_buffer(data, len, path, out, diag);
  free(data);
  return rc;
}

int ls_catalog_load_builtin(ls_catalog **out, ls_diag *diag)
{
  return ls_catalog_load_buffer((const char *)ls_builtin_catalog, ls_builtin_catalog_len,
                                BUILTIN_SOURCE, out, diag);
}

void ls_catalog_free(ls_catalog *catalog)
{
  free(catalog);
}

size_t ls_catalog_count(const ls_catalog *catalog)
{
  return catalog ? catalog->count : 0;
}

const ls_catalog_game *ls_catalog_at(const ls_catalog *catalog, size_t i)
{
  if (!catalog || i >= catalog->count)
    return NULL;
  return &catalog->games[i];
}

static int compare_id_to_game(const void *key, const void *game)
{
  return strcmp(key, ((const ls_catalog_game *)game)->id);
}

const ls_catalog_game *ls_catalog_find(const ls_catalog *catalog, const char *id)
{
  if (!catalog || !id || catalog->count == 0)
    return NULL;
  return bsearch(id, catalog->games, catalog->count, sizeof catalog->games[0],
                 compare_id_to_game);
}

static int compare_version_to_pin(const void *key, const void *pin)
{
  return strcmp(key, ((const ls_catalog_pin *)pin)->version);
}

const uint8_t *ls_catalog_pin_of(const ls_catalog_game *game, const char *version)
{
  if (!game || !version || game->pin_count == 0)
    return NULL;
  const ls_catalog_pin *pin = bsearch(version, game->pins, game->pin_count, sizeof *game->pins,
                                      compare_version_to_pin);
  return pin ? pin->digest : NULL;
}
