/* Owns the libFuzzer target of the download journal (src/download/
 * storage.c): .lanspread.download as ls_storage_recover reads it.
 *
 * The input is the journal. ls_storage_journal_parse either refuses it
 * (LS_EFORMAT with a reason, nothing kept) or gives a version and payload
 * paths only. Then the recovery runs on it, in a game root of this run that
 * is made again for each input: version.ini naming 1.0, payload (a.bin,
 * data/b.bin), a parked old sentinel, and what survives a discard (local/,
 * .sync/, the external installer's marker), beside another game root and a
 * file outside the game directory. A journal of version 1.0 completes the
 * download (the payload it lists stays, the rest goes), anything else
 * discards it (the payload goes); either way the journal and the parked
 * sentinel go, and nothing that survives a discard, nothing in the other
 * root and nothing outside is touched. */
#include "fuzz_util.h"

#include "download/storage.h"
#include "library/layout.h"

#include <string.h>

static const char *root;

static void make_root(const uint8_t *journal, size_t size)
{
  root = fuzz_fresh_game_root();
  fuzz_write(fuzz_path("%s/a.bin", root), "a", 1);
  fuzz_mkdir(fuzz_path("%s/data", root));
  fuzz_write(fuzz_path("%s/data/b.bin", root), "b", 1);
  fuzz_write(fuzz_path("%s/" LS_VERSION_DISCARDED, root), "0.9\n", 4);
  fuzz_mkdir(fuzz_path("%s/" LS_LOCAL_DIR, root));
  fuzz_write(fuzz_path("%s/" LS_LOCAL_DIR "/game.exe", root), "MZ", 2);
  fuzz_mkdir(fuzz_path("%s/" LS_SYNC_DIR, root));
  fuzz_write(fuzz_path("%s/" LS_SYNC_DIR "/state", root), "s", 1);
  fuzz_write(fuzz_path("%s/" LS_SOFTLAN_MARKER, root), "", 0);
  fuzz_write(fuzz_path("%s/" LS_DOWNLOAD_JOURNAL, root), journal, size);
}

static bool listed(const ls_storage_journal *j, const char *path)
{
  for (size_t i = 0; i < j->count; i++)
    if (strcmp(j->paths[i], path) == 0)
      return true;
  return false;
}

static void check_parse(int rc, const ls_storage_journal *j, const ls_diag *diag)
{
  if (rc != LS_OK) {
    FUZZ_CHECK(rc == LS_EFORMAT || rc == LS_ENOMEM);
    FUZZ_CHECK(diag->text[0] != '\0');
    FUZZ_CHECK(!j->version && !j->paths && j->count == 0);
    return;
  }
  FUZZ_CHECK(j->version != NULL);
  for (size_t i = 0; i < j->count; i++)
    FUZZ_CHECK(ls_layout_check_payload_path(j->paths[i], NULL) == LS_OK);
}

static void check_recovery(const ls_storage_journal *j, bool parsed)
{
  ls_storage_recovery done;
  ls_diag diag = {{0}};
  int rc = ls_storage_recover(fuzz_game_dir(), "g", &done, &diag);
  fuzz_check_ok(rc, &diag, "recovery");
  bool committed = parsed && strcmp(j->version, "1.0") == 0;
  FUZZ_CHECK(done == (committed ? LS_RECOVERY_COMPLETED : LS_RECOVERY_DISCARDED));
  FUZZ_CHECK(diag.text[0] != '\0');
  FUZZ_CHECK(!fuzz_exists(fuzz_path("%s/" LS_DOWNLOAD_JOURNAL, root)));
  FUZZ_CHECK(!fuzz_exists(fuzz_path("%s/" LS_VERSION_DISCARDED, root)));
  FUZZ_CHECK(fuzz_exists(fuzz_path("%s/" LS_VERSION_FILE, root)) == committed);
  FUZZ_CHECK(fuzz_exists(fuzz_path("%s/a.bin", root)) == (committed && listed(j, "a.bin")));
  bool b_kept = committed && listed(j, "data/b.bin");
  FUZZ_CHECK(fuzz_exists(fuzz_path("%s/data/b.bin", root)) == b_kept);
  FUZZ_CHECK(fuzz_exists(fuzz_path("%s/data", root)) == b_kept);
  FUZZ_CHECK(fuzz_exists(fuzz_path("%s/" LS_LOCAL_DIR "/game.exe", root)));
  FUZZ_CHECK(fuzz_exists(fuzz_path("%s/" LS_SYNC_DIR "/state", root)));
  FUZZ_CHECK(fuzz_exists(fuzz_path("%s/" LS_SOFTLAN_MARKER, root)));
  FUZZ_CHECK(fuzz_surroundings_intact());
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  ls_storage_journal j;
  ls_diag diag = {{0}};
  int rc = ls_storage_journal_parse((const char *)data, size, &j, &diag);
  check_parse(rc, &j, &diag);
  make_root(data, size);
  check_recovery(&j, rc == LS_OK);
  ls_storage_journal_free(&j);
  return 0;
}
