/* Owns the runtime's side of downloads: the DownloadGameFiles,
 * PauseDownload, CancelDownload and VerifyGame commands, the list of paused
 * downloads (startup recovery fills it, a pause or a stop adds to it, a
 * resume or a discard takes from it), the fresh file list a download starts
 * from, the choice of sources (the connected peers whose list for the
 * version is identical to the first one), the download engine's operations
 * (a chunk fetch is one GetGameFileChunk request on the source's
 * connection), the progress ticks, the events, the refresh of the game's
 * local state before the operation ends, and the automatic install after
 * it. A verification is the same engine in verify_only mode: no source, no
 * write. The planner, the checks and the storage are the engine's
 * (src/download/). */
#include "peer/runtime.h"

#include "core/error.h"
#include "download/download.h"
#include "download/storage.h"
#include "node/fetch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROGRESS_MS 250
#define ID_BUF 128 /* a catalog id (at most 64 bytes) and its NUL */
#define VERIFY_FILES_SHOWN 100 /* files with bad chunks named in an event */

/* ---- paused downloads ------------------------------------------------- */

struct ls_paused {
  ls_paused *next;
  char *id, *version;
  uint64_t bytes, total_bytes;
  bool repair; /* a repair of that version (known in this run only) */
};

static ls_paused *paused_find(const ls_peer *p, const char *id)
{
  for (ls_paused *e = p->paused; e; e = e->next)
    if (strcmp(e->id, id) == 0)
      return e;
  return NULL;
}

static void paused_remove(ls_peer *p, const char *id)
{
  for (ls_paused **q = &p->paused; *q; q = &(*q)->next)
    if (strcmp((*q)->id, id) == 0) {
      ls_paused *e = *q;
      *q = e->next;
      free(e->id);
      free(e->version);
      free(e);
      return;
    }
}

static void paused_put(ls_peer *p, const char *id, const char *version, uint64_t bytes,
                       uint64_t total, bool repair)
{
  paused_remove(p, id);
  ls_paused *e = calloc(1, sizeof *e);
  if (!e || !(e->id = strdup(id)) || !(e->version = strdup(version))) {
    if (e)
      free(e->id);
    free(e);
    return; /* out of memory: the download is still on disk for the next start */
  }
  e->bytes = bytes;
  e->total_bytes = total;
  e->repair = repair;
  e->next = p->paused;
  p->paused = e;
}

bool ls_downloads_paused(const ls_peer *p, const char *id, ls_paused_info *out)
{
  const ls_paused *e = paused_find(p, id);
  if (e && out)
    *out = (ls_paused_info){e->version, e->bytes, e->total_bytes};
  return e != NULL;
}

void ls_downloads_free(ls_peer *p)
{
  while (p->paused)
    paused_remove(p, p->paused->id);
}

void ls_downloads_recover(ls_peer *p)
{
  ls_downloads_free(p);
  for (size_t i = 0; i < ls_catalog_count(p->catalog); i++) {
    const char *id = ls_catalog_at(p->catalog, i)->id;
    ls_storage_recovery done = LS_RECOVERY_NONE;
    ls_storage_paused found = {.bytes = 0};
    ls_diag diag;
    if (ls_storage_recover(p->game_dir, id, &done, &found, &diag) != LS_OK) {
      ls_rt_log("recovery of %s failed: %s", id, diag.text);
      continue;
    }
    if (done != LS_RECOVERY_NONE)
      ls_rt_log("%s", diag.text);
    if (done == LS_RECOVERY_PAUSED)
      paused_put(p, id, found.version, found.bytes, found.total_bytes, false);
  }
}

/* ---- one download or verification --------------------------------------- */

typedef struct dl {
  ls_op *op;
  ls_peer *p;
  bool verify_only;        /* VerifyGame without repair */
  bool repair;             /* VerifyGame with repair: a download of the local version */
  char *version;
  char **files;            /* the command's choice; NULL: every file */
  size_t file_count;
  ls_listing *listing;     /* while the file list is asked for */
  ls_download *engine;     /* while the engine runs */
  char peer_ids[LS_DOWNLOAD_MAX_SOURCES][LS_PROTO_PEER_ID_LEN + 1];
  size_t nsources;
  size_t manifest_files;   /* files the download writes */
  uv_timer_t progress;
  int end_err;
  char end_diag[LS_DIAG_MAX];
  ls_download_result result;
  json_t *verify_report;   /* a verification's finished event, until it goes out */
} dl;

