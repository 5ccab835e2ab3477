/* Owns a node's endpoint and request server, and routes endpoint callbacks:
 * connection events to the runtime, stream events to each stream's
 * ls_stream_handler (node/node.h). */
#include "node/node.h"

#include "core/addr.h"
#include "core/error.h"
#include "node/stream_handler.h"

#include <stdio.h>
#include <stdlib.h>

struct ls_node {
  ls_node_config config;
  ls_quic *quic;
  ls_serve *serve;
  void (*done)(void *user);
  void *done_user;
};

static ls_node *node_of_conn(ls_quic_conn *conn)
{
  return ls_quic_user(ls_quic_conn_endpoint(conn));
}

static void on_conn_ready(ls_quic_conn *conn)
{
  ls_node *n = node_of_conn(conn);
  if (n->config.on_conn_ready)
    n->config.on_conn_ready(n, conn, n->config.user);
}

static void on_conn_closed(ls_quic_conn *conn, int err, const char *diag)
{
  ls_node *n = node_of_conn(conn);
  ls_serve_conn_closed(n->serve, conn);
  if (n->config.on_conn_closed)
    n->config.on_conn_closed(n, conn, err, diag, n->config.user);
}

static void on_streams_available(ls_quic_conn *conn)
{
  ls_node *n = node_of_conn(conn);
  if (n->config.on_streams_available)
    n->config.on_streams_available(n, conn, n->config.user);
}

/* The endpoint says this once a minute per address and reason at most. */
static void on_conn_refused(ls_quic *q, const struct sockaddr *from, const char *why)
{
  char addr[64];
  (void)q;
  ls_format_addr(from, addr, sizeof addr);
  fprintf(stderr, "lanspread: refused connections from %s: %s\n", addr, why);
}

static void on_hello(void *user, ls_quic_conn *conn, const char *peer_id, const char *name)
{
  ls_node *n = user;
  if (n->config.on_peer_hello)
    n->config.on_peer_hello(n, conn, peer_id, name, n->config.user);
}

static void on_other_party(void *user, ls_quic_conn *conn, const char *peer_id,
                           const char *name)
{
  ls_node *n = user;
  if (n->config.on_other_party)
    n->config.on_other_party(n, conn, peer_id, name, n->config.user);
}

static void on_stream_open(ls_quic_stream *stream)
{
  ls_serve_accept(node_of_conn(ls_quic_stream_conn(stream))->serve, stream);
}

static void on_stream_data(ls_quic_stream *stream, const uint8_t *data, size_t len, int fin)
{
  ls_stream_handler *h = ls_quic_stream_user(stream);
  if (h)
    h->on_data(h, stream, data, len, fin);
}

static void on_stream_closed(ls_quic_stream *stream, int err)
{
  ls_stream_handler *h = ls_quic_stream_user(stream);
  ls_quic_stream_set_user(stream, NULL);
  if (h)
    h->on_closed(h, stream, err);
}

int ls_node_new(const ls_node_config *config, ls_node **out, ls_diag *diag)
{
  *out = NULL;
  ls_node *n = calloc(1, sizeof *n);
  if (!n)
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  n->config = *config;
  ls_serve_config sc = {
    .loop = config->loop, .catalog = config->catalog, .monitor = config->monitor,
    .game_dir = config->game_dir, .peer_id = ls_identity_peer_id(config->identity),
    .name = config->name, .protocol_version = config->protocol_version,
    .party_key = config->party_key, .on_hello = on_hello, .on_other_party = on_other_party,
    .user = n,
  };
  int rc = ls_serve_new(&sc, &n->serve, diag);
  ls_quic_config qc = {
    .bind_addr = config->bind_addr, .identity = config->identity, .user = n,
    .tuning = config->tuning,
    .cb = {on_conn_ready, on_conn_closed, on_stream_open, on_stream_data, on_stream_closed,
           on_streams_available, on_conn_refused},
  };
  if (rc == LS_OK)
    rc = ls_quic_new(config->loop, &qc, &n->quic, diag);
  if (rc != LS_OK) {
    ls_serve_free(n->serve);
    free(n);
    return rc;
  }
  *out = n;
  return LS_OK;
}

static void on_quic_closed(void *user)
{
  ls_node *n = user;
  void (*done)(void *) = n->done;
  void *done_user = n->done_user;
  ls_serve_free(n->serve); /* waits for its hashing jobs by itself */
  free(n);
  if (done)
    done(done_user);
}

void ls_node_close(ls_node *n, void (*done)(void *user), void *user)
{
  n->done = done;
  n->done_user = user;
  ls_quic_close(n->quic, on_quic_closed, n);
}

ls_quic *ls_node_endpoint(const ls_node *n)
{
  return n->quic;
}

ls_serve *ls_node_serve(const ls_node *n)
{
  return n->serve;
}

unsigned ls_node_port(const ls_node *n)
{
  return ls_quic_local_port(n->quic);
}
