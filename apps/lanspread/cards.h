/* The cards of the web UI: one per game of the runtime's library, built
 * from the runtime's entry (its state, actions, running operation and
 * download), the catalog's fields, the last error and the last
 * verification's result in a player's words, and Play, which only the
 * daemon offers. Pure functions: the hub calls them under its lock. */
#ifndef LSD_CARDS_H
#define LSD_CARDS_H

#include <jansson.h>
#include <lanspread/catalog.h>
#include <stddef.h>

/* A new card for game (the runtime's entry); cg may be NULL (no catalog
 * yet), error is the hub's {"action", "message", "detail"} or NULL, verify
 * a result of lsd_verify_result or NULL. The card shares no value with
 * them: it is read and freed outside the hub's lock, and jansson's atomic
 * reference counts do not order such reads before the last owner frees the
 * value. */
json_t *lsd_card_new(json_t *game, const ls_catalog_game *cg, json_t *error, json_t *verify,
                     const char *game_dir);

/* The card's "verify" (a new object) for a verification's
 * game-verify-finished event, or for the game-download-finished event of
 * a repair: the event's fields without type and id, "repair" (true after
 * a repair, which also sets "ok"), and "message" in a player's words. */
json_t *lsd_verify_result(json_t *event);

/* The words a player reads for a failure of action with error code
 * (LS_E*): never NULL. */
const char *lsd_player_message(const char *action, int code);

/* The launch file of game (a library entry, never NULL; cg its catalog
 * entry or NULL) when it is installed (a catalog launch path inside
 * GAME_DIR/ID/local/, regular and executable) as a malloc'ed absolute
 * path, or NULL with the reason in why. */
char *lsd_launch_path(const char *game_dir, const ls_catalog_game *cg, json_t *game, char *why,
                      size_t why_size);

#endif
