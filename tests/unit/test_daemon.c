/* Tests the daemon's settings file and checks (apps/lanspread/settings.c),
 * its page state (apps/lanspread/hub.c): cards derived from runtime
 * events, player-facing errors, Play's path checks, and the numbered event
 * stream with its snapshot, order, catch-up and close; and the UI's
 * connection slots (apps/lanspread/slots.c): which connection makes room
 * and when one is refused. Real files, real threads, real sockets; the
 * events are the JSON the runtime emits. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testrun.h"

#include "testutil.h"

#include "hub.h"
#include "settings.h"
#include "slots.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- settings ------------------------------------------------------------ */

static void missing_config_gives_empty_settings(void **state)
{
  (void)state;
  lsd_settings s;
  ls_diag diag;
  assert_int_equal(lsd_settings_load(t_path("%s/none.json", t_tempdir()), &s, &diag), LS_OK);
  assert_null(s.game_dir);
  assert_int_equal(s.static_peer_count, 0);
  lsd_settings_free(&s);
}

static void malformed_config_names_file_line_and_column(void **state)
{
  (void)state;
  char *dir = t_tempdir();
  t_write(dir, "config.json", "{\n  \"name\": \"a\",\n  oops\n}\n");
  lsd_settings s;
  ls_diag diag;
  assert_int_equal(lsd_settings_load(t_path("%s/config.json", dir), &s, &diag), LS_EFORMAT);
  assert_non_null(strstr(diag.text, "config.json:3:"));
  t_write(dir, "bad.json", "{\"static_peers\": [\"nohost\"]}");
  assert_int_equal(lsd_settings_load(t_path("%s/bad.json", dir), &s, &diag), LS_EINVAL);
  assert_non_null(strstr(diag.text, "bad.json"));
  assert_non_null(strstr(diag.text, "nohost"));
}

static void settings_round_trip_privately(void **state)
{
  (void)state;
  char *dir = t_tempdir();
  lsd_settings s = {0};
  json_t *in = json_pack("{s:s, s:s, s:[s, s], s:s}", "game_dir", dir, "name", "ana",
                         "static_peers", "10.0.0.2:4000", "localhost:5000", "gui", "127.0.0.1:9000");
  ls_diag diag;
  assert_int_equal(lsd_settings_update(&s, in, &diag), LS_OK);
  json_decref(in);
  const char *path = t_path("%s/sub/config.json", dir);
  assert_int_equal(lsd_settings_save(path, &s, &diag), LS_OK);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  lsd_settings back;
  assert_int_equal(lsd_settings_load(path, &back, &diag), LS_OK);
  assert_string_equal(back.game_dir, s.game_dir);
  assert_string_equal(back.name, "ana");
  assert_int_equal(back.static_peer_count, 2);
  assert_string_equal(back.static_peers[1], "localhost:5000");
  assert_string_equal(back.gui, "127.0.0.1:9000");
  lsd_settings_free(&back);
  lsd_settings_free(&s);
}

/* Each bad value is refused with a reason, and nothing of the update (not
 * even its good fields) is taken. */
static void bad_values_change_nothing(void **state)
{
  (void)state;
  char *dir = t_tempdir();
  t_write(dir, "file", "x");
  const char *bad[] = {
    "{\"game_dir\": \"relative/dir\"}",
    "{\"game_dir\": \"/nonexistent/lanspread/games\"}",
    "{\"game_dir\": \"%s/file\"}",
    "{\"game_dir\": 7}",
    "{\"name\": \"ok\", \"static_peers\": [\"1.2.3.4:99999\"]}",
    "{\"static_peers\": \"1.2.3.4:5\"}",
    "{\"static_peers\": [\"a b:5\"]}",
    "{\"static_peers\": [\"no-such-host.invalid:5\"]}",
    "{\"name\": \"tab\\there\"}",
    "{\"game_dir\": null}",
    "{\"game_dir\": \"%s\", \"create\": \"yes\"}",
    "{\"gui\": \"127.0.0.1\"}",
  };
  lsd_settings s = {0};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char text[512];
    snprintf(text, sizeof text, bad[i], dir);
    json_t *obj = json_loads(text, 0, NULL);
    assert_non_null(obj);
    ls_diag diag = {{0}};
    assert_int_not_equal(lsd_settings_update(&s, obj, &diag), LS_OK);
    assert_true(diag.text[0] != '\0');
    json_decref(obj);
    assert_null(s.game_dir);
    assert_null(s.name);
    assert_int_equal(s.static_peer_count, 0);
  }
}

