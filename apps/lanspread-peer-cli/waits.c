/* Owns `wait TYPE [ID] [TIMEOUT_S]` and `wait-peers N [TIMEOUT_S]`.
 *
 * Every printed event is remembered until a wait consumes it: a wait is
 * answered by the oldest matching event not consumed by an earlier wait,
 * also when it was printed before the wait was typed (so a script never
 * misses an event it waits for), else by the next matching event, else by
 * a timeout error. wait-peers is answered once at least N peers are
 * connected. Events carry nothing a wait needs besides type and id, so the
 * unconsumed ones are kept as a count per (type, id): memory stays bounded
 * by the number of distinct pairs however long the session runs. */
#include "cli.h"
#include "output.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_SEP '\x1f' /* history keys are TYPE KEY_SEP ID */

struct cli_wait {
  cli_wait *next;
  cli *c;
  uv_timer_t timer;
  char *type, *id;   /* type NULL: a wait-peers */
  long long count;
  double timeout_s;
};

static void history_key(char *key, size_t size, const char *type, const char *id)
{
  snprintf(key, size, "%s%c%s", type, KEY_SEP, id ? id : "");
}

/* Counts one more unconsumed event of (type, id). */
static void history_add(cli *c, const char *type, const char *id)
{
  char key[512];
  history_key(key, sizeof key, type, id);
  json_int_t n = json_integer_value(json_object_get(c->history, key));
  json_object_set_new(c->history, key, json_integer(n + 1));
}

/* Consumes one event of `type` (for `id`, or any id when id is NULL). */
static bool history_take(cli *c, const char *type, const char *id)
{
  char want[512];
  history_key(want, sizeof want, type, id);
  size_t type_len = strlen(type);
  const char *key;
  json_t *count;
  json_object_foreach(c->history, key, count) {
    bool match = id ? strcmp(key, want) == 0
                    : strncmp(key, type, type_len) == 0 && key[type_len] == KEY_SEP;
    if (!match)
      continue;
    json_int_t n = json_integer_value(count);
    if (n > 1)
      json_object_set_new(c->history, key, json_integer(n - 1));
    else
      json_object_del(c->history, key);
    return true;
  }
  return false;
}

static void free_wait(uv_handle_t *h)
{
  cli_wait *w = h->data;
  free(w->type);
  free(w->id);
  free(w);
}

static void end_wait(cli_wait *w, bool ok)
{
  cli *c = w->c;
  for (cli_wait **p = &c->waits; *p; p = &(*p)->next)
    if (*p == w) {
      *p = w->next;
      break;
    }
  const char *cmd = w->type ? "wait" : "wait-peers";
  if (ok && w->type)
    out_reply_ok(cmd, json_pack("{s:s, s:s?}", "event", w->type, "id", w->id));
  else if (ok)
    out_reply_ok(cmd, json_pack("{s:I}", "count", (json_int_t)c->peer_count));
  else if (w->type)
    out_reply_error(cmd, LS_ETIMEDOUT, "timed out after %g s waiting for %s%s%s", w->timeout_s, w->type,
                    w->id ? " " : "", w->id ? w->id : "");
  else
    out_reply_error(cmd, LS_ETIMEDOUT, "timed out after %g s: %lld of %lld peers connected", w->timeout_s,
                    c->peer_count, w->count);
  uv_close((uv_handle_t *)&w->timer, free_wait);
  cli_command_done(c);
}

static void on_timeout(uv_timer_t *t)
{
  end_wait(t->data, false);
}

static cli_wait *new_wait(cli *c, double timeout_s)
{
  cli_wait *w = calloc(1, sizeof *w);
  if (!w)
    return NULL;
  w->c = c;
  w->timeout_s = timeout_s;
  uv_timer_init(&c->loop, &w->timer);
  w->timer.data = w;
  uv_timer_start(&w->timer, on_timeout, (uint64_t)(timeout_s * 1000), 0);
  w->next = c->waits;
  c->waits = w;
  c->awaiting_wait = true;
  return w;
}

void cli_wait_start(cli *c, const char *type, const char *id, double timeout_s)
{
  if (history_take(c, type, id)) {
    out_reply_ok("wait", json_pack("{s:s, s:s?}", "event", type, "id", id));
    return;
  }
  cli_wait *w = new_wait(c, timeout_s);
  if (w) {
    w->type = strdup(type);
    w->id = id ? strdup(id) : NULL;
  }
}

void cli_wait_peers_start(cli *c, long long count, double timeout_s)
{
  if (c->peer_count >= count) {
    out_reply_ok("wait-peers", json_pack("{s:I}", "count", (json_int_t)c->peer_count));
    return;
  }
  cli_wait *w = new_wait(c, timeout_s);
  if (w)
    w->count = count;
}

static bool matches(const cli_wait *w, const char *type, const char *id)
{
  return w->type && strcmp(w->type, type) == 0 && (!w->id || (id && strcmp(w->id, id) == 0));
}

void cli_waits_on_event(cli *c, const ls_event *ev)
{
  if (ev->kind == LS_EVENT_REPLY)
    return;
  if (ev->kind == LS_EVENT_PEER_COUNT) {
    json_t *obj = json_loads(ev->json, 0, NULL);
    c->peer_count = json_integer_value(json_object_get(obj, "count"));
    json_decref(obj);
  }
  cli_wait *oldest = NULL;
  for (cli_wait *w = c->waits; w; w = w->next) /* waits are newest first */
    if (matches(w, ev->type, ev->id))
      oldest = w;
  if (oldest)
    end_wait(oldest, true);
  else
    history_add(c, ev->type, ev->id);
  for (cli_wait *w = c->waits, *next; w; w = next) {
    next = w->next;
    if (!w->type && c->peer_count >= w->count)
      end_wait(w, true);
  }
}

void cli_waits_close(cli *c)
{
  while (c->waits) {
    cli_wait *w = c->waits;
    c->waits = w->next;
    uv_close((uv_handle_t *)&w->timer, free_wait);
  }
  json_decref(c->history);
  c->history = NULL;
}
