/* Version pins (docs/PROTOCOL.md, "The manifest digest"; docs/DEPLOYMENT.md,
 * "Pinning versions"): the canonical digest of a manifest, its text form
 * "sha256:<64 hex>", and the one check of a manifest a peer sent against
 * the catalog's pin for its version. The catalog parses pins; the
 * listings (peer/gets.c) check every manifest here before it is kept; the
 * manifest-digest command prints the digest from here. */
#ifndef LS_DOWNLOAD_PIN_H
#define LS_DOWNLOAD_PIN_H

#include "download/journal.h"
#include "proto/proto.h"

#include <lanspread/catalog.h>
#include <lanspread/error.h>
#include <stddef.h>
#include <stdint.h>

#define LS_PIN_TEXT_LEN (sizeof LS_CATALOG_PIN_PREFIX - 1 + 2 * LS_CATALOG_PIN_LEN)

/* The manifest digest: ls_manifest_digest (download/journal.h) of the files
 * in byte order of their paths, so neither the order a peer lists them in
 * nor its JSON encoding changes it. LS_ENOMEM, or LS_EINVAL for two files
 * of one path (a manifest has unique paths). */
int ls_manifest_pin_digest(uint32_t chunk_size, const ls_storage_file *files, size_t count,
                           uint8_t out[LS_CATALOG_PIN_LEN]);
/* The same for a GameFiles message. */
int ls_game_files_pin_digest(const ls_msg_game_files *gf, uint8_t out[LS_CATALOG_PIN_LEN]);

/* "sha256:" and the 64 lower-case hex digits of digest, NUL-terminated
 * (LS_PIN_TEXT_LEN + 1 bytes). */
void ls_pin_text(const uint8_t digest[LS_CATALOG_PIN_LEN], char out[LS_PIN_TEXT_LEN + 1]);

/* LS_OK when game pins no digest for gf's version or the digest of gf is
 * the pin; otherwise LS_EPIN and diag names the game, the version, the
 * peer (peer_name may be NULL) and both digests. LS_ENOMEM. */
int ls_pin_check(const ls_catalog_game *game, const ls_msg_game_files *gf, const char *peer_id,
                 const char *peer_name, ls_diag *diag);

#endif
