/* Owns the node identity declared in net/identity.h: generating, storing and
 * loading this node's ECDSA P-256 key and self-signed certificate, the TLS
 * credentials built from them, and the peer id (SHA-256 of the public key). */
#include "net/identity.h"

#include "core/error.h"
#include "core/fs.h"
#include "core/hex.h"

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KEY_FILE "node.key"
#define CRT_FILE "node.crt"
#define PATH_MAX_LEN 4096
#define PEM_MAX_BYTES (64 * 1024)
#define PRIVATE_FILE_MODE 0600u
#define ACTIVATION_SLACK_SECONDS (24 * 60 * 60)
#define SERIAL_BYTES 16
#define SHA256_BYTES 32
#define CN_ID_CHARS 16

struct ls_identity {
  gnutls_certificate_credentials_t credentials;
  char peer_id[LS_PEER_ID_LEN + 1];
};

typedef struct identity_paths {
  char key[PATH_MAX_LEN];
  char crt[PATH_MAX_LEN];
} identity_paths;

/* ---- small helpers ---------------------------------------------------- */

static int err_from_gnutls(int gnutls_rc, int fallback)
{
  return gnutls_rc == GNUTLS_E_MEMORY_ERROR ? LS_ENOMEM : fallback;
}

/* "PATH: WHAT: gnutls reason" into the diag. */
static int diag_gnutls(ls_diag *diag, int err, const char *path, const char *what, int gnutls_rc)
{
  return ls_diag_set(diag, err_from_gnutls(gnutls_rc, err), "%s: %s: %s", path, what,
                     gnutls_strerror(gnutls_rc));
}

/* Wipes and frees a buffer that held private key material. */
static void free_secret(void *data, size_t len)
{
  if (data)
    gnutls_memset(data, 0, len);
  free(data);
}

static void free_gnutls_secret(gnutls_datum_t *d)
{
  if (d->data)
    gnutls_memset(d->data, 0, d->size);
  gnutls_free(d->data);
  d->data = NULL;
  d->size = 0;
}

static int build_paths(const char *state_dir, identity_paths *paths, ls_diag *diag)
{
  int n1 = snprintf(paths->key, sizeof paths->key, "%s/%s", state_dir, KEY_FILE);
  int n2 = snprintf(paths->crt, sizeof paths->crt, "%s/%s", state_dir, CRT_FILE);
  if (n1 < 0 || n2 < 0 || (size_t)n1 >= sizeof paths->key || (size_t)n2 >= sizeof paths->crt)
    return ls_diag_set(diag, LS_EINVAL, "%s: state directory path too long", state_dir);
  return LS_OK;
}

/* Sets *exists without following a symlink; errors other than ENOENT fail. */
static int file_exists(const char *path, int *exists, ls_diag *diag)
{
  struct stat st;
  *exists = 0;
  if (lstat(path, &st) == 0) {
    *exists = 1;
    return LS_OK;
  }
  if (errno == ENOENT)
    return LS_OK;
  return ls_diag_errno(diag, errno, "cannot stat", path);
}

/* ---- peer id ------------------------------------------------------------ */

/* Peer id of a certificate's public key; returns a GnuTLS code. */
static int peer_id_of_crt(gnutls_x509_crt_t crt, char out[LS_PEER_ID_LEN + 1])
{
  gnutls_pubkey_t pub;
  gnutls_datum_t spki = {NULL, 0};
  unsigned char digest[SHA256_BYTES];
  int rc = gnutls_pubkey_init(&pub);
  if (rc < 0)
    return rc;
  rc = gnutls_pubkey_import_x509(pub, crt, 0);
  if (rc >= 0)
    rc = gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &spki);
  if (rc >= 0)
    rc = gnutls_hash_fast(GNUTLS_DIG_SHA256, spki.data, spki.size, digest);
  if (rc >= 0)
    ls_hex_encode(digest, sizeof digest, out);
  gnutls_free(spki.data);
  gnutls_pubkey_deinit(pub);
  return rc;
}

int ls_peer_id_from_der(const gnutls_datum_t *der, char out[LS_PEER_ID_LEN + 1])
{
  if (!out)
    return LS_EINVAL;
  out[0] = '\0';
  if (!der || !der->data || der->size == 0)
    return LS_EINVAL;
  gnutls_x509_crt_t crt;
  int rc = gnutls_x509_crt_init(&crt);
  if (rc < 0)
    return err_from_gnutls(rc, LS_EIO);
  rc = gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER);
  if (rc >= 0)
    rc = peer_id_of_crt(crt, out);
  gnutls_x509_crt_deinit(crt);
  if (rc < 0) {
    out[0] = '\0';
    return err_from_gnutls(rc, LS_EFORMAT);
  }
  return LS_OK;
}

