/* Owns the test network namespaces of netns.h: their creation with ip(8),
 * the children forked into them, and their removal on destroy, at exit, on
 * termination signals, and (for dead test processes) at the next create. */
#include "netns.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NETNS_DIR "/var/run/netns"
#define MAX_TOPOLOGIES 8
#define MAX_HOSTS 32
#define MAX_CHILDREN 64
#define NAME_MAX_LEN 48

struct ls_netns {
  int index; /* slot in `topologies`, also the subnet number */
  int n_hosts;
  char hub[NAME_MAX_LEN];
  char hosts[MAX_HOSTS][NAME_MAX_LEN];
  char addrs[MAX_HOSTS][32];
  int n_made; /* namespaces created so far: hub first, then hosts */
  pid_t children[MAX_CHILDREN];
};

static ls_netns *topologies[MAX_TOPOLOGIES];
static pid_t owner_pid;

/* ---- removal (async-signal-safe parts) ---- */

static void remove_netns_file(const char *name)
{
  char path[128];
  size_t dl = strlen(NETNS_DIR), nl = strlen(name);
  if (dl + 1 + nl + 1 > sizeof path)
    return;
  memcpy(path, NETNS_DIR, dl);
  path[dl] = '/';
  memcpy(path + dl + 1, name, nl + 1);
  umount2(path, MNT_DETACH);
  unlink(path);
}

static void kill_children(ls_netns *t, bool reap)
{
  for (int i = 0; i < MAX_CHILDREN; i++)
    if (t->children[i] > 0) {
      kill(t->children[i], SIGKILL);
      if (reap)
        waitpid(t->children[i], NULL, 0);
      t->children[i] = 0;
    }
}

/* Veths and the bridge live only in our namespaces: they go with them. */
static void remove_namespaces(ls_netns *t)
{
  for (int i = t->n_made - 2; i >= 0; i--)
    remove_netns_file(t->hosts[i]);
  if (t->n_made > 0)
    remove_netns_file(t->hub);
  t->n_made = 0;
}

static void cleanup_all(bool reap)
{
  if (getpid() != owner_pid)
    return; /* a forked child must not remove its parent's namespaces */
  for (int i = 0; i < MAX_TOPOLOGIES; i++)
    if (topologies[i]) {
      kill_children(topologies[i], reap);
      remove_namespaces(topologies[i]);
    }
}

static void cleanup_at_exit(void)
{
  cleanup_all(true);
  for (int i = 0; i < MAX_TOPOLOGIES; i++) {
    free(topologies[i]);
    topologies[i] = NULL;
  }
}

static void cleanup_on_signal(int sig)
{
  cleanup_all(false);
  signal(sig, SIG_DFL);
  raise(sig);
}

static void install_cleanup(void)
{
  static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
  if (owner_pid)
    return;
  owner_pid = getpid();
  atexit(cleanup_at_exit);
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = cleanup_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(sigs[i], &sa, NULL);
  }
}

/* Removes "lsnt<pid>-..." namespaces whose creating process is gone. */
static void reap_stale(void)
{
  DIR *d = opendir(NETNS_DIR);
  if (!d)
    return;
  struct dirent *e;
  while ((e = readdir(d))) {
    char *end;
    if (strncmp(e->d_name, "lsnt", 4) != 0)
      continue;
    long pid = strtol(e->d_name + 4, &end, 10);
    if (end == e->d_name + 4 || *end != '-' || pid <= 0)
      continue;
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
      remove_netns_file(e->d_name);
  }
  closedir(d);
}

/* ---- running commands ---- */

static int wait_exit_code(pid_t pid)
{
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Runs argv (PATH lookup) and waits; stdout is discarded, stderr kept unless
 * quiet. */
static int run(char *const argv[], bool quiet)
{
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    if (quiet)
      dup2(null, 2);
    execvp(argv[0], argv);
    _exit(127);
  }
  return wait_exit_code(pid);
}

