/* Owns the messages of the wire protocol: strict JSON decoding into ls_msg,
 * validation (shared by decoder and encoder), encoding with jansson, equality
 * and freeing (docs/PROTOCOL.md, "Messages"). */
#include "proto/proto.h"

#include "core/error.h"
#include "core/hex.h"
#include "core/relpath.h"
#include "core/utf8.h"

#include <lanspread/catalog.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Type table                                                                */

typedef int (*decode_fn)(const json_t *obj, ls_msg *msg, ls_diag *diag);
typedef int (*encode_fn)(json_t *obj, const ls_msg *msg);

typedef struct type_info {
  const char *name;
  enum ls_msg_dir dir;
  decode_fn decode;
  encode_fn encode;
} type_info;

static int decode_nothing(const json_t *obj, ls_msg *msg, ls_diag *diag);
static int decode_hello(const json_t *obj, ls_msg *msg, ls_diag *diag);
static int decode_game_ref(const json_t *obj, ls_msg *msg, ls_diag *diag);
static int decode_file_ref(const json_t *obj, ls_msg *msg, ls_diag *diag);
static int decode_range(const json_t *obj, ls_msg *msg, ls_diag *diag);
static int decode_game_list(const json_t *obj, ls_msg *msg, ls_diag *diag);
static int decode_game_files(const json_t *obj, ls_msg *msg, ls_diag *diag);
static int decode_invalid(const json_t *obj, ls_msg *msg, ls_diag *diag);
static int encode_nothing(json_t *obj, const ls_msg *msg);
static int encode_hello(json_t *obj, const ls_msg *msg);
static int encode_game_ref(json_t *obj, const ls_msg *msg);
static int encode_file_ref(json_t *obj, const ls_msg *msg);
static int encode_range(json_t *obj, const ls_msg *msg);
static int encode_game_list(json_t *obj, const ls_msg *msg);
static int encode_game_files(json_t *obj, const ls_msg *msg);
static int encode_invalid(json_t *obj, const ls_msg *msg);

static const type_info TYPES[LS_MSG_TYPE_COUNT] = {
  [LS_MSG_HELLO] = {"Hello", LS_DIR_REQUEST, decode_hello, encode_hello},
  [LS_MSG_PING] = {"Ping", LS_DIR_REQUEST, decode_nothing, encode_nothing},
  [LS_MSG_LIST_GAMES] = {"ListGames", LS_DIR_REQUEST, decode_nothing, encode_nothing},
  [LS_MSG_GET_GAME] = {"GetGame", LS_DIR_REQUEST, decode_game_ref, encode_game_ref},
  [LS_MSG_GET_GAME_FILE_DATA] = {"GetGameFileData", LS_DIR_REQUEST, decode_file_ref,
                                 encode_file_ref},
  [LS_MSG_GET_GAME_FILE_CHUNK] = {"GetGameFileChunk", LS_DIR_REQUEST, decode_range,
                                  encode_range},
  [LS_MSG_HELLO_ACK] = {"HelloAck", LS_DIR_RESPONSE, decode_hello, encode_hello},
  [LS_MSG_PONG] = {"Pong", LS_DIR_RESPONSE, decode_nothing, encode_nothing},
  [LS_MSG_GAME_LIST] = {"GameList", LS_DIR_RESPONSE, decode_game_list, encode_game_list},
  [LS_MSG_GAME_FILES] = {"GameFiles", LS_DIR_RESPONSE, decode_game_files, encode_game_files},
  [LS_MSG_GAME_NOT_FOUND] = {"GameNotFound", LS_DIR_RESPONSE, decode_game_ref,
                             encode_game_ref},
  [LS_MSG_INVALID_REQUEST] = {"InvalidRequest", LS_DIR_RESPONSE, decode_invalid,
                              encode_invalid},
  [LS_MSG_FILE_DATA] = {"FileData", LS_DIR_RESPONSE, decode_range, encode_range},
};

static const type_info *type_info_of(enum ls_msg_type type)
{
  if ((int)type <= LS_MSG_NONE || type >= LS_MSG_TYPE_COUNT)
    return NULL;
  return &TYPES[type];
}

const char *ls_msg_type_name(enum ls_msg_type type)
{
  const type_info *info = type_info_of(type);
  return info ? info->name : NULL;
}

enum ls_msg_dir ls_msg_type_dir(enum ls_msg_type type)
{
  const type_info *info = type_info_of(type);
  return info ? info->dir : LS_DIR_REQUEST;
}

static enum ls_msg_type type_by_name(const char *name, size_t len)
{
  for (int t = LS_MSG_NONE + 1; t < LS_MSG_TYPE_COUNT; t++)
    if (strlen(TYPES[t].name) == len && memcmp(TYPES[t].name, name, len) == 0)
      return (enum ls_msg_type)t;
  return LS_MSG_NONE;
}

/* ------------------------------------------------------------------------ */
/* Field rules                                                               */

bool ls_proto_peer_id_is_valid(const char *peer_id)
{
  return peer_id && ls_hex_is_lower(peer_id, LS_PROTO_PEER_ID_LEN) &&
         peer_id[LS_PROTO_PEER_ID_LEN] == '\0';
}

uint64_t ls_proto_chunk_count(uint64_t size, uint32_t chunk_size)
{
  return size / chunk_size + (size % chunk_size != 0);
}

/* ------------------------------------------------------------------------ */
/* Validation: one set of rules for decoded and to-be-encoded messages.
 * `err` is LS_EFORMAT when decoding and LS_EINVAL when encoding. */

