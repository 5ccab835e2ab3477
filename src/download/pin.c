/* Owns the manifest digest that version pins name and the check of a
 * manifest against its pin (download/pin.h). */
#include "download/pin.h"

#include "core/error.h"
#include "core/hex.h"

#include <stdlib.h>
#include <string.h>

static int compare_path(const void *a, const void *b)
{
  return strcmp(((const ls_storage_file *)a)->path, ((const ls_storage_file *)b)->path);
}

int ls_manifest_pin_digest(uint32_t chunk_size, const ls_storage_file *files, size_t count,
                           uint8_t out[LS_CATALOG_PIN_LEN])
{
  ls_storage_file *sorted = malloc((count ? count : 1) * sizeof *sorted);
  if (!sorted)
    return LS_ENOMEM;
  if (count)
    memcpy(sorted, files, count * sizeof *sorted);
  qsort(sorted, count, sizeof *sorted, compare_path);
  int rc = LS_OK;
  for (size_t i = 1; i < count && rc == LS_OK; i++)
    if (strcmp(sorted[i - 1].path, sorted[i].path) == 0)
      rc = LS_EINVAL;
  if (rc == LS_OK)
    ls_manifest_digest(chunk_size, sorted, count, out);
  free(sorted);
  return rc;
}

int ls_game_files_pin_digest(const ls_msg_game_files *gf, uint8_t out[LS_CATALOG_PIN_LEN])
{
  ls_storage_file *files = malloc((gf->file_count ? gf->file_count : 1) * sizeof *files);
  if (!files)
    return LS_ENOMEM;
  for (size_t i = 0; i < gf->file_count; i++)
    files[i] = (ls_storage_file){gf->files[i].path, gf->files[i].size, gf->files[i].sha256};
  int rc = ls_manifest_pin_digest(gf->chunk_size, files, gf->file_count, out);
  free(files);
  return rc;
}

void ls_pin_text(const uint8_t digest[LS_CATALOG_PIN_LEN], char out[LS_PIN_TEXT_LEN + 1])
{
  memcpy(out, LS_CATALOG_PIN_PREFIX, sizeof LS_CATALOG_PIN_PREFIX - 1);
  ls_hex_encode(digest, LS_CATALOG_PIN_LEN, out + sizeof LS_CATALOG_PIN_PREFIX - 1);
}

int ls_pin_check(const ls_catalog_game *game, const ls_msg_game_files *gf, const char *peer_id,
                 const char *peer_name, ls_diag *diag)
{
  const uint8_t *pin = ls_catalog_pin_of(game, gf->version);
  if (!pin)
    return LS_OK;
  uint8_t digest[LS_CATALOG_PIN_LEN];
  int rc = ls_game_files_pin_digest(gf, digest);
  if (rc != LS_OK)
    return ls_diag_set(diag, rc, "cannot digest the file list of %s %s", game->id, gf->version);
  if (memcmp(digest, pin, sizeof digest) == 0)
    return LS_OK;
  char want[LS_PIN_TEXT_LEN + 1], got[LS_PIN_TEXT_LEN + 1];
  ls_pin_text(pin, want);
  ls_pin_text(digest, got);
  return ls_diag_set(diag, LS_EPIN,
                     "the file list of %s %s from peer %s (%.16s) is not the one the catalog "
                     "pins: its digest is %s, the pin %s; refused",
                     game->id, gf->version, peer_name && *peer_name ? peer_name : "?", peer_id,
                     got, want);
}
