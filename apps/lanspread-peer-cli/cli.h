/* State shared by the parts of lanspread-peer-cli. Main thread only. */
#ifndef LS_CLI_H
#define LS_CLI_H

#include "input.h"

#include <jansson.h>
#include <lanspread/peer.h>
#include <stdbool.h>
#include <uv.h>

typedef struct cli_wait cli_wait;

typedef struct cli {
  ls_peer_config config;
  char *game_dir, *state_dir;
  const char **static_peers;
  bool default_game_dir, serve, quitting;
  uv_loop_t loop;
  uv_signal_t sigint, sigterm;
  uv_poll_t events;
  ls_peer *peer;
  cli_input *input;
  uint64_t next_tag;

  /* commands run one at a time (commands.c) */
  struct pending_line *pending, *pending_tail;
  uint64_t awaiting_tag;  /* the runtime command whose reply we wait for */
  bool awaiting_wait;     /* a wait or wait-peers is running */

  /* waits (waits.c) */
  json_t *history;        /* {"TYPE\x1fID": count} printed, not yet consumed */
  cli_wait *waits;
  long long peer_count;
} cli;

/* commands.c: one command line (NULL: end of stdin). Commands run one at a
 * time, in order: a line waits until the previous command was answered. */
void cli_on_line(void *user, const char *line);
/* The running command was answered: run the next queued lines. */
void cli_command_done(cli *c);
void cli_commands_close(cli *c);
/* main.c: stops reading, stops the peer; the loop then ends. */
void cli_quit(cli *c);

/* waits.c */
void cli_wait_start(cli *c, const char *type, const char *id, double timeout_s);
void cli_wait_peers_start(cli *c, long long count, double timeout_s);
/* Every printed event passes through here: it may complete a wait. */
void cli_waits_on_event(cli *c, const ls_event *ev);
void cli_waits_close(cli *c);

#endif
