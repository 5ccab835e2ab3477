/* Admission of incoming QUIC connections (used by net/quic.c only): the
 * decision for an Initial from an unknown connection, the Retry tokens that
 * validate a client's address under load, the stateless packets that carry
 * a Retry or a refusal, and the memory of which addresses were reported
 * refused lately (so a flood is logged once per address, not per packet). */
#ifndef LS_NET_QUIC_ADMIT_H
#define LS_NET_QUIC_ADMIT_H

#include <ngtcp2/ngtcp2.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define LS_QUIC_RETRY_SECRET_LEN 32

/* What the endpoint holds when an Initial arrives. */
typedef struct ls_quic_load {
  unsigned total;       /* connections open, ours and the peers' */
  unsigned incoming;    /* server connections open */
  unsigned from_addr;   /* of those, from the Initial's IP address */
  unsigned handshaking; /* server connections still in their handshake */
} ls_quic_load;

typedef struct ls_quic_admit_limits {
  unsigned max_total;
  unsigned max_incoming;    /* max_conns minus the slots kept for dialling out */
  unsigned max_per_addr;
  unsigned max_handshakes;  /* beyond: dropped, the client's retransmit comes back */
  unsigned retry_above;     /* more handshakes than this: unvalidated get a Retry */
  bool always_retry;
} ls_quic_admit_limits;

typedef enum ls_quic_admission {
  LS_ADMIT,
  LS_ADMIT_RETRY,       /* answer with a Retry (address validation) */
  LS_ADMIT_REFUSE_FULL, /* CONNECTION_REFUSED: every incoming slot is taken */
  LS_ADMIT_REFUSE_ADDR, /* CONNECTION_REFUSED: this address has its share */
  LS_ADMIT_DROP,        /* too many handshakes at once: no answer */
  LS_ADMIT_REFUSE_TOKEN, /* INVALID_TOKEN: a forged, stale or foreign Retry token */
} ls_quic_admission;

ls_quic_admission ls_quic_admit(const ls_quic_load *load, const ls_quic_admit_limits *limits,
                                bool validated);
/* The reason of a refusal, for logs and the CONNECTION_CLOSE. */
const char *ls_quic_admission_reason(ls_quic_admission a);

/* Writes a Retry for the Initial `hd` from `from` into buf, with a fresh
 * source CID of scid_len bytes; its length, or 0 when it cannot. */
size_t ls_quic_write_retry(uint8_t *buf, size_t size, const uint8_t *secret,
                           const ngtcp2_pkt_hd *hd, const struct sockaddr *from,
                           socklen_t from_len, size_t scid_len, uint64_t now_ns);
/* Checks the Retry token of the Initial `hd` (sent from `from`, at most
 * 10 s old); 0 with the client's first destination CID in *odcid, else -1. */
int ls_quic_check_retry_token(const uint8_t *secret, const ngtcp2_pkt_hd *hd,
                              const struct sockaddr *from, socklen_t from_len, uint64_t now_ns,
                              ngtcp2_cid *odcid);
/* Writes a stateless CONNECTION_CLOSE with transport error `code` and the
 * reason text for the Initial `hd`; its length, or 0. */
size_t ls_quic_write_refusal(uint8_t *buf, size_t size, const ngtcp2_pkt_hd *hd, uint64_t code,
                             const char *reason);

/* Addresses reported refused lately: a refusal is reported at most once a
 * minute per address and reason, over the last LS_QUIC_REFUSAL_SLOTS
 * addresses seen. */
#define LS_QUIC_REFUSAL_SLOTS 32
typedef struct ls_quic_refusals {
  struct {
    struct sockaddr_storage addr; /* the port is ignored */
    ls_quic_admission why;
    uint64_t at_ms;
  } slot[LS_QUIC_REFUSAL_SLOTS];
} ls_quic_refusals;

/* true: report this refusal now (and it is remembered). */
bool ls_quic_refusal_is_new(ls_quic_refusals *r, const struct sockaddr *from,
                            ls_quic_admission why, uint64_t now_ms);

#endif
