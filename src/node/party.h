/* The party key: an optional shared secret an organiser hands out, so that
 * only peers holding it answer each other (docs/PROTOCOL.md "Party key").
 * Each side of a link proves it in its Hello or HelloAck with an HMAC over
 * the TLS exporter of that very connection, so a proof cannot be replayed
 * on another connection and the key never crosses the wire. */
#ifndef LS_NODE_PARTY_H
#define LS_NODE_PARTY_H

#include "net/quic.h"
#include "proto/proto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LS_PARTY_MIN_SECRET 16  /* bytes of a key file, whitespace trimmed */
#define LS_PARTY_MAX_FILE 4096
#define LS_PARTY_FINGERPRINT_LEN 8

typedef struct ls_party_key {
  uint8_t k[32]; /* SHA-256 of a domain label and the file's secret */
} ls_party_key;

/* The key of a secret as a key file holds it: surrounding whitespace
 * trimmed, at least LS_PARTY_MIN_SECRET bytes; `what` names it in the
 * refusal ("party key file F"). */
int ls_party_key_from_text(const char *text, size_t len, const char *what, ls_party_key *out,
                           ls_diag *diag);
/* Reads the key file: ls_party_key_from_text of its content. */
int ls_party_key_load(const char *path, ls_party_key *out, ls_diag *diag);

/* What an organiser compares between machines: LS_PARTY_FINGERPRINT_LEN
 * hex digits of a SHA-256 over a label and the key (never the secret). */
void ls_party_fingerprint(const ls_party_key *key, char out[LS_PARTY_FINGERPRINT_LEN + 1]);

/* The two roles of a proof: the side that sent Hello, the side that
 * answered HelloAck (the proofs differ, so one cannot be reflected). */
typedef enum ls_party_role { LS_PARTY_HELLO = 'h', LS_PARTY_ACK = 'a' } ls_party_role;

/* The proof of `key` for `role` on conn, 64 lowercase hex digits. */
int ls_party_proof(const ls_party_key *key, ls_quic_conn *conn, ls_party_role role,
                   char out[LS_PROTO_PARTY_PROOF_LEN + 1]);
/* Whether `proof` (NULL or "" when absent) is key's proof for role on
 * conn; compared in constant time. */
bool ls_party_proof_ok(const ls_party_key *key, ls_quic_conn *conn, ls_party_role role,
                       const char *proof);

#endif
