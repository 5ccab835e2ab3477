/* Owns the runtime's events (include/lanspread/peer.h): the table of event
 * kinds and their names, building each event's JSON, the replies to
 * commands, and the event queue that other threads poll (or the callback
 * that replaces it). Events are made on the runtime thread; the queue has
 * its own lock (p->lock) and an eventfd that is readable while it holds
 * events. */
#include "peer/runtime.h"

#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const kind_names[LS_EVENT_KIND_COUNT] = {
  [LS_EVENT_REPLY] = "reply",
  [LS_EVENT_GAMES_LIST_UPDATED] = "games-list-updated",
  [LS_EVENT_GAME_FILES] = "game-files",
  [LS_EVENT_DOWNLOAD_BEGIN] = "game-download-begin",
  [LS_EVENT_DOWNLOAD_PROGRESS] = "game-download-progress",
  [LS_EVENT_DOWNLOAD_FINISHED] = "game-download-finished",
  [LS_EVENT_DOWNLOAD_FAILED] = "game-download-failed",
  [LS_EVENT_DOWNLOAD_CANCELLED] = "game-download-cancelled",
  [LS_EVENT_DOWNLOAD_PAUSED] = "game-download-paused",
  [LS_EVENT_INSTALL_BEGIN] = "game-install-begin",
  [LS_EVENT_INSTALL_PROGRESS] = "game-install-progress",
  [LS_EVENT_INSTALL_FINISHED] = "game-install-finished",
  [LS_EVENT_INSTALL_FAILED] = "game-install-failed",
  [LS_EVENT_UNINSTALL_BEGIN] = "game-uninstall-begin",
  [LS_EVENT_UNINSTALL_FINISHED] = "game-uninstall-finished",
  [LS_EVENT_UNINSTALL_FAILED] = "game-uninstall-failed",
  [LS_EVENT_REMOVE_BEGIN] = "game-remove-begin",
  [LS_EVENT_REMOVE_FINISHED] = "game-remove-finished",
  [LS_EVENT_REMOVE_FAILED] = "game-remove-failed",
  [LS_EVENT_PEER_CONNECTED] = "peer-connected",
  [LS_EVENT_PEER_DISCONNECTED] = "peer-disconnected",
  [LS_EVENT_PEER_COUNT] = "peer-count",
  [LS_EVENT_VERIFY_BEGIN] = "game-verify-begin",
  [LS_EVENT_VERIFY_PROGRESS] = "game-verify-progress",
  [LS_EVENT_VERIFY_FINISHED] = "game-verify-finished",
  [LS_EVENT_VERIFY_FAILED] = "game-verify-failed",
  [LS_EVENT_MANIFEST_REFUSED] = "game-manifest-refused",
};

/* One queued event. */
struct ls_event_node {
  ls_event_node *next;
  ls_event *event;
};

/* An event as handed out: ls_event first, so ls_event_free can cast. */
typedef struct event_item {
  ls_event ev;
  char *json, *id;
} event_item;

const char *ls_event_kind_name(ls_event_kind kind)
{
  return (unsigned)kind < LS_EVENT_KIND_COUNT ? kind_names[kind] : "?";
}

