/* Owns the stdin reader thread and the queue of lines it fills. The thread
 * polls stdin and a wake-up pipe, so stopping never waits for input. */
#include "input.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_LINE 65536

typedef struct line {
  struct line *next;
  char *text; /* NULL: end of input */
} line;

struct cli_input {
  uv_thread_t thread;
  uv_async_t async;
  uv_mutex_t lock;
  line *head, *tail; /* guarded by lock */
  int wake[2];
  cli_line_cb on_line;
  void *user;
};

static void push(cli_input *in, char *text)
{
  line *l = calloc(1, sizeof *l);
  if (!l) {
    free(text);
    return;
  }
  l->text = text;
  uv_mutex_lock(&in->lock);
  if (in->tail)
    in->tail->next = l;
  else
    in->head = l;
  in->tail = l;
  uv_mutex_unlock(&in->lock);
  uv_async_send(&in->async);
}

/* Splits buf into lines; returns how many bytes were consumed. A line
 * longer than MAX_LINE is cut. */
static size_t push_lines(cli_input *in, char *buf, size_t len, bool flush)
{
  size_t start = 0;
  for (size_t i = 0; i < len; i++) {
    if (buf[i] != '\n')
      continue;
    size_t n = i - start;
    if (n && buf[start + n - 1] == '\r')
      n--;
    push(in, strndup(buf + start, n));
    start = i + 1;
  }
  if ((flush || len - start >= MAX_LINE) && start < len) {
    push(in, strndup(buf + start, len - start));
    start = len;
  }
  return start;
}

static void reader_main(void *arg)
{
  cli_input *in = arg;
  char *buf = malloc(MAX_LINE + 1);
  size_t len = 0;
  for (;;) {
    struct pollfd fds[2] = {{.fd = 0, .events = POLLIN}, {.fd = in->wake[0], .events = POLLIN}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR)
      break;
    if (fds[1].revents)
      break;
    if (!fds[0].revents)
      continue;
    ssize_t n = read(0, buf + len, MAX_LINE - len);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (n <= 0) {
      push_lines(in, buf, len, true);
      push(in, NULL); /* end of input */
      break;
    }
    len += (size_t)n;
    size_t used = push_lines(in, buf, len, false);
    memmove(buf, buf + used, len - used);
    len -= used;
  }
  free(buf);
}

static void drain(uv_async_t *async)
{
  cli_input *in = async->data;
  uv_mutex_lock(&in->lock);
  line *l = in->head;
  in->head = in->tail = NULL;
  uv_mutex_unlock(&in->lock);
  while (l) {
    line *next = l->next;
    in->on_line(in->user, l->text);
    free(l->text);
    free(l);
    l = next;
  }
}

int cli_input_start(uv_loop_t *loop, cli_line_cb on_line, void *user, cli_input **out)
{
  cli_input *in = calloc(1, sizeof *in);
  if (!in || pipe2(in->wake, O_CLOEXEC) != 0) {
    free(in);
    return -1;
  }
  in->on_line = on_line;
  in->user = user;
  in->async.data = in;
  uv_mutex_init(&in->lock);
  uv_async_init(loop, &in->async, drain);
  uv_thread_create(&in->thread, reader_main, in);
  *out = in;
  return 0;
}

static void free_after_close(uv_handle_t *h)
{
  cli_input *in = h->data;
  for (line *l = in->head, *next; l; l = next) {
    next = l->next;
    free(l->text);
    free(l);
  }
  uv_mutex_destroy(&in->lock);
  free(in);
}

void cli_input_stop(cli_input *in)
{
  (void)!write(in->wake[1], "x", 1);
  uv_thread_join(&in->thread);
  close(in->wake[0]);
  close(in->wake[1]);
  uv_close((uv_handle_t *)&in->async, free_after_close);
}