static void free_dl(uv_handle_t *h)
{
  dl *d = h->data;
  for (size_t i = 0; i < d->file_count; i++)
    free(d->files[i]);
  free(d->files);
  free(d->version);
  json_decref(d->verify_report);
  free(d);
}

/* Ends the operation; the timer's close frees d. */
static void end_dl(dl *d)
{
  ls_ops_end(d->p, d->op);
  uv_close((uv_handle_t *)&d->progress, free_dl);
}

/* The download ended before it began: its command's reply says why. */
static void refuse(dl *d, int code, const char *why)
{
  ls_rt_reply_error(d->p, d->op->tag, d->op->cmd, code, "%s", why);
  end_dl(d);
}

/* ---- chunk requests ---------------------------------------------------- */

static int start_fetch(void *user, ls_fetch *fetch, const ls_fetch_request *fr, void **handle,
                       ls_diag *diag)
{
  dl *d = user;
  ls_quic_conn *conn = ls_links_conn_of(d->p, d->peer_ids[fr->source]);
  if (!conn)
    return ls_diag_set(diag, LS_ENOPEER, "not connected");
  return ls_chunk_fetch_start(conn, d->op->id, fetch, fr, handle, diag);
}

static void stop_fetch(void *user, void *handle)
{
  (void)user;
  ls_chunk_fetch_stop(handle);
}

/* ---- the engine's reports ----------------------------------------------- */

static void on_tick(uv_timer_t *t)
{
  dl *d = t->data;
  if (d->engine)
    ls_download_tick(d->engine);
}

static void on_begin(void *user, int err, const char *diag)
{
  dl *d = user;
  ls_peer *p = d->p;
  ls_op *op = d->op;
  if (err != LS_OK) {
    ls_rt_reply_error(p, op->tag, op->cmd, err, "%s", diag);
    return; /* on_end follows */
  }
  ls_download_progress pr = ls_download_get_progress(d->engine);
  ls_storage_resume r = ls_download_get_resume(d->engine);
  op->total_bytes = pr.total_bytes;
  op->bytes = d->verify_only ? 0 : pr.bytes;
  if (d->verify_only) {
    ls_rt_emit_game(p, LS_EVENT_VERIFY_BEGIN, op->id,
                    json_pack("{s:s, s:I, s:I}", "version", d->version, "total_bytes",
                              (json_int_t)pr.total_bytes, "files",
                              (json_int_t)d->manifest_files));
  } else {
    ls_rt_emit_game(p, LS_EVENT_DOWNLOAD_BEGIN, op->id,
                    json_pack("{s:s, s:I, s:I, s:i, s:b, s:b, s:b, s:I, s:I, s:I}", "version",
                              d->version, "total_bytes", (json_int_t)pr.total_bytes, "files",
                              (json_int_t)d->manifest_files, "peers", (int)d->nsources,
                              "repair", d->repair, "resumed", r.resumed, "manifest_changed",
                              r.manifest_changed, "kept_chunks", (json_int_t)r.kept_chunks,
                              "dropped_chunks", (json_int_t)r.dropped_chunks, "kept_bytes",
                              (json_int_t)r.kept_bytes));
    if (r.manifest_changed)
      ls_rt_log("%s: the paused download was of another file list; kept %zu chunks, dropped %zu",
                op->id, r.kept_chunks, r.dropped_chunks);
  }
  ls_rt_reply_ok(p, op->tag, op->cmd,
                 json_pack("{s:s, s:s, s:I, s:i, s:b}", "id", op->id, "version", d->version,
                           "total_bytes", (json_int_t)pr.total_bytes, "peers",
                           (int)d->nsources, "resumed", r.resumed));
  uv_timer_start(&d->progress, on_tick, PROGRESS_MS, PROGRESS_MS);
  ls_rt_emit_games(p, json_pack("[s]", op->id)); /* the view's download object has its total now */
}

