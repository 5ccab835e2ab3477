/* Owns the external command runner of the unpacker (install/unpack.h):
 * --unpacker templates split into words without a shell, {archive} and
 * {dest} substituted, the command spawned with stdin and stdout on
 * /dev/null in a process group of its own (fork and exec: the file size
 * cap is set before exec), confined with bubblewrap when
 * bwrap works here (probed once), the tail of its stderr kept for the diag,
 * the extraction limits watched while it runs (the destination counted,
 * RLIMIT_FSIZE on its files, the group killed over a limit), cancellation. */
#include "install/unpack_parts.h"

#include "core/array.h"
#include "core/error.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STDERR_KEEP 4096 /* tail of an external command's stderr */
#define POLL_MS 250      /* stderr poll; the watch runs at most this often */
#define PROGRESS_S 0.5   /* progress (and cancel) polled this often */
#define COUNT_COST 4.0   /* a count of the tree waits this many times its cost */

extern char **environ;

typedef struct word_list {
  char **v;
  size_t count, cap;
} word_list;

static void words_free(word_list *w)
{
  for (size_t i = 0; i < w->count; i++)
    free(w->v[i]);
  free(w->v);
  *w = (word_list){0};
}

static int words_push(word_list *w, char *s)
{
  char **v = ls_array_reserve(w->v, &w->cap, w->count + 2, sizeof *v); /* + the NULL */
  if (!v) {
    free(s);
    return LS_ENOMEM;
  }
  w->v = v;
  w->v[w->count++] = s;
  w->v[w->count] = NULL;
  return LS_OK;
}

/* Reads one shell-like word starting at *p into out (cap bytes, as long as
 * the template): quotes group, backslash escapes outside single quotes. */
static int read_word(const char **p, char *out, ls_diag *diag)
{
  const char *s = *p;
  char quote = 0;
  size_t n = 0;
  for (; *s && (quote || !isspace((unsigned char)*s)); s++) {
    if (quote && *s == quote) {
      quote = 0;
    } else if (!quote && (*s == '\'' || *s == '"')) {
      quote = *s;
    } else if (*s == '\\' && quote != '\'' && s[1]) {
      out[n++] = *++s;
    } else {
      out[n++] = *s;
    }
  }
  out[n] = '\0';
  *p = s;
  if (quote)
    return ls_diag_set(diag, LS_EINVAL, "--unpacker: unterminated %c quote", quote);
  return LS_OK;
}

static int split_template(const char *tmpl, word_list *out, ls_diag *diag)
{
  *out = (word_list){0};
  size_t len = strlen(tmpl);
  for (const char *p = tmpl;;) {
    while (isspace((unsigned char)*p))
      p++;
    if (!*p)
      break;
    char *word = malloc(len + 1);
    if (!word)
      return words_free(out), diag_oom(diag);
    int rc = read_word(&p, word, diag);
    if (rc == LS_OK)
      rc = words_push(out, word);
    else
      free(word);
    if (rc != LS_OK) {
      words_free(out);
      return rc == LS_ENOMEM ? diag_oom(diag) : rc;
    }
  }
  if (out->count == 0)
    return ls_diag_set(diag, LS_EINVAL, "--unpacker: empty command");
  return LS_OK;
}

int ls_unpack_check_template(const char *tmpl, ls_diag *diag)
{
  word_list w;
  int rc = split_template(tmpl, &w, diag);
  if (rc != LS_OK)
    return rc;
  bool has_archive = false, has_dest = false;
  for (size_t i = 0; i < w.count; i++) {
    has_archive |= strstr(w.v[i], "{archive}") != NULL;
    has_dest |= strstr(w.v[i], "{dest}") != NULL;
  }
  words_free(&w);
  if (!has_archive || !has_dest)
    return ls_diag_set(diag, LS_EINVAL, "--unpacker '%s': must contain {archive} and {dest}",
                       tmpl);
  return LS_OK;
}

/* A copy of word with every {archive} and {dest} replaced. */
static char *substitute(const char *word, const char *archive, const char *dest)
{
  size_t cap = strlen(word) + 1;
  for (const char *p = word; (p = strchr(p, '{')); p++)
    cap += strlen(archive) + strlen(dest);
  char *out = malloc(cap);
  if (!out)
    return NULL;
  size_t n = 0;
  for (const char *p = word; *p;) {
    const char *value = NULL;
    size_t skip = 0;
    if (strncmp(p, "{archive}", 9) == 0)
      value = archive, skip = 9;
    else if (strncmp(p, "{dest}", 6) == 0)
      value = dest, skip = 6;
    if (value) {
      memcpy(out + n, value, strlen(value));
      n += strlen(value);
      p += skip;
    } else {
      out[n++] = *p++;
    }
  }
  out[n] = '\0';
  return out;
}