static void game_dir_can_be_created_on_request(void **state)
{
  (void)state;
  const char *path = t_path("%s/new/games", t_tempdir());
  ls_diag diag;
  assert_int_equal(lsd_check_game_dir(path, LSD_DIR_EXISTS, &diag), LS_ENOENT);
  assert_non_null(strstr(diag.text, "create"));
  assert_int_equal(lsd_check_game_dir(path, LSD_DIR_MAY_CREATE, &diag), LS_OK);
  assert_int_equal(access(path, F_OK), -1); /* checked, not made */
  assert_int_equal(lsd_check_game_dir(path, LSD_DIR_CREATE, &diag), LS_OK);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_true(S_ISDIR(st.st_mode));

  /* Not under a file, and never through '.' or '..'. */
  char *dir = t_tempdir();
  t_write(dir, "file", "x");
  assert_int_not_equal(lsd_check_game_dir(t_path("%s/file/games", dir), LSD_DIR_MAY_CREATE, &diag),
                       LS_OK);
  assert_non_null(strstr(diag.text, "not a directory"));
  assert_int_not_equal(lsd_check_game_dir(t_path("%s/../x", dir), LSD_DIR_CREATE, &diag), LS_OK);
  assert_int_not_equal(lsd_check_game_dir(t_path("%s/./y", dir), LSD_DIR_CREATE, &diag), LS_OK);
  assert_int_equal(access(t_path("%s/./y", dir), F_OK), -1);
}

/* ---- hub ----------------------------------------------------------------- */

typedef struct fixture {
  lsd_hub *hub;
  ls_catalog *catalog;
  char *game_dir;
} fixture;

static const char catalog_json[] =
  "{\"games\": ["
  "{\"id\": \"quake\", \"name\": \"Quake\", \"genre\": \"Shooter\", \"max_players\": 16,"
  " \"launch\": \"bin/run.sh\"},"
  "{\"id\": \"escape\", \"name\": \"Escape\", \"launch\": \"bin/run\"},"
  "{\"id\": \"chess\", \"name\": \"Chess\"}]}";

static int setup(void **state)
{
  fixture *f = calloc(1, sizeof *f);
  ls_diag diag;
  assert_int_equal(ls_catalog_load_buffer(catalog_json, strlen(catalog_json), "test", &f->catalog,
                                          &diag),
                   LS_OK);
  assert_int_equal(lsd_hub_create(&f->hub), LS_OK);
  lsd_hub_set_catalog(f->hub, f->catalog);
  f->game_dir = t_tempdir();
  lsd_hub_set_status(f->hub, json_pack("{s:{s:s}, s:b}", "settings", "game_dir", f->game_dir,
                                       "setup_needed", 0));
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  fixture *f = *state;
  lsd_hub_close(f->hub);
  lsd_hub_free(f->hub);
  ls_catalog_free(f->catalog);
  free(f);
  return 0;
}

/* Feeds one runtime event, as the runtime's callback would: its kind from
 * its type, its code from its "code". */
static void feed(fixture *f, const char *json)
{
  json_t *obj = json_loads(json, 0, NULL);
  assert_non_null(obj);
  const char *type = json_string_value(json_object_get(obj, "type"));
  ls_event ev = {.kind = LS_EVENT_KIND_COUNT, .type = type,
                 .id = json_string_value(json_object_get(obj, "id")), .json = json};
  for (int k = 0; k < LS_EVENT_KIND_COUNT; k++)
    if (strcmp(ls_event_kind_name((ls_event_kind)k), type) == 0)
      ev.kind = (ls_event_kind)k;
  assert_int_not_equal(ev.kind, LS_EVENT_KIND_COUNT);
  const char *code = json_string_value(json_object_get(obj, "code"));
  ev.code = code ? ls_error_from_name(code) : LS_OK;
  lsd_hub_on_event(f->hub, &ev);
  json_decref(obj);
}