static void on_progress(void *user, const ls_download_progress *pr)
{
  dl *d = user;
  d->op->bytes = pr->bytes;
  d->op->total_bytes = pr->total_bytes;
  d->op->bytes_per_sec = pr->bytes_per_sec;
  ls_rt_emit_game(d->p, d->verify_only ? LS_EVENT_VERIFY_PROGRESS : LS_EVENT_DOWNLOAD_PROGRESS,
                  d->op->id,
                  json_pack("{s:I, s:I, s:I}", "bytes", (json_int_t)pr->bytes, "total_bytes",
                            (json_int_t)pr->total_bytes, "bytes_per_sec",
                            (json_int_t)pr->bytes_per_sec));
}

/* The files of a verification with chunks that did not match. */
static json_t *bad_files_json(ls_download *engine, size_t *files_bad)
{
  json_t *list = json_array();
  const char *path = NULL;
  json_t *entry = NULL;
  *files_bad = 0;
  for (size_t k = 0; k < ls_download_chunk_count(engine); k++) {
    ls_download_chunk_info c = ls_download_get_chunk(engine, k);
    if (c.done)
      continue;
    if (!path || strcmp(path, c.path) != 0) { /* chunks come file by file */
      path = c.path;
      entry = NULL;
      if ((*files_bad)++ < VERIFY_FILES_SHOWN) {
        entry = json_pack("{s:s, s:I, s:I}", "path", c.path, "bad_chunks", (json_int_t)0,
                          "bad_bytes", (json_int_t)0);
        json_array_append_new(list, entry);
      }
    }
    if (entry) {
      json_object_set_new(entry, "bad_chunks",
                          json_integer(json_integer_value(json_object_get(entry, "bad_chunks")) + 1));
      json_object_set_new(entry, "bad_bytes",
                          json_integer(json_integer_value(json_object_get(entry, "bad_bytes")) +
                                       (json_int_t)c.len));
    }
  }
  return list;
}

static void end_verify(dl *d, ls_peer *p, const char *id)
{
  if (d->end_err != LS_OK) {
    ls_rt_emit_failure(p, LS_EVENT_VERIFY_FAILED, id, d->end_err, d->end_diag);
    return;
  }
  json_t *fields = d->verify_report;
  d->verify_report = NULL;
  ls_rt_emit_game(p, LS_EVENT_VERIFY_FINISHED, id, fields);
}

/* game-download-paused for id's paused download. */
static void emit_paused(ls_peer *p, const char *id)
{
  ls_paused_info info = {0};
  ls_downloads_paused(p, id, &info);
  ls_rt_emit_game(p, LS_EVENT_DOWNLOAD_PAUSED, id,
                  json_pack("{s:s?, s:I, s:I}", "version", info.version, "bytes",
                            (json_int_t)info.bytes, "total_bytes",
                            (json_int_t)info.total_bytes));
}

/* After the refresh: the operation ends and the last event goes out. */
static void after_refresh(void *user)
{
  dl *d = user; /* freed by the timer's close, on a later loop iteration */
  ls_peer *p = d->p;
  char id[ID_BUF];
  snprintf(id, sizeof id, "%s", d->op->id);
  int err = d->end_err;
  end_dl(d);
  if (d->verify_only) {
    end_verify(d, p, id);
  } else if (err == LS_OK) {
    ls_rt_emit_game(p, LS_EVENT_DOWNLOAD_FINISHED, id,
                    json_pack("{s:s, s:I, s:I, s:I, s:b}", "version", d->version, "bytes",
                              (json_int_t)d->result.bytes_fetched + d->result.bytes_reused,
                              "bytes_fetched", (json_int_t)d->result.bytes_fetched,
                              "bytes_reused", (json_int_t)d->result.bytes_reused, "repair",
                              d->repair));
    /* Install, or update when installed. Every download is a command
     * someone gave (download, the UI's Download or Update): nothing fetches
     * a version by itself, so this install is always one a user asked for,
     * and a pinned version's files are the catalog's (gets.c). */
    if (!p->closing && !d->repair)
      ls_installs_after_download(p, id);
  } else if (err == LS_ECANCELED) {
    ls_rt_emit_game(p, LS_EVENT_DOWNLOAD_CANCELLED, id, NULL);
  } else if (err == LS_EPAUSED) {
    emit_paused(p, id);
  } else {
    ls_rt_emit_failure(p, LS_EVENT_DOWNLOAD_FAILED, id, err, d->end_diag);
  }
}

