/* A node on the network: the QUIC endpoint, the request server behind it,
 * and the routing of every stream to its handler (request server for
 * streams peers open, ls_request for streams we open). The peer runtime
 * builds discovery and downloads on top of it. Loop thread only. */
#ifndef LS_NODE_NODE_H
#define LS_NODE_NODE_H

#include "library/monitor.h"
#include "net/quic.h"
#include "node/party.h"
#include "node/serve.h"

typedef struct ls_node ls_node;

typedef struct ls_node_config {
  uv_loop_t *loop;
  const struct sockaddr *bind_addr;
  const ls_identity *identity;
  const ls_catalog *catalog;
  ls_monitor *monitor;
  const char *game_dir;
  const char *name;
  int protocol_version;          /* 0: LS_PROTO_VERSION */
  ls_quic_tuning tuning;
  const ls_party_key *party_key; /* NULL: answer any peer (node/party.h) */
  /* Optional connection events (the runtime tracks peers with them). */
  void (*on_conn_ready)(ls_node *node, ls_quic_conn *conn, void *user);
  void (*on_conn_closed)(ls_node *node, ls_quic_conn *conn, int err, const char *diag,
                         void *user);
  void (*on_streams_available)(ls_node *node, ls_quic_conn *conn, void *user);
  /* A peer introduced itself on a connection it opened (valid Hello). */
  void (*on_peer_hello)(ls_node *node, ls_quic_conn *conn, const char *peer_id,
                        const char *name, void *user);
  /* A peer's Hello was refused: it has no or another party key. */
  void (*on_other_party)(ls_node *node, ls_quic_conn *conn, const char *peer_id,
                         const char *name, void *user);
  void *user;
} ls_node_config;

int ls_node_new(const ls_node_config *config, ls_node **out, ls_diag *diag);
/* Closes the endpoint (every connection) and the server; done runs once the
 * endpoint is closed. Hashing jobs still running finish on their own (they
 * keep the loop alive) and no longer touch the monitor, so the monitor may
 * be closed from done. */
void ls_node_close(ls_node *node, void (*done)(void *user), void *user);

ls_quic *ls_node_endpoint(const ls_node *node);
ls_serve *ls_node_serve(const ls_node *node);
unsigned ls_node_port(const ls_node *node);

#endif
