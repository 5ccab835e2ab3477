/* Reads command lines from stdin on a thread of its own and hands them to
 * the loop thread; end of input is reported as a NULL line. */
#ifndef LS_CLI_INPUT_H
#define LS_CLI_INPUT_H

#include <uv.h>

typedef struct cli_input cli_input;

/* on_line runs on the loop thread with one line (without the newline), or
 * with NULL once stdin is at its end. */
typedef void (*cli_line_cb)(void *user, const char *line);

int cli_input_start(uv_loop_t *loop, cli_line_cb on_line, void *user, cli_input **out);
/* Stops the reader thread, joins it and frees everything; loop thread only. */
void cli_input_stop(cli_input *in);

#endif
