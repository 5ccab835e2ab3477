/* Tests of net/identity: key and certificate creation and reload, the peer
 * id, refusal of corrupt, mismatched or exposed files, and a real TLS 1.3
 * handshake between two identities over a socketpair. Keys are generated at
 * run time; none is stored in the tree. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testrun.h"

#include "testutil.h"

#include "core/fs.h"
#include "net/identity.h"

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include <ctype.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DAY_SECONDS (24 * 60 * 60)

/* ---- helpers ------------------------------------------------------------ */

static ls_identity *must_load(const char *state)
{
  ls_identity *id = NULL;
  ls_diag diag = {""};
  int rc = ls_identity_load_or_create(state, &id, &diag);
  if (rc != LS_OK)
    fail_msg("load_or_create(%s) = %d: %s", state, rc, diag.text);
  assert_non_null(id);
  return id;
}

/* Loading must fail with err and a diag that mentions needle. */
static void expect_refused(const char *state, int err, const char *needle)
{
  ls_identity *id = (ls_identity *)1;
  ls_diag diag = {""};
  int rc = ls_identity_load_or_create(state, &id, &diag);
  assert_int_equal(rc, err);
  assert_null(id);
  if (!strstr(diag.text, needle))
    fail_msg("diag \"%s\" does not mention \"%s\"", diag.text, needle);
}

static unsigned file_mode(const char *path)
{
  struct stat st;
  assert_int_equal(lstat(path, &st), 0);
  return (unsigned)(st.st_mode & 07777);
}

static int file_exists(const char *path)
{
  struct stat st;
  return lstat(path, &st) == 0;
}

static void copy_id(char out[LS_PEER_ID_LEN + 1], const ls_identity *id)
{
  snprintf(out, LS_PEER_ID_LEN + 1, "%s", ls_identity_peer_id(id));
}

/* Creates an identity in a fresh state dir and returns the dir. */
static const char *new_state(char peer_id[LS_PEER_ID_LEN + 1])
{
  const char *state = t_tempdir();
  ls_identity *id = must_load(state);
  if (peer_id)
    copy_id(peer_id, id);
  ls_identity_free(id);
  return state;
}

static void overwrite_private(const char *path, const char *content)
{
  const char *slash = strrchr(path, '/');
  char dir[4096];
  snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
  t_write(dir, slash + 1, content);
  assert_int_equal(chmod(path, 0600), 0);
}

static char *read_all(const char *path)
{
  char *data;
  size_t len;
  assert_int_equal(ls_read_file_at(AT_FDCWD, path, 1 << 20, &data, &len, NULL), LS_OK);
  return data;
}

static gnutls_x509_crt_t load_crt_file(const char *path)
{
  char *pem = read_all(path);
  gnutls_datum_t d = {(unsigned char *)pem, (unsigned)strlen(pem)};
  gnutls_x509_crt_t crt;
  assert_int_equal(gnutls_x509_crt_init(&crt), 0);
  assert_int_equal(gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM), 0);
  free(pem);
  return crt;
}

static void assert_peer_id_format(const char *id)
{
  assert_int_equal(strlen(id), LS_PEER_ID_LEN);
  for (const char *p = id; *p; p++)
    assert_true(isdigit((unsigned char)*p) || (*p >= 'a' && *p <= 'f'));
}

/* ---- creation and reload ------------------------------------------------ */

static void test_create_writes_private_files(void **state)
{
  (void)state;
  const char *state_dir = t_path("%s/state/sub", t_tempdir());
  ls_identity *id = must_load(state_dir);
  assert_peer_id_format(ls_identity_peer_id(id));
  assert_non_null(ls_identity_credentials(id));
  assert_int_equal(file_mode(t_path("%s/node.key", state_dir)), 0600);
  assert_int_equal(file_mode(t_path("%s/node.crt", state_dir)), 0600);
  assert_int_equal(file_mode(state_dir) & 077, 0);
  assert_false(file_exists(t_path("%s/node.key.tmp", state_dir)));
  assert_false(file_exists(t_path("%s/node.crt.tmp", state_dir)));
  char *key = read_all(t_path("%s/node.key", state_dir));
  assert_non_null(strstr(key, "PRIVATE KEY-----"));
  free(key);
  ls_identity_free(id);
}

