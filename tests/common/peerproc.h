/* Runs a program of the build (lanspread-peer-cli, lanspread-gen) as a child
 * process for integration tests: write lines to its stdin, read JSON lines
 * from its stdout with a timeout, collect its exit status. Every child still
 * running at process exit is killed. */
#ifndef LS_PEERPROC_H
#define LS_PEERPROC_H

#include <jansson.h>
#include <stdbool.h>

typedef struct peerproc peerproc;

/* Path of a program in the build tree ($LS_BINARY_DIR/name). */
const char *pp_program(const char *name);

/* Starts argv[0] (a path) with argv; stderr goes to the test's stderr. */
peerproc *pp_start(char *const argv[]);
/* The same, inside the network namespace NAME (/var/run/netns/NAME): the
 * child setns()es before exec (exit 126 if it cannot) and is killed when
 * the test process dies. */
peerproc *pp_start_in_netns(const char *netns, char *const argv[]);
/* The same with a function instead of a program: the forked child enters
 * the namespace, gets the pipes as its stdin and stdout and exits with
 * fn(arg) (through exit(), so a sanitizer's leak check runs). For a child
 * that runs the library in-process. */
peerproc *pp_fork_in_netns(const char *netns, int (*fn)(void *arg), void *arg);
/* Writes one line (a newline is added). */
void pp_send(peerproc *p, const char *line);
/* Closes the child's stdin (end of input). */
void pp_close_stdin(peerproc *p);
/* Next stdout line as JSON, or NULL after timeout_ms or at end of output.
 * A line that is not a JSON object fails the test. Caller decrefs. */
json_t *pp_next(peerproc *p, int timeout_ms);
/* Reads lines until one has "type" == type (and "cmd" == cmd when cmd is not
 * NULL); fails the test after timeout_ms. Caller decrefs. */
json_t *pp_expect(peerproc *p, const char *type, const char *cmd, int timeout_ms);
/* Sends a command and returns its reply line. */
json_t *pp_command(peerproc *p, const char *line, int timeout_ms);
/* Sends a signal. */
void pp_signal(peerproc *p, int sig);
/* The child's process id (after an exec, the program's). */
int pp_pid(const peerproc *p);
/* Waits for exit; returns the exit code, 128+signal when killed, or -1 on
 * timeout (the child is then killed). Frees p. */
int pp_wait(peerproc *p, int timeout_ms);
/* Runs a program to completion; returns its exit code. */
int pp_run(char *const argv[], int timeout_ms);

#endif
