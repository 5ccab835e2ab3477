/* Owns the external command runner of the unpacker (install/unpack.h):
 * --unpacker templates split into words without a shell, {archive} and
 * {dest} substituted, the command spawned with stdin and stdout on
 * /dev/null, the tail of its stderr kept for the diag, cancellation. */
#include "install/unpack_parts.h"

#include "core/array.h"
#include "core/error.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STDERR_KEEP 4096 /* tail of an external command's stderr */

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

static int spawn_with_stderr(char *const argv[], int err_fd, pid_t *pid)
{
  posix_spawn_file_actions_t fa;
  if (posix_spawn_file_actions_init(&fa) != 0)
    return ENOMEM;
  int e = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  if (!e)
    e = posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  if (!e)
    e = posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
  if (!e)
    e = posix_spawnp(pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  return e;
}

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads stderr until EOF, polling progress; false when cancelled (the
 * child is killed). */
static bool drain_child(pid_t pid, int fd, tail_buf *t, ls_unpack_progress_cb progress,
                        void *user)
{
  bool eof = false;
  double last = now_s();
  while (!eof) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, 250);
    if (r > 0)
      tail_read(t, fd, &eof);
    else if (r < 0 && errno != EINTR)
      eof = true;
    if (progress && now_s() - last >= 0.5) {
      last = now_s();
      if (!progress(user, 0)) {
        kill(pid, SIGKILL);
        return false;
      }
    }
  }
  return true;
}

static int wait_child(pid_t pid, int *status)
{
  while (waitpid(pid, status, 0) < 0)
    if (errno != EINTR)
      return errno;
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

static int run_argv(char *const argv[], const char *archive, ls_unpack_progress_cb progress,
                    void *user, ls_diag *diag)
{
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0)
    return ls_diag_errno(diag, errno, "cannot create a pipe for", archive);
  pid_t pid = 0;
  int e = spawn_with_stderr(argv, fds[1], &pid);
  close(fds[1]);
  if (e != 0) {
    close(fds[0]);
    return ls_diag_set(diag, e == ENOENT ? LS_ENOENT : LS_EIO,
                       "%s: cannot run external unpacker '%s': %s", archive, argv[0],
                       strerror(e));
  }
  tail_buf *t = calloc(1, sizeof *t);
  bool done = t ? drain_child(pid, fds[0], t, progress, user) : true;
  close(fds[0]);
  int status = 0;
  e = wait_child(pid, &status);
  int rc = LS_OK;
  if (!t)
    rc = diag_oom(diag);
  else if (!done)
    rc = ls_diag_set(diag, LS_ECANCELED, "%s: extraction cancelled", archive);
  else if (e != 0)
    rc = ls_diag_errno(diag, e, "cannot wait for the unpacker of", archive);
  else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    rc = child_failure(archive, argv[0], status, t, diag);
  free(t);
  return rc;
}

int ls_unpack_external(const char *cmd_template, const char *archive, const char *dest_dir,
                       ls_unpack_progress_cb progress, void *progress_user, ls_diag *diag)
{
  word_list w;
  int rc = split_template(cmd_template, &w, diag);
  if (rc != LS_OK)
    return rc;
  for (size_t i = 0; i < w.count; i++) {
    char *s = substitute(w.v[i], archive, dest_dir);
    if (!s) {
      words_free(&w);
      return diag_oom(diag);
    }
    free(w.v[i]);
    w.v[i] = s;
  }
  rc = run_argv(w.v, archive, progress, progress_user, diag);
  words_free(&w);
  return rc;
}
