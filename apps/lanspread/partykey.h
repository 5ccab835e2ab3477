/* The party key as a setting of the daemon (docs/API.md "Settings"): the
 * secret set in the UI, kept in STATE_DIR/party-key, or the file
 * --party-key-file names, which wins for the run; what the runtime is given
 * and what the API shows of it (whether one is set, its fingerprint, never
 * the secret). Not thread-safe: api.c changes it under the settings lock. */
#ifndef LSD_PARTYKEY_H
#define LSD_PARTYKEY_H

#include <jansson.h>
#include <lanspread/error.h>
#include <lanspread/peer.h>
#include <stdbool.h>

#define LSD_PARTY_KEY_MAX 1024 /* bytes of a key set in the UI */
#define LSD_PARTY_KEY_FILE "party-key"

typedef struct lsd_party {
  char file[4096]; /* the key file the runtime gets; "" for none */
  bool fixed;      /* by --party-key-file: the UI cannot change it */
  char fingerprint[LS_PEER_PARTY_FINGERPRINT_LEN + 1]; /* "" when none (or unreadable) */
} lsd_party;

/* The key of this run: cmdline_file when given (NULL: none), else
 * STATE_DIR/party-key when it exists. */
void lsd_party_init(lsd_party *p, const char *state_dir, const char *cmdline_file);

/* A value of PUT /api/settings "party_key": a string by the key file's
 * rule (lanspread/peer.h) of at most LSD_PARTY_KEY_MAX bytes, or null or
 * "" to clear. *secret gets the string (NULL to clear), fingerprint its
 * fingerprint (""). LS_EINVAL with the reason. */
int lsd_party_check(json_t *value, const char **secret,
                    char fingerprint[LS_PEER_PARTY_FINGERPRINT_LEN + 1], ls_diag *diag);

/* Whether a key of this fingerprint ("": clearing it) changes the key. */
bool lsd_party_changes(const lsd_party *p, const char *fingerprint);

/* Writes secret to STATE_DIR/party-key atomically (mode 0600), or removes
 * the file when secret is NULL, and updates p. */
int lsd_party_store(lsd_party *p, const char *state_dir, const char *secret,
                    const char *fingerprint, ls_diag *diag);

/* {"set", "fingerprint" (null when none), "fixed"}: no secret. */
json_t *lsd_party_json(const lsd_party *p);

#endif
