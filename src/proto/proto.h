/* The wire protocol codec (docs/PROTOCOL.md): message structs, their JSON
 * encoding and strict decoding, and the length-prefixed framing.
 *
 * No networking here: the request server and client (src/node/) feed
 * stream bytes to an ls_frame_reader, decode the frame it yields, and send
 * what ls_msg_encode_frame produces.
 *
 * A decoded message has passed every check the codec can make without the
 * file system: types, presence, ranges, safe ids and paths, hash counts.
 * What needs local state (is the game in the catalog, is the range inside
 * the file) is the receiver's job. Decode errors carry a short reason in the
 * ls_diag that may be sent back as InvalidRequest{reason}. */
#ifndef LS_PROTO_PROTO_H
#define LS_PROTO_PROTO_H

#include "core/relpath.h"

#include <lanspread/error.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LS_PROTO_VERSION 1
#define LS_PROTO_ALPN "lanspread/1"

/* Frame: 4-byte big-endian body length, then the JSON body. */
#define LS_FRAME_HEADER_LEN 4
#define LS_PROTO_MAX_REQUEST_FRAME (64u * 1024u)          /* body bytes */
#define LS_PROTO_MAX_RESPONSE_FRAME (16u * 1024u * 1024u) /* body bytes */
/* A response may be smaller than that: ls_proto_response_limit. */
#define LS_PROTO_MAX_GAME_LIST_FRAME (4u * 1024u * 1024u) /* GameList body bytes */
#define LS_PROTO_MAX_SMALL_FRAME (64u * 1024u) /* HelloAck, Pong, FileData headers */
/* A GameList names at most this many games. */
#define LS_PROTO_MAX_GAMES 4096u

/* Files are hashed in chunks of this size (the last one may be shorter). */
#define LS_CHUNK_SIZE 1048576u
/* GetGameFileChunk.length is 1 .. this (16 chunks, 16 MiB). */
#define LS_PROTO_MAX_CHUNK_LENGTH (16u * LS_CHUNK_SIZE)
/* Largest size, offset, length or offset + length: 2^53 - 1, the largest
 * integer every JSON implementation holds exactly. */
#define LS_PROTO_MAX_INT 9007199254740991ull

/* String limits, in bytes of UTF-8. */
#define LS_PROTO_PEER_ID_LEN 64   /* exactly: lowercase hex SHA-256 */
#define LS_PROTO_PARTY_PROOF_LEN 64 /* exactly: lowercase hex HMAC-SHA256 */
/* InvalidRequest reasons a client acts on (their start is what it reads). */
#define LS_PROTO_REASON_OTHER_PARTY "party: this peer answers only members of its party"
#define LS_PROTO_REASON_HELLO_FIRST "hello first: no request is answered before a Hello"
#define LS_PROTO_MAX_NAME 64      /* peer name, 0 .. 64 */
#define LS_PROTO_MAX_GAME_NAME 256 /* game name, 1 .. 256 */
#define LS_PROTO_MAX_VERSION 128  /* version, 1 .. 128 */
#define LS_PROTO_MAX_PATH LS_RELPATH_MAX_LEN /* file path: core/relpath.h */
#define LS_PROTO_MAX_REASON 1024  /* InvalidRequest reason, 0 .. 1024 */
#define LS_SHA256_LEN 32          /* bytes of one chunk hash */

enum ls_msg_dir {
  LS_DIR_REQUEST,  /* client to server */
  LS_DIR_RESPONSE, /* server to client */
};

enum ls_msg_type {
  LS_MSG_NONE = 0, /* a cleared or failed message */
  /* requests */
  LS_MSG_HELLO,                /* hello */
  LS_MSG_PING,                 /* (no fields) */
  LS_MSG_LIST_GAMES,           /* (no fields) */
  LS_MSG_GET_GAME,             /* game */
  LS_MSG_GET_GAME_FILE_DATA,   /* file */
  LS_MSG_GET_GAME_FILE_CHUNK,  /* range */
  /* responses */
  LS_MSG_HELLO_ACK,            /* hello */
  LS_MSG_PONG,                 /* (no fields) */
  LS_MSG_GAME_LIST,            /* game_list */
  LS_MSG_GAME_FILES,           /* game_files */
  LS_MSG_GAME_NOT_FOUND,       /* game */
  LS_MSG_INVALID_REQUEST,      /* invalid */
  LS_MSG_FILE_DATA,            /* range; `length` raw bytes follow the frame */
  LS_MSG_TYPE_COUNT
};

