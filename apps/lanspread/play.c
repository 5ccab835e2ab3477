/* Owns starting programs detached (Play, the browser): a double fork so the game is not the daemon's child (no
 * zombie, no wait), its own session so closing the daemon's terminal does
 * not end it, and a close-on-exec pipe that reports the grandchild's pid
 * and, if exec fails, its errno. */
#include "play.h"

#include "core/error.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct report {
  char kind;  /* 'p': value is the pid; 'e': value is exec's errno */
  int value;
} report;

static void send_report(int fd, char kind, int value)
{
  report r = {kind, value};
  ssize_t n = write(fd, &r, sizeof r);
  (void)n;
}

/* In the grandchild: only async-signal-safe calls until exec. */
static void exec_program(char *const argv[], const char *dir, int report_fd)
{
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC); /* its dup2 copies stay open */
  if (devnull >= 0) {
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(devnull, 2);
  }
  if (chdir(dir) == 0)
    execv(argv[0], argv);
  send_report(report_fd, 'e', errno);
  _exit(127);
}

int lsd_spawn_detached(char *const argv[], const char *dir, pid_t *pid, ls_diag *diag)
{
  const char *path = argv[0];
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0)
    return ls_diag_errno(diag, errno, "cannot start", path);
  pid_t child = fork();
  if (child < 0) {
    close(fds[0]);
    close(fds[1]);
    return ls_diag_errno(diag, errno, "cannot start", path);
  }
  if (child == 0) {
    close(fds[0]);
    setsid();
    pid_t game = fork();
    if (game == 0)
      exec_program(argv, dir, fds[1]);
    send_report(fds[1], game > 0 ? 'p' : 'e', game > 0 ? game : errno);
    _exit(0);
  }
  close(fds[1]);
  waitpid(child, NULL, 0);
  report r;
  int exec_errno = 0;
  *pid = 0;
  while (read(fds[0], &r, sizeof r) == (ssize_t)sizeof r) {
    if (r.kind == 'p')
      *pid = r.value;
    else
      exec_errno = r.value;
  }
  close(fds[0]);
  if (exec_errno || *pid == 0)
    return ls_diag_errno(diag, exec_errno ? exec_errno : EIO, "cannot start", path);
  return LS_OK;
}

int lsd_play_start(const char *path, pid_t *pid, ls_diag *diag)
{
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (!slash)
    return ls_diag_set(diag, LS_EINVAL, "%s is not an absolute path", path);
  *(slash == dir ? slash + 1 : slash) = '\0';
  char *const argv[] = {(char *)path, NULL};
  return lsd_spawn_detached(argv, dir, pid, diag);
}