static void on_end(void *user, int err, const char *diag)
{
  dl *d = user;
  d->result = ls_download_get_result(d->engine);
  if (d->verify_only && err == LS_OK) {
    size_t files_bad = 0;
    json_t *files = bad_files_json(d->engine, &files_bad);
    d->verify_report = json_pack(
      "{s:s, s:b, s:I, s:I, s:I, s:I, s:o}", "version", d->version, "ok",
      d->result.bad_chunks == 0, "chunks", (json_int_t)ls_download_chunk_count(d->engine),
      "bad_chunks", (json_int_t)d->result.bad_chunks, "bad_bytes",
      (json_int_t)d->result.bad_bytes, "files_bad", (json_int_t)files_bad, "files", files);
  }
  if (d->result.kept)
    paused_put(d->p, d->op->id, d->version,
               d->result.bytes_fetched + d->result.bytes_reused, d->op->total_bytes, d->repair);
  else if (!d->verify_only)
    paused_remove(d->p, d->op->id); /* committed, or discarded */
  d->engine = NULL;
  d->op->cancellable = false;
  d->end_err = err;
  snprintf(d->end_diag, sizeof d->end_diag, "%s", diag);
  uv_timer_stop(&d->progress);
  if (!d->p->monitor || ls_monitor_refresh(d->p->monitor, d->op->id, after_refresh, d) != LS_OK)
    after_refresh(d);
}

static void log_line(void *user, const char *line)
{
  (void)user;
  ls_rt_log("%s", line);
}

static const ls_download_ops engine_ops = {
  .start_fetch = start_fetch, .stop_fetch = stop_fetch, .on_begin = on_begin,
  .on_progress = on_progress, .on_end = on_end, .log = log_line,
};

/* ---- starting ------------------------------------------------------------ */

/* The sources: connected peers with the version whose file list equals the
 * first one found; *manifest gets a copy of it. */
static int choose_sources(dl *d, ls_msg *manifest, ls_diag *diag)
{
  const char *ids[LS_DOWNLOAD_MAX_SOURCES];
  size_t n = ls_peerdb_peers_with(d->p->peerdb, d->op->id, d->version, ids,
                                  LS_DOWNLOAD_MAX_SOURCES);
  const ls_msg_game_files *ref = NULL;
  for (size_t i = 0; i < n; i++) {
    const ls_msg_game_files *gf = ls_peerdb_files(d->p->peerdb, ids[i], d->op->id);
    if (!gf || strcmp(gf->version, d->version) != 0 || !ls_links_conn_of(d->p, ids[i]))
      continue;
    ls_msg a = {.type = LS_MSG_GAME_FILES, .game_files = *gf};
    ls_msg b = {.type = LS_MSG_GAME_FILES, .game_files = ref ? *ref : *gf};
    if (ref && !ls_msg_equal(&a, &b))
      continue;
    ref = gf;
    snprintf(d->peer_ids[d->nsources++], LS_PROTO_PEER_ID_LEN + 1, "%s", ids[i]);
  }
  if (!ref)
    return ls_diag_set(diag, LS_ENOPEER, "no file list of %s %s; run get %s first", d->op->id,
                       d->version, d->op->id);
  if (d->verify_only)
    d->nsources = 0; /* the list is all a verification needs */
  ls_msg m = {.type = LS_MSG_GAME_FILES, .game_files = *ref};
  return ls_msg_copy(manifest, &m) == LS_OK ? LS_OK
                                             : ls_diag_set(diag, LS_ENOMEM, "out of memory");
}

static bool chosen(const dl *d, const char *path)
{
  for (size_t i = 0; i < d->file_count; i++)
    if (strcmp(d->files[i], path) == 0)
      return true;
  return false;
}

