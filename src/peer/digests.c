/* Owns the manifest-digest command: the manifest digest (download/pin.h)
 * of the version this peer has of a game, the text an organiser pins in the
 * catalog ("versions": {VERSION: DIGEST}). Its payload files are hashed on
 * the pool exactly as the request server hashes them for GetGame (every
 * payload file, 1 MiB chunks), so the digest is the one of the file list
 * peers get from us. */
#include "peer/runtime.h"

#include "core/error.h"
#include "download/pin.h"
#include "library/hashing.h"
#include "node/serve.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct digest_job {
  uv_work_t work;
  ls_peer *peer;
  uint64_t tag;
  char *game_dir, *id, *version;
  size_t count;
  ls_storage_file *files; /* paths and hashes owned here */
  int rc;
  ls_diag diag;
  uint8_t digest[LS_CATALOG_PIN_LEN];
} digest_job;

static void job_free(digest_job *j)
{
  for (size_t i = 0; i < j->count; i++) {
    free((char *)j->files[i].path);
    free((uint8_t *)j->files[i].sha256);
  }
  free(j->files);
  free(j->game_dir);
  free(j->id);
  free(j->version);
  free(j);
}

/* Pool: hash every file, then digest the list. */
static void digest_run(uv_work_t *work)
{
  digest_job *j = work->data;
  for (size_t i = 0; i < j->count && j->rc == LS_OK; i++) {
    ls_storage_file *f = &j->files[i];
    int fd = ls_open_beneath(j->game_dir, j->id, f->path, &j->diag);
    if (fd < 0) {
      j->rc = fd;
      break;
    }
    ls_stamp stamp;
    uint8_t *hashes = NULL;
    uint32_t chunks = 0;
    j->rc = ls_hash_file_chunks(fd, LS_CHUNK_SIZE, &stamp, &hashes, &chunks, &j->diag);
    close(fd);
    f->size = stamp.size;
    f->sha256 = hashes;
  }
  if (j->rc == LS_OK)
    j->rc = ls_manifest_pin_digest(LS_CHUNK_SIZE, j->files, j->count, j->digest);
}

static void digest_done(uv_work_t *work, int status)
{
  digest_job *j = work->data;
  ls_peer *p = j->peer;
  if (status != 0 && j->rc == LS_OK)
    j->rc = ls_diag_set(&j->diag, LS_ECANCELED, "cancelled");
  if (j->rc == LS_OK) {
    char text[LS_PIN_TEXT_LEN + 1];
    ls_pin_text(j->digest, text);
    ls_rt_reply_ok(p, j->tag, "manifest-digest",
                   json_pack("{s:s, s:s, s:s, s:I}", "id", j->id, "version", j->version,
                             "digest", text, "files", (json_int_t)j->count));
  } else {
    ls_rt_reply_error(p, j->tag, "manifest-digest", j->rc, "cannot digest %s %s: %s", j->id,
                      j->version, j->diag.text);
  }
  job_free(j);
}

/* The job for the local game g (NULL without memory). */
static digest_job *new_job(ls_peer *p, const ls_command *cmd, const ls_local_game *g)
{
  digest_job *j = calloc(1, sizeof *j);
  if (!j)
    return NULL;
  j->work.data = j;
  j->peer = p;
  j->tag = cmd->tag;
  j->files = calloc(g->file_count ? g->file_count : 1, sizeof *j->files);
  bool ok = j->files && (j->game_dir = strdup(p->game_dir)) && (j->id = strdup(g->id)) &&
            (j->version = strdup(g->version));
  for (size_t i = 0; ok && i < g->file_count; i++, j->count++)
    ok = (j->files[i].path = strdup(g->files[i].path)) != NULL;
  if (!ok) {
    job_free(j);
    return NULL;
  }
  return j;
}

void ls_digests_run(ls_peer *p, const ls_command *cmd)
{
  const char *name = "manifest-digest";
  if (ls_ops_admit(p, LS_OP_GET, name, cmd->id, cmd->tag, true) != LS_OK)
    return;
  const ls_local_game *g = ls_library_find(ls_monitor_library(p->monitor), cmd->id);
  if (!g || !g->downloaded || !g->version) {
    ls_rt_reply_error(p, cmd->tag, name, LS_ESTATE, "%s is not downloaded here (no version.ini "
                      "naming a version): there is no manifest to digest", cmd->id);
    return;
  }
  digest_job *j = new_job(p, cmd, g);
  if (!j) {
    ls_rt_reply_error(p, cmd->tag, name, LS_ENOMEM, "out of memory");
    return;
  }
  if (uv_queue_work(&p->loop, &j->work, digest_run, digest_done) != 0) {
    job_free(j);
    ls_rt_reply_error(p, cmd->tag, name, LS_EIO, "cannot start a worker");
  }
}