/* Keeps the last STDERR_KEEP bytes of a stream. */
typedef struct tail_buf {
  char data[2 * STDERR_KEEP + 1]; /* + 1 for the NUL of tail_text */
  size_t len;
} tail_buf;

static void tail_read(tail_buf *t, int fd, bool *eof)
{
  if (t->len > STDERR_KEEP) {
    memmove(t->data, t->data + t->len - STDERR_KEEP, STDERR_KEEP);
    t->len = STDERR_KEEP;
  }
  ssize_t n = read(fd, t->data + t->len, sizeof t->data - 1 - t->len);
  if (n > 0)
    t->len += (size_t)n;
  else if (n == 0 || (errno != EINTR && errno != EAGAIN))
    *eof = true;
}

/* The tail as one line: control characters become spaces, trimmed. */
static const char *tail_text(tail_buf *t, size_t max)
{
  size_t start = t->len > max ? t->len - max : 0;
  char *s = t->data + start;
  size_t n = t->len - start;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
      s[i] = ' ';
  while (n > 0 && s[n - 1] == ' ')
    n--;
  s[n] = '\0';
  while (*s == ' ')
    s++;
  return s;
}

/* The child between fork and exec: system calls only (the parent has
 * threads). Reports errno on report_fd when it cannot exec. */
static void child_exec(const char *path, char *const argv[], int err_fd, int report_fd,
                       const struct rlimit *fsize)
{
  int in = open("/dev/null", O_RDONLY);
  int out = open("/dev/null", O_WRONLY);
  bool ok = setsid() >= 0 && in >= 0 && out >= 0 && dup2(in, 0) == 0 && dup2(out, 1) == 1 &&
            dup2(err_fd, 2) == 2 && (!fsize || setrlimit(RLIMIT_FSIZE, fsize) == 0);
  if (ok) {
    if (in > 2)
      close(in);
    if (out > 2)
      close(out);
    execve(path, argv, environ);
  }
  int e = errno;
  ssize_t n = write(report_fd, &e, sizeof e);
  (void)n;
  _exit(127);
}

/* Starts argv (argv[0] looked up on PATH) with stdin and stdout on
 * /dev/null, stderr on err_fd, in a session of its own (no terminal; a
 * kill of its process group reaches what it starts) and, when fsize is not NULL, that cap on every
 * file it writes, set before exec (so bwrap's own children inherit it).
 * Returns 0 or the errno of the failure. */
static int spawn_child(char *const argv[], int err_fd, const struct rlimit *fsize, pid_t *pid)
{
  char path[PATH_MAX];
  if (!ls_unpack_find_exec(argv[0], path, sizeof path))
    return ENOENT;
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0)
    return errno;
  *pid = fork();
  if (*pid == 0)
    child_exec(path, argv, err_fd, report[1], fsize);
  int e = *pid < 0 ? errno : 0;
  close(report[1]);
  int child_errno = 0;
  ssize_t n = 0;
  while (*pid > 0 && (n = read(report[0], &child_errno, sizeof child_errno)) < 0 && errno == EINTR)
    ;
  close(report[0]);
  if (e == 0 && n == (ssize_t)sizeof child_errno) { /* it could not exec: reap it */
    int status;
    while (waitpid(*pid, &status, 0) < 0 && errno == EINTR)
      ;
    e = child_errno;
  }
  return e;
}

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void kill_group(pid_t pid)
{
  if (kill(-pid, SIGKILL) != 0)
    kill(pid, SIGKILL);
}

/* ==== the watch: limits and progress while the command runs ============== */

typedef struct watch {
  const char *archive, *dest;
  ls_unpack_limits *limits; /* NULL: nothing to watch (the sandbox probe) */
  ls_unpack_progress_cb progress;
  void *user;
  double next_count, next_progress;
  uint64_t archive_bytes; /* of this archive, as last counted */
  int rc;                 /* why the command was killed */
  ls_diag why;
} watch;

/* Counts the destination against the limits. A count that fails while the
 * command changes the tree is tried again at the next tick; one too deep
 * is an offence (what lies below cannot be counted). */