/* A games-list-updated with one entry as the runtime writes it: its state,
 * actions (a JSON array) and operation (a JSON object or null) included. */
static const char *game_entry(const char *id, bool installed, const char *state,
                              const char *actions, const char *operation)
{
  static char json[1024];
  snprintf(json, sizeof json,
           "{\"id\": \"%s\", \"name\": \"n\", \"downloaded\": %s, \"installed\": %s, "
           "\"local_version\": \"1.0\", \"latest_version\": \"1.0\", \"peers\": 1, "
           "\"size\": 1000, \"state\": \"%s\", \"update_available\": false, "
           "\"actions\": %s, \"operation\": %s}",
           id, installed ? "true" : "false", installed ? "true" : "false", state, actions,
           operation);
  return json;
}

static void set_game(fixture *f, const char *id, bool installed, const char *state,
                     const char *actions, const char *operation)
{
  feed(f, t_path("{\"type\": \"games-list-updated\", \"games\": [%s], \"changed\": []}",
                 game_entry(id, installed, state, actions, operation)));
}

static const char *card_state(fixture *f, const char *id)
{
  static char text[64];
  json_t *card = lsd_hub_card(f->hub, id);
  assert_non_null(card);
  snprintf(text, sizeof text, "%s", json_string_value(json_object_get(card, "state")));
  json_decref(card);
  return text;
}

/* The card's actions joined by spaces. */
static const char *card_actions(fixture *f, const char *id)
{
  static char text[128];
  text[0] = '\0';
  json_t *card = lsd_hub_card(f->hub, id);
  size_t i;
  json_t *a;
  json_array_foreach(json_object_get(card, "actions"), i, a) {
    strcat(text, i ? " " : "");
    strcat(text, json_string_value(a));
  }
  json_decref(card);
  return text;
}

/* The card is the runtime's entry plus the catalog's fields, the progress
 * of the running operation (from progress events between libraries) and
 * Play; the hub derives no state of its own. */
static void cards_follow_the_runtimes_view(void **state)
{
  fixture *f = *state;
  set_game(f, "quake", false, "available", "[\"download\"]", "null");
  assert_string_equal(card_state(f, "quake"), "available");
  assert_string_equal(card_actions(f, "quake"), "download");

  set_game(f, "quake", false, "downloading", "[\"cancel\"]",
           "{\"kind\": \"download\", \"bytes\": 0, \"total_bytes\": 1000, \"bytes_per_sec\": 0}");
  feed(f, "{\"type\": \"game-download-progress\", \"id\": \"quake\", \"bytes\": 250,"
          " \"total_bytes\": 1000, \"bytes_per_sec\": 50}");
  assert_string_equal(card_state(f, "quake"), "downloading");
  assert_string_equal(card_actions(f, "quake"), "cancel");
  json_t *card = lsd_hub_card(f->hub, "quake");
  json_t *progress = json_object_get(card, "progress");
  assert_int_equal(json_integer_value(json_object_get(progress, "bytes")), 250);
  assert_int_equal(json_integer_value(json_object_get(progress, "eta_s")), 15);
  assert_string_equal(json_string_value(json_object_get(card, "genre")), "Shooter");
  assert_int_equal(json_integer_value(json_object_get(card, "max_players")), 16);
  json_decref(card);
  assert_true(lsd_hub_any_busy(f->hub));

  set_game(f, "quake", false, "uninstalling", "[]",
           "{\"kind\": \"uninstall\", \"bytes\": 0, \"total_bytes\": 0, \"bytes_per_sec\": 0}");
  card = lsd_hub_card(f->hub, "quake");
  assert_true(json_is_null(json_object_get(card, "progress"))); /* no bar for an uninstall */
  json_decref(card);

  set_game(f, "quake", true, "installed", "[\"uninstall\"]", "null");
  assert_false(lsd_hub_any_busy(f->hub));
  assert_string_equal(card_actions(f, "quake"), "uninstall"); /* no launch file yet */
  t_write(f->game_dir, "quake/local/bin/run.sh", "#!/bin/sh\n");
  chmod(t_path("%s/quake/local/bin/run.sh", f->game_dir), 0755);
  set_game(f, "quake", true, "update_available", "[\"update\", \"uninstall\"]", "null");
  assert_string_equal(card_state(f, "quake"), "update_available");
  assert_string_equal(card_actions(f, "quake"), "update play uninstall");
  set_game(f, "quake", true, "installing", "[]",
           "{\"kind\": \"install\", \"bytes\": 5, \"total_bytes\": 10, \"bytes_per_sec\": 0}");
  assert_string_equal(card_actions(f, "quake"), ""); /* no Play while it changes */
}

