/* Tests the public runtime API (include/lanspread/peer.h) in-process:
 * commands from several threads each answered exactly once, events by
 * callback and by polling the event fd, start-up failures with a diag, the
 * loop-lag probe (loop-stats) against a callback that holds the loop, and
 * a clean stop (ASan checks that nothing leaks). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testrun.h"

#include "testutil.h"

#include <jansson.h>
#include <lanspread/peer.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define THREADS 4
#define PER_THREAD 100

typedef struct collector {
  pthread_mutex_t lock;
  unsigned replies[THREADS * PER_THREAD + 1];
  unsigned other_events;
} collector;

static void on_event(void *user, const ls_event *ev)
{
  collector *c = user;
  pthread_mutex_lock(&c->lock);
  if (strcmp(ev->type, "reply") == 0 && ev->tag <= THREADS * PER_THREAD)
    c->replies[ev->tag]++;
  else
    c->other_events++;
  pthread_mutex_unlock(&c->lock);
}

static ls_peer_config base_config(const char *root)
{
  t_write(root, "games/alpha/version.ini", "1");
  t_write(root, "catalog.json", "{\"games\":[{\"id\":\"alpha\",\"name\":\"Alpha\"}]}");
  ls_peer_config c = {
    .game_dir = strdup(t_path("%s/games", root)), .state_dir = strdup(t_path("%s/state", root)),
    .catalog_path = strdup(t_path("%s/catalog.json", root)), .listen = "127.0.0.1:0",
    .mdns = false, .name = "test",
  };
  return c;
}

static void free_config(ls_peer_config *c)
{
  free((char *)c->game_dir);
  free((char *)c->state_dir);
  free((char *)c->catalog_path);
}

typedef struct sender {
  ls_peer *peer;
  int index;
} sender;

static void *send_many(void *arg)
{
  sender *s = arg;
  static const ls_command_type types[] = {LS_CMD_LIST_GAMES, LS_CMD_LIST_PEERS,
                                          LS_CMD_GET_PEER_COUNT, LS_CMD_CANCEL_DOWNLOAD};
  for (int i = 0; i < PER_THREAD; i++) {
    ls_command cmd = {.type = types[i % 4], .id = "alpha",
                      .tag = (uint64_t)(s->index * PER_THREAD + i + 1)};
    assert_int_equal(ls_peer_send(s->peer, &cmd), 0);
  }
  return NULL;
}

static void commands_from_many_threads(void **state)
{
  (void)state;
  collector c = {.lock = PTHREAD_MUTEX_INITIALIZER};
  ls_peer_config cfg = base_config(t_tempdir());
  cfg.on_event = on_event;
  cfg.user = &c;
  ls_peer *peer;
  ls_diag diag;
  if (ls_peer_start(&cfg, &peer, &diag) != 0)
    fail_msg("start: %s", diag.text);
  pthread_t threads[THREADS];
  sender senders[THREADS];
  for (int i = 0; i < THREADS; i++) {
    senders[i] = (sender){peer, i};
    pthread_create(&threads[i], NULL, send_many, &senders[i]);
  }
  for (int i = 0; i < THREADS; i++)
    pthread_join(threads[i], NULL);
  for (int wait = 0; wait < 500; wait++) { /* up to 5 s for all replies */
    pthread_mutex_lock(&c.lock);
    unsigned got = 0;
    for (int t = 1; t <= THREADS * PER_THREAD; t++)
      got += c.replies[t] > 0;
    pthread_mutex_unlock(&c.lock);
    if (got == THREADS * PER_THREAD)
      break;
    usleep(10000);
  }
  ls_peer_stop(peer);
  for (int t = 1; t <= THREADS * PER_THREAD; t++)
    assert_int_equal(c.replies[t], 1);
  assert_true(c.other_events >= 1); /* the first games-list-updated */
  free_config(&cfg);
}

static void events_by_polling(void **state)
{
  (void)state;
  ls_peer_config cfg = base_config(t_tempdir());
  ls_peer *peer;
  assert_int_equal(ls_peer_start(&cfg, &peer, NULL), 0);
  assert_int_equal(strlen(ls_peer_id(peer)), 64);
  assert_non_null(strstr(ls_peer_listen_address(peer), "127.0.0.1:"));
  ls_command cmd = {.type = LS_CMD_LIST_GAMES, .tag = 42};
  assert_int_equal(ls_peer_send(peer, &cmd), 0);
  struct pollfd pfd = {.fd = ls_peer_event_fd(peer), .events = POLLIN};
  bool got_reply = false, got_games = false;
  while (!got_reply && poll(&pfd, 1, 5000) == 1) {
    ls_event *ev;
    while ((ev = ls_peer_next_event(peer)) != NULL) {
      if (strcmp(ev->type, "reply") == 0) {
        assert_int_equal(ev->tag, 42);
        json_t *obj = json_loads(ev->json, 0, NULL);
        assert_string_equal(json_string_value(json_object_get(obj, "cmd")), "games");
        assert_int_equal(json_array_size(json_object_get(obj, "games")), 1);
        assert_null(json_object_get(obj, "tag")); /* the tag is beside the JSON */
        json_decref(obj);
        got_reply = true;
      } else if (strcmp(ev->type, "games-list-updated") == 0) {
        got_games = true;
      }
      ls_event_free(ev);
    }
  }
  assert_true(got_reply && got_games);
  assert_int_equal(poll(&pfd, 1, 0), 0); /* drained: not readable */
  ls_peer_stop(peer);
  free_config(&cfg);
}

