/* Node identity: this peer's key pair, self-signed certificate and peer id.
 *
 * On first start a key pair and certificate are generated into the state
 * directory (files mode 0600, written atomically); later starts load them.
 * The peer id is the lowercase hex SHA-256 of the certificate's public key
 * (DER SubjectPublicKeyInfo), so it survives certificate re-issue. */
#ifndef LS_NET_IDENTITY_H
#define LS_NET_IDENTITY_H

#include <lanspread/error.h>
#include <gnutls/gnutls.h>

#define LS_PEER_ID_LEN 64 /* hex characters, without the NUL */

typedef struct ls_identity ls_identity;

/* Creates state_dir (mode 0700) if missing, then:
 * - node.key and node.crt both present: loads them (PEM). The key must be a
 *   regular file with no group/other permission bits (else LS_EACCES, "run
 *   chmod 600"); a corrupt file or a certificate whose public key is not the
 *   key's is an error naming the file (LS_EFORMAT). Nothing is regenerated,
 *   since that would change the peer id.
 * - neither present: generates an ECDSA P-256 key and a self-signed
 *   certificate and writes both (key first).
 * - node.key present, node.crt missing (e.g. a crash between the two writes):
 *   issues a new certificate for the existing key; the peer id is kept.
 * - node.crt present, node.key missing: LS_ENOENT; the identity is lost and
 *   the user must remove node.crt to start a new one.
 * On error *out is NULL and diag (may be NULL) says what and which file. */
int ls_identity_load_or_create(const char *state_dir, ls_identity **out, ls_diag *diag);
void ls_identity_free(ls_identity *identity);

/* 64 hex characters, NUL-terminated. */
const char *ls_identity_peer_id(const ls_identity *identity);

/* Credentials holding this node's certificate and key, for a TLS session.
 * Owned by the identity: valid until ls_identity_free, never free them. */
gnutls_certificate_credentials_t ls_identity_credentials(const ls_identity *identity);

/* The peer id of a DER certificate (e.g. gnutls_certificate_get_peers()[0]).
 * LS_OK, LS_EINVAL (NULL or empty input) or LS_EFORMAT (not a certificate);
 * out is the empty string on error. Safe inside a GnuTLS verify function. */
int ls_peer_id_from_der(const gnutls_datum_t *der, char out[LS_PEER_ID_LEN + 1]);

#endif