static void test_certificate_fields(void **state)
{
  (void)state;
  char peer_id[LS_PEER_ID_LEN + 1];
  const char *dir = new_state(peer_id);
  gnutls_x509_crt_t crt = load_crt_file(t_path("%s/node.crt", dir));
  time_t now = time(NULL);

  assert_int_equal(gnutls_x509_crt_get_version(crt), 3);
  char cn[128];
  size_t cn_len = sizeof cn;
  assert_int_equal(gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn,
                                                 &cn_len), 0);
  assert_string_equal(cn, t_path("lanspread-%.16s", peer_id));

  unsigned bits;
  assert_int_equal(gnutls_x509_crt_get_pk_algorithm(crt, &bits), GNUTLS_PK_ECDSA);
  gnutls_ecc_curve_t curve;
  gnutls_datum_t x = {NULL, 0}, y = {NULL, 0};
  assert_int_equal(gnutls_x509_crt_get_pk_ecc_raw(crt, &curve, &x, &y), 0);
  assert_int_equal(curve, GNUTLS_ECC_CURVE_SECP256R1);
  gnutls_free(x.data);
  gnutls_free(y.data);

  unsigned char serial[64];
  size_t serial_len = sizeof serial;
  assert_int_equal(gnutls_x509_crt_get_serial(crt, serial, &serial_len), 0);
  assert_true(serial_len >= 8);
  assert_int_equal(serial[0] & 0x80, 0);

  time_t activation = gnutls_x509_crt_get_activation_time(crt);
  assert_true(activation <= now - DAY_SECONDS + 5);
  assert_true(activation >= now - DAY_SECONDS - 60);
  assert_int_equal(gnutls_x509_crt_get_expiration_time(crt),
                   GNUTLS_X509_NO_WELL_DEFINED_EXPIRATION);

  unsigned critical = 0, ca = 1;
  int pathlen;
  assert_int_equal(gnutls_x509_crt_get_basic_constraints(crt, &critical, &ca, &pathlen), 0);
  assert_int_equal(ca, 0);
  unsigned usage = 0;
  assert_true(gnutls_x509_crt_get_key_usage(crt, &usage, &critical) >= 0);
  assert_int_equal(usage, GNUTLS_KEY_DIGITAL_SIGNATURE);

  unsigned status = 1;
  assert_int_equal(gnutls_x509_crt_verify(crt, &crt, 1, GNUTLS_VERIFY_DISABLE_CA_SIGN, &status),
                   0);
  assert_int_equal(status, 0);
  gnutls_x509_crt_deinit(crt);
}

static void test_reload_gives_same_id(void **state)
{
  (void)state;
  char first[LS_PEER_ID_LEN + 1];
  const char *dir = new_state(first);
  char *crt_before = read_all(t_path("%s/node.crt", dir));
  ls_identity *id = must_load(dir);
  assert_string_equal(ls_identity_peer_id(id), first);
  ls_identity_free(id);
  char *crt_after = read_all(t_path("%s/node.crt", dir));
  assert_string_equal(crt_before, crt_after);
  free(crt_before);
  free(crt_after);
}

static void test_peer_id_from_own_der(void **state)
{
  (void)state;
  char peer_id[LS_PEER_ID_LEN + 1];
  const char *dir = new_state(peer_id);
  gnutls_x509_crt_t crt = load_crt_file(t_path("%s/node.crt", dir));
  gnutls_datum_t der = {NULL, 0};
  assert_int_equal(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der), 0);
  char out[LS_PEER_ID_LEN + 1];
  assert_int_equal(ls_peer_id_from_der(&der, out), LS_OK);
  assert_string_equal(out, peer_id);
  gnutls_free(der.data);
  gnutls_x509_crt_deinit(crt);
}

