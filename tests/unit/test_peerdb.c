/* Tests PeerGameDB: peers, their advertised games, latest versions across
 * peers, who has which version, and the stored file lists. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testrun.h"

#include "peer/peerdb.h"

#include <stdlib.h>
#include <string.h>

#define ID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define ID_C "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

static ls_msg_game_list games(size_t n, ls_msg_game_info *g)
{
  return (ls_msg_game_list){n, g};
}

static void latest_version_and_holders(void **state)
{
  (void)state;
  ls_peerdb *db = ls_peerdb_new();
  assert_int_equal(ls_peerdb_put_peer(db, ID_A, "alice", "10.0.0.1:1"), 0);
  assert_int_equal(ls_peerdb_put_peer(db, ID_B, "bob", "10.0.0.2:1"), 0);
  assert_int_equal(ls_peerdb_put_peer(db, ID_C, "carol", "10.0.0.3:1"), 0);
  ls_msg_game_info a[] = {{"quake3", "Quake III", "1.9", 100}, {"ut", "UT", "436", 5}};
  ls_msg_game_info b[] = {{"quake3", "Quake III", "1.10", 120}};
  ls_msg_game_info c[] = {{"quake3", "Quake III", "1.10", 120}, {"aoe2", "AoE", "2", 7}};
  ls_msg_game_list la = games(2, a), lb = games(1, b), lc = games(2, c);
  assert_true(ls_peerdb_set_games(db, ID_A, &la));
  assert_false(ls_peerdb_set_games(db, ID_A, &la)); /* unchanged */
  assert_true(ls_peerdb_set_games(db, ID_B, &lb));
  assert_true(ls_peerdb_set_games(db, ID_C, &lc));

  ls_peerdb_game_view v = ls_peerdb_view(db, "quake3");
  assert_string_equal(v.latest_version, "1.10"); /* natural order: 1.10 > 1.9 */
  assert_int_equal(v.peers, 3);
  assert_int_equal(v.latest_size, 120);
  const char *who[8];
  assert_int_equal(ls_peerdb_peers_with(db, "quake3", "1.10", who, 8), 2);
  assert_string_equal(who[0], ID_B);
  assert_string_equal(who[1], ID_C);
  assert_null(ls_peerdb_view(db, "nothing").latest_version);

  const char **ids;
  size_t n;
  assert_int_equal(ls_peerdb_game_ids(db, &ids, &n), 0);
  assert_int_equal(n, 3);
  assert_string_equal(ids[0], "aoe2");
  assert_string_equal(ids[1], "quake3");
  assert_string_equal(ids[2], "ut");
  free(ids);

  ls_peerdb_remove_peer(db, ID_B);
  ls_peerdb_remove_peer(db, ID_C);
  v = ls_peerdb_view(db, "quake3");
  assert_string_equal(v.latest_version, "1.9");
  assert_int_equal(v.peers, 1);
  assert_int_equal(ls_peerdb_count(db), 1);
  ls_peerdb_free(db);
}

static void file_lists_are_kept_per_peer(void **state)
{
  (void)state;
  ls_peerdb *db = ls_peerdb_new();
  uint8_t hash[32] = {1, 2, 3};
  ls_msg_file_entry files[] = {{"a.eti", 10, 1, hash}, {"version.ini", 0, 0, NULL}};
  ls_msg_game_files gf = {"quake3", "1.10", 1048576, 2, files};
  assert_int_equal(ls_peerdb_set_files(db, ID_A, &gf), LS_ENOENT); /* unknown peer */
  ls_peerdb_put_peer(db, ID_A, "alice", "x:1");
  assert_int_equal(ls_peerdb_set_files(db, ID_A, &gf), 0);
  const ls_msg_game_files *got = ls_peerdb_files(db, ID_A, "quake3");
  assert_non_null(got);
  assert_int_equal(got->file_count, 2);
  assert_string_equal(got->files[0].path, "a.eti");
  assert_memory_equal(got->files[0].sha256, hash, 32);
  assert_null(ls_peerdb_files(db, ID_A, "ut"));
  ls_peerdb_remove_peer(db, ID_A);
  assert_null(ls_peerdb_files(db, ID_A, "quake3"));
  ls_peerdb_free(db);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(latest_version_and_holders),
    cmocka_unit_test(file_lists_are_kept_per_peer),
  };
  return ls_run_tests(tests, NULL, NULL);
}