static int watch_count(watch *w, bool final)
{
  double start = now_s();
  ls_tree_count n;
  int rc = ls_unpack_count_tree(w->dest, &n, &w->why);
  double end = now_s(), wait = COUNT_COST * (end - start);
  w->next_count = end + (wait > POLL_MS / 1000.0 ? wait : POLL_MS / 1000.0);
  if (rc != LS_OK)
    return final || rc == LS_ETOOBIG ? rc : LS_OK;
  uint64_t base = w->limits->archive_base;
  w->archive_bytes = n.bytes > base ? n.bytes - base : 0;
  return ls_unpack_limits_observe(w->limits, w->archive, n.bytes, n.entries, &w->why);
}

/* One tick: false when the command must die (w->rc says why). */
static bool watch_tick(watch *w)
{
  double now = now_s();
  if (w->limits && now >= w->next_count)
    w->rc = watch_count(w, false);
  if (w->rc == LS_OK && w->progress && now >= w->next_progress) {
    w->next_progress = now + PROGRESS_S;
    if (!w->progress(w->user, w->archive_bytes))
      w->rc = ls_diag_set(&w->why, LS_ECANCELED, "%s: extraction cancelled", w->archive);
  }
  return w->rc == LS_OK;
}

/* Every file the command writes stops at what the game may still write: a
 * write past it fails (SIGXFSZ or EFBIG). The counts are the rule; this
 * keeps one file from outrunning them between two counts. */
static struct rlimit file_size_cap(const ls_unpack_limits *l)
{
  uint64_t left = ls_unpack_limits_left(l);
  rlim_t cap = left < RLIM_INFINITY ? (rlim_t)left : RLIM_INFINITY;
  return (struct rlimit){.rlim_cur = cap, .rlim_max = cap};
}

/* Reads stderr until EOF, ticking the watch; false when the command was
 * killed (w->rc says why). */
static bool drain_child(pid_t pid, int fd, tail_buf *t, watch *w)
{
  bool eof = false;
  w->next_progress = now_s() + PROGRESS_S;
  w->next_count = now_s() + POLL_MS / 1000.0;
  while (!eof) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, POLL_MS);
    if (r > 0)
      tail_read(t, fd, &eof);
    else if (r < 0 && errno != EINTR)
      eof = true;
    if (!watch_tick(w)) {
      kill_group(pid);
      return false;
    }
  }
  return true;
}

/* Whether a process of group pgid still runs. Zombies do not count: they
 * write nothing, and the ones bwrap leaves are reparented to an init that
 * may take a second or more to reap them. */
static bool group_runs(pid_t pgid)
{
  if (kill(-pgid, 0) != 0)
    return false;
  DIR *d = opendir("/proc");
  if (!d)
    return true;
  bool runs = false;
  struct dirent *e;
  while (!runs && (e = readdir(d))) {
    if (!isdigit((unsigned char)e->d_name[0]))
      continue;
    char path[300], line[512];
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f)
      continue;
    char *end = fgets(line, sizeof line, f) ? strrchr(line, ')') : NULL;
    fclose(f);
    char state;
    long ppid, pgrp;
    if (end && sscanf(end + 1, " %c %ld %ld", &state, &ppid, &pgrp) == 3)
      runs = pgrp == pgid && state != 'Z' && state != 'X';
  }
  closedir(d);
  return runs;
}

/* Waits for the command to end, then kills what it left running in its
 * process group and waits (2 s at most) until none of it runs, so nothing
 * of it writes after we return. The leader is reaped last: until then its
 * pid, the group's id, cannot be reused. */
static int reap_child(pid_t pid, int *status)
{
  siginfo_t si;
  while (waitid(P_PID, pid, &si, WEXITED | WNOWAIT) < 0)
    if (errno != EINTR)
      return errno;
  kill(-pid, SIGKILL);
  while (waitpid(pid, status, 0) < 0)
    if (errno != EINTR)
      return errno;
  for (int i = 0; i < 400 && group_runs(pid); i++)
    usleep(5000);
  return 0;
}

static int child_failure(const char *archive, const char *prog, int status, tail_buf *t,
                         ls_diag *diag)
{
  char how[64];
  if (WIFEXITED(status))
    snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(status));
  else
    snprintf(how, sizeof how, "was killed by signal %d", WTERMSIG(status));
  const char *err = tail_text(t, 300);
  return ls_diag_set(diag, LS_EIO, "%s: external unpacker '%s' %s%s%s", archive, prog, how,
                     *err ? ": " : "", err);
}

/* After the command ended by itself: the last count. A failed command
 * that left the game no byte to write hit its file size cap: the limit. */