typedef struct ls_msg_hello {
  uint32_t protocol_version;                 /* >= 1; we speak LS_PROTO_VERSION */
  char peer_id[LS_PROTO_PEER_ID_LEN + 1];    /* 64 lowercase hex digits */
  char *name;                                /* 0 .. LS_PROTO_MAX_NAME bytes */
  /* Optional: proof of the party key for this TLS session (docs/
   * PROTOCOL.md "Party key"), 64 lowercase hex digits; "" when absent. */
  char party[LS_PROTO_PARTY_PROOF_LEN + 1];
} ls_msg_hello;

typedef struct ls_msg_game_ref {
  char *id; /* safe catalog id (ls_catalog_id_is_safe) */
} ls_msg_game_ref;

typedef struct ls_msg_file_ref {
  char *id;
  char *path; /* ls_relpath_check (core/relpath.h) */
} ls_msg_file_ref;

/* GetGameFileChunk: length 1 .. LS_PROTO_MAX_CHUNK_LENGTH.
 * FileData: length 0 .. LS_PROTO_MAX_INT (a whole file).
 * Both: offset + length <= LS_PROTO_MAX_INT. */
typedef struct ls_msg_file_range {
  char *id;
  char *path;
  uint64_t offset;
  uint64_t length;
} ls_msg_file_range;

typedef struct ls_msg_game_info {
  char *id;
  char *name;     /* 1 .. LS_PROTO_MAX_GAME_NAME bytes */
  char *version;  /* 1 .. LS_PROTO_MAX_VERSION bytes */
  uint64_t size;  /* <= LS_PROTO_MAX_INT */
} ls_msg_game_info;

typedef struct ls_msg_game_list {
  size_t count;
  ls_msg_game_info *games; /* ids unique */
} ls_msg_game_list;

typedef struct ls_msg_file_entry {
  char *path;
  uint64_t size;
  size_t chunk_count; /* == ls_proto_chunk_count(size, chunk_size) */
  uint8_t *sha256;    /* chunk_count * LS_SHA256_LEN bytes (NULL when 0) */
} ls_msg_file_entry;

typedef struct ls_msg_game_files {
  char *id;
  char *version;
  uint32_t chunk_size; /* LS_CHUNK_SIZE in protocol version 1 */
  size_t file_count;
  ls_msg_file_entry *files; /* paths unique; no path is a directory of another */
} ls_msg_game_files;

typedef struct ls_msg_invalid_request {
  char *reason; /* 0 .. LS_PROTO_MAX_REASON bytes */
} ls_msg_invalid_request;

/* One message: `type` says which union member is in use (see the enum).
 * A decoded message owns all its memory (malloc'ed); ls_msg_clear frees it.
 * A message built only for encoding may point at borrowed strings: encoding
 * never takes ownership, so such a message is simply not cleared. */
typedef struct ls_msg {
  enum ls_msg_type type;
  union {
    ls_msg_hello hello;
    ls_msg_game_ref game;
    ls_msg_file_ref file;
    ls_msg_file_range range;
    ls_msg_game_list game_list;
    ls_msg_game_files game_files;
    ls_msg_invalid_request invalid;
  };
} ls_msg;

/* ---- messages ---- */

/* Decodes one frame body (the JSON, without the length prefix) expected in
 * direction dir. Errors: LS_ETOOBIG (body over the direction's frame limit),
 * LS_EFORMAT (empty, not JSON, not an object, a missing, mistyped or invalid
 * field), LS_EPROTO (unknown type, or a message of the other direction),
 * LS_ENOMEM; LS_EINVAL for a caller error (body NULL, bad dir). On error
 * *out is cleared (LS_MSG_NONE) and diag holds a short reason, safe to send
 * back as InvalidRequest{reason}. */
int ls_msg_decode(const void *body, size_t len, enum ls_msg_dir dir, ls_msg *out,
                  ls_diag *diag);

/* Encodes msg as a compact JSON body: *json is malloc'ed, NUL-terminated,
 * *len excludes the NUL. The message is validated exactly as the decoder
 * would: LS_EINVAL when it is not a valid message, LS_ETOOBIG when the body
 * exceeds its direction's frame limit, LS_ENOMEM. */
int ls_msg_encode(const ls_msg *msg, char **json, size_t *len, ls_diag *diag);