/* ---- loading ------------------------------------------------------------ */

/* The key must be a regular file that only its owner can access. */
static int check_key_permissions(const char *path, ls_diag *diag)
{
  struct stat st;
  if (lstat(path, &st) != 0)
    return ls_diag_errno(diag, errno, "cannot stat", path);
  if (!S_ISREG(st.st_mode))
    return ls_diag_set(diag, LS_EINVAL, "%s: private key is not a regular file", path);
  if (st.st_mode & 077)
    return ls_diag_set(diag, LS_EACCES,
                       "%s: private key is accessible by group or others (mode %04o); "
                       "run chmod 600 %s",
                       path, (unsigned)(st.st_mode & 07777), path);
  return LS_OK;
}

static int load_key(const char *path, gnutls_x509_privkey_t *out, ls_diag *diag)
{
  *out = NULL;
  int rc = check_key_permissions(path, diag);
  if (rc != LS_OK)
    return rc;
  char *pem;
  size_t len;
  rc = ls_read_file_at(AT_FDCWD, path, PEM_MAX_BYTES, &pem, &len, diag);
  if (rc != LS_OK)
    return rc;
  gnutls_x509_privkey_t key;
  int grc = gnutls_x509_privkey_init(&key);
  if (grc >= 0) {
    gnutls_datum_t d = {(unsigned char *)pem, (unsigned)len};
    grc = gnutls_x509_privkey_import(key, &d, GNUTLS_X509_FMT_PEM);
    if (grc < 0)
      gnutls_x509_privkey_deinit(key);
  }
  free_secret(pem, len);
  if (grc < 0)
    return diag_gnutls(diag, LS_EFORMAT, path, "not a valid PEM private key", grc);
  *out = key;
  return LS_OK;
}

static int load_crt(const char *path, gnutls_x509_crt_t *out, ls_diag *diag)
{
  *out = NULL;
  char *pem;
  size_t len;
  int rc = ls_read_file_at(AT_FDCWD, path, PEM_MAX_BYTES, &pem, &len, diag);
  if (rc != LS_OK)
    return rc;
  gnutls_x509_crt_t crt;
  int grc = gnutls_x509_crt_init(&crt);
  if (grc >= 0) {
    gnutls_datum_t d = {(unsigned char *)pem, (unsigned)len};
    grc = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM);
    if (grc < 0)
      gnutls_x509_crt_deinit(crt);
  }
  free(pem);
  if (grc < 0)
    return diag_gnutls(diag, LS_EFORMAT, path, "not a valid PEM certificate", grc);
  *out = crt;
  return LS_OK;
}

/* The certificate must carry the public half of the key. */
static int check_pair(gnutls_x509_privkey_t key, gnutls_x509_crt_t crt,
                      const identity_paths *paths, ls_diag *diag)
{
  unsigned char key_id[SHA256_BYTES], crt_id[SHA256_BYTES];
  size_t key_len = sizeof key_id, crt_len = sizeof crt_id;
  int rc = gnutls_x509_privkey_get_key_id(key, GNUTLS_KEYID_USE_SHA256, key_id, &key_len);
  if (rc < 0)
    return diag_gnutls(diag, LS_EFORMAT, paths->key, "cannot compute the key id", rc);
  rc = gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA256, crt_id, &crt_len);
  if (rc < 0)
    return diag_gnutls(diag, LS_EFORMAT, paths->crt, "cannot compute the key id", rc);
  if (key_len != crt_len || memcmp(key_id, crt_id, key_len) != 0)
    return ls_diag_set(diag, LS_EFORMAT,
                       "%s: certificate does not match the private key in %s", paths->crt,
                       paths->key);
  return LS_OK;
}

/* ---- creation ----------------------------------------------------------- */

static int generate_key(const char *path, gnutls_x509_privkey_t *out, ls_diag *diag)
{
  *out = NULL;
  gnutls_x509_privkey_t key;
  int rc = gnutls_x509_privkey_init(&key);
  if (rc >= 0) {
    rc = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                      GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
    if (rc < 0)
      gnutls_x509_privkey_deinit(key);
  }
  if (rc < 0)
    return diag_gnutls(diag, LS_EIO, path, "cannot generate a private key", rc);
  *out = key;
  return LS_OK;
}