static int check_text(const char *s, const char *where, const char *key, size_t min,
                      size_t max, int err, ls_diag *diag)
{
  if (!s)
    return ls_diag_set(diag, err, "%s%s: missing", where, key);
  size_t len = strlen(s);
  if (len < min || len > max)
    return ls_diag_set(diag, err, "%s%s: must be %zu to %zu bytes", where, key, min, max);
  char what[128];
  snprintf(what, sizeof what, "%s%s", where, key);
  return ls_utf8_check_displayable(s, len, what, err, diag);
}

static int check_id(const char *id, const char *where, int err, ls_diag *diag)
{
  if (!id)
    return ls_diag_set(diag, err, "%sid: missing", where);
  if (!ls_catalog_id_is_safe(id))
    return ls_diag_set(diag, err, "%sid: not a safe game id", where);
  return LS_OK;
}

static int check_path(const char *path, const char *where, int err, ls_diag *diag)
{
  if (!path)
    return ls_diag_set(diag, err, "%spath: missing", where);
  ls_diag why;
  if (ls_relpath_check(path, &why) != LS_OK)
    return ls_diag_set(diag, err, "%spath: %s", where, why.text);
  return LS_OK;
}

static int check_max(uint64_t value, uint64_t max, const char *where, const char *key,
                     int err, ls_diag *diag)
{
  if (value > max)
    return ls_diag_set(diag, err, "%s%s: must be at most %llu", where, key,
                       (unsigned long long)max);
  return LS_OK;
}

static int validate_hello(const ls_msg_hello *h, int err, ls_diag *diag)
{
  if (h->protocol_version < 1)
    return ls_diag_set(diag, err, "protocol_version: must be at least 1");
  if (!ls_proto_peer_id_is_valid(h->peer_id))
    return ls_diag_set(diag, err, "peer_id: must be %d lowercase hex digits",
                       LS_PROTO_PEER_ID_LEN);
  if (h->party[0] && !(ls_hex_is_lower(h->party, LS_PROTO_PARTY_PROOF_LEN) &&
                       h->party[LS_PROTO_PARTY_PROOF_LEN] == '\0'))
    return ls_diag_set(diag, err, "party: must be %d lowercase hex digits",
                       LS_PROTO_PARTY_PROOF_LEN);
  return check_text(h->name, "", "name", 0, LS_PROTO_MAX_NAME, err, diag);
}

static int validate_file_ref(const char *id, const char *path, int err, ls_diag *diag)
{
  int rc = check_id(id, "", err, diag);
  return rc ? rc : check_path(path, "", err, diag);
}

static int validate_range(const ls_msg_file_range *r, bool chunk_request, int err,
                          ls_diag *diag)
{
  int rc = validate_file_ref(r->id, r->path, err, diag);
  if (rc)
    return rc;
  if (chunk_request && (r->length < 1 || r->length > LS_PROTO_MAX_CHUNK_LENGTH))
    return ls_diag_set(diag, err, "length: must be 1 to %u", LS_PROTO_MAX_CHUNK_LENGTH);
  if ((rc = check_max(r->offset, LS_PROTO_MAX_INT, "", "offset", err, diag)) ||
      (rc = check_max(r->length, LS_PROTO_MAX_INT, "", "length", err, diag)))
    return rc;
  if (r->offset + r->length > LS_PROTO_MAX_INT)
    return ls_diag_set(diag, err, "offset + length: must be at most %llu",
                       (unsigned long long)LS_PROTO_MAX_INT);
  return LS_OK;
}

