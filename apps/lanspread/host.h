/* The embedded peer runtime: starting it on demand (and again when the
 * settings that shape it change), stopping it, and commands whose replies
 * an HTTP thread waits for. Events go to the hub. */
#ifndef LSD_HOST_H
#define LSD_HOST_H

#include "hub.h"
#include "settings.h"

#include <jansson.h>
#include <lanspread/peer.h>

typedef struct lsd_host lsd_host;

typedef struct lsd_host_config {
  const char *state_dir;
  const char *catalog_path; /* NULL: the bundled catalog */
  const char *listen;       /* NULL: any port */
  bool mdns;
  const char *unpacker;     /* NULL: libarchive, then unrar/7z */
  const char *party_key_file; /* NULL: any peer (lanspread/peer.h) */
} lsd_host_config;

int lsd_host_create(const lsd_host_config *config, lsd_hub *hub, lsd_host **out);
void lsd_host_free(lsd_host *host); /* stops the runtime first */

/* (Re)starts the runtime on the settings' game directory, name and static
 * peers. Loads the catalog on first use. */
int lsd_host_start(lsd_host *host, const lsd_settings *settings, ls_diag *diag);
/* The party key file of the next start (NULL: none); copied. */
void lsd_host_set_party_key_file(lsd_host *host, const char *file);
/* Stops the runtime (waiting calls end with LS_ECANCELED). */
void lsd_host_stop(lsd_host *host);
bool lsd_host_running(lsd_host *host);
/* {"running", "peer_id", "listen", "party_key" (the fingerprint of the key
 * it runs with, or null), "error"} */
json_t *lsd_host_runtime_json(lsd_host *host);
/* The catalog once loaded (it stays until lsd_host_free), else NULL. */
const ls_catalog *lsd_host_catalog(lsd_host *host);
/* Loads the catalog now if it is not yet. */
int lsd_host_load_catalog(lsd_host *host, ls_diag *diag);

/* Sends cmd (its tag is set here) and waits up to 10 s for its reply.
 * LS_OK with *reply (the reply object; "ok" may be false), LS_ESTATE when
 * the runtime is not running, LS_ETIMEDOUT, or LS_ECANCELED when the runtime
 * stopped meanwhile. */
int lsd_host_call(lsd_host *host, ls_command *cmd, json_t **reply, ls_diag *diag);

#endif