static void failures_show_in_a_players_words_and_clear(void **state)
{
  fixture *f = *state;
  set_game(f, "chess", false, "available", "[\"download\"]", "null");
  lsd_hub_note_action(f->hub, "chess", "update");
  feed(f, "{\"type\": \"game-download-begin\", \"id\": \"chess\", \"total_bytes\": 10}");
  feed(f, "{\"type\": \"game-download-failed\", \"id\": \"chess\","
          " \"error\": \"peer ab12: corrupt chunk (SHA-256 mismatch)\", \"code\": \"LS_ECORRUPT\"}");
  json_t *card = lsd_hub_card(f->hub, "chess");
  json_t *err = json_object_get(card, "error");
  assert_string_equal(json_string_value(json_object_get(err, "action")), "update");
  assert_string_equal(json_string_value(json_object_get(err, "code")), "LS_ECORRUPT");
  assert_non_null(strstr(json_string_value(json_object_get(err, "message")), "damaged"));
  assert_non_null(strstr(json_string_value(json_object_get(err, "detail")), "SHA-256"));
  json_decref(card);

  /* The words come from the code, never from the sentence. */
  feed(f, "{\"type\": \"game-install-failed\", \"id\": \"chess\","
          " \"error\": \"corrupt SHA-256 space busy\", \"code\": \"LS_EFORMAT\"}");
  card = lsd_hub_card(f->hub, "chess");
  err = json_object_get(card, "error");
  assert_string_equal(json_string_value(json_object_get(err, "action")), "install");
  assert_string_equal(json_string_value(json_object_get(err, "message")),
                      "The game's archives could not be unpacked on this machine.");
  json_decref(card);

  lsd_hub_note_action(f->hub, "chess", "download"); /* a new try clears it */
  card = lsd_hub_card(f->hub, "chess");
  assert_true(json_is_null(json_object_get(card, "error")));
  json_decref(card);

  lsd_hub_note_failure(f->hub, "chess", "remove", LS_ESTATE, "chess: installed: uninstall it first");
  card = lsd_hub_card(f->hub, "chess");
  err = json_object_get(card, "error");
  assert_string_equal(json_string_value(json_object_get(err, "message")),
                      "The game is installed; uninstall it first.");
  json_decref(card);
  feed(f, "{\"type\": \"game-remove-finished\", \"id\": \"chess\"}");
  card = lsd_hub_card(f->hub, "chess");
  assert_true(json_is_null(json_object_get(card, "error")));
  json_decref(card);

  /* A version's file lists refused by the catalog's pin. */
  lsd_hub_note_failure(f->hub, "chess", "update", LS_EPIN, "the file list of chess 2.0 ...");
  card = lsd_hub_card(f->hub, "chess");
  err = json_object_get(card, "error");
  assert_string_equal(json_string_value(json_object_get(err, "code")), "LS_EPIN");
  assert_non_null(strstr(json_string_value(json_object_get(err, "message")),
                         "not the ones the catalog names"));
  json_decref(card);
}

static json_t *card_field(fixture *f, const char *id, const char *field)
{
  json_t *card = lsd_hub_card(f->hub, id);
  assert_non_null(card);
  json_t *v = json_incref(json_object_get(card, field));
  json_decref(card);
  return v;
}

/* A paused game's download object comes through; a verification shows its
 * progress, then its result in a player's words until the payload changes
 * (a repair replaces it with its own); a pause or a cancel is no failure. */
