/* Owns the libFuzzer target of the download journal (src/download/
 * journal.c, storage.c): .lanspread.download as ls_storage_recover reads it.
 *
 * The first input byte chooses the root's state, the rest is the journal.
 * ls_storage_journal_parse either refuses it (LS_EFORMAT with a reason,
 * nothing kept) or gives a version and payload paths only. Then the
 * recovery runs on it, in a game root of this run that is made again for
 * each input: version.ini naming 1.0 (absent with bit 0 of the first byte:
 * a download that had begun), payload (a.bin, data/b.bin), a parked old
 * sentinel (.version.ini.discarded; with bit 2 .version.ini.kept: an old
 * version none of whose files was written), and what survives a discard
 * (local/, .sync/, the external installer's marker), beside another game
 * root and a file outside the game directory; with bit 1 and a journal
 * that parses as format 2, a valid chunk map of that journal marking every
 * chunk.
 * - version.ini present: a journal of version 1.0 completes the download
 *   (the payload it lists stays, the rest goes; a format 2 journal without
 *   its map had swept already, or was no commit: nothing goes); another
 *   version had not begun (the journal and the version transients go, the
 *   payload stays);
 * - version.ini absent: a format 2 journal with its map is kept as paused
 *   (nothing goes); any other readable journal is rolled back as a failure
 *   (what it lists goes, with .version.ini.kept only what it marks as
 *   made, and that version.ini comes back; the rest stays);
 * - an unreadable journal is discarded as a cancel (the payload goes).
 * Nothing that survives a discard, nothing in the other root and nothing
 * outside is ever touched. */
#include "fuzz_util.h"

#include "download/journal.h"
#include "download/storage.h"
#include "library/layout.h"

#include <string.h>

static const char *root;

enum { MODE_BEGUN = 1, MODE_MAP = 2, MODE_KEPT = 4 };

static void write_map(const ls_storage_journal *j)
{
  size_t nbits = ls_chunk_bits_size(j->chunk_count);
  uint8_t *bits = malloc(nbits + 1);
  FUZZ_CHECK(bits != NULL);
  memset(bits, 0xff, nbits + 1);
  uint8_t *map = NULL;
  size_t len = 0;
  FUZZ_CHECK(ls_chunk_map_encode(j->digest, bits, j->chunk_count, &map, &len) == LS_OK);
  fuzz_write(fuzz_path("%s/" LS_CHUNK_MAP, root), map, len);
  free(map);
  free(bits);
}

static const char *parked_name(bool kept)
{
  return kept ? LS_VERSION_KEPT : LS_VERSION_DISCARDED;
}

static void make_root(const uint8_t *journal, size_t size, unsigned mode)
{
  root = fuzz_fresh_game_root();
  if (mode & MODE_BEGUN)
    fuzz_rmtree(fuzz_path("%s/" LS_VERSION_FILE, root));
  fuzz_write(fuzz_path("%s/a.bin", root), "a", 1);
  fuzz_mkdir(fuzz_path("%s/data", root));
  fuzz_write(fuzz_path("%s/data/b.bin", root), "b", 1);
  fuzz_write(fuzz_path("%s/%s", root, parked_name(mode & MODE_KEPT)), "0.9\n", 4);
  fuzz_mkdir(fuzz_path("%s/" LS_LOCAL_DIR, root));
  fuzz_write(fuzz_path("%s/" LS_LOCAL_DIR "/game.exe", root), "MZ", 2);
  fuzz_mkdir(fuzz_path("%s/" LS_SYNC_DIR, root));
  fuzz_write(fuzz_path("%s/" LS_SYNC_DIR "/state", root), "s", 1);
  fuzz_write(fuzz_path("%s/" LS_SOFTLAN_MARKER, root), "", 0);
  fuzz_write(fuzz_path("%s/" LS_DOWNLOAD_JOURNAL, root), journal, size);
}

