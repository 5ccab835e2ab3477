/* Owns the party key (node/party.h): its rule (trimmed, at least 16 bytes)
 * and derivation, loading the key file, the fingerprint people compare,
 * and computing and checking the per-connection proofs. */
#include "node/party.h"

#include "core/error.h"
#include "core/fs.h"
#include "core/hex.h"

#include <ctype.h>
#include <fcntl.h>
#include <nettle/hmac.h>
#include <nettle/memops.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_LABEL "lanspread party key v1"
#define PROOF_LABEL "lanspread party proof v1"
#define FINGERPRINT_LABEL "lanspread party fingerprint v1"
#define EXPORTER_LABEL "EXPORTER-lanspread-party"
#define EXPORTER_LEN 32

int ls_party_key_from_text(const char *text, size_t len, const char *what, ls_party_key *out,
                           ls_diag *diag)
{
  size_t start = 0;
  while (start < len && isspace((unsigned char)text[start]))
    start++;
  while (len > start && isspace((unsigned char)text[len - 1]))
    len--;
  if (len - start < LS_PARTY_MIN_SECRET)
    return ls_diag_set(diag, LS_EINVAL, "%s: the key must be at least %d characters (it has %zu)",
                       what, LS_PARTY_MIN_SECRET, len - start);
  struct sha256_ctx sha;
  sha256_init(&sha);
  sha256_update(&sha, sizeof KEY_LABEL, (const uint8_t *)KEY_LABEL); /* with its NUL */
  sha256_update(&sha, len - start, (const uint8_t *)text + start);
  sha256_digest(&sha, sizeof out->k, out->k);
  return LS_OK;
}

int ls_party_key_load(const char *path, ls_party_key *out, ls_diag *diag)
{
  char *text = NULL;
  size_t len = 0;
  int rc = ls_read_file_at(AT_FDCWD, path, LS_PARTY_MAX_FILE, &text, &len, diag);
  if (rc == LS_ETOOBIG)
    return ls_diag_set(diag, LS_EINVAL, "party key file %s: over %d bytes", path,
                       LS_PARTY_MAX_FILE);
  if (rc != LS_OK)
    return rc;
  char what[LS_DIAG_MAX];
  snprintf(what, sizeof what, "party key file %s", path);
  rc = ls_party_key_from_text(text, len, what, out, diag);
  explicit_bzero(text, len);
  free(text);
  return rc;
}

void ls_party_fingerprint(const ls_party_key *key, char out[LS_PARTY_FINGERPRINT_LEN + 1])
{
  uint8_t digest[SHA256_DIGEST_SIZE];
  struct sha256_ctx sha;
  sha256_init(&sha);
  sha256_update(&sha, sizeof FINGERPRINT_LABEL, (const uint8_t *)FINGERPRINT_LABEL);
  sha256_update(&sha, sizeof key->k, key->k);
  sha256_digest(&sha, sizeof digest, digest);
  ls_hex_encode(digest, LS_PARTY_FINGERPRINT_LEN / 2, out);
  out[LS_PARTY_FINGERPRINT_LEN] = '\0';
}

static int proof_bytes(const ls_party_key *key, ls_quic_conn *conn, ls_party_role role,
                       uint8_t mac[SHA256_DIGEST_SIZE])
{
  uint8_t exporter[EXPORTER_LEN];
  int rc = ls_quic_conn_export(conn, EXPORTER_LABEL, exporter, sizeof exporter);
  if (rc != LS_OK)
    return rc;
  uint8_t who = (uint8_t)role;
  struct hmac_sha256_ctx h;
  hmac_sha256_set_key(&h, sizeof key->k, key->k);
  hmac_sha256_update(&h, sizeof PROOF_LABEL, (const uint8_t *)PROOF_LABEL);
  hmac_sha256_update(&h, 1, &who);
  hmac_sha256_update(&h, sizeof exporter, exporter);
  hmac_sha256_digest(&h, SHA256_DIGEST_SIZE, mac);
  return LS_OK;
}

int ls_party_proof(const ls_party_key *key, ls_quic_conn *conn, ls_party_role role,
                   char out[LS_PROTO_PARTY_PROOF_LEN + 1])
{
  uint8_t mac[SHA256_DIGEST_SIZE];
  int rc = proof_bytes(key, conn, role, mac);
  if (rc == LS_OK)
    ls_hex_encode(mac, sizeof mac, out);
  return rc;
}

bool ls_party_proof_ok(const ls_party_key *key, ls_quic_conn *conn, ls_party_role role,
                       const char *proof)
{
  uint8_t want[SHA256_DIGEST_SIZE], got[SHA256_DIGEST_SIZE];
  if (!proof || strlen(proof) != LS_PROTO_PARTY_PROOF_LEN ||
      ls_hex_decode(proof, got, sizeof got) != LS_OK ||
      proof_bytes(key, conn, role, want) != LS_OK)
    return false;
  return memeql_sec(want, got, sizeof want);
}