static int final_check(watch *w, bool failed, ls_diag *diag)
{
  if (!w->limits)
    return LS_OK;
  int rc = watch_count(w, true);
  if (rc == LS_OK && failed && ls_unpack_limits_left(w->limits) == 0)
    rc = ls_unpack_limits_grow(w->limits, w->archive, 1, &w->why);
  if (rc != LS_OK)
    ls_diag_set(diag, rc, "%s", w->why.text);
  return rc;
}

/* The command's result, in order: a kill by the watch, a failure to wait,
 * a limit found at the end, the command's own failure. */
static int child_result(watch *w, bool done, int wait_err, int status, tail_buf *t,
                        const char *prog, ls_diag *diag)
{
  if (!done)
    return ls_diag_set(diag, w->rc, "%s", w->why.text);
  if (wait_err != 0)
    return ls_diag_errno(diag, wait_err, "cannot wait for the unpacker of", w->archive);
  bool failed = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
  int rc = final_check(w, failed, diag);
  if (rc == LS_OK && failed)
    rc = child_failure(w->archive, prog, status, t, diag);
  return rc;
}

static int run_argv(char *const argv[], const char *prog, watch *w, ls_diag *diag)
{
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0)
    return ls_diag_errno(diag, errno, "cannot create a pipe for", w->archive);
  pid_t pid = 0;
  struct rlimit cap = w->limits ? file_size_cap(w->limits) : (struct rlimit){0};
  int e = spawn_child(argv, fds[1], w->limits ? &cap : NULL, &pid);
  close(fds[1]);
  if (e != 0) {
    close(fds[0]);
    return ls_diag_set(diag, e == ENOENT ? LS_ENOENT : LS_EIO,
                       "%s: cannot run external unpacker '%s': %s", w->archive, argv[0],
                       strerror(e));
  }
  tail_buf *t = calloc(1, sizeof *t);
  bool done = t ? drain_child(pid, fds[0], t, w) : true;
  if (!t)
    kill_group(pid);
  close(fds[0]);
  int status = 0;
  e = reap_child(pid, &status);
  int rc = t ? child_result(w, done, e, status, t, prog, diag) : diag_oom(diag);
  free(t);
  return rc;
}

/* ==== confinement: bubblewrap ============================================= */

/* The whole file system read-only (so the archive and the command are
 * readable), a fresh /dev and /proc, every namespace bwrap can make (no
 * network; a pid namespace: all of it dies with its first process), no
 * capabilities, dead when we die; then "--bind DEST DEST" and the command.
 * Not --new-session: spawn_child's setsid already leaves the terminal, and
 * keeps the command in the process group we kill. */
static const char *const BWRAP_ARGS[] = {
  "bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-all",
  "--die-with-parent", "--cap-drop", "ALL",
};
#define BWRAP_COUNT (sizeof BWRAP_ARGS / sizeof *BWRAP_ARGS)

static int push_copy(word_list *w, const char *s)
{
  char *copy = strdup(s);
  return copy ? words_push(w, copy) : LS_ENOMEM;
}

/* BWRAP_ARGS, the destination's bind (when dest is not NULL), "--" and
 * the command's words. */
static int sandbox_argv(const char *dest, char *const cmd[], word_list *out)
{
  *out = (word_list){0};
  int rc = LS_OK;
  for (size_t i = 0; rc == LS_OK && i < BWRAP_COUNT; i++)
    rc = push_copy(out, BWRAP_ARGS[i]);
  if (rc == LS_OK && dest) {
    rc = push_copy(out, "--bind");
    if (rc == LS_OK)
      rc = push_copy(out, dest);
    if (rc == LS_OK)
      rc = push_copy(out, dest);
  }
  if (rc == LS_OK)
    rc = push_copy(out, "--");
  for (size_t i = 0; rc == LS_OK && cmd[i]; i++)
    rc = push_copy(out, cmd[i]);
  if (rc != LS_OK)
    words_free(out);
  return rc;
}

static pthread_once_t g_sandbox_once = PTHREAD_ONCE_INIT;
static bool g_sandbox_ok;
static char g_sandbox_why[LS_DIAG_MAX];

/* Runs `bwrap ... -- true` once: bwrap missing, or unable to make its
 * namespaces here (a container may refuse), leaves the command unconfined. */