/* A random positive serial: top bit clear, next bit set (so DER needs no
 * leading zero byte and the value is never zero). */
static int set_random_serial(gnutls_x509_crt_t crt)
{
  unsigned char serial[SERIAL_BYTES];
  int rc = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof serial);
  if (rc < 0)
    return rc;
  serial[0] = (unsigned char)((serial[0] & 0x3f) | 0x40);
  return gnutls_x509_crt_set_serial(crt, serial, sizeof serial);
}

/* CN=lanspread-<first 16 hex of the peer id>; needs the key set already. */
static int set_subject(gnutls_x509_crt_t crt)
{
  char peer_id[LS_PEER_ID_LEN + 1];
  int rc = peer_id_of_crt(crt, peer_id);
  if (rc < 0)
    return rc;
  char dn[64];
  snprintf(dn, sizeof dn, "CN=lanspread-%.*s", CN_ID_CHARS, peer_id);
  return gnutls_x509_crt_set_dn(crt, dn, NULL);
}

static int set_certificate_fields(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key)
{
  int rc = gnutls_x509_crt_set_version(crt, 3);
  if (rc >= 0)
    rc = set_random_serial(crt);
  if (rc >= 0)
    rc = gnutls_x509_crt_set_activation_time(crt, time(NULL) - ACTIVATION_SLACK_SECONDS);
  if (rc >= 0)
    rc = gnutls_x509_crt_set_expiration_time(crt, GNUTLS_X509_NO_WELL_DEFINED_EXPIRATION);
  if (rc >= 0)
    rc = gnutls_x509_crt_set_key(crt, key);
  if (rc >= 0)
    rc = set_subject(crt);
  if (rc >= 0)
    rc = gnutls_x509_crt_set_basic_constraints(crt, 0, -1);
  if (rc >= 0)
    rc = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE);
  return rc;
}

/* A new self-signed certificate for key. */
static int issue_certificate(const char *path, gnutls_x509_privkey_t key,
                             gnutls_x509_crt_t *out, ls_diag *diag)
{
  *out = NULL;
  gnutls_x509_crt_t crt;
  int rc = gnutls_x509_crt_init(&crt);
  if (rc < 0)
    return diag_gnutls(diag, LS_EIO, path, "cannot create a certificate", rc);
  rc = set_certificate_fields(crt, key);
  if (rc >= 0)
    rc = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0);
  if (rc < 0) {
    gnutls_x509_crt_deinit(crt);
    return diag_gnutls(diag, LS_EIO, path, "cannot create a certificate", rc);
  }
  *out = crt;
  return LS_OK;
}

/* Writes a 0600 file atomically. A stale PATH.tmp left by a crash is removed
 * first: the atomic writer reuses an existing temp file with its old mode. */
static int write_private_file(const char *path, const gnutls_datum_t *data, ls_diag *diag)
{
  char tmp[PATH_MAX_LEN + 8];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  if (unlink(tmp) != 0 && errno != ENOENT)
    return ls_diag_errno(diag, errno, "cannot remove the stale temporary file", tmp);
  return ls_write_file_atomic(path, data->data, data->size, PRIVATE_FILE_MODE, diag);
}

static int save_key(const char *path, gnutls_x509_privkey_t key, ls_diag *diag)
{
  gnutls_datum_t pem = {NULL, 0};
  int rc = gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &pem);
  if (rc < 0)
    return diag_gnutls(diag, LS_EIO, path, "cannot encode the private key", rc);
  rc = write_private_file(path, &pem, diag);
  free_gnutls_secret(&pem);
  return rc;
}

static int save_crt(const char *path, gnutls_x509_crt_t crt, ls_diag *diag)
{
  gnutls_datum_t pem = {NULL, 0};
  int rc = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &pem);
  if (rc < 0)
    return diag_gnutls(diag, LS_EIO, path, "cannot encode the certificate", rc);
  rc = write_private_file(path, &pem, diag);
  gnutls_free(pem.data);
  return rc;
}

/* ---- the identity ------------------------------------------------------- */