static void test_peer_id_from_bad_der(void **state)
{
  (void)state;
  char out[LS_PEER_ID_LEN + 1] = "x";
  unsigned char junk[] = {0x30, 0x03, 0x02, 0x01, 0x01};
  gnutls_datum_t der = {junk, sizeof junk};
  assert_int_equal(ls_peer_id_from_der(&der, out), LS_EFORMAT);
  assert_string_equal(out, "");
  gnutls_datum_t empty = {NULL, 0};
  assert_int_equal(ls_peer_id_from_der(&empty, out), LS_EINVAL);
  assert_int_equal(ls_peer_id_from_der(NULL, out), LS_EINVAL);
}

static void test_two_dirs_differ(void **state)
{
  (void)state;
  char a[LS_PEER_ID_LEN + 1], b[LS_PEER_ID_LEN + 1];
  new_state(a);
  new_state(b);
  assert_string_not_equal(a, b);
}

static void test_missing_crt_is_reissued_with_same_id(void **state)
{
  (void)state;
  char first[LS_PEER_ID_LEN + 1];
  const char *dir = new_state(first);
  assert_int_equal(unlink(t_path("%s/node.crt", dir)), 0);
  ls_identity *id = must_load(dir);
  assert_string_equal(ls_identity_peer_id(id), first);
  ls_identity_free(id);
  assert_int_equal(file_mode(t_path("%s/node.crt", dir)), 0600);
}

static void test_stale_temp_file_does_not_leak_mode(void **state)
{
  (void)state;
  const char *dir = t_tempdir();
  t_write(dir, "node.key.tmp", "left over by a crash");
  assert_int_equal(chmod(t_path("%s/node.key.tmp", dir), 0644), 0);
  ls_identity *id = must_load(dir);
  ls_identity_free(id);
  assert_int_equal(file_mode(t_path("%s/node.key", dir)), 0600);
  assert_false(file_exists(t_path("%s/node.key.tmp", dir)));
}

/* ---- refusals ----------------------------------------------------------- */