static void verify_results_and_user_stops(void **state)
{
  fixture *f = *state;
  feed(f, "{\"type\": \"games-list-updated\", \"changed\": [], \"games\": [{\"id\": \"chess\","
          " \"name\": \"n\", \"downloaded\": false, \"installed\": false, \"peers\": 1,"
          " \"size\": 1000, \"state\": \"paused\", \"update_available\": false,"
          " \"actions\": [\"download\", \"cancel\"], \"operation\": null, \"download\":"
          " {\"state\": \"paused\", \"version\": \"1.0\", \"bytes\": 600, \"total_bytes\": 1000}}]}");
  json_t *dl = card_field(f, "chess", "download");
  assert_int_equal(json_integer_value(json_object_get(dl, "bytes")), 600);
  json_decref(dl);
  json_t *progress = card_field(f, "chess", "progress");
  assert_true(json_is_null(progress)); /* idle: nothing runs */
  json_decref(progress);

  lsd_hub_note_failure(f->hub, "chess", "download", LS_EPAUSED, "paused");
  json_t *err = card_field(f, "chess", "error");
  assert_true(json_is_null(err));
  json_decref(err);

  set_game(f, "chess", false, "verifying", "[\"cancel\"]",
           "{\"kind\": \"verify\", \"bytes\": 0, \"total_bytes\": 1000, \"bytes_per_sec\": 0}");
  lsd_hub_note_action(f->hub, "chess", "verify");
  feed(f, "{\"type\": \"game-verify-begin\", \"id\": \"chess\", \"version\": \"1.0\","
          " \"total_bytes\": 1000, \"files\": 2}");
  feed(f, "{\"type\": \"game-verify-progress\", \"id\": \"chess\", \"bytes\": 400,"
          " \"total_bytes\": 1000, \"bytes_per_sec\": 100}");
  progress = card_field(f, "chess", "progress");
  assert_int_equal(json_integer_value(json_object_get(progress, "bytes")), 400);
  assert_int_equal(json_integer_value(json_object_get(progress, "eta_s")), 6);
  json_decref(progress);
  feed(f, "{\"type\": \"game-verify-finished\", \"id\": \"chess\", \"version\": \"1.0\","
          " \"ok\": false, \"chunks\": 9, \"bad_chunks\": 2, \"bad_bytes\": 200, \"files_bad\": 1,"
          " \"files\": [{\"path\": \"a.eti\", \"bad_chunks\": 2, \"bad_bytes\": 200}]}");
  json_t *v = card_field(f, "chess", "verify");
  assert_false(json_is_true(json_object_get(v, "ok")));
  assert_false(json_is_true(json_object_get(v, "repair")));
  assert_int_equal(json_integer_value(json_object_get(v, "bad_chunks")), 2);
  assert_null(json_object_get(v, "type"));
  assert_string_equal(json_string_value(json_object_get(v, "message")),
                      "Verify found 2 bad chunks in 1 file: Repair fetches them.");
  json_decref(v);

  lsd_hub_note_action(f->hub, "chess", "repair");
  feed(f, "{\"type\": \"game-download-begin\", \"id\": \"chess\", \"total_bytes\": 1000,"
          " \"repair\": true}");
  v = card_field(f, "chess", "verify");
  assert_true(json_is_null(v)); /* stale once the payload changes */
  json_decref(v);
  feed(f, "{\"type\": \"game-download-finished\", \"id\": \"chess\", \"version\": \"1.0\","
          " \"bytes\": 1000, \"bytes_fetched\": 2048, \"bytes_reused\": 800, \"repair\": true}");
  v = card_field(f, "chess", "verify");
  assert_true(json_is_true(json_object_get(v, "repair")));
  assert_true(json_is_true(json_object_get(v, "ok")));
  assert_string_equal(json_string_value(json_object_get(v, "message")),
                      "Repaired: 2.0 KiB fetched again from the peers, 800 B was intact.");
  json_decref(v);

  feed(f, "{\"type\": \"game-verify-begin\", \"id\": \"chess\", \"total_bytes\": 1000}");
  feed(f, "{\"type\": \"game-verify-failed\", \"id\": \"chess\", \"error\": \"cancelled\","
          " \"code\": \"LS_ECANCELED\"}");
  err = card_field(f, "chess", "error");
  assert_true(json_is_null(err)); /* the user's cancel */
  json_decref(err);
  feed(f, "{\"type\": \"game-verify-begin\", \"id\": \"chess\", \"total_bytes\": 1000}");
  feed(f, "{\"type\": \"game-verify-finished\", \"id\": \"chess\", \"version\": \"1.0\","
          " \"ok\": true, \"chunks\": 1, \"bad_chunks\": 0, \"bad_bytes\": 0, \"files_bad\": 0,"
          " \"files\": []}");
  v = card_field(f, "chess", "verify");
  assert_string_equal(json_string_value(json_object_get(v, "message")), "Verified: all 1 chunk OK.");
  json_decref(v);
  feed(f, "{\"type\": \"game-verify-begin\", \"id\": \"chess\", \"total_bytes\": 1000}");
  feed(f, "{\"type\": \"game-verify-failed\", \"id\": \"chess\", \"error\": \"no list\","
          " \"code\": \"LS_ENOPEER\"}");
  err = card_field(f, "chess", "error");
  assert_string_equal(json_string_value(json_object_get(err, "action")), "verify");
  json_decref(err);
}