/* A command that names files keeps those (and version.ini, the sentinel a
 * download always commits). Unknown paths are refused. */
static int keep_chosen_files(dl *d, ls_msg_game_files *gf, ls_diag *diag)
{
  for (size_t i = 0; i < d->file_count; i++) {
    bool known = false;
    for (size_t k = 0; k < gf->file_count && !known; k++)
      known = strcmp(gf->files[k].path, d->files[i]) == 0;
    if (!known)
      return ls_diag_set(diag, LS_ENOENT, "%s is not a file of %s %s", d->files[i], d->op->id,
                         d->version);
  }
  size_t n = 0;
  for (size_t k = 0; k < gf->file_count; k++) {
    if (strcmp(gf->files[k].path, "version.ini") == 0 || chosen(d, gf->files[k].path)) {
      ls_msg_file_entry tmp = gf->files[n];
      gf->files[n++] = gf->files[k];
      gf->files[k] = tmp;
    }
  }
  for (size_t k = n; k < gf->file_count; k++) {
    free(gf->files[k].path);
    free(gf->files[k].sha256);
  }
  gf->file_count = n;
  return LS_OK;
}

static void start_engine(dl *d)
{
  ls_peer *p = d->p;
  ls_diag diag = {{0}};
  ls_msg manifest = {.type = LS_MSG_NONE};
  int rc = choose_sources(d, &manifest, &diag);
  if (rc == LS_OK && d->files)
    rc = keep_chosen_files(d, &manifest.game_files, &diag);
  const char *names[LS_DOWNLOAD_MAX_SOURCES];
  for (size_t i = 0; i < d->nsources; i++)
    names[i] = d->peer_ids[i];
  d->manifest_files = manifest.game_files.file_count;
  ls_download_config c = {
    .loop = &p->loop, .game_dir = p->game_dir, .id = d->op->id, .manifest = &manifest,
    .sources = names, .source_count = d->nsources, .verify_only = d->verify_only,
    .keep_on_failure = d->repair,
    .ops = &engine_ops, .user = d,
  };
  if (rc == LS_OK)
    rc = ls_download_start(&c, &d->engine, &diag);
  ls_msg_clear(&manifest);
  if (rc != LS_OK)
    refuse(d, rc, diag.text);
}

static void on_listed(void *user, const char *version, const ls_msg *manifest, unsigned agreeing,
                      const char *refusal)
{
  dl *d = user;
  (void)agreeing;
  d->listing = NULL;
  if (!manifest && refusal) {
    refuse(d, LS_EPIN, refusal); /* nothing was written */
    return;
  }
  if (!manifest) {
    char why[LS_DIAG_MAX];
    snprintf(why, sizeof why, "no peer sent the file list of %s %s", d->op->id, version);
    refuse(d, LS_ENOPEER, why);
    return;
  }
  start_engine(d);
}

static int copy_files(dl *d, const ls_command *cmd)
{
  d->files = calloc(cmd->file_count ? cmd->file_count : 1, sizeof *d->files);
  if (!d->files)
    return LS_ENOMEM;
  for (; d->file_count < cmd->file_count; d->file_count++)
    if (!(d->files[d->file_count] = strdup(cmd->files[d->file_count])))
      return LS_ENOMEM;
  return LS_OK;
}

/* A repair paused in this run: `download` resumes it as a repair. */
static const ls_paused *paused_repair(const ls_peer *p, const ls_command *cmd)
{
  const ls_paused *e = cmd->type == LS_CMD_DOWNLOAD_GAME_FILES ? paused_find(p, cmd->id) : NULL;
  return e && e->repair ? e : NULL;
}

/* The version a command works on: a download the latest any peer offers; a
 * verification or repair (a resumed one too) the one on disk. NULL (the
 * reply sent) when there is none. */
