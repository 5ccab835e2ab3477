/* Owns the libFuzzer target of the install intent log (src/install/
 * transaction.c): .lanspread.json as ls_recover_game_root reads it.
 *
 * The input is the intent. ls_txn_intent_parse either refuses it
 * (LS_EFORMAT with a reason) or gives an operation with a phase of its own.
 * Then the recovery runs on it, in a game root of this run made again for
 * each input so that only the intent decides: a downloaded game without
 * local/, an unmarked .local.installing/ and .local.backup/ (ours only if
 * the intent says so) and an intent temp file, beside another game root and
 * a file outside the game directory. The outcome must be the one of
 * docs/ARCHITECTURE.md for that intent: an install or update's new tree is
 * deleted, an update that was swapping gets its backup back as local/, an
 * uninstall's backup is deleted, and whatever the intent does not prove
 * ours stays, untouched; a corrupt intent proves nothing. The intent and
 * its temp file are gone; the payload, the other root and the outside file
 * stay. */
#include "fuzz_util.h"

#include "install/transaction.h"
#include "library/layout.h"

#include <string.h>

static const char *root;

static void make_root(const uint8_t *intent, size_t size)
{
  root = fuzz_fresh_game_root();
  fuzz_write(fuzz_path("%s/game.tar", root), "tar", 3);
  fuzz_mkdir(fuzz_path("%s/" LS_INSTALLING_DIR, root));
  fuzz_write(fuzz_path("%s/" LS_INSTALLING_DIR "/new", root), "new", 3);
  fuzz_mkdir(fuzz_path("%s/" LS_BACKUP_DIR, root));
  fuzz_write(fuzz_path("%s/" LS_BACKUP_DIR "/old", root), "old", 3);
  fuzz_write(fuzz_path("%s/" LS_INTENT_FILE ".tmp", root), "{", 1);
  fuzz_write(fuzz_path("%s/" LS_INTENT_FILE, root), intent, size);
}

static void check_parse(int rc, const ls_txn_intent *it, const ls_diag *diag)
{
  if (rc != LS_OK) {
    FUZZ_CHECK(rc == LS_EFORMAT && diag->text[0] != '\0');
    return;
  }
  switch (it->op) {
  case LS_TXN_OP_INSTALL: FUZZ_CHECK(it->phase == LS_TXN_PHASE_EXTRACTING); break;
  case LS_TXN_OP_UPDATE:
    FUZZ_CHECK(it->phase == LS_TXN_PHASE_EXTRACTING || it->phase == LS_TXN_PHASE_SWAPPING);
    break;
  case LS_TXN_OP_UNINSTALL: FUZZ_CHECK(it->phase == LS_TXN_PHASE_REMOVING); break;
  default: FUZZ_CHECK(!"an operation that is none of ours");
  }
}

static void check_recovery(const ls_txn_intent *it, bool valid)
{
  ls_txn_recovery_report rep;
  ls_diag diag = {{0}};
  int rc = ls_recover_game_root(fuzz_game_dir(), "g", &rep, &diag);
  fuzz_check_ok(rc, &diag, "recovery");
  bool builds_tree = valid && (it->op == LS_TXN_OP_INSTALL || it->op == LS_TXN_OP_UPDATE);
  bool uninstall = valid && it->op == LS_TXN_OP_UNINSTALL;
  bool swapping = valid && it->op == LS_TXN_OP_UPDATE && it->phase == LS_TXN_PHASE_SWAPPING;

  FUZZ_CHECK(rep.op == (valid ? it->op : LS_TXN_OP_NONE));
  FUZZ_CHECK(rep.intent_unreadable == !valid);
  FUZZ_CHECK(rep.outcome == (!valid      ? LS_TXN_RECOVERY_CLEANED
                             : uninstall ? LS_TXN_RECOVERY_ROLLED_FORWARD
                                         : LS_TXN_RECOVERY_ROLLED_BACK));
  FUZZ_CHECK(rep.foreign_installing == !builds_tree);
  FUZZ_CHECK(fuzz_exists(fuzz_path("%s/" LS_INSTALLING_DIR "/new", root)) == !builds_tree);
  FUZZ_CHECK(fuzz_exists(fuzz_path("%s/" LS_INSTALLING_DIR, root)) == !builds_tree);
  bool backup_kept = !uninstall && !swapping;
  FUZZ_CHECK(rep.foreign_backup == backup_kept);
  FUZZ_CHECK(fuzz_exists(fuzz_path("%s/" LS_BACKUP_DIR "/old", root)) == backup_kept);
  FUZZ_CHECK(fuzz_exists(fuzz_path("%s/" LS_BACKUP_DIR, root)) == backup_kept);
  FUZZ_CHECK(fuzz_exists(fuzz_path("%s/" LS_LOCAL_DIR "/old", root)) == swapping);
  FUZZ_CHECK(fuzz_exists(fuzz_path("%s/" LS_LOCAL_DIR, root)) == swapping);
  FUZZ_CHECK(!fuzz_exists(fuzz_path("%s/" LS_LOCAL_DIR "/" LS_OWNED_MARKER, root)));
  FUZZ_CHECK(!fuzz_exists(fuzz_path("%s/" LS_INTENT_FILE, root)));
  FUZZ_CHECK(!fuzz_exists(fuzz_path("%s/" LS_INTENT_FILE ".tmp", root)));
  FUZZ_CHECK(fuzz_exists(fuzz_path("%s/" LS_VERSION_FILE, root)));
  FUZZ_CHECK(fuzz_exists(fuzz_path("%s/game.tar", root)));
  FUZZ_CHECK(fuzz_surroundings_intact());
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  ls_txn_intent it;
  ls_diag diag = {{0}};
  int rc = ls_txn_intent_parse((const char *)data, size, &it, &diag);
  check_parse(rc, &it, &diag);
  make_root(data, size);
  check_recovery(&it, rc == LS_OK);
  return 0;
}