static void play_needs_an_executable_inside_local(void **state)
{
  fixture *f = *state;
  char why[256];
  set_game(f, "quake", true, "installed", "[\"uninstall\"]", "null");
  assert_null(lsd_hub_launch_path(f->hub, "quake", why, sizeof why));
  assert_non_null(strstr(why, "missing"));

  t_write(f->game_dir, "quake/local/bin/run.sh", "#!/bin/sh\n");
  assert_null(lsd_hub_launch_path(f->hub, "quake", why, sizeof why));
  assert_non_null(strstr(why, "not an executable"));
  chmod(t_path("%s/quake/local/bin/run.sh", f->game_dir), 0755);
  char *path = lsd_hub_launch_path(f->hub, "quake", why, sizeof why);
  assert_non_null(path);
  assert_non_null(strstr(path, "/quake/local/bin/run.sh"));
  free(path);
  assert_string_equal(card_actions(f, "quake"), "play uninstall");

  set_game(f, "escape", true, "installed", "[\"uninstall\"]", "null");
  t_mkdir(f->game_dir, "escape/local/bin");
  t_symlink("/bin/sh", f->game_dir, "escape/local/bin/run"); /* the catalog refuses "..": */
  assert_null(lsd_hub_launch_path(f->hub, "escape", why, sizeof why));
  assert_non_null(strstr(why, "outside"));
  set_game(f, "chess", true, "installed", "[\"uninstall\"]", "null");
  assert_null(lsd_hub_launch_path(f->hub, "chess", why, sizeof why));
  assert_non_null(strstr(why, "names no program"));
}

/* Reads whole records until one named name arrives; returns its data. */
static json_t *read_until(lsd_stream *s, const char *name)
{
  char buf[65536];
  for (int tries = 0; tries < 1000; tries++) {
    long n = lsd_stream_read(s, buf, sizeof buf - 1, 1000);
    assert_true(n > 0);
    buf[n] = '\0';
    char event[64];
    assert_int_equal(sscanf(buf, "event: %63s", event), 1);
    if (strcmp(event, name) == 0)
      return json_loads(strstr(buf, "data: ") + 6, JSON_DISABLE_EOF_CHECK, NULL);
  }
  fail_msg("no %s record", name);
  return NULL;
}

