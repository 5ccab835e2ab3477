/* Owns the admission rules for incoming QUIC connections (see
 * quic_admit.h): which Initial gets a connection, a Retry, a refusal or
 * nothing, the Retry tokens, and the once-per-address refusal reports. */
#include "net/quic_admit.h"

#include "core/addr.h"

#include <ngtcp2/ngtcp2_crypto.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include <netinet/in.h>
#include <string.h>

#define RETRY_TOKEN_TIMEOUT (10 * NGTCP2_SECONDS)
#define REPORT_EVERY_MS 60000u

ls_quic_admission ls_quic_admit(const ls_quic_load *load, const ls_quic_admit_limits *limits,
                                bool validated)
{
  if (load->total >= limits->max_total || load->incoming >= limits->max_incoming)
    return LS_ADMIT_REFUSE_FULL;
  if (load->from_addr >= limits->max_per_addr)
    return LS_ADMIT_REFUSE_ADDR;
  if (load->handshaking >= limits->max_handshakes)
    return LS_ADMIT_DROP;
  if (!validated && (limits->always_retry || load->handshaking >= limits->retry_above))
    return LS_ADMIT_RETRY;
  return LS_ADMIT;
}

const char *ls_quic_admission_reason(ls_quic_admission a)
{
  switch (a) {
  case LS_ADMIT_REFUSE_FULL: return "every incoming connection slot is taken";
  case LS_ADMIT_REFUSE_ADDR: return "too many connections from this address";
  case LS_ADMIT_DROP: return "too many handshakes at once";
  case LS_ADMIT_RETRY: return "address validation (Retry)";
  case LS_ADMIT_REFUSE_TOKEN: return "an invalid address-validation token";
  case LS_ADMIT: break;
  }
  return "admitted";
}

size_t ls_quic_write_retry(uint8_t *buf, size_t size, const uint8_t *secret,
                           const ngtcp2_pkt_hd *hd, const struct sockaddr *from,
                           socklen_t from_len, size_t scid_len, uint64_t now_ns)
{
  uint8_t token[NGTCP2_CRYPTO_MAX_RETRY_TOKENLEN];
  ngtcp2_cid scid = {.datalen = scid_len};
  if (gnutls_rnd(GNUTLS_RND_NONCE, scid.data, scid.datalen) != 0)
    return 0;
  ngtcp2_ssize tlen = ngtcp2_crypto_generate_retry_token(
    token, secret, LS_QUIC_RETRY_SECRET_LEN, hd->version, (const ngtcp2_sockaddr *)from,
    (ngtcp2_socklen)from_len, &scid, &hd->dcid, now_ns);
  if (tlen < 0)
    return 0;
  ngtcp2_ssize n = ngtcp2_crypto_write_retry(buf, size, hd->version, &hd->scid, &scid, &hd->dcid,
                                             token, (size_t)tlen);
  return n > 0 ? (size_t)n : 0;
}

int ls_quic_check_retry_token(const uint8_t *secret, const ngtcp2_pkt_hd *hd,
                              const struct sockaddr *from, socklen_t from_len, uint64_t now_ns,
                              ngtcp2_cid *odcid)
{
  if (hd->token.len == 0 || hd->token.base[0] != NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY)
    return -1;
  return ngtcp2_crypto_verify_retry_token(odcid, hd->token.base, hd->token.len, secret,
                                          LS_QUIC_RETRY_SECRET_LEN, hd->version,
                                          (const ngtcp2_sockaddr *)from,
                                          (ngtcp2_socklen)from_len, &hd->dcid,
                                          RETRY_TOKEN_TIMEOUT, now_ns);
}

size_t ls_quic_write_refusal(uint8_t *buf, size_t size, const ngtcp2_pkt_hd *hd, uint64_t code,
                             const char *reason)
{
  ngtcp2_ssize n = ngtcp2_crypto_write_connection_close(
    buf, size, hd->version, &hd->scid, &hd->dcid, code, (const uint8_t *)reason, strlen(reason));
  return n > 0 ? (size_t)n : 0;
}

bool ls_quic_refusal_is_new(ls_quic_refusals *r, const struct sockaddr *from,
                            ls_quic_admission why, uint64_t now_ms)
{
  size_t oldest = 0;
  for (size_t i = 0; i < LS_QUIC_REFUSAL_SLOTS; i++) {
    if (r->slot[i].at_ms && r->slot[i].why == why &&
        ls_addr_same_ip((const struct sockaddr *)&r->slot[i].addr, from)) {
      if (now_ms - r->slot[i].at_ms < REPORT_EVERY_MS)
        return false;
      r->slot[i].at_ms = now_ms;
      return true;
    }
    if (r->slot[i].at_ms < r->slot[oldest].at_ms)
      oldest = i;
  }
  size_t len = from->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                           : sizeof(struct sockaddr_in);
  memset(&r->slot[oldest].addr, 0, sizeof r->slot[oldest].addr);
  memcpy(&r->slot[oldest].addr, from, len);
  r->slot[oldest].why = why;
  r->slot[oldest].at_ms = now_ms ? now_ms : 1;
  return true;
}
