/* Owns the libFuzzer target of the RAR main header reader
 * (src/install/unpack_rar.c): what a RAR4 or RAR5 file's first header says
 * about volumes, which decides how ls_unpack_volumes groups an archive.
 *
 * The input is the content of an archive file. It is parsed from memory
 * (ls_rar_parse, its first LS_UNPACK_SNIFF_BYTES), and written to the file
 * game.part1.rar alone in a directory of this run (the one file, rewritten
 * for each input), which is sniffed (must agree with the parse) and handed
 * to ls_unpack_volumes: a later volume is refused, a file that is not a
 * volume set is one volume, a first volume is the whole set of one file
 * unless its last header says that more follow (RAR5: the end-of-archive
 * header walk). */
#include "fuzz_util.h"

#include "install/unpack.h"
#include "install/unpack_parts.h"

#include <string.h>

static bool info_equal(const ls_rar_info *a, const ls_rar_info *b)
{
  return a->version == b->version && a->header_known == b->header_known &&
         a->volume == b->volume && a->first_known == b->first_known &&
         a->volume_number == b->volume_number;
}

static void check_info(const ls_rar_info *ri)
{
  FUZZ_CHECK(ri->version == 0 || ri->version == 4 || ri->version == 5);
  if (!ri->header_known)
    FUZZ_CHECK(!ri->volume && !ri->first_known && ri->volume_number == -1);
  if (ri->version == 0)
    FUZZ_CHECK(!ri->header_known);
  if (ri->version == 4)
    FUZZ_CHECK(ri->volume_number == -1);
  if (ri->version == 5) {
    FUZZ_CHECK(!ri->first_known);
    FUZZ_CHECK(ri->header_known == (ri->volume_number >= 0));
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  ls_rar_info parsed, sniffed;
  size_t head = size < LS_UNPACK_SNIFF_BYTES ? size : LS_UNPACK_SNIFF_BYTES;
  ls_rar_parse(data, head, &parsed);
  check_info(&parsed);

  static const char *archive;
  if (!archive) {
    const char *dir = fuzz_path("%s/rar", fuzz_scratch_dir());
    fuzz_mkdir(dir);
    archive = strdup(fuzz_path("%s/game.part1.rar", dir));
    FUZZ_CHECK(archive != NULL);
  }
  fuzz_write(archive, data, size);
  ls_rar_sniff(archive, &sniffed);
  FUZZ_CHECK(info_equal(&parsed, &sniffed));

  bool later = parsed.version && ls_rar_is_later_volume(archive, &parsed);
  ls_volume_list vols;
  ls_diag diag = {{0}};
  int rc = ls_unpack_volumes(archive, &vols, &diag);
  if (later) {
    FUZZ_CHECK(rc == LS_EFORMAT && strstr(diag.text, "later volume"));
  } else if (!parsed.version || !parsed.volume) {
    FUZZ_CHECK(rc == LS_OK);
  } else {
    /* The first volume of a set: the set is this file, or its end header
     * asks for a next volume that is not there. */
    FUZZ_CHECK(rc == LS_OK || (rc == LS_ENOENT && parsed.version == 5 &&
                               strstr(diag.text, "more volumes follow")));
  }
  if (rc == LS_OK) {
    FUZZ_CHECK(vols.count == 1 && strcmp(vols.paths[0], archive) == 0 && !vols.paths[1]);
    ls_volume_list_free(&vols);
  } else {
    FUZZ_CHECK(vols.paths == NULL && diag.text[0] != '\0');
  }
  return 0;
}