static void test_corrupt_key_refused(void **state)
{
  (void)state;
  const char *dir = new_state(NULL);
  const char *key = t_path("%s/node.key", dir);
  overwrite_private(key, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
  expect_refused(dir, LS_EFORMAT, key);
  char *after = read_all(key);
  assert_non_null(strstr(after, "AAAA")); /* not silently regenerated */
  free(after);
}

static void test_corrupt_crt_refused(void **state)
{
  (void)state;
  const char *dir = new_state(NULL);
  const char *crt = t_path("%s/node.crt", dir);
  overwrite_private(crt, "not a certificate\n");
  expect_refused(dir, LS_EFORMAT, crt);
  char *after = read_all(crt);
  assert_string_equal(after, "not a certificate\n");
  free(after);
}

static void test_mismatched_pair_refused(void **state)
{
  (void)state;
  const char *a = new_state(NULL);
  const char *b = new_state(NULL);
  char a_crt[4096];
  snprintf(a_crt, sizeof a_crt, "%s/node.crt", a);
  assert_int_equal(rename(t_path("%s/node.crt", b), a_crt), 0);
  expect_refused(a, LS_EFORMAT, a_crt);
  /* the other way round: another identity's key next to this certificate */
  const char *c = new_state(NULL);
  const char *d = new_state(NULL);
  assert_int_equal(rename(t_path("%s/node.key", d), t_path("%s/node.key", c)), 0);
  expect_refused(c, LS_EFORMAT, t_path("%s/node.key", c));
}

static void test_world_readable_key_refused(void **state)
{
  (void)state;
  const char *dir = new_state(NULL);
  const char *key = t_path("%s/node.key", dir);
  assert_int_equal(chmod(key, 0644), 0);
  expect_refused(dir, LS_EACCES, key);
  expect_refused(dir, LS_EACCES, "chmod 600");
  assert_int_equal(chmod(key, 0640), 0);
  expect_refused(dir, LS_EACCES, key);
  assert_int_equal(chmod(key, 0600), 0);
  ls_identity_free(must_load(dir));
}

static void test_missing_key_refused(void **state)
{
  (void)state;
  const char *dir = new_state(NULL);
  assert_int_equal(unlink(t_path("%s/node.key", dir)), 0);
  expect_refused(dir, LS_ENOENT, t_path("%s/node.key", dir));
  assert_true(file_exists(t_path("%s/node.crt", dir)));
  assert_false(file_exists(t_path("%s/node.key", dir)));
}

static void test_state_dir_under_regular_file_fails(void **state)
{
  (void)state;
  const char *dir = t_tempdir();
  t_write(dir, "file", "x");
  ls_identity *id = (ls_identity *)1;
  ls_diag diag = {""};
  int rc = ls_identity_load_or_create(t_path("%s/file/sub", dir), &id, &diag);
  assert_true(rc < 0);
  assert_null(id);
  assert_non_null(strstr(diag.text, "file/sub"));
  /* the state dir itself being a regular file */
  expect_refused(t_path("%s/file", dir), LS_EEXIST, "file");
}

static void test_unwritable_key_fails_cleanly(void **state)
{
  (void)state;
  const char *dir = t_tempdir();
  t_mkdir(dir, "node.key.tmp/blocker");
  expect_refused(dir, LS_EIO, "node.key.tmp");
  assert_false(file_exists(t_path("%s/node.key", dir)));
  assert_false(file_exists(t_path("%s/node.crt", dir)));
}

static void test_bad_arguments(void **state)
{
  (void)state;
  ls_identity *id = (ls_identity *)1;
  assert_int_equal(ls_identity_load_or_create("", &id, NULL), LS_EINVAL);
  assert_null(id);
  assert_int_equal(ls_identity_load_or_create(NULL, &id, NULL), LS_EINVAL);
  assert_int_equal(ls_identity_load_or_create("/tmp", NULL, NULL), LS_EINVAL);
  ls_identity_free(NULL);
}

/* ---- TLS 1.3 handshake between two identities ---------------------------- */

typedef struct tls_side {
  gnutls_session_t session;
  int fd;
  const char *expected_peer; /* pinned in the verify function */
  int verify_calls;
  int handshake_rc;
  int peer_rc;
  char peer_id[LS_PEER_ID_LEN + 1];
} tls_side;

static int verify_pinned_peer(gnutls_session_t session)
{
  tls_side *side = gnutls_session_get_ptr(session);
  side->verify_calls++;
  unsigned n = 0;
  const gnutls_datum_t *certs = gnutls_certificate_get_peers(session, &n);
  char id[LS_PEER_ID_LEN + 1];
  if (!certs || n == 0 || ls_peer_id_from_der(&certs[0], id) != LS_OK)
    return -1;
  return strcmp(id, side->expected_peer) == 0 ? 0 : -1;
}

static void setup_side(tls_side *side, unsigned flags, const ls_identity *id, int fd,
                       const char *expected_peer)
{
  memset(side, 0, sizeof *side);
  side->fd = fd;
  side->expected_peer = expected_peer;
  side->peer_rc = -1;
  assert_int_equal(gnutls_init(&side->session, flags | GNUTLS_NO_SIGNAL), 0);
  assert_int_equal(
    gnutls_priority_set_direct(side->session, "NORMAL:-VERS-ALL:+VERS-TLS1.3", NULL), 0);
  assert_int_equal(gnutls_credentials_set(side->session, GNUTLS_CRD_CERTIFICATE,
                                          ls_identity_credentials(id)), 0);
  if (flags & GNUTLS_SERVER)
    gnutls_certificate_server_set_request(side->session, GNUTLS_CERT_REQUIRE);
  gnutls_transport_set_int(side->session, fd);
  gnutls_session_set_ptr(side->session, side);
  gnutls_session_set_verify_function(side->session, verify_pinned_peer);
  gnutls_handshake_set_timeout(side->session, 20 * 1000);
}

/* Thread body: no cmocka assertions here, results are checked by the main
 * thread. On failure the socket is shut down so the other side stops too. */
static void *run_handshake(void *arg)
{
  tls_side *side = arg;
  int rc;
  do
    rc = gnutls_handshake(side->session);
  while (rc < 0 && !gnutls_error_is_fatal(rc));
  side->handshake_rc = rc;
  if (rc < 0) {
    shutdown(side->fd, SHUT_RDWR);
    return NULL;
  }
  unsigned n = 0;
  const gnutls_datum_t *certs = gnutls_certificate_get_peers(side->session, &n);
  if (certs && n > 0)
    side->peer_rc = ls_peer_id_from_der(&certs[0], side->peer_id);
  return NULL;
}

static void handshake_pair(tls_side *server, tls_side *client)
{
  pthread_t server_thread, client_thread;
  assert_int_equal(pthread_create(&server_thread, NULL, run_handshake, server), 0);
  assert_int_equal(pthread_create(&client_thread, NULL, run_handshake, client), 0);
  assert_int_equal(pthread_join(client_thread, NULL), 0);
  assert_int_equal(pthread_join(server_thread, NULL), 0);
}

static void close_side(tls_side *side)
{
  gnutls_deinit(side->session);
  close(side->fd);
}

static void run_tls_pair(const ls_identity *server_id, const ls_identity *client_id,
                         const char *client_expects, tls_side *server, tls_side *client)
{
  int fds[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  setup_side(server, GNUTLS_SERVER, server_id, fds[0], ls_identity_peer_id(client_id));
  setup_side(client, GNUTLS_CLIENT, client_id, fds[1], client_expects);
  handshake_pair(server, client);
}

static void test_tls_handshake_exchanges_peer_ids(void **state)
{
  (void)state;
  ls_identity *server_id = must_load(t_tempdir());
  ls_identity *client_id = must_load(t_tempdir());
  tls_side server, client;
  run_tls_pair(server_id, client_id, ls_identity_peer_id(server_id), &server, &client);

  if (server.handshake_rc != 0 || client.handshake_rc != 0)
    fail_msg("handshake failed: server %s, client %s", gnutls_strerror(server.handshake_rc),
             gnutls_strerror(client.handshake_rc));
  assert_int_equal(gnutls_protocol_get_version(client.session), GNUTLS_TLS1_3);
  assert_int_equal(server.peer_rc, LS_OK);
  assert_int_equal(client.peer_rc, LS_OK);
  assert_string_equal(server.peer_id, ls_identity_peer_id(client_id));
  assert_string_equal(client.peer_id, ls_identity_peer_id(server_id));
  assert_true(server.verify_calls > 0);
  assert_true(client.verify_calls > 0);

  close_side(&server);
  close_side(&client);
  ls_identity_free(server_id);
  ls_identity_free(client_id);
}

static void test_tls_pin_mismatch_aborts_handshake(void **state)
{
  (void)state;
  ls_identity *server_id = must_load(t_tempdir());
  ls_identity *client_id = must_load(t_tempdir());
  ls_identity *other_id = must_load(t_tempdir());
  tls_side server, client;
  run_tls_pair(server_id, client_id, ls_identity_peer_id(other_id), &server, &client);

  assert_true(client.handshake_rc < 0);
  assert_true(server.handshake_rc < 0);
  assert_true(client.verify_calls > 0);

  close_side(&server);
  close_side(&client);
  ls_identity_free(server_id);
  ls_identity_free(client_id);
  ls_identity_free(other_id);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_create_writes_private_files),
    cmocka_unit_test(test_certificate_fields),
    cmocka_unit_test(test_reload_gives_same_id),
    cmocka_unit_test(test_peer_id_from_own_der),
    cmocka_unit_test(test_peer_id_from_bad_der),
    cmocka_unit_test(test_two_dirs_differ),
    cmocka_unit_test(test_missing_crt_is_reissued_with_same_id),
    cmocka_unit_test(test_stale_temp_file_does_not_leak_mode),
    cmocka_unit_test(test_corrupt_key_refused),
    cmocka_unit_test(test_corrupt_crt_refused),
    cmocka_unit_test(test_mismatched_pair_refused),
    cmocka_unit_test(test_world_readable_key_refused),
    cmocka_unit_test(test_missing_key_refused),
    cmocka_unit_test(test_state_dir_under_regular_file_fails),
    cmocka_unit_test(test_unwritable_key_fails_cleanly),
    cmocka_unit_test(test_bad_arguments),
    cmocka_unit_test(test_tls_handshake_exchanges_peer_ids),
    cmocka_unit_test(test_tls_pin_mismatch_aborts_handshake),
  };
  return ls_run_tests(tests, NULL, NULL);
}