static const char *target_version(ls_peer *p, const ls_command *cmd, const char *name)
{
  const ls_paused *repair = paused_repair(p, cmd);
  if (repair)
    return repair->version;
  if (cmd->type != LS_CMD_VERIFY_GAME)
    return ls_gets_latest_or_reply(p, cmd->tag, name, cmd->id);
  const ls_local_game *local = ls_library_find(ls_monitor_library(p->monitor), cmd->id);
  if (!local || !local->downloaded || !local->version) {
    ls_rt_reply_error(p, cmd->tag, name, LS_ESTATE, "%s is not downloaded (no version.ini "
                      "naming a version): nothing to verify", cmd->id);
    return NULL;
  }
  return local->version;
}

void ls_downloads_run(ls_peer *p, const ls_command *cmd)
{
  bool verify = cmd->type == LS_CMD_VERIFY_GAME;
  const char *name = verify ? "verify" : "download";
  ls_op_kind kind = verify && !cmd->repair ? LS_OP_VERIFY : LS_OP_DOWNLOAD;
  if (ls_ops_admit(p, kind, name, cmd->id, cmd->tag, true) != LS_OK)
    return;
  const char *version = target_version(p, cmd, name);
  if (!version)
    return;
  dl *d = calloc(1, sizeof *d);
  if (!d || !(d->version = strdup(version)) || (cmd->files && copy_files(d, cmd) != LS_OK) ||
      !(d->op = ls_ops_begin(p, kind, name, cmd->id, cmd->tag))) {
    if (d) {
      uv_handle_t fake = {.data = d};
      free_dl(&fake);
    }
    ls_rt_reply_error(p, cmd->tag, name, LS_ENOMEM, "out of memory");
    return;
  }
  d->p = p;
  d->verify_only = kind == LS_OP_VERIFY;
  d->repair = (verify && cmd->repair) || paused_repair(p, cmd);
  d->op->impl = d;
  uv_timer_init(&p->loop, &d->progress);
  d->progress.data = d;
  if (cmd->files) {
    start_engine(d); /* the caller chose from a list it already has */
  } else if (ls_listing_start(p, cmd->id, d->version, on_listed, d, &d->listing) != LS_OK) {
    d->listing = NULL;
    refuse(d, LS_ENOMEM, "out of memory");
  }
}

/* ---- discarding a paused download ---------------------------------------- */

typedef struct discard_job {
  uv_work_t work;
  ls_peer *p;
  ls_op *op;
  int rc;
  ls_diag diag;
} discard_job;

static void discard_run(uv_work_t *work)
{
  discard_job *j = work->data;
  j->rc = ls_discard_cancelled_download(j->p->game_dir, j->op->id, &j->diag);
}

static void discard_refreshed(void *user)
{
  discard_job *j = user;
  char id[ID_BUF];
  snprintf(id, sizeof id, "%s", j->op->id);
  ls_ops_end(j->p, j->op);
  if (j->rc == LS_OK)
    ls_rt_emit_game(j->p, LS_EVENT_DOWNLOAD_CANCELLED, id, NULL);
  else
    ls_rt_emit_failure(j->p, LS_EVENT_DOWNLOAD_FAILED, id, j->rc, j->diag.text);
  free(j);
}

static void discard_done(uv_work_t *work, int status)
{
  discard_job *j = work->data;
  (void)status;
  if (j->rc == LS_OK)
    paused_remove(j->p, j->op->id);
  else
    ls_rt_log("discard of the paused download of %s failed: %s", j->op->id, j->diag.text);
  if (!j->p->monitor || ls_monitor_refresh(j->p->monitor, j->op->id, discard_refreshed, j) != LS_OK)
    discard_refreshed(j);
}

/* Cancel of a paused download: its payload is discarded exactly as a
 * cancel of a running one discards it. */
static void discard_paused(ls_peer *p, const ls_command *cmd)
{
  if (ls_ops_admit(p, LS_OP_DOWNLOAD, "cancel", cmd->id, cmd->tag, true) != LS_OK)
    return;
  discard_job *j = calloc(1, sizeof *j);
  if (!j || !(j->op = ls_ops_begin(p, LS_OP_DOWNLOAD, "cancel", cmd->id, cmd->tag))) {
    free(j);
    ls_rt_reply_error(p, cmd->tag, "cancel", LS_ENOMEM, "out of memory");
    return;
  }
  j->p = p;
  j->op->cancellable = false;
  j->work.data = j;
  if (uv_queue_work(&p->loop, &j->work, discard_run, discard_done) != 0) {
    ls_ops_end(p, j->op);
    free(j);
    ls_rt_reply_error(p, cmd->tag, "cancel", LS_EIO, "cannot start a worker");
    return;
  }
  ls_rt_reply_ok(p, cmd->tag, "cancel", json_pack("{s:s, s:b}", "id", cmd->id, "paused", 1));
}

