/* Starting programs detached from the daemon: a game's, or the browser. */
#ifndef LSD_PLAY_H
#define LSD_PLAY_H

#include <lanspread/error.h>
#include <sys/types.h>

/* Runs argv (argv[0] an absolute path) in its own session in dir, with
 * stdin/stdout/stderr on /dev/null; the daemon does not wait for it. *pid
 * is the program's process id. */
int lsd_spawn_detached(char *const argv[], const char *dir, pid_t *pid, ls_diag *diag);

/* Play: runs path (absolute) in its own directory. */
int lsd_play_start(const char *path, pid_t *pid, ls_diag *diag);

#endif