static int identity_new(gnutls_x509_privkey_t key, gnutls_x509_crt_t crt,
                        const identity_paths *paths, ls_identity **out, ls_diag *diag)
{
  ls_identity *id = calloc(1, sizeof *id);
  if (!id)
    return ls_diag_set(diag, LS_ENOMEM, "%s: out of memory", paths->crt);
  int rc = peer_id_of_crt(crt, id->peer_id);
  if (rc < 0) {
    free(id);
    return diag_gnutls(diag, LS_EFORMAT, paths->crt, "cannot compute the peer id", rc);
  }
  rc = gnutls_certificate_allocate_credentials(&id->credentials);
  if (rc < 0) {
    free(id);
    return diag_gnutls(diag, LS_ENOMEM, paths->crt, "cannot allocate TLS credentials", rc);
  }
  rc = gnutls_certificate_set_x509_key(id->credentials, &crt, 1, key);
  if (rc < 0) {
    ls_identity_free(id);
    return diag_gnutls(diag, LS_EFORMAT, paths->crt, "cannot use the certificate and key", rc);
  }
  *out = id;
  return LS_OK;
}

/* Loads node.key, or generates and saves a new one. */
static int obtain_key(const identity_paths *paths, int key_exists, gnutls_x509_privkey_t *key,
                      ls_diag *diag)
{
  if (key_exists)
    return load_key(paths->key, key, diag);
  int rc = generate_key(paths->key, key, diag);
  if (rc == LS_OK)
    rc = save_key(paths->key, *key, diag);
  return rc;
}

/* Loads node.crt and checks it against the key, or issues and saves one. */
static int obtain_crt(const identity_paths *paths, int crt_exists, gnutls_x509_privkey_t key,
                      gnutls_x509_crt_t *crt, ls_diag *diag)
{
  int rc;
  if (crt_exists) {
    rc = load_crt(paths->crt, crt, diag);
    if (rc == LS_OK)
      rc = check_pair(key, *crt, paths, diag);
    return rc;
  }
  rc = issue_certificate(paths->crt, key, crt, diag);
  if (rc == LS_OK)
    rc = save_crt(paths->crt, *crt, diag);
  return rc;
}

static int locate_files(const identity_paths *paths, int *key_exists, int *crt_exists,
                        ls_diag *diag)
{
  int rc = file_exists(paths->key, key_exists, diag);
  if (rc == LS_OK)
    rc = file_exists(paths->crt, crt_exists, diag);
  if (rc == LS_OK && *crt_exists && !*key_exists)
    rc = ls_diag_set(diag, LS_ENOENT,
                     "%s is missing but %s exists: this node's identity is lost; "
                     "remove %s to create a new one (the peer id will change)",
                     paths->key, paths->crt, paths->crt);
  return rc;
}

int ls_identity_load_or_create(const char *state_dir, ls_identity **out, ls_diag *diag)
{
  if (!out)
    return ls_diag_set(diag, LS_EINVAL, "ls_identity_load_or_create: no output pointer");
  *out = NULL;
  if (!state_dir || !*state_dir)
    return ls_diag_set(diag, LS_EINVAL, "ls_identity_load_or_create: empty state directory");
  identity_paths paths;
  int rc = build_paths(state_dir, &paths, diag);
  if (rc == LS_OK)
    rc = ls_mkdir_p(state_dir, 1, diag);
  int key_exists = 0, crt_exists = 0;
  if (rc == LS_OK)
    rc = locate_files(&paths, &key_exists, &crt_exists, diag);
  gnutls_x509_privkey_t key = NULL;
  gnutls_x509_crt_t crt = NULL;
  if (rc == LS_OK)
    rc = obtain_key(&paths, key_exists, &key, diag);
  if (rc == LS_OK)
    rc = obtain_crt(&paths, crt_exists, key, &crt, diag);
  if (rc == LS_OK)
    rc = identity_new(key, crt, &paths, out, diag);
  if (crt)
    gnutls_x509_crt_deinit(crt);
  if (key)
    gnutls_x509_privkey_deinit(key);
  return rc;
}

void ls_identity_free(ls_identity *identity)
{
  if (!identity)
    return;
  if (identity->credentials)
    gnutls_certificate_free_credentials(identity->credentials);
  free(identity);
}

const char *ls_identity_peer_id(const ls_identity *identity)
{
  return identity->peer_id;
}

gnutls_certificate_credentials_t ls_identity_credentials(const ls_identity *identity)
{
  return identity->credentials;
}