static void stream_starts_with_a_snapshot_and_keeps_order(void **state)
{
  fixture *f = *state;
  set_game(f, "quake", false, "available", "[\"download\"]", "null");
  lsd_stream *s = lsd_stream_open(lsd_hub_log(f->hub));
  json_t *snap = read_until(s, "snapshot");
  assert_int_equal(json_array_size(json_object_get(snap, "games")), 1);
  json_decref(snap);

  const char *op = "{\"kind\": \"download\", \"bytes\": 0, \"total_bytes\": 9, "
                   "\"bytes_per_sec\": 0}";
  set_game(f, "quake", false, "downloading", "[\"cancel\"]", op);
  char buf[8192];
  long n = lsd_stream_read(s, buf, sizeof buf - 1, 1000);
  buf[n] = '\0';
  assert_non_null(strstr(buf, "event: games-list-updated\n")); /* the raw event first */
  json_t *games = read_until(s, "games");
  assert_string_equal(json_string_value(json_object_get(
                        json_array_get(json_object_get(games, "games"), 0), "state")),
                      "downloading");
  json_decref(games);
  feed(f, "{\"type\": \"game-download-begin\", \"id\": \"quake\", \"total_bytes\": 9}");
  n = lsd_stream_read(s, buf, sizeof buf - 1, 1000);
  buf[n] = '\0';
  assert_non_null(strstr(buf, "event: game-download-begin\n"));
  json_t *card = read_until(s, "game-state");
  assert_string_equal(json_string_value(json_object_get(card, "state")), "downloading");
  json_decref(card);
  assert_int_equal(lsd_stream_read(s, buf, sizeof buf, 10), 0); /* nothing more: keep-alive */

  /* The same library or peer list again (as every refresh brings) is no news. */
  lsd_hub_set_games(f->hub, json_loads(t_path("[%s]", game_entry("quake", false, "downloading",
                                                                 "[\"cancel\"]", op)),
                                       0, NULL));
  lsd_hub_set_peers(f->hub, json_array());
  assert_int_equal(lsd_stream_read(s, buf, sizeof buf, 10), 0);
  lsd_hub_set_peers(f->hub, json_pack("[{s:s, s:s, s:s, s:i}]", "peer_id", "p1", "name", "bob",
                                      "addr", "10.0.0.2:1", "games", 1));
  json_t *peers = read_until(s, "peers");
  assert_string_equal(json_string_value(json_object_get(
                        json_array_get(json_object_get(peers, "peers"), 0), "status")),
                      "connected");
  json_decref(peers);

  /* A reader that falls more than the log behind starts over. */
  for (int i = 0; i < 1100; i++)
    feed(f, "{\"type\": \"peer-count\", \"count\": 1}");
  n = lsd_stream_read(s, buf, sizeof buf - 1, 1000);
  buf[n] = '\0';
  assert_non_null(strstr(buf, "event: snapshot\n"));
  lsd_stream_close(s);
}

/* Small reads get a record in pieces; closing wakes a waiting reader. */
typedef struct reader {
  lsd_stream *s;
  long last;
} reader;

static void *read_until_closed(void *arg)
{
  reader *r = arg;
  char buf[16];
  while ((r->last = lsd_stream_read(r->s, buf, sizeof buf, 20000)) > 0)
    ;
  return NULL;
}

static void close_ends_waiting_readers(void **state)
{
  fixture *f = *state;
  reader r = {.s = lsd_stream_open(lsd_hub_log(f->hub))};
  pthread_t t;
  pthread_create(&t, NULL, read_until_closed, &r);
  usleep(100 * 1000);
  lsd_hub_close(f->hub);
  pthread_join(t, NULL); /* well before the 20 s wait */
  assert_int_equal(r.last, -1);
  lsd_stream_close(r.s);
}

/* ---- connection slots ---------------------------------------------------- */

/* A connection as the slots see it: the server's end of a socket pair, and
 * the client's, which reads the end when the slots shut the server's. */
typedef struct conn {
  int server, client;
  lsd_slot *slot;
} conn;

/* A new connection from 10.0.0.HOST. */
static conn connect_from(lsd_slots *s, unsigned host)
{
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  struct sockaddr_in from = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0a000000u | host)};
  conn c = {.server = sv[0], .client = sv[1]};
  c.slot = lsd_slots_admit(s, c.server, (struct sockaddr *)&from);
  return c;
}

static bool ended(const conn *c)
{
  char byte;
  return recv(c->client, &byte, 1, MSG_DONTWAIT) == 0;
}

static void hang_up(lsd_slots *s, conn *c)
{
  lsd_slots_release(s, c->slot);
  close(c->server);
  close(c->client);
}

/* An address at its limit makes room from its own waiting connections,
 * the first to be due first; when all of them are answering, its new
 * connection is refused. Other addresses are not touched. */
