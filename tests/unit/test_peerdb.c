/* Tests PeerGameDB: peers, their advertised games, latest versions across
 * peers, who has which version, the stored file lists, and the refused
 * versions (no offers while advertised, forgotten with the advertisement,
 * capped). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testrun.h"

#include "peer/peerdb.h"

#include <stdio.h>
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

/* A refused version is no offer: it leaves the latest version, the peer
 * count and the sources, for as long as the peer advertises it. */
static void refused_versions_are_no_offers(void **state)
{
  (void)state;
  ls_peerdb *db = ls_peerdb_new();
  ls_peerdb_put_peer(db, ID_A, "alice", "10.0.0.1:1");
  ls_peerdb_put_peer(db, ID_B, "bob", "10.0.0.2:1");
  ls_peerdb_put_peer(db, ID_C, "carol", "10.0.0.3:1");
  ls_msg_game_info a[] = {{"quake3", "Q", "1.9", 100}};
  ls_msg_game_info b[] = {{"quake3", "Q", "2.0", 120}};
  ls_msg_game_list la = games(1, a), lb = games(1, b);
  ls_peerdb_set_games(db, ID_A, &la);
  ls_peerdb_set_games(db, ID_B, &lb);
  ls_peerdb_set_games(db, ID_C, &lb);

  assert_int_equal(ls_peerdb_refuse(db, ID_A, "quake3", "2.0", LS_EPIN, "no"), LS_ENOENT);
  assert_int_equal(ls_peerdb_refuse(db, ID_B, "quake3", "2.0", LS_EPIN, "bob's list"), LS_OK);
  ls_peerdb_game_view v = ls_peerdb_view(db, "quake3");
  assert_string_equal(v.latest_version, "2.0"); /* carol still offers it */
  assert_int_equal(v.peers, 2);
  assert_int_equal(v.refused, 1);
  const char *who[8];
  assert_int_equal(ls_peerdb_peers_with(db, "quake3", "2.0", who, 8), 1);
  assert_string_equal(who[0], ID_C);
  assert_null(ls_peerdb_offer_of(db, ls_peerdb_find(db, ID_B), "quake3"));

  /* Only refused offers of 2.0: the latest usable version is 1.9. */
  assert_int_equal(ls_peerdb_refuse(db, ID_C, "quake3", "2.0", LS_EPIN, "carol's list"), LS_OK);
  v = ls_peerdb_view(db, "quake3");
  assert_string_equal(v.latest_version, "1.9");
  assert_int_equal(v.latest_size, 100);
  assert_int_equal(v.peers, 1);
  assert_int_equal(v.refused, 2);
  assert_int_equal(ls_peerdb_peers_with(db, "quake3", "2.0", who, 8), 0);
  assert_int_equal(ls_peerdb_refusal_count(db), 2);
  const ls_peerdb_refusal *r = ls_peerdb_refusal_at(db, 0);
  assert_string_equal(r->peer_id, ID_B);
  assert_string_equal(r->game_id, "quake3");
  assert_string_equal(r->version, "2.0");
  assert_int_equal(r->code, LS_EPIN);
  assert_string_equal(r->error, "bob's list");

  /* The same version again (another size): still refused. */
  b[0].size = 121;
  assert_true(ls_peerdb_set_games(db, ID_B, &lb));
  assert_int_equal(ls_peerdb_view(db, "quake3").refused, 2);
  /* Another version: forgotten; back to 2.0: an offer again, checked again. */
  b[0].version = "2.1";
  ls_peerdb_set_games(db, ID_B, &lb);
  v = ls_peerdb_view(db, "quake3");
  assert_string_equal(v.latest_version, "2.1");
  assert_int_equal(v.refused, 1);
  b[0].version = "2.0";
  ls_peerdb_set_games(db, ID_B, &lb);
  v = ls_peerdb_view(db, "quake3");
  assert_string_equal(v.latest_version, "2.0");
  assert_int_equal(v.peers, 2);
  assert_int_equal(ls_peerdb_refusal_count(db), 1);
  /* A peer that leaves takes its refusals along. */
  ls_peerdb_remove_peer(db, ID_C);
  assert_int_equal(ls_peerdb_refusal_count(db), 0);
  ls_peerdb_free(db);
}

/* A hostile party cannot grow the refusals without bound: the oldest are
 * forgotten (they count as offers again; the pin still refuses them). */
static void refusals_are_capped(void **state)
{
  (void)state;
  ls_peerdb *db = ls_peerdb_new();
  ls_msg_game_info g[] = {{"quake3", "Q", "1.0", 1}};
  ls_msg_game_list list = games(1, g);
  enum { PEERS = LS_PEERDB_MAX_REFUSALS + 44 };
  char id[LS_PROTO_PEER_ID_LEN + 1];
  for (unsigned i = 0; i < PEERS; i++) {
    snprintf(id, sizeof id, "%064x", i);
    ls_peerdb_put_peer(db, id, "p", "x:1");
    ls_peerdb_set_games(db, id, &list);
    assert_int_equal(ls_peerdb_refuse(db, id, "quake3", "1.0", LS_EPIN, "refused"), LS_OK);
    assert_int_equal(ls_peerdb_refuse(db, id, "quake3", "1.0", LS_EPIN, "again"), LS_OK);
  }
  assert_int_equal(ls_peerdb_refusal_count(db), LS_PEERDB_MAX_REFUSALS);
  snprintf(id, sizeof id, "%064x", 44u);
  assert_string_equal(ls_peerdb_refusal_at(db, 0)->peer_id, id);
  assert_string_equal(ls_peerdb_refusal_at(db, 0)->error, "again");
  ls_peerdb_game_view v = ls_peerdb_view(db, "quake3");
  assert_int_equal(v.refused, LS_PEERDB_MAX_REFUSALS);
  assert_int_equal(v.peers, 44);
  ls_peerdb_free(db);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(latest_version_and_holders),
    cmocka_unit_test(file_lists_are_kept_per_peer),
    cmocka_unit_test(refused_versions_are_no_offers),
    cmocka_unit_test(refusals_are_capped),
  };
  return ls_run_tests(tests, NULL, NULL);
}