/* path is in the journal's list (made by the download: and marked so). */
static bool listed(const ls_storage_journal *j, const char *path, bool made)
{
  for (size_t i = 0; i < j->count; i++)
    if (strcmp(j->paths[i], path) == 0 && (!made || j->created[i]))
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

/* What the recovery removes of the payload file `path`. */
typedef struct outcome {
  bool committed, unstarted, paused, undone, cancelled, kept, swept;
} outcome;

static bool removed(const outcome *o, const ls_storage_journal *j, const char *path)
{
  if (o->committed)
    return o->swept && !listed(j, path, false);
  if (o->undone)
    return listed(j, path, o->kept);
  return o->cancelled;
}

static void check_recovery(const ls_storage_journal *j, bool parsed, bool begun, bool mapped,
                           bool kept)
{
  ls_storage_recovery done;
  ls_diag diag = {{0}};
  int rc = ls_storage_recover(fuzz_game_dir(), "g", &done, NULL, &diag);
  fuzz_check_ok(rc, &diag, "recovery");
  outcome o = {.kept = kept};
  o.committed = parsed && !begun && strcmp(j->version, "1.0") == 0;
  o.unstarted = parsed && !begun && !o.committed;
  o.paused = parsed && begun && mapped;
  o.undone = parsed && begun && !mapped;
  o.cancelled = !parsed;
  o.swept = o.committed && !(j->format == LS_JOURNAL_FORMAT && !mapped);
  FUZZ_CHECK(done == (o.committed   ? LS_RECOVERY_COMPLETED
                      : o.unstarted ? LS_RECOVERY_UNSTARTED
                      : o.paused    ? LS_RECOVERY_PAUSED
                                    : LS_RECOVERY_DISCARDED));
  FUZZ_CHECK(diag.text[0] != '\0');
  FUZZ_CHECK(fuzz_exists(fuzz_path("%s/" LS_DOWNLOAD_JOURNAL, root)) == o.paused);
  FUZZ_CHECK(fuzz_exists(fuzz_path("%s/" LS_CHUNK_MAP, root)) == o.paused);
  FUZZ_CHECK(fuzz_exists(fuzz_path("%s/%s", root, parked_name(kept))) == o.paused);
  FUZZ_CHECK(!fuzz_exists(fuzz_path("%s/%s", root, parked_name(!kept))));
  bool restored = o.undone && kept;
  FUZZ_CHECK(fuzz_exists(fuzz_path("%s/" LS_VERSION_FILE, root)) ==
             (o.committed || o.unstarted || restored));
  bool a_kept = !removed(&o, j, "a.bin"), b_kept = !removed(&o, j, "data/b.bin");
  FUZZ_CHECK(fuzz_exists(fuzz_path("%s/a.bin", root)) == a_kept);
  FUZZ_CHECK(fuzz_exists(fuzz_path("%s/data/b.bin", root)) == b_kept);
  FUZZ_CHECK(fuzz_exists(fuzz_path("%s/data", root)) == b_kept);
  FUZZ_CHECK(fuzz_exists(fuzz_path("%s/" LS_LOCAL_DIR "/game.exe", root)));
  FUZZ_CHECK(fuzz_exists(fuzz_path("%s/" LS_SYNC_DIR "/state", root)));
  FUZZ_CHECK(fuzz_exists(fuzz_path("%s/" LS_SOFTLAN_MARKER, root)));
  FUZZ_CHECK(fuzz_surroundings_intact());
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size == 0)
    return 0;
  unsigned mode = data[0];
  data++;
  size--;
  ls_storage_journal j;
  ls_diag diag = {{0}};
  int rc = ls_storage_journal_parse((const char *)data, size, &j, &diag);
  check_parse(rc, &j, &diag);
  bool mapped = rc == LS_OK && j.format == LS_JOURNAL_FORMAT && (mode & MODE_MAP);
  make_root(data, size, mode);
  if (mapped)
    write_map(&j);
  check_recovery(&j, rc == LS_OK, mode & MODE_BEGUN, mapped, mode & MODE_KEPT);
  ls_storage_journal_free(&j);
  return 0;
}