/* Runs "ip ARGS..." from a printf-style command line split at spaces. */
static int ip(bool quiet, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ip(bool quiet, const char *fmt, ...)
{
  char line[512], *argv[32];
  int argc = 0;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  argv[argc++] = "ip";
  for (char *tok = strtok(line, " "); tok && argc < 31; tok = strtok(NULL, " "))
    argv[argc++] = tok;
  argv[argc] = NULL;
  return run(argv, quiet);
}

/* ---- creation ---- */

static int free_slot(void)
{
  for (int i = 0; i < MAX_TOPOLOGIES; i++)
    if (!topologies[i])
      return i;
  return -1;
}

static int make_hub(ls_netns *t)
{
  if (ip(false, "netns add %s", t->hub) != 0)
    return -1;
  t->n_made = 1;
  if (ip(false, "-n %s link add br0 type bridge mcast_snooping 0", t->hub) != 0 ||
      ip(false, "-n %s link set br0 up", t->hub) != 0 ||
      ip(false, "-n %s link set lo up", t->hub) != 0)
    return -1;
  return 0;
}

static int make_host(ls_netns *t, int i)
{
  const char *h = t->hosts[i];
  if (ip(false, "netns add %s", h) != 0)
    return -1;
  t->n_made = i + 2;
  if (ip(false, "-n %s link add v%d type veth peer name eth0 netns %s", t->hub, i, h) != 0 ||
      ip(false, "-n %s link set v%d master br0 up", t->hub, i) != 0 ||
      ip(false, "-n %s addr add %s/24 dev eth0", h, t->addrs[i]) != 0 ||
      ip(false, "-n %s link set eth0 up", h) != 0 || ip(false, "-n %s link set lo up", h) != 0)
    return -1;
  return 0;
}

static void set_names(ls_netns *t)
{
  snprintf(t->hub, sizeof t->hub, "lsnt%d-%d-hub", (int)getpid(), t->index);
  for (int i = 0; i < t->n_hosts; i++) {
    snprintf(t->hosts[i], sizeof t->hosts[i], "lsnt%d-%d-%d", (int)getpid(), t->index, i);
    snprintf(t->addrs[i], sizeof t->addrs[i], "10.213.%d.%d", t->index + 1, i + 1);
  }
}

ls_netns *ls_netns_create(int n_hosts, char *why, size_t why_size)
{
  install_cleanup();
  reap_stale();
  int slot = free_slot();
  if (n_hosts < 1 || n_hosts > MAX_HOSTS || slot < 0) {
    snprintf(why, why_size, "netns: bad host count %d or too many topologies", n_hosts);
    return NULL;
  }
  if (geteuid() != 0) {
    snprintf(why, why_size, "network namespaces need root (CAP_SYS_ADMIN, CAP_NET_ADMIN)");
    return NULL;
  }
  ls_netns *t = calloc(1, sizeof *t);
  t->index = slot;
  t->n_hosts = n_hosts;
  set_names(t);
  topologies[slot] = t; /* cleaned up on a signal from here on */
  if (make_hub(t) != 0) {
    snprintf(why, why_size, "`ip netns add` or bridge creation is not permitted here");
    ls_netns_destroy(t);
    return NULL;
  }
  for (int i = 0; i < n_hosts; i++)
    if (make_host(t, i) != 0) {
      snprintf(why, why_size, "cannot create host namespace %d (veth/address setup failed)", i);
      ls_netns_destroy(t);
      return NULL;
    }
  return t;
}

void ls_netns_destroy(ls_netns *t)
{
  if (!t)
    return;
  kill_children(t, true);
  remove_namespaces(t);
  topologies[t->index] = NULL;
  free(t);
}

int ls_netns_count(const ls_netns *t)
{
  return t->n_hosts;
}

const char *ls_netns_name(const ls_netns *t, int host)
{
  return host >= 0 && host < t->n_hosts ? t->hosts[host] : NULL;
}

const char *ls_netns_addr(const ls_netns *t, int host)
{
  return host >= 0 && host < t->n_hosts ? t->addrs[host] : NULL;
}

/* ---- running things inside a host ---- */

int ls_netns_enter(const ls_netns *t, int host)
{
  char path[128];
  if (host < 0 || host >= t->n_hosts)
    return -EINVAL;
  snprintf(path, sizeof path, "%s/%s", NETNS_DIR, t->hosts[host]);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  int r = setns(fd, CLONE_NEWNET) == 0 ? 0 : -errno;
  close(fd);
  return r;
}

static bool track_child(ls_netns *t, pid_t pid, bool add)
{
  for (int i = 0; i < MAX_CHILDREN; i++)
    if (add ? t->children[i] == 0 : t->children[i] == pid) {
      t->children[i] = add ? pid : 0;
      return true;
    }
  return false;
}

/* In the child: pipes to stdin/stdout, die with the parent, enter the host. */
static void child_setup(const ls_netns *t, int host, pid_t parent, int in[2], int out[2])
{
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent)
    _exit(126);
  if (in[0] >= 0)
    dup2(in[0], 0);
  if (out[1] >= 0)
    dup2(out[1], 1);
  int r = ls_netns_enter(t, host);
  if (r < 0) {
    fprintf(stderr, "cannot enter network namespace %s: %s\n", t->hosts[host], strerror(-r));
    _exit(126);
  }
}