/* ---- cancel and pause ------------------------------------------------------ */

/* The running download or verification of cmd's game, or NULL after a
 * reply that says there is none. */
static dl *running(ls_peer *p, const ls_command *cmd, const char *name)
{
  ls_op *op = cmd->id ? ls_ops_find(p, cmd->id) : NULL;
  if (!op || (op->kind != LS_OP_DOWNLOAD && op->kind != LS_OP_VERIFY) || !op->cancellable) {
    ls_rt_reply_error(p, cmd->tag, name, LS_ESTATE, "no download of %s is running",
                      cmd->id ? cmd->id : "");
    return NULL;
  }
  return op->impl;
}

/* Still asking for the file list: nothing is on disk yet (a paused
 * download of the game stays paused). */
static void stop_listing(dl *d, int code, const char *why)
{
  ls_peer *p = d->p;
  char id[ID_BUF];
  snprintf(id, sizeof id, "%s", d->op->id);
  bool verify = d->verify_only;
  ls_listing_abandon(d->listing);
  d->listing = NULL;
  refuse(d, code, why);
  if (verify)
    ls_rt_emit_failure(p, LS_EVENT_VERIFY_FAILED, id, LS_ECANCELED, "cancelled");
  else if (code == LS_EPAUSED && ls_downloads_paused(p, id, NULL))
    emit_paused(p, id);
  else /* nothing was kept: the pause of a download that never began */
    ls_rt_emit_game(p, LS_EVENT_DOWNLOAD_CANCELLED, id, NULL);
}

/* Cancel or pause of the running download (or verification): the engine's
 * on_end follows, or at once when the file list is still being asked for. */
static void stop_running(ls_peer *p, const ls_command *cmd, bool pause)
{
  const char *name = pause ? "pause" : "cancel";
  dl *d = running(p, cmd, name);
  if (!d)
    return;
  pause = pause || d->repair; /* a repair's payload is the game's own: kept */
  d->op->cancellable = false;
  ls_rt_reply_ok(p, cmd->tag, name, json_pack("{s:s}", "id", d->op->id));
  if (d->engine && pause)
    ls_download_pause(d->engine);
  else if (d->engine)
    ls_download_cancel(d->engine);
  else
    stop_listing(d, pause ? LS_EPAUSED : LS_ECANCELED, pause ? "paused" : "cancelled");
}

void ls_downloads_cancel(ls_peer *p, const ls_command *cmd)
{
  ls_op *op = cmd->id ? ls_ops_find(p, cmd->id) : NULL;
  if (!op && cmd->id && paused_find(p, cmd->id))
    discard_paused(p, cmd);
  else
    stop_running(p, cmd, false);
}

void ls_downloads_pause(ls_peer *p, const ls_command *cmd)
{
  ls_op *op = cmd->id ? ls_ops_find(p, cmd->id) : NULL;
  if (op && op->kind == LS_OP_VERIFY)
    ls_rt_reply_error(p, cmd->tag, "pause", LS_ESTATE,
                      "a verification cannot be paused: cancel it");
  else
    stop_running(p, cmd, true);
}

void ls_downloads_close_all(ls_peer *p)
{
  for (ls_op *op = p->ops, *next; op; op = next) {
    next = op->next;
    dl *d = op->kind == LS_OP_DOWNLOAD || op->kind == LS_OP_VERIFY ? op->impl : NULL;
    if (!d || (!d->engine && !d->listing))
      continue; /* ending (or a discard): its callback finishes it */
    if (d->engine)
      ls_download_abandon(d->engine); /* kept as paused; no callback follows */
    if (d->listing)
      ls_listing_abandon(d->listing);
    d->engine = NULL;
    d->listing = NULL;
    end_dl(d);
  }
}