static void one_address_makes_room_from_its_own(void **state)
{
  (void)state;
  lsd_slots *s;
  assert_int_equal(lsd_slots_create(&s, NULL), LS_OK);
  conn other = connect_from(s, 2); /* due before all of host 1's */
  conn c[LSD_SLOTS_PER_ADDRESS + 3];
  for (size_t i = 0; i < LSD_SLOTS_PER_ADDRESS; i++)
    c[i] = connect_from(s, 1);
  for (size_t i = 0; i < LSD_SLOTS_PER_ADDRESS - 2; i++)
    lsd_slots_request_received(s, c[i].slot);
  conn *next = &c[LSD_SLOTS_PER_ADDRESS];
  next[0] = connect_from(s, 1);
  assert_non_null(next[0].slot);
  assert_true(ended(&c[LSD_SLOTS_PER_ADDRESS - 2]));
  assert_false(ended(&c[LSD_SLOTS_PER_ADDRESS - 1]));
  next[1] = connect_from(s, 1);
  assert_true(ended(&c[LSD_SLOTS_PER_ADDRESS - 1]));
  lsd_slots_request_received(s, next[0].slot);
  lsd_slots_request_received(s, next[1].slot);
  next[2] = connect_from(s, 1); /* 16 answering: refused */
  assert_null(next[2].slot);
  assert_true(ended(&next[2]));
  for (size_t i = 0; i < LSD_SLOTS_PER_ADDRESS - 2; i++)
    assert_false(ended(&c[i]));
  assert_false(ended(&next[0]) || ended(&next[1]) || ended(&other));
  for (size_t i = 0; i < LSD_SLOTS_PER_ADDRESS + 3; i++)
    hang_up(s, &c[i]);
  hang_up(s, &other);
  lsd_slots_free(s);
}

/* With every slot taken, a new connection ends the waiting one due first
 * of any address: a new one before one kept alive after its answer; with
 * every one answering it is refused; a closed one frees its slot. */
static void all_taken_the_first_due_makes_room(void **state)
{
  (void)state;
  lsd_slots *s;
  assert_int_equal(lsd_slots_create(&s, NULL), LS_OK);
  conn c[LSD_SLOTS_TOTAL];
  for (size_t i = 0; i < LSD_SLOTS_TOTAL; i++)
    c[i] = connect_from(s, 1 + (unsigned)(i / LSD_SLOTS_PER_ADDRESS));
  lsd_slots_request_started(s, c[0].slot);
  lsd_slots_request_received(s, c[0].slot);
  lsd_slots_request_done(s, c[0].slot); /* kept alive: due in 60 s */
  conn x = connect_from(s, 100);
  assert_non_null(x.slot);
  assert_true(ended(&c[1]));
  assert_false(ended(&c[0]));
  for (size_t i = 2; i < LSD_SLOTS_TOTAL; i++)
    lsd_slots_request_received(s, c[i].slot);
  lsd_slots_request_received(s, x.slot);
  conn y = connect_from(s, 101); /* the kept-alive one is the only one waiting */
  assert_true(ended(&c[0]));
  lsd_slots_request_received(s, y.slot);
  conn z = connect_from(s, 102);
  assert_null(z.slot);
  assert_true(ended(&z));
  hang_up(s, &c[5]);
  conn w = connect_from(s, 102);
  assert_non_null(w.slot);
  for (size_t i = 2; i < LSD_SLOTS_TOTAL; i++)
    if (i != 5)
      assert_false(ended(&c[i]));
  for (size_t i = 0; i < LSD_SLOTS_TOTAL; i++)
    if (i != 5)
      hang_up(s, &c[i]);
  hang_up(s, &x);
  hang_up(s, &y);
  hang_up(s, &z);
  hang_up(s, &w);
  lsd_slots_free(s);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(missing_config_gives_empty_settings),
    cmocka_unit_test(malformed_config_names_file_line_and_column),
    cmocka_unit_test(settings_round_trip_privately),
    cmocka_unit_test(bad_values_change_nothing),
    cmocka_unit_test(game_dir_can_be_created_on_request),
    cmocka_unit_test_setup_teardown(cards_follow_the_runtimes_view, setup, teardown),
    cmocka_unit_test_setup_teardown(failures_show_in_a_players_words_and_clear, setup, teardown),
    cmocka_unit_test_setup_teardown(verify_results_and_user_stops, setup, teardown),
    cmocka_unit_test_setup_teardown(play_needs_an_executable_inside_local, setup, teardown),
    cmocka_unit_test_setup_teardown(stream_starts_with_a_snapshot_and_keeps_order, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(close_ends_waiting_readers, setup, teardown),
    cmocka_unit_test(one_address_makes_room_from_its_own),
    cmocka_unit_test(all_taken_the_first_due_makes_room),
  };
  return ls_run_tests(tests, NULL, NULL);
}
