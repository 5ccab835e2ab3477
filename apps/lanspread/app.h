/* What the parts of the lanspread daemon share: the hub (page state), the
 * host (runtime), the settings and the API key. main.c owns it. */
#ifndef LSD_APP_H
#define LSD_APP_H

#include "host.h"
#include "hub.h"
#include "partykey.h"
#include "settings.h"

#include <jansson.h>
#include <pthread.h>

#define LSD_API_KEY_LEN 64

typedef struct lsd_app {
  lsd_hub *hub;
  lsd_host *host;
  const char *config_path;
  const char *state_dir;
  const char *suggested_game_dir; /* for the setup screen */
  pthread_mutex_t settings_lock; /* one settings change at a time */
  lsd_settings saved;            /* what the config file holds */
  lsd_settings effective;        /* saved, with this run's command-line overrides */
  lsd_party party;               /* the party key (under settings_lock) */
  struct lsd_auth *auth;         /* sessions, login token, password */
  char api_key[LSD_API_KEY_LEN + 1];
} lsd_app;

/* api.c: one REST call. body is the parsed JSON body or NULL. Returns the
 * HTTP status and sets *out to the JSON answer. */
int lsd_api_handle(lsd_app *app, const char *method, const char *path, json_t *body,
                   json_t **out);
/* api.c: {"settings", "runtime", "setup_needed", "suggested_game_dir"}, also
 * handed to the hub. */
json_t *lsd_app_status(lsd_app *app);
void lsd_app_publish_status(lsd_app *app);
/* An error answer: {"error", "code"}. */
json_t *lsd_error_json(const char *code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