static int compare_ids(const void *a, const void *b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Paths compare byte-wise with '/' lowest, so a path's descendants sort
 * right after it: "a", "a/b", "a-b". */
static int compare_paths(const void *a, const void *b)
{
  const unsigned char *x = *(const unsigned char *const *)a;
  const unsigned char *y = *(const unsigned char *const *)b;
  while (*x && *x == *y)
    x++, y++;
  unsigned cx = *x == '/' ? 1 : *x ? *x + 1u : 0;
  unsigned cy = *y == '/' ? 1 : *y ? *y + 1u : 0;
  return (cx > cy) - (cx < cy);
}

static bool is_same_or_parent(const char *parent, const char *child)
{
  size_t n = strlen(parent);
  return strncmp(parent, child, n) == 0 && (child[n] == '\0' || child[n] == '/');
}

/* Sorts a copy of the names and reports the first clash, if any. */
static int check_unique(const char **names, size_t count, bool paths, const char *what,
                        int err, ls_diag *diag)
{
  qsort(names, count, sizeof *names, paths ? compare_paths : compare_ids);
  for (size_t i = 1; i < count; i++) {
    bool clash = paths ? is_same_or_parent(names[i - 1], names[i])
                       : strcmp(names[i - 1], names[i]) == 0;
    if (clash)
      return ls_diag_set(diag, err, "%s: duplicate or overlapping entries", what);
  }
  return LS_OK;
}

static int validate_game_info(const ls_msg_game_info *g, size_t i, int err, ls_diag *diag)
{
  char where[48];
  snprintf(where, sizeof where, "games[%zu].", i);
  int rc;
  if ((rc = check_id(g->id, where, err, diag)) ||
      (rc = check_text(g->name, where, "name", 1, LS_PROTO_MAX_GAME_NAME, err, diag)) ||
      (rc = check_text(g->version, where, "version", 1, LS_PROTO_MAX_VERSION, err, diag)))
    return rc;
  return check_max(g->size, LS_PROTO_MAX_INT, where, "size", err, diag);
}

static int validate_game_list(const ls_msg_game_list *list, int err, ls_diag *diag)
{
  if (list->count && !list->games)
    return ls_diag_set(diag, err, "games: missing");
  if (list->count > LS_PROTO_MAX_GAMES)
    return ls_diag_set(diag, err, "games: %zu entries, at most %u", list->count,
                       LS_PROTO_MAX_GAMES);
  for (size_t i = 0; i < list->count; i++) {
    int rc = validate_game_info(&list->games[i], i, err, diag);
    if (rc)
      return rc;
  }
  if (list->count < 2)
    return LS_OK;
  const char **ids = malloc(list->count * sizeof *ids);
  if (!ids)
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  for (size_t i = 0; i < list->count; i++)
    ids[i] = list->games[i].id;
  int rc = check_unique(ids, list->count, false, "games", err, diag);
  free(ids);
  return rc;
}

static int validate_file_entry(const ls_msg_file_entry *f, size_t i, uint32_t chunk_size,
                               int err, ls_diag *diag)
{
  char where[48];
  snprintf(where, sizeof where, "files[%zu].", i);
  int rc;
  if ((rc = check_path(f->path, where, err, diag)) ||
      (rc = check_max(f->size, LS_PROTO_MAX_INT, where, "size", err, diag)))
    return rc;
  if (f->chunk_count != ls_proto_chunk_count(f->size, chunk_size))
    return ls_diag_set(diag, err, "%ssha256: must hold one hash per chunk (%llu)", where,
                       (unsigned long long)ls_proto_chunk_count(f->size, chunk_size));
  if (f->chunk_count && !f->sha256)
    return ls_diag_set(diag, err, "%ssha256: missing", where);
  return LS_OK;
}

static int validate_files(const ls_msg_game_files *gf, int err, ls_diag *diag)
{
  uint64_t total = 0;
  for (size_t i = 0; i < gf->file_count; i++) {
    int rc = validate_file_entry(&gf->files[i], i, gf->chunk_size, err, diag);
    if (rc)
      return rc;
    total += gf->files[i].size; /* both <= 2^53 - 1 here: no wrap */
    if (total > LS_PROTO_MAX_INT)
      return ls_diag_set(diag, err, "files: total size over %llu bytes",
                         (unsigned long long)LS_PROTO_MAX_INT);
  }
  if (gf->file_count < 2)
    return LS_OK;
  const char **paths = malloc(gf->file_count * sizeof *paths);
  if (!paths)
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  for (size_t i = 0; i < gf->file_count; i++)
    paths[i] = gf->files[i].path;
  int rc = check_unique(paths, gf->file_count, true, "files", err, diag);
  free(paths);
  return rc;
}

static int validate_game_files(const ls_msg_game_files *gf, int err, ls_diag *diag)
{
  int rc;
  if ((rc = check_id(gf->id, "", err, diag)) ||
      (rc = check_text(gf->version, "", "version", 1, LS_PROTO_MAX_VERSION, err, diag)))
    return rc;
  if (gf->chunk_size != LS_CHUNK_SIZE)
    return ls_diag_set(diag, err, "chunk_size: must be %u", LS_CHUNK_SIZE);
  if (gf->file_count && !gf->files)
    return ls_diag_set(diag, err, "files: missing");
  return validate_files(gf, err, diag);
}

static int validate(const ls_msg *msg, int err, ls_diag *diag)
{
  switch (msg->type) {
  case LS_MSG_HELLO:
  case LS_MSG_HELLO_ACK:
    return validate_hello(&msg->hello, err, diag);
  case LS_MSG_PING:
  case LS_MSG_LIST_GAMES:
  case LS_MSG_PONG:
    return LS_OK;
  case LS_MSG_GET_GAME:
  case LS_MSG_GAME_NOT_FOUND:
    return check_id(msg->game.id, "", err, diag);
  case LS_MSG_GET_GAME_FILE_DATA:
    return validate_file_ref(msg->file.id, msg->file.path, err, diag);
  case LS_MSG_GET_GAME_FILE_CHUNK:
    return validate_range(&msg->range, true, err, diag);
  case LS_MSG_FILE_DATA:
    return validate_range(&msg->range, false, err, diag);
  case LS_MSG_GAME_LIST:
    return validate_game_list(&msg->game_list, err, diag);
  case LS_MSG_GAME_FILES:
    return validate_game_files(&msg->game_files, err, diag);
  case LS_MSG_INVALID_REQUEST:
    return check_text(msg->invalid.reason, "", "reason", 0, LS_PROTO_MAX_REASON, err, diag);
  default:
    return ls_diag_set(diag, err, "unknown message type");
  }
}

/* ------------------------------------------------------------------------ */
/* Decoding: JSON fields into the struct. Types, presence and number ranges
 * are checked here; the rest by validate(). `where` prefixes field names in
 * reasons ("files[2]."). */

static int get_value(const json_t *obj, const char *where, const char *key,
                     const json_t **out, ls_diag *diag)
{
  *out = json_object_get(obj, key);
  if (!*out)
    return ls_diag_set(diag, LS_EFORMAT, "%s%s: missing", where, key);
  return LS_OK;
}

/* The string's bytes and length (what jansson's "s%" gives): embedded NUL
 * is refused rather than silently cutting the string. */
static int get_string_view(const json_t *obj, const char *where, const char *key,
                           const char **s, size_t *len, ls_diag *diag)
{
  const json_t *v;
  int rc = get_value(obj, where, key, &v, diag);
  if (rc)
    return rc;
  if (!json_is_string(v))
    return ls_diag_set(diag, LS_EFORMAT, "%s%s: must be a string", where, key);
  *s = json_string_value(v);
  *len = json_string_length(v);
  if (memchr(*s, '\0', *len))
    return ls_diag_set(diag, LS_EFORMAT, "%s%s: must not contain NUL", where, key);
  return LS_OK;
}

static int get_string(const json_t *obj, const char *where, const char *key, char **out,
                      ls_diag *diag)
{
  const char *s = NULL;
  size_t len = 0;
  int rc = get_string_view(obj, where, key, &s, &len, diag);
  if (rc)
    return rc;
  *out = malloc(len + 1);
  if (!*out)
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  memcpy(*out, s, len);
  (*out)[len] = '\0';
  return LS_OK;
}

/* A JSON integer (never a real such as 1.0) in 0 .. max. */
static int get_uint(const json_t *obj, const char *where, const char *key, uint64_t max,
                    uint64_t *out, ls_diag *diag)
{
  const json_t *v;
  int rc = get_value(obj, where, key, &v, diag);
  if (rc)
    return rc;
  if (!json_is_integer(v))
    return ls_diag_set(diag, LS_EFORMAT, "%s%s: must be an integer", where, key);
  json_int_t i = json_integer_value(v);
  if (i < 0)
    return ls_diag_set(diag, LS_EFORMAT, "%s%s: must not be negative", where, key);
  if ((unsigned long long)i > max)
    return ls_diag_set(diag, LS_EFORMAT, "%s%s: must be at most %llu", where, key,
                       (unsigned long long)max);
  *out = (uint64_t)i;
  return LS_OK;
}

static int get_array(const json_t *obj, const char *where, const char *key,
                     const json_t **out, ls_diag *diag)
{
  int rc = get_value(obj, where, key, out, diag);
  if (rc)
    return rc;
  if (!json_is_array(*out))
    return ls_diag_set(diag, LS_EFORMAT, "%s%s: must be an array", where, key);
  return LS_OK;
}

static int decode_nothing(const json_t *obj, ls_msg *msg, ls_diag *diag)
{
  (void)obj, (void)msg, (void)diag;
  return LS_OK;
}

static int decode_hello(const json_t *obj, ls_msg *msg, ls_diag *diag)
{
  ls_msg_hello *h = &msg->hello;
  uint64_t version = 0;
  const char *peer_id = NULL;
  size_t len = 0;
  int rc;
  if ((rc = get_uint(obj, "", "protocol_version", UINT32_MAX, &version, diag)) ||
      (rc = get_string_view(obj, "", "peer_id", &peer_id, &len, diag)))
    return rc;
  h->protocol_version = (uint32_t)version;
  if (len != LS_PROTO_PEER_ID_LEN)
    return ls_diag_set(diag, LS_EFORMAT, "peer_id: must be %d lowercase hex digits",
                       LS_PROTO_PEER_ID_LEN);
  memcpy(h->peer_id, peer_id, len);
  h->peer_id[len] = '\0';
  if (json_object_get(obj, "party")) {
    const char *proof = NULL;
    if ((rc = get_string_view(obj, "", "party", &proof, &len, diag)))
      return rc;
    if (len != LS_PROTO_PARTY_PROOF_LEN)
      return ls_diag_set(diag, LS_EFORMAT, "party: must be %d lowercase hex digits",
                         LS_PROTO_PARTY_PROOF_LEN);
    memcpy(h->party, proof, len + 1);
  }
  return get_string(obj, "", "name", &h->name, diag);
}

static int decode_game_ref(const json_t *obj, ls_msg *msg, ls_diag *diag)
{
  return get_string(obj, "", "id", &msg->game.id, diag);
}

static int decode_file_ref(const json_t *obj, ls_msg *msg, ls_diag *diag)
{
  int rc = get_string(obj, "", "id", &msg->file.id, diag);
  return rc ? rc : get_string(obj, "", "path", &msg->file.path, diag);
}

static int decode_range(const json_t *obj, ls_msg *msg, ls_diag *diag)
{
  ls_msg_file_range *r = &msg->range;
  int rc;
  if ((rc = get_string(obj, "", "id", &r->id, diag)) ||
      (rc = get_string(obj, "", "path", &r->path, diag)) ||
      (rc = get_uint(obj, "", "offset", LS_PROTO_MAX_INT, &r->offset, diag)) ||
      (rc = get_uint(obj, "", "length", LS_PROTO_MAX_INT, &r->length, diag)))
    return rc;
  return LS_OK;
}

static int decode_game_info(const json_t *v, size_t i, ls_msg_game_info *g, ls_diag *diag)
{
  char where[48];
  snprintf(where, sizeof where, "games[%zu].", i);
  if (!json_is_object(v))
    return ls_diag_set(diag, LS_EFORMAT, "games[%zu]: must be an object", i);
  int rc;
  if ((rc = get_string(v, where, "id", &g->id, diag)) ||
      (rc = get_string(v, where, "name", &g->name, diag)) ||
      (rc = get_string(v, where, "version", &g->version, diag)) ||
      (rc = get_uint(v, where, "size", LS_PROTO_MAX_INT, &g->size, diag)))
    return rc;
  return LS_OK;
}

/* calloc that also gives a valid (NULL) result for 0 elements. */
static int alloc_array(size_t count, size_t size, void **out, ls_diag *diag)
{
  *out = NULL;
  if (count == 0)
    return LS_OK;
  *out = calloc(count, size);
  return *out ? LS_OK : ls_diag_set(diag, LS_ENOMEM, "out of memory");
}

static int decode_game_list(const json_t *obj, ls_msg *msg, ls_diag *diag)
{
  ls_msg_game_list *list = &msg->game_list;
  const json_t *games;
  int rc = get_array(obj, "", "games", &games, diag);
  if (rc)
    return rc;
  size_t count = json_array_size(games);
  if (count > LS_PROTO_MAX_GAMES)
    return ls_diag_set(diag, LS_ETOOBIG, "games: %zu entries, at most %u", count,
                       LS_PROTO_MAX_GAMES);
  void *mem;
  if ((rc = alloc_array(count, sizeof *list->games, &mem, diag)))
    return rc;
  list->games = mem;
  list->count = count;
  for (size_t i = 0; i < count; i++)
    if ((rc = decode_game_info(json_array_get(games, i), i, &list->games[i], diag)))
      return rc;
  return LS_OK;
}

static int decode_hash(const json_t *v, const char *where, size_t k, uint8_t *out,
                       ls_diag *diag)
{
  const char *s = json_is_string(v) ? json_string_value(v) : NULL;
  if (!s || json_string_length(v) != 2 * LS_SHA256_LEN ||
      ls_hex_decode(s, out, LS_SHA256_LEN) != LS_OK)
    return ls_diag_set(diag, LS_EFORMAT, "%ssha256[%zu]: must be %d lowercase hex digits",
                       where, k, 2 * LS_SHA256_LEN);
  return LS_OK;
}

static int decode_file_entry(const json_t *v, size_t i, ls_msg_file_entry *f, ls_diag *diag)
{
  char where[48];
  snprintf(where, sizeof where, "files[%zu].", i);
  if (!json_is_object(v))
    return ls_diag_set(diag, LS_EFORMAT, "files[%zu]: must be an object", i);
  const json_t *hashes;
  int rc;
  if ((rc = get_string(v, where, "path", &f->path, diag)) ||
      (rc = get_uint(v, where, "size", LS_PROTO_MAX_INT, &f->size, diag)) ||
      (rc = get_array(v, where, "sha256", &hashes, diag)))
    return rc;
  size_t count = json_array_size(hashes);
  void *mem;
  if ((rc = alloc_array(count, LS_SHA256_LEN, &mem, diag)))
    return rc;
  f->sha256 = mem;
  f->chunk_count = count;
  for (size_t k = 0; k < count; k++)
    if ((rc = decode_hash(json_array_get(hashes, k), where, k,
                          f->sha256 + k * LS_SHA256_LEN, diag)))
      return rc;
  return LS_OK;
}

static int decode_game_files(const json_t *obj, ls_msg *msg, ls_diag *diag)
{
  ls_msg_game_files *gf = &msg->game_files;
  uint64_t chunk_size = 0;
  const json_t *files;
  int rc;
  if ((rc = get_string(obj, "", "id", &gf->id, diag)) ||
      (rc = get_string(obj, "", "version", &gf->version, diag)) ||
      (rc = get_uint(obj, "", "chunk_size", UINT32_MAX, &chunk_size, diag)) ||
      (rc = get_array(obj, "", "files", &files, diag)))
    return rc;
  gf->chunk_size = (uint32_t)chunk_size;
  if (gf->chunk_size != LS_CHUNK_SIZE) /* before the hash counts depend on it */
    return ls_diag_set(diag, LS_EFORMAT, "chunk_size: must be %u", LS_CHUNK_SIZE);
  size_t count = json_array_size(files);
  void *mem;
  if ((rc = alloc_array(count, sizeof *gf->files, &mem, diag)))
    return rc;
  gf->files = mem;
  gf->file_count = count;
  for (size_t i = 0; i < count; i++)
    if ((rc = decode_file_entry(json_array_get(files, i), i, &gf->files[i], diag)))
      return rc;
  return LS_OK;
}

static int decode_invalid(const json_t *obj, ls_msg *msg, ls_diag *diag)
{
  return get_string(obj, "", "reason", &msg->invalid.reason, diag);
}

/* Our words for the common JSON errors; NULL: use jansson's text. */
static const char *json_error_reason(enum json_error_code code)
{
  switch (code) {
  case json_error_null_character:
  case json_error_null_byte_in_key:
    return "strings must not contain NUL";
  case json_error_duplicate_key:
    return "duplicate key";
  case json_error_invalid_utf8:
    return "invalid UTF-8";
  case json_error_end_of_input_expected:
    return "data after the JSON object";
  case json_error_stack_overflow:
    return "nesting too deep";
  case json_error_numeric_overflow:
    return "number out of range";
  default:
    return NULL;
  }
}

/* jansson's error text may quote input bytes: keep printable ASCII only, so
 * the reason is safe to log and to send back. */
static int json_syntax_error(const json_error_t *jerr, ls_diag *diag)
{
  enum json_error_code code = json_error_code(jerr);
  if (code == json_error_out_of_memory)
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  const char *reason = json_error_reason(code);
  char text[sizeof jerr->text];
  size_t n = 0;
  for (; n + 1 < sizeof text && jerr->text[n]; n++) {
    unsigned char c = (unsigned char)jerr->text[n];
    text[n] = c >= 0x20 && c < 0x7f ? (char)c : '?';
  }
  text[n] = '\0';
  return ls_diag_set(diag, LS_EFORMAT, "invalid JSON at byte %d: %s", jerr->position,
                     reason ? reason : text);
}

static int decode_type(const json_t *root, enum ls_msg_dir dir, enum ls_msg_type *type,
                       ls_diag *diag)
{
  const char *name = NULL;
  size_t len = 0;
  int rc = get_string_view(root, "", "type", &name, &len, diag);
  if (rc)
    return rc;
  *type = type_by_name(name, len);
  if (*type == LS_MSG_NONE)
    return ls_diag_set(diag, LS_EPROTO, "unknown message type");
  if (TYPES[*type].dir != dir)
    return ls_diag_set(diag, LS_EPROTO, "%s is a %s, a %s was expected", TYPES[*type].name,
                       dir == LS_DIR_REQUEST ? "response" : "request",
                       dir == LS_DIR_REQUEST ? "request" : "response");
  return LS_OK;
}

static int decode_root(const json_t *root, enum ls_msg_dir dir, ls_msg *out, ls_diag *diag)
{
  if (!json_is_object(root))
    return ls_diag_set(diag, LS_EFORMAT, "message is not a JSON object");
  enum ls_msg_type type;
  int rc = decode_type(root, dir, &type, diag);
  if (rc)
    return rc;
  out->type = type;
  rc = TYPES[type].decode(root, out, diag);
  return rc ? rc : validate(out, LS_EFORMAT, diag);
}

int ls_msg_decode(const void *body, size_t len, enum ls_msg_dir dir, ls_msg *out,
                  ls_diag *diag)
{
  memset(out, 0, sizeof *out);
  if (dir != LS_DIR_REQUEST && dir != LS_DIR_RESPONSE)
    return ls_diag_set(diag, LS_EINVAL, "invalid direction");
  if (len == 0)
    return ls_diag_set(diag, LS_EFORMAT, "empty message");
  if (!body)
    return ls_diag_set(diag, LS_EINVAL, "no message");
  if (len > ls_proto_frame_limit(dir))
    return ls_diag_set(diag, LS_ETOOBIG, "message of %zu bytes exceeds the limit of %zu", len,
                       ls_proto_frame_limit(dir));
  json_error_t jerr;
  json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!root)
    return json_syntax_error(&jerr, diag);
  int rc = decode_root(root, dir, out, diag);
  json_decref(root);
  if (rc)
    ls_msg_clear(out);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Encoding. validate() has run, so a failure here means out of memory.
 * json_object_set_new and json_array_append_new consume the value and fail
 * (returning -1) on a NULL value or container, so calls can be chained. */

static int set_string(json_t *obj, const char *key, const char *value)
{
  return json_object_set_new(obj, key, json_string(value));
}

static int set_uint(json_t *obj, const char *key, uint64_t value)
{
  return json_object_set_new(obj, key, json_integer((json_int_t)value));
}

static int encode_nothing(json_t *obj, const ls_msg *msg)
{
  (void)obj, (void)msg;
  return 0;
}

static int encode_hello(json_t *obj, const ls_msg *msg)
{
  return set_uint(obj, "protocol_version", msg->hello.protocol_version) |
         set_string(obj, "peer_id", msg->hello.peer_id) |
         set_string(obj, "name", msg->hello.name) |
         (msg->hello.party[0] ? set_string(obj, "party", msg->hello.party) : 0);
}

static int encode_game_ref(json_t *obj, const ls_msg *msg)
{
  return set_string(obj, "id", msg->game.id);
}

static int encode_file_ref(json_t *obj, const ls_msg *msg)
{
  return set_string(obj, "id", msg->file.id) | set_string(obj, "path", msg->file.path);
}

static int encode_range(json_t *obj, const ls_msg *msg)
{
  const ls_msg_file_range *r = &msg->range;
  return set_string(obj, "id", r->id) | set_string(obj, "path", r->path) |
         set_uint(obj, "offset", r->offset) | set_uint(obj, "length", r->length);
}


static json_t *game_info_json(const ls_msg_game_info *g)
{
  json_t *obj = json_object();
  if (set_string(obj, "id", g->id) | set_string(obj, "name", g->name) |
      set_string(obj, "version", g->version) | set_uint(obj, "size", g->size)) {
    json_decref(obj);
    return NULL;
  }
  return obj;
}

static int encode_game_list(json_t *obj, const ls_msg *msg)
{
  const ls_msg_game_list *list = &msg->game_list;
  json_t *games = json_array();
  if (json_object_set_new(obj, "games", games))
    return -1;
  for (size_t i = 0; i < list->count; i++)
    if (json_array_append_new(games, game_info_json(&list->games[i])))
      return -1;
  return 0;
}

static json_t *hash_json(const uint8_t *hash)
{
  char hex[2 * LS_SHA256_LEN + 1];
  ls_hex_encode(hash, LS_SHA256_LEN, hex);
  return json_stringn(hex, 2 * LS_SHA256_LEN);
}

static json_t *hashes_json(const ls_msg_file_entry *f)
{
  json_t *hashes = json_array();
  for (size_t k = 0; k < f->chunk_count; k++)
    if (json_array_append_new(hashes, hash_json(f->sha256 + k * LS_SHA256_LEN))) {
      json_decref(hashes);
      return NULL;
    }
  return hashes;
}

static json_t *file_entry_json(const ls_msg_file_entry *f)
{
  json_t *obj = json_object();
  if (set_string(obj, "path", f->path) | set_uint(obj, "size", f->size) |
      json_object_set_new(obj, "sha256", hashes_json(f))) {
    json_decref(obj);
    return NULL;
  }
  return obj;
}

static int encode_game_files(json_t *obj, const ls_msg *msg)
{
  const ls_msg_game_files *gf = &msg->game_files;
  json_t *files = json_array();
  if (set_string(obj, "id", gf->id) | set_string(obj, "version", gf->version) |
      set_uint(obj, "chunk_size", gf->chunk_size) | json_object_set_new(obj, "files", files))
    return -1;
  for (size_t i = 0; i < gf->file_count; i++)
    if (json_array_append_new(files, file_entry_json(&gf->files[i])))
      return -1;
  return 0;
}

static int encode_invalid(json_t *obj, const ls_msg *msg)
{
  return set_string(obj, "reason", msg->invalid.reason);
}

static int build_json(const ls_msg *msg, json_t **out, ls_diag *diag)
{
  *out = NULL;
  const type_info *info = type_info_of(msg->type);
  if (!info)
    return ls_diag_set(diag, LS_EINVAL, "unknown message type");
  int rc = validate(msg, LS_EINVAL, diag);
  if (rc)
    return rc;
  json_t *obj = json_object();
  if (!obj || set_string(obj, "type", info->name) || info->encode(obj, msg)) {
    json_decref(obj);
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  }
  *out = obj;
  return LS_OK;
}

/* Dumps msg into a new buffer with `headroom` bytes before the body and one
 * NUL after it. */
static int dump(const ls_msg *msg, size_t headroom, uint8_t **buf, size_t *body_len,
                ls_diag *diag)
{
  *buf = NULL;
  *body_len = 0;
  json_t *obj;
  int rc = build_json(msg, &obj, diag);
  if (rc)
    return rc;
  size_t limit = ls_proto_frame_limit(ls_msg_type_dir(msg->type));
  size_t len = json_dumpb(obj, NULL, 0, JSON_COMPACT);
  if (len == 0)
    rc = ls_diag_set(diag, LS_ENOMEM, "out of memory");
  else if (len > limit)
    rc = ls_diag_set(diag, LS_ETOOBIG, "%s of %zu bytes exceeds the frame limit of %zu",
                     ls_msg_type_name(msg->type), len, limit);
  else if (!(*buf = malloc(headroom + len + 1)))
    rc = ls_diag_set(diag, LS_ENOMEM, "out of memory");
  else if (json_dumpb(obj, (char *)*buf + headroom, len, JSON_COMPACT) != len)
    rc = ls_diag_set(diag, LS_ENOMEM, "out of memory");
  json_decref(obj);
  if (rc) {
    free(*buf);
    *buf = NULL;
    return rc;
  }
  (*buf)[headroom + len] = '\0';
  *body_len = len;
  return LS_OK;
}

int ls_msg_encode(const ls_msg *msg, char **json, size_t *len, ls_diag *diag)
{
  uint8_t *buf;
  int rc = dump(msg, 0, &buf, len, diag);
  *json = (char *)buf;
  return rc;
}

int ls_msg_encode_frame(const ls_msg *msg, uint8_t **frame, size_t *len, ls_diag *diag)
{
  size_t body_len;
  int rc = dump(msg, LS_FRAME_HEADER_LEN, frame, &body_len, diag);
  *len = 0;
  if (rc)
    return rc;
  ls_frame_put_length(*frame, (uint32_t)body_len);
  *len = LS_FRAME_HEADER_LEN + body_len;
  return LS_OK;
}

/* ------------------------------------------------------------------------ */
/* Freeing and equality */

static void clear_game_list(ls_msg_game_list *list)
{
  for (size_t i = 0; i < list->count; i++) {
    free(list->games[i].id);
    free(list->games[i].name);
    free(list->games[i].version);
  }
  free(list->games);
}

static void clear_game_files(ls_msg_game_files *gf)
{
  for (size_t i = 0; i < gf->file_count; i++) {
    free(gf->files[i].path);
    free(gf->files[i].sha256);
  }
  free(gf->files);
  free(gf->id);
  free(gf->version);
}

void ls_msg_clear(ls_msg *msg)
{
  if (!msg)
    return;
  switch (msg->type) {
  case LS_MSG_HELLO:
  case LS_MSG_HELLO_ACK:
    free(msg->hello.name);
    break;
  case LS_MSG_GET_GAME:
  case LS_MSG_GAME_NOT_FOUND:
    free(msg->game.id);
    break;
  case LS_MSG_GET_GAME_FILE_DATA:
    free(msg->file.id);
    free(msg->file.path);
    break;
  case LS_MSG_GET_GAME_FILE_CHUNK:
  case LS_MSG_FILE_DATA:
    free(msg->range.id);
    free(msg->range.path);
    break;
  case LS_MSG_GAME_LIST:
    clear_game_list(&msg->game_list);
    break;
  case LS_MSG_GAME_FILES:
    clear_game_files(&msg->game_files);
    break;
  case LS_MSG_INVALID_REQUEST:
    free(msg->invalid.reason);
    break;
  default:
    break;
  }
  memset(msg, 0, sizeof *msg);
}

/* ---- deep copies ------------------------------------------------------- */

static int copy_str(char **dst, const char *src)
{
  *dst = src ? strdup(src) : NULL;
  return src && !*dst ? LS_ENOMEM : LS_OK;
}

/* The copies fill dst in place, counting what they filled, so that
 * ls_msg_clear frees a half-made copy. */
static int copy_game_list(ls_msg_game_list *dst, const ls_msg_game_list *src)
{
  if (src->count && !(dst->games = calloc(src->count, sizeof *dst->games)))
    return LS_ENOMEM;
  for (size_t i = 0; i < src->count; i++) {
    const ls_msg_game_info *g = &src->games[i];
    ls_msg_game_info *c = &dst->games[dst->count++];
    c->size = g->size;
    if (copy_str(&c->id, g->id) || copy_str(&c->name, g->name) ||
        copy_str(&c->version, g->version))
      return LS_ENOMEM;
  }
  return LS_OK;
}

static int copy_file_entry(ls_msg_file_entry *dst, const ls_msg_file_entry *src)
{
  dst->size = src->size;
  dst->chunk_count = src->chunk_count;
  if (copy_str(&dst->path, src->path))
    return LS_ENOMEM;
  if (!src->sha256 || src->chunk_count == 0)
    return LS_OK;
  size_t bytes = src->chunk_count * LS_SHA256_LEN;
  if (!(dst->sha256 = malloc(bytes)))
    return LS_ENOMEM;
  memcpy(dst->sha256, src->sha256, bytes);
  return LS_OK;
}

static int copy_game_files(ls_msg_game_files *dst, const ls_msg_game_files *src)
{
  dst->chunk_size = src->chunk_size;
  if (copy_str(&dst->id, src->id) || copy_str(&dst->version, src->version))
    return LS_ENOMEM;
  if (src->file_count && !(dst->files = calloc(src->file_count, sizeof *dst->files)))
    return LS_ENOMEM;
  for (size_t i = 0; i < src->file_count; i++)
    if (copy_file_entry(&dst->files[dst->file_count++], &src->files[i]) != LS_OK)
      return LS_ENOMEM;
  return LS_OK;
}

static int copy_fields(ls_msg *dst, const ls_msg *src)
{
  switch (src->type) {
  case LS_MSG_HELLO:
  case LS_MSG_HELLO_ACK:
    dst->hello.protocol_version = src->hello.protocol_version;
    memcpy(dst->hello.peer_id, src->hello.peer_id, sizeof dst->hello.peer_id);
    memcpy(dst->hello.party, src->hello.party, sizeof dst->hello.party);
    return copy_str(&dst->hello.name, src->hello.name);
  case LS_MSG_GET_GAME:
  case LS_MSG_GAME_NOT_FOUND:
    return copy_str(&dst->game.id, src->game.id);
  case LS_MSG_GET_GAME_FILE_DATA:
    return copy_str(&dst->file.id, src->file.id) ? LS_ENOMEM
                                                 : copy_str(&dst->file.path, src->file.path);
  case LS_MSG_GET_GAME_FILE_CHUNK:
  case LS_MSG_FILE_DATA:
    dst->range.offset = src->range.offset;
    dst->range.length = src->range.length;
    return copy_str(&dst->range.id, src->range.id) ? LS_ENOMEM
                                                   : copy_str(&dst->range.path, src->range.path);
  case LS_MSG_GAME_LIST:
    return copy_game_list(&dst->game_list, &src->game_list);
  case LS_MSG_GAME_FILES:
    return copy_game_files(&dst->game_files, &src->game_files);
  case LS_MSG_INVALID_REQUEST:
    return copy_str(&dst->invalid.reason, src->invalid.reason);
  default:
    return LS_OK;
  }
}

int ls_msg_copy(ls_msg *dst, const ls_msg *src)
{
  *dst = (ls_msg){.type = src->type};
  int rc = copy_fields(dst, src);
  if (rc != LS_OK)
    ls_msg_clear(dst);
  return rc;
}

static bool str_equal(const char *a, const char *b)
{
  return a == b || (a && b && strcmp(a, b) == 0);
}

static bool game_info_equal(const ls_msg_game_info *a, const ls_msg_game_info *b)
{
  return str_equal(a->id, b->id) && str_equal(a->name, b->name) &&
         str_equal(a->version, b->version) && a->size == b->size;
}

static bool file_entry_equal(const ls_msg_file_entry *a, const ls_msg_file_entry *b)
{
  if (!str_equal(a->path, b->path) || a->size != b->size || a->chunk_count != b->chunk_count)
    return false;
  return a->chunk_count == 0 ||
         memcmp(a->sha256, b->sha256, a->chunk_count * LS_SHA256_LEN) == 0;
}

static bool game_list_equal(const ls_msg_game_list *a, const ls_msg_game_list *b)
{
  if (a->count != b->count)
    return false;
  for (size_t i = 0; i < a->count; i++)
    if (!game_info_equal(&a->games[i], &b->games[i]))
      return false;
  return true;
}

static bool game_files_equal(const ls_msg_game_files *a, const ls_msg_game_files *b)
{
  if (!str_equal(a->id, b->id) || !str_equal(a->version, b->version) ||
      a->chunk_size != b->chunk_size || a->file_count != b->file_count)
    return false;
  for (size_t i = 0; i < a->file_count; i++)
    if (!file_entry_equal(&a->files[i], &b->files[i]))
      return false;
  return true;
}

static bool range_equal(const ls_msg_file_range *a, const ls_msg_file_range *b)
{
  return str_equal(a->id, b->id) && str_equal(a->path, b->path) && a->offset == b->offset &&
         a->length == b->length;
}

static bool hello_equal(const ls_msg_hello *a, const ls_msg_hello *b)
{
  return a->protocol_version == b->protocol_version &&
         strcmp(a->peer_id, b->peer_id) == 0 && str_equal(a->name, b->name) &&
         strcmp(a->party, b->party) == 0;
}

bool ls_msg_equal(const ls_msg *a, const ls_msg *b)
{
  if (a->type != b->type)
    return false;
  switch (a->type) {
  case LS_MSG_HELLO:
  case LS_MSG_HELLO_ACK:
    return hello_equal(&a->hello, &b->hello);
  case LS_MSG_GET_GAME:
  case LS_MSG_GAME_NOT_FOUND:
    return str_equal(a->game.id, b->game.id);
  case LS_MSG_GET_GAME_FILE_DATA:
    return str_equal(a->file.id, b->file.id) && str_equal(a->file.path, b->file.path);
  case LS_MSG_GET_GAME_FILE_CHUNK:
  case LS_MSG_FILE_DATA:
    return range_equal(&a->range, &b->range);
  case LS_MSG_GAME_LIST:
    return game_list_equal(&a->game_list, &b->game_list);
  case LS_MSG_GAME_FILES:
    return game_files_equal(&a->game_files, &b->game_files);
  case LS_MSG_INVALID_REQUEST:
    return str_equal(a->invalid.reason, b->invalid.reason);
  default:
    return true;
  }
}