void ls_rt_log(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fputs("lanspread: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

void ls_event_free(ls_event *event)
{
  event_item *e = (event_item *)event;
  if (!e)
    return;
  free(e->json);
  free(e->id);
  free(e);
}

/* obj already carries "type" (and "tag" for replies: it travels beside
 * the JSON, not in it). */
static event_item *make_event(ls_event_kind kind, int code, json_t *obj)
{
  event_item *e = calloc(1, sizeof *e);
  if (!e)
    return NULL;
  json_t *tag = json_object_get(obj, "tag");
  const char *id = json_string_value(json_object_get(obj, "id"));
  e->ev.kind = kind;
  e->ev.type = ls_event_kind_name(kind);
  e->ev.code = code;
  e->ev.tag = tag ? (uint64_t)json_integer_value(tag) : 0;
  json_object_del(obj, "tag");
  e->json = json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII);
  e->id = id && kind != LS_EVENT_REPLY ? strdup(id) : NULL;
  if (!e->json || (id && kind != LS_EVENT_REPLY && !e->id)) {
    ls_event_free(&e->ev);
    return NULL;
  }
  e->ev.id = e->id;
  e->ev.json = e->json;
  return e;
}

static void deliver(ls_peer *p, event_item *e)
{
  if (p->on_event) {
    p->on_event(p->user, &e->ev);
    ls_event_free(&e->ev);
    return;
  }
  ls_event_node *q = calloc(1, sizeof *q);
  if (!q) {
    ls_event_free(&e->ev);
    return;
  }
  q->event = &e->ev;
  uv_mutex_lock(&p->lock);
  if (p->events_tail)
    p->events_tail->next = q;
  else
    p->events = q;
  p->events_tail = q;
  uint64_t one = 1;
  (void)!write(p->event_fd, &one, sizeof one);
  uv_mutex_unlock(&p->lock);
}

/* {"type": NAME, ...fields} with code (when not LS_OK) as "code". */
static void emit(ls_peer *p, ls_event_kind kind, int code, json_t *fields)
{
  json_t *obj = json_pack("{s:s}", "type", ls_event_kind_name(kind));
  if (obj && fields)
    json_object_update(obj, fields);
  if (obj && code != LS_OK)
    json_object_set_new(obj, "code", json_string(ls_error_name(code)));
  json_decref(fields);
  event_item *e = obj ? make_event(kind, code, obj) : NULL;
  json_decref(obj);
  if (e)
    deliver(p, e);
}

void ls_rt_emit(ls_peer *p, ls_event_kind kind, json_t *fields)
{
  emit(p, kind, LS_OK, fields);
}

void ls_rt_emit_game(ls_peer *p, ls_event_kind kind, const char *id, json_t *fields)
{
  ls_rt_emit_game_code(p, kind, id, LS_OK, fields);
}

void ls_rt_emit_game_code(ls_peer *p, ls_event_kind kind, const char *id, int code,
                          json_t *fields)
{
  json_t *obj = json_pack("{s:s}", "id", id);
  if (obj && fields)
    json_object_update(obj, fields);
  json_decref(fields);
  emit(p, kind, code, obj);
}

void ls_rt_emit_failure(ls_peer *p, ls_event_kind kind, const char *id, int code,
                        const char *error)
{
  emit(p, kind, code, json_pack("{s:s, s:s}", "id", id, "error", error));
}

static json_t *reply_base(uint64_t tag, const char *cmd, bool ok)
{
  return json_pack("{s:s, s:b, s:I}", "cmd", cmd, "ok", ok, "tag", (json_int_t)tag);
}

void ls_rt_reply_ok(ls_peer *p, uint64_t tag, const char *cmd, json_t *fields)
{
  json_t *obj = reply_base(tag, cmd, true);
  if (obj && fields)
    json_object_update(obj, fields);
  json_decref(fields);
  emit(p, LS_EVENT_REPLY, LS_OK, obj);
}

void ls_rt_reply_error(ls_peer *p, uint64_t tag, const char *cmd, int code, const char *fmt, ...)
{
  char text[LS_DIAG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  json_t *obj = reply_base(tag, cmd, false);
  if (obj)
    json_object_set_new(obj, "error", json_string(text));
  emit(p, LS_EVENT_REPLY, code, obj);
}

ls_event *ls_peer_next_event(ls_peer *p)
{
  uv_mutex_lock(&p->lock);
  ls_event_node *q = p->events;
  if (q) {
    p->events = q->next;
    if (!p->events)
      p->events_tail = NULL;
  }
  if (!p->events) {
    uint64_t n;
    (void)!read(p->event_fd, &n, sizeof n); /* not readable until the next event */
  }
  uv_mutex_unlock(&p->lock);
  ls_event *ev = q ? q->event : NULL;
  free(q);
  return ev;
}

int ls_peer_event_fd(const ls_peer *p)
{
  return p->event_fd;
}

void ls_rt_events_free(ls_peer *p)
{
  for (ls_event_node *q = p->events, *next; q; q = next) {
    next = q->next;
    ls_event_free(q->event);
    free(q);
  }
  p->events = p->events_tail = NULL;
}
