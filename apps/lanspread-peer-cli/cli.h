/* State shared by the parts of lanspread-peer-cli. Loop thread only. */
#ifndef LS_CLI_H
#define LS_CLI_H

#include "input.h"

#include "library/monitor.h"
#include "net/identity.h"

#include <stdbool.h>
#include <uv.h>

typedef struct cli {
  char *game_dir, *state_dir;
  const char *catalog_path;
  bool default_game_dir, serve, quitting;
  uv_loop_t loop;
  uv_signal_t sigint, sigterm;
  ls_catalog *catalog;
  ls_identity *identity;
  ls_monitor *monitor;
  cli_input *input;
} cli;

/* One command line (NULL: end of stdin). */
void cli_on_line(void *user, const char *line);
/* Prints games-list-updated with the current library; ids lists what changed. */
void cli_emit_games_updated(cli *c, const char *const *ids, size_t n);
/* Stops reading, closes the peer; the loop then ends. */
void cli_quit(cli *c);

#endif
