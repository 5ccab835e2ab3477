/* The page's state and its event stream. The hub is the one owner of what
 * the web UI shows: the runtime's library (each game with the state,
 * actions and operation the runtime gives it) and peers, each game's last
 * error and last verification's result, the settings and the runtime's
 * status. Runtime events go in
 * (lsd_hub_on_event, on the runtime thread); numbered records for
 * Server-Sent Events come out (records.h, on HTTP threads). */
#ifndef LSD_HUB_H
#define LSD_HUB_H

#include "records.h"

#include <jansson.h>
#include <lanspread/catalog.h>
#include <lanspread/peer.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct lsd_hub lsd_hub;

int lsd_hub_create(lsd_hub **out);
/* Wakes every stream reader and makes them end; then free. */
void lsd_hub_close(lsd_hub *hub);
void lsd_hub_free(lsd_hub *hub);

/* Inputs. The catalog must outlive its use (until the next call). */
void lsd_hub_set_catalog(lsd_hub *hub, const ls_catalog *catalog);
void lsd_hub_on_event(lsd_hub *hub, const ls_event *ev);
void lsd_hub_set_games(lsd_hub *hub, json_t *games);    /* steals */
void lsd_hub_set_peers(lsd_hub *hub, json_t *peers);    /* steals */
/* {"settings", "runtime", "setup_needed", "suggested_game_dir"}; steals.
 * Play and the cards read the game directory from its settings. */
void lsd_hub_set_status(lsd_hub *hub, json_t *status);
/* A command was accepted or refused: remember which action the next
 * failure of that game belongs to, or show the refusal on the card. */
void lsd_hub_note_action(lsd_hub *hub, const char *id, const char *action);
void lsd_hub_note_failure(lsd_hub *hub, const char *id, const char *action, int code,
                          const char *detail);

/* True while an operation (download, install, ...) runs on any game. */
bool lsd_hub_any_busy(lsd_hub *hub);

/* Views (new references). */
json_t *lsd_hub_snapshot(lsd_hub *hub);
json_t *lsd_hub_card(lsd_hub *hub, const char *id); /* NULL: not in the library */
json_t *lsd_hub_cards(lsd_hub *hub);
json_t *lsd_hub_peers(lsd_hub *hub);
/* The launch file of an installed game with a catalog launch path, as an
 * absolute path inside its local/ (malloc'ed), or NULL with a reason. */
char *lsd_hub_launch_path(lsd_hub *hub, const char *id, char *why, size_t why_size);

/* The event stream's log (records.h): streams open on it. */
lsd_log *lsd_hub_log(lsd_hub *hub);

#endif