/* Like ls_msg_encode, but *frame is the whole frame: length prefix + body. */
int ls_msg_encode_frame(const ls_msg *msg, uint8_t **frame, size_t *len, ls_diag *diag);

/* Frees what msg owns and sets it to LS_MSG_NONE. NULL is fine. */
void ls_msg_clear(ls_msg *msg);

/* Same type and same field values. */
bool ls_msg_equal(const ls_msg *a, const ls_msg *b);
/* A deep copy of src into dst (whatever dst held is not freed): dst owns
 * all its memory, shares none with src, and is ls_msg_equal to it. src may
 * be a message of borrowed strings. LS_ENOMEM leaves dst cleared. */
int ls_msg_copy(ls_msg *dst, const ls_msg *src);

/* The wire name ("GetGame"), or NULL for LS_MSG_NONE and unknown values. */
const char *ls_msg_type_name(enum ls_msg_type type);

/* Which way a message type travels. type must be a real message type. */
enum ls_msg_dir ls_msg_type_dir(enum ls_msg_type type);

/* ---- field rules, for code that builds messages ---- */

/* Exactly LS_PROTO_PEER_ID_LEN lowercase hex digits. */
bool ls_proto_peer_id_is_valid(const char *peer_id);

/* ceil(size / chunk_size): how many hashes a file of that size carries.
 * chunk_size must not be 0. */
uint64_t ls_proto_chunk_count(uint64_t size, uint32_t chunk_size);

/* ---- frames ---- */

/* Largest body a frame may carry in direction dir. */
size_t ls_proto_frame_limit(enum ls_msg_dir dir);
/* The largest response frame a client accepts to a request of this type:
 * no peer can make us read and parse 16 MiB for a Ping. */
size_t ls_proto_response_limit(enum ls_msg_type request);

/* Incremental reader of frames arriving in pieces. Fields are private.
 * It consumes bytes only up to the end of a frame, so bytes after it (the
 * raw file data following a FileData header) stay with the caller. A
 * length of 0 or over the limit fails as soon as its 4 bytes are in; the
 * body buffer grows with the bytes received and never exceeds the limit. */
typedef struct ls_frame_reader {
  enum ls_msg_dir dir;
  size_t limit; /* ls_proto_frame_limit(dir) unless lowered */
  int state;
  int error;
  uint8_t header[LS_FRAME_HEADER_LEN];
  size_t header_have;
  size_t body_len;
  size_t body_have;
  size_t body_cap;
  uint8_t *body;
} ls_frame_reader;

void ls_frame_reader_init(ls_frame_reader *reader, enum ls_msg_dir dir);
/* Lowers the largest frame length accepted (never above the direction's). */
void ls_frame_reader_set_limit(ls_frame_reader *reader, size_t limit);
void ls_frame_reader_free(ls_frame_reader *reader);

/* Consumes bytes from data; *consumed says how many. Returns 1 when a frame
 * is complete (consumption stops right after it), 0 when all of data was
 * consumed and the frame is not complete yet, or an error: LS_EFORMAT
 * (zero length), LS_ETOOBIG (length over the limit), LS_ENOMEM. An error is
 * final: later calls return it again (LS_EINVAL: data NULL with len > 0,
 * not final). consumed must not be NULL. After a complete frame, the next call
 * starts reading a new frame and the previous body is gone. */
int ls_frame_reader_feed(ls_frame_reader *reader, const void *data, size_t len,
                         size_t *consumed, ls_diag *diag);

/* Bytes of memory the reader holds for its frame (header and body buffer):
 * what an unfinished frame costs its owner. */
size_t ls_frame_reader_held(const ls_frame_reader *reader);

/* The body of the complete frame, or NULL when none is complete. */
const uint8_t *ls_frame_reader_body(const ls_frame_reader *reader, size_t *len);

/* ls_msg_decode of the complete frame in the reader's direction
 * (LS_ESTATE when no frame is complete). */
int ls_frame_reader_decode(const ls_frame_reader *reader, ls_msg *out, ls_diag *diag);

/* At the end of the stream: LS_OK when no frame is partially read,
 * LS_EPROTO ("truncated frame") when one is, or the reader's error. */
int ls_frame_reader_finish(const ls_frame_reader *reader, ls_diag *diag);

/* The 4-byte big-endian length prefix. */
void ls_frame_put_length(uint8_t out[LS_FRAME_HEADER_LEN], uint32_t len);

#endif