pid_t ls_netns_fork(ls_netns *t, int host, int (*fn)(void *arg), void *arg, int *to_child,
                    int *from_child)
{
  int in[2] = {-1, -1}, out[2] = {-1, -1};
  pid_t parent = getpid();
  if (host < 0 || host >= t->n_hosts)
    return -1;
  if ((to_child && pipe2(in, O_CLOEXEC) != 0) || (from_child && pipe2(out, O_CLOEXEC) != 0))
    return -1;
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    child_setup(t, host, parent, in, out);
    exit(fn(arg));
  }
  if (in[0] >= 0)
    close(in[0]);
  if (out[1] >= 0)
    close(out[1]);
  if (pid < 0) {
    if (in[1] >= 0)
      close(in[1]);
    if (out[0] >= 0)
      close(out[0]);
    return -1;
  }
  track_child(t, pid, true);
  if (to_child)
    *to_child = in[1];
  if (from_child)
    *from_child = out[0];
  return pid;
}

static long long now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ls_netns_wait(ls_netns *t, pid_t pid, int timeout_ms)
{
  long long deadline = now_ms() + timeout_ms;
  int status, code = -1;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    if (r < 0 || now_ms() >= deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, NULL, 0);
      break;
    }
    usleep(10000);
  }
  track_child(t, pid, false);
  return code;
}

peerproc *ls_netns_start(const ls_netns *t, int host, char *const argv[])
{
  return pp_start_in_netns(ls_netns_name(t, host), argv);
}

int ls_netns_exec(const ls_netns *t, int host, char *const argv[])
{
  pid_t parent = getpid();
  int none[2] = {-1, -1};
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    child_setup(t, host, parent, none, none);
    execvp(argv[0], argv);
    _exit(127);
  }
  return wait_exit_code(pid);
}

/* tbf on one device of one namespace; rate 0 removes the qdisc. */
static int shape_dev(const char *netns, const char *dev, double mbit)
{
  if (mbit <= 0) {
    ip(true, "netns exec %s tc qdisc del dev %s root", netns, dev);
    return 0;
  }
  long long bytes_per_s = (long long)(mbit * 1e6 / 8);
  long long burst = bytes_per_s / 250; /* 4 ms worth, at least a few frames */
  if (burst < 16384)
    burst = 16384;
  return ip(false, "netns exec %s tc qdisc replace dev %s root tbf rate %.3fmbit burst %lld latency 100ms",
            netns, dev, mbit, burst) == 0 ? 0 : -1;
}

int ls_netns_shape(const ls_netns *t, int host, double up_mbit, double down_mbit)
{
  char hub_dev[16];
  if (host < 0 || host >= t->n_hosts)
    return -1;
  snprintf(hub_dev, sizeof hub_dev, "v%d", host);
  int a = shape_dev(t->hosts[host], "eth0", up_mbit);
  int b = shape_dev(t->hub, hub_dev, down_mbit);
  return a == 0 && b == 0 ? 0 : -1;
}

int ls_netns_link(const ls_netns *t, int host, bool up)
{
  if (host < 0 || host >= t->n_hosts)
    return -1;
  return ip(false, "-n %s link set v%d %s", t->hub, host, up ? "up" : "down") == 0 ? 0 : -1;
}
