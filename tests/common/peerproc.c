/* Owns the child processes of integration tests (tests/common/peerproc.h). */
#include "peerproc.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CHILDREN 64
#define BUF_SIZE (1 << 20)

struct peerproc {
  pid_t pid;
  int in_fd, out_fd;
  char *buf;
  size_t len;
  bool eof;
};

static pid_t children[MAX_CHILDREN];
static pid_t parent_pid;

static void kill_children(void)
{
  if (getpid() != parent_pid)
    return;
  for (int i = 0; i < MAX_CHILDREN; i++)
    if (children[i] > 0) {
      kill(children[i], SIGKILL);
      waitpid(children[i], NULL, 0);
      children[i] = 0;
    }
}

static void track(pid_t pid, bool add)
{
  if (!parent_pid) {
    parent_pid = getpid();
    atexit(kill_children);
  }
  for (int i = 0; i < MAX_CHILDREN; i++)
    if (add ? children[i] == 0 : children[i] == pid) {
      children[i] = add ? pid : 0;
      return;
    }
}

const char *pp_program(const char *name)
{
  static char path[8][4096];
  static int next;
  const char *dir = getenv("LS_BINARY_DIR");
  char *p = path[next++ % 8];
  snprintf(p, sizeof path[0], "%s/%s", dir ? dir : ".", name);
  return p;
}

static uint64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Moves a forked child into the named network namespace; exits 126 when it
 * cannot. The child dies with the test process (PR_SET_PDEATHSIG). */
static void enter_netns_or_exit(const char *netns, pid_t parent)
{
  char path[4096];
  snprintf(path, sizeof path, "/var/run/netns/%s", netns);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
    fprintf(stderr, "cannot enter network namespace %s: %s\n", netns, strerror(errno));
    _exit(126);
  }
  close(fd);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent)
    _exit(126);
}

/* Runs argv, or (argv NULL) exits with fn(arg), in the child. */
static peerproc *start_child(char *const argv[], const char *netns, int (*fn)(void *),
                             void *arg)
{
  int in[2], out[2];
  pid_t parent = getpid();
  assert_int_equal(pipe2(in, O_CLOEXEC), 0);
  assert_int_equal(pipe2(out, O_CLOEXEC), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    if (netns)
      enter_netns_or_exit(netns, parent);
    dup2(in[0], 0);
    dup2(out[1], 1);
    if (!argv) { /* no exec closes the pipes' other ends: they must go */
      close(in[0]);
      close(in[1]);
      close(out[0]);
      close(out[1]);
      exit(fn(arg)); /* exit: a sanitizer's leak check runs in the child */
    }
    execv(argv[0], argv);
    fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  track(pid, true);
  peerproc *p = calloc(1, sizeof *p);
  p->pid = pid;
  p->in_fd = in[1];
  p->out_fd = out[0];
  p->buf = malloc(BUF_SIZE);
  return p;
}

peerproc *pp_start(char *const argv[])
{
  return start_child(argv, NULL, NULL, NULL);
}

peerproc *pp_start_in_netns(const char *netns, char *const argv[])
{
  return start_child(argv, netns, NULL, NULL);
}

peerproc *pp_fork_in_netns(const char *netns, int (*fn)(void *arg), void *arg)
{
  fflush(NULL);
  return start_child(NULL, netns, fn, arg);
}

void pp_send(peerproc *p, const char *line)
{
  size_t n = strlen(line);
  char *msg = malloc(n + 1);
  memcpy(msg, line, n);
  msg[n] = '\n';
  assert_int_equal(write(p->in_fd, msg, n + 1), (ssize_t)(n + 1));
  free(msg);
}

void pp_close_stdin(peerproc *p)
{
  if (p->in_fd >= 0)
    close(p->in_fd);
  p->in_fd = -1;
}

/* Takes one complete line out of the buffer, or returns NULL. */
static char *take_line(peerproc *p)
{
  char *nl = memchr(p->buf, '\n', p->len);
  if (!nl)
    return NULL;
  size_t n = (size_t)(nl - p->buf);
  char *line = strndup(p->buf, n);
  memmove(p->buf, nl + 1, p->len - n - 1);
  p->len -= n + 1;
  return line;
}

json_t *pp_next(peerproc *p, int timeout_ms)
{
  uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
  char *line;
  while (!(line = take_line(p))) {
    int left = (int)(deadline - now_ms());
    if (p->eof || left <= 0)
      return NULL;
    struct pollfd pfd = {.fd = p->out_fd, .events = POLLIN};
    if (poll(&pfd, 1, left) <= 0)
      continue;
    ssize_t n = read(p->out_fd, p->buf + p->len, BUF_SIZE - p->len);
    if (n <= 0)
      p->eof = true;
    else
      p->len += (size_t)n;
  }
  json_error_t err;
  json_t *obj = json_loads(line, JSON_REJECT_DUPLICATES, &err);
  if (!obj || !json_is_object(obj))
    fail_msg("stdout line is not a JSON object: %s", line);
  free(line);
  return obj;
}

static bool matches(json_t *obj, const char *type, const char *cmd)
{
  const char *t = json_string_value(json_object_get(obj, "type"));
  const char *c = json_string_value(json_object_get(obj, "cmd"));
  return t && strcmp(t, type) == 0 && (!cmd || (c && strcmp(c, cmd) == 0));
}

json_t *pp_expect(peerproc *p, const char *type, const char *cmd, int timeout_ms)
{
  uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
  for (;;) {
    int left = (int)(deadline - now_ms());
    json_t *obj = left > 0 ? pp_next(p, left) : NULL;
    if (!obj)
      fail_msg("no '%s'%s%s line within %d ms", type, cmd ? " for " : "", cmd ? cmd : "",
               timeout_ms);
    if (matches(obj, type, cmd))
      return obj;
    json_decref(obj);
  }
}

json_t *pp_command(peerproc *p, const char *line, int timeout_ms)
{
  char cmd[64];
  snprintf(cmd, sizeof cmd, "%s", line);
  cmd[strcspn(cmd, " \t")] = '\0';
  pp_send(p, line);
  return pp_expect(p, "reply", cmd, timeout_ms);
}

void pp_signal(peerproc *p, int sig)
{
  kill(p->pid, sig);
}

int pp_pid(const peerproc *p)
{
  return (int)p->pid;
}

int pp_wait(peerproc *p, int timeout_ms)
{
  uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
  int status = 0, code = -1;
  for (;;) {
    pid_t r = waitpid(p->pid, &status, WNOHANG);
    if (r == p->pid) {
      code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    if (now_ms() >= deadline) {
      kill(p->pid, SIGKILL);
      waitpid(p->pid, NULL, 0);
      break;
    }
    usleep(10000);
  }
  track(p->pid, false);
  pp_close_stdin(p);
  close(p->out_fd);
  free(p->buf);
  free(p);
  return code;
}

int pp_run(char *const argv[], int timeout_ms)
{
  peerproc *p = pp_start(argv);
  pp_close_stdin(p);
  uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
  while (!p->eof && now_ms() < deadline) { /* drain stdout, whatever it is */
    struct pollfd pfd = {.fd = p->out_fd, .events = POLLIN};
    if (poll(&pfd, 1, 100) > 0 && read(p->out_fd, p->buf, BUF_SIZE) <= 0)
      p->eof = true;
  }
  return pp_wait(p, (int)(deadline > now_ms() ? deadline - now_ms() : 1));
}