static void start_failures_say_why(void **state)
{
  (void)state;
  char *root = t_tempdir();
  ls_peer_config cfg = base_config(root);
  ls_peer *peer = NULL;
  ls_diag diag;

  const char *game_dir = cfg.game_dir;
  cfg.game_dir = "/nonexistent/games";
  assert_int_equal(ls_peer_start(&cfg, &peer, &diag), LS_ENOENT);
  assert_null(peer);
  assert_non_null(strstr(diag.text, "/nonexistent/games"));
  cfg.game_dir = game_dir;

  const char *catalog = cfg.catalog_path;
  cfg.catalog_path = t_path("%s/nope.json", root);
  assert_true(ls_peer_start(&cfg, &peer, &diag) < 0);
  assert_non_null(strstr(diag.text, "nope.json"));
  cfg.catalog_path = catalog;

  /* A name no peer would accept (it would refuse our Hello): a start error. */
  cfg.name = "evil\xe2\x80\xaetxt.exe";
  assert_int_equal(ls_peer_start(&cfg, &peer, &diag), LS_EINVAL);
  assert_non_null(strstr(diag.text, "control character U+202E"));
  /* A long one is cut at a character, not inside one: it starts. */
  cfg.name = "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
             "x\xc3\xa9\xc3\xa9\xc3\xa9"; /* 65 + 4 bytes: byte 64 is inside an é */
  assert_int_equal(ls_peer_start(&cfg, &peer, &diag), LS_OK);
  ls_peer_stop(peer);
  peer = NULL;
  cfg.name = "test";

  cfg.listen = "127.0.0.1:99999";
  assert_int_equal(ls_peer_start(&cfg, &peer, &diag), LS_EINVAL);
  assert_non_null(strstr(diag.text, "port"));

  const char *peers[] = {"no-port-here"};
  cfg.listen = "127.0.0.1:0";
  cfg.static_peers = peers;
  cfg.static_peer_count = 1;
  assert_int_equal(ls_peer_start(&cfg, &peer, &diag), LS_EINVAL);
  cfg.static_peer_count = 0;

  ls_peer *first;
  assert_int_equal(ls_peer_start(&cfg, &first, NULL), 0);
  cfg.listen = ls_peer_listen_address(first);
  assert_true(ls_peer_start(&cfg, &peer, &diag) < 0); /* the port is taken */
  print_message("port taken: %s\n", diag.text);
  assert_null(peer);
  ls_peer_stop(first);
  free_config(&cfg);
}

/* Replies by tag, kept as JSON; the reply to tag HOLD_TAG holds the
 * runtime loop for HOLD_MS (callbacks run on the runtime thread). */
#define HOLD_TAG 1
#define HOLD_MS 150
typedef struct replies {
  pthread_mutex_t lock;
  json_t *by_tag[4];
} replies;

static void keep_reply(void *user, const ls_event *ev)
{
  replies *r = user;
  if (strcmp(ev->type, "reply") != 0 || ev->tag >= 4)
    return;
  if (ev->tag == HOLD_TAG)
    usleep(HOLD_MS * 1000);
  pthread_mutex_lock(&r->lock);
  r->by_tag[ev->tag] = json_loads(ev->json, 0, NULL);
  pthread_mutex_unlock(&r->lock);
}

/* Sends cmd and waits (5 s at most) for its reply. */
static json_t *command_reply(ls_peer *peer, replies *r, ls_command cmd)
{
  assert_int_equal(ls_peer_send(peer, &cmd), 0);
  for (int wait = 0; wait < 500; wait++) {
    pthread_mutex_lock(&r->lock);
    json_t *got = r->by_tag[cmd.tag];
    pthread_mutex_unlock(&r->lock);
    if (got)
      return got;
    usleep(10000);
  }
  fail_msg("no reply to tag %llu", (unsigned long long)cmd.tag);
  return NULL;
}

static json_int_t field(json_t *obj, const char *key)
{
  json_t *v = json_object_get(obj, key);
  assert_true(json_is_integer(v));
  return json_integer_value(v);
}

static void loop_stats_see_a_held_loop(void **state)
{
  (void)state;
  replies r = {.lock = PTHREAD_MUTEX_INITIALIZER};
  ls_peer_config cfg = base_config(t_tempdir());
  cfg.on_event = keep_reply;
  cfg.user = &r;
  ls_peer *peer;
  assert_int_equal(ls_peer_start(&cfg, &peer, NULL), 0);
  command_reply(peer, &r, (ls_command){.type = LS_CMD_LIST_GAMES, .tag = HOLD_TAG});
  json_t *held = command_reply(peer, &r, (ls_command){.type = LS_CMD_LOOP_STATS, .tag = 2});
  usleep(300 * 1000);
  json_t *idle = command_reply(peer, &r, (ls_command){.type = LS_CMD_LOOP_STATS, .tag = 3});
  char *a = json_dumps(held, 0), *b = json_dumps(idle, 0);
  print_message("held %d ms: %s\nthen idle: %s\n", HOLD_MS, a, b);
  free(a);
  free(b);
  /* held: one tick about HOLD_MS - 10 ms late (a sanitizer is slower, never faster) */
  assert_true(field(held, "lag_max_us") >= (HOLD_MS - 40) * 1000);
  assert_int_equal(field(held, "period_ms"), 10);
  /* the next window began at that reply: 300 ms with no hold */
  assert_true(field(idle, "lag_max_us") < (HOLD_MS - 40) * 1000);
  assert_true(field(idle, "window_ms") >= 300);
  assert_true(field(idle, "ticks") >= 10);
  ls_peer_stop(peer);
  for (int i = 0; i < 4; i++)
    json_decref(r.by_tag[i]);
  free_config(&cfg);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(commands_from_many_threads),
    cmocka_unit_test(events_by_polling),
    cmocka_unit_test(start_failures_say_why),
    cmocka_unit_test(loop_stats_see_a_held_loop),
  };
  return ls_run_tests(tests, NULL, NULL);
}