static void probe_sandbox(void)
{
  char *true_argv[] = {"true", NULL};
  word_list w;
  if (sandbox_argv(NULL, true_argv, &w) != LS_OK) {
    snprintf(g_sandbox_why, sizeof g_sandbox_why, "out of memory probing bwrap");
    return;
  }
  watch probe = {.archive = "bwrap"};
  ls_diag diag = {{0}};
  int rc = run_argv(w.v, "bwrap", &probe, &diag);
  words_free(&w);
  g_sandbox_ok = rc == LS_OK;
  if (rc == LS_ENOENT)
    snprintf(g_sandbox_why, sizeof g_sandbox_why,
             "bwrap is not installed (Debian package bubblewrap)");
  else if (rc != LS_OK) {
    const char *prefix = "bwrap: external unpacker 'bwrap' ";
    const char *text = strncmp(diag.text, prefix, strlen(prefix)) == 0
                           ? diag.text + strlen(prefix)
                           : diag.text;
    snprintf(g_sandbox_why, sizeof g_sandbox_why,
             "bwrap cannot make its namespaces here (it %.400s)", text);
  }
}

bool ls_unpack_sandboxed(char *why, size_t why_size)
{
  pthread_once(&g_sandbox_once, probe_sandbox);
  if (why && why_size)
    snprintf(why, why_size, "%s", g_sandbox_ok ? "" : g_sandbox_why);
  return g_sandbox_ok;
}

/* ==== running a template ================================================== */

bool ls_unpack_find_exec(const char *prog, char *out, size_t size)
{
  if (strchr(prog, '/'))
    return access(prog, X_OK) == 0 && snprintf(out, size, "%s", prog) < (int)size;
  const char *path = getenv("PATH");
  if (!path || !*path)
    path = "/usr/local/bin:/usr/bin:/bin";
  for (const char *p = path; *p;) {
    size_t len = strcspn(p, ":");
    if (len > 0 && snprintf(out, size, "%.*s/%s", (int)len, p, prog) < (int)size &&
        access(out, X_OK) == 0)
      return true;
    p += len;
    if (*p == ':')
      p++;
  }
  return false;
}

bool ls_unpack_can_exec(const char *prog)
{
  char path[PATH_MAX];
  return ls_unpack_find_exec(prog, path, sizeof path);
}

/* The template's words with {archive} and {dest} substituted. */
static int command_words(const char *tmpl, const char *archive, const char *dest,
                         word_list *w, ls_diag *diag)
{
  int rc = split_template(tmpl, w, diag);
  for (size_t i = 0; rc == LS_OK && i < w->count; i++) {
    char *s = substitute(w->v[i], archive, dest);
    if (!s) {
      words_free(w);
      return diag_oom(diag);
    }
    free(w->v[i]);
    w->v[i] = s;
  }
  return rc;
}

/* Runs the words, under bwrap when it works, watched by w. */
static int run_confined(word_list *cmd, const char *real_dest, watch *w, ls_diag *diag)
{
  if (!ls_unpack_can_exec(cmd->v[0])) /* said here: inside bwrap it is only a status */
    return ls_diag_set(diag, LS_ENOENT, "%s: cannot run external unpacker '%s': %s",
                       w->archive, cmd->v[0], strerror(ENOENT));
  if (!ls_unpack_sandboxed(NULL, 0))
    return run_argv(cmd->v, cmd->v[0], w, diag);
  word_list boxed;
  if (sandbox_argv(real_dest, cmd->v, &boxed) != LS_OK)
    return diag_oom(diag);
  int rc = run_argv(boxed.v, cmd->v[0], w, diag);
  words_free(&boxed);
  return rc;
}

static uint64_t file_size(const char *path)
{
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
}

int ls_unpack_external(const char *cmd_template, const char *archive, const char *dest_dir,
                       ls_unpack_limits *limits, ls_unpack_progress_cb progress,
                       void *progress_user, ls_diag *diag)
{
  char real_dest[PATH_MAX];
  if (!realpath(dest_dir, real_dest))
    return ls_diag_errno(diag, errno, "cannot resolve the destination", dest_dir);
  ls_unpack_limits alone;
  if (!limits) { /* this archive alone: its size is the payload */
    int rc = ls_unpack_limits_begin(&alone, NULL, real_dest, file_size(archive), diag);
    if (rc != LS_OK)
      return rc;
    ls_unpack_limits_archive(&alone, file_size(archive));
    limits = &alone;
  }
  word_list w;
  int rc = command_words(cmd_template, archive, dest_dir, &w, diag);
  if (rc != LS_OK)
    return rc;
  watch wt = {.archive = archive, .dest = real_dest, .limits = limits, .progress = progress,
              .user = progress_user};
  rc = run_confined(&w, real_dest, &wt, diag);
  words_free(&w);
  return rc;
}
