/* Owns the runtime's side of downloads: the DownloadGameFiles and
 * CancelDownload commands, the fresh file list a download starts from, the
 * choice of sources (the connected peers whose list for the latest version
 * is identical to the first one), the download engine's operations (a
 * chunk fetch is one GetGameFileChunk request on the source's connection),
 * the progress ticks, the events, the refresh of the game's local state
 * before the operation ends, and the automatic install after it. The
 * planner, the verification and the storage are the engine's
 * (src/download/). */
#include "peer/runtime.h"

#include "core/error.h"
#include "download/download.h"
#include "node/fetch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROGRESS_MS 250
#define ID_BUF 128 /* a catalog id (at most 64 bytes) and its NUL */

typedef struct dl {
  ls_op *op;
  ls_peer *p;
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
} dl;

static void free_dl(uv_handle_t *h)
{
  dl *d = h->data;
  for (size_t i = 0; i < d->file_count; i++)
    free(d->files[i]);
  free(d->files);
  free(d->version);
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
  ls_rt_reply_error(d->p, d->op->tag, "download", code, "%s", why);
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
    ls_rt_reply_error(p, op->tag, "download", err, "%s", diag);
    return; /* on_end follows */
  }
  ls_download_progress pr = ls_download_get_progress(d->engine);
  op->total_bytes = pr.total_bytes;
  ls_rt_emit_game(p, LS_EVENT_DOWNLOAD_BEGIN, op->id,
                  json_pack("{s:s, s:I, s:I, s:i}", "version", d->version, "total_bytes",
                            (json_int_t)pr.total_bytes, "files", (json_int_t)d->manifest_files,
                            "peers", (int)d->nsources));
  ls_rt_reply_ok(p, op->tag, "download",
                 json_pack("{s:s, s:s, s:I, s:i}", "id", op->id, "version", d->version,
                           "total_bytes", (json_int_t)pr.total_bytes, "peers",
                           (int)d->nsources));
  uv_timer_start(&d->progress, on_tick, PROGRESS_MS, PROGRESS_MS);
}

static void on_progress(void *user, const ls_download_progress *pr)
{
  dl *d = user;
  d->op->bytes = pr->bytes;
  d->op->total_bytes = pr->total_bytes;
  d->op->bytes_per_sec = pr->bytes_per_sec;
  ls_rt_emit_game(d->p, LS_EVENT_DOWNLOAD_PROGRESS, d->op->id,
                  json_pack("{s:I, s:I, s:I}", "bytes", (json_int_t)pr->bytes, "total_bytes",
                            (json_int_t)pr->total_bytes, "bytes_per_sec",
                            (json_int_t)pr->bytes_per_sec));
}

/* After the refresh: the operation ends and the last event goes out. */
static void after_refresh(void *user)
{
  dl *d = user; /* freed by the timer's close, on a later loop iteration */
  ls_peer *p = d->p;
  char id[ID_BUF];
  snprintf(id, sizeof id, "%s", d->op->id);
  uint64_t total = d->op->total_bytes;
  int err = d->end_err;
  end_dl(d);
  if (err == LS_OK) {
    ls_rt_emit_game(p, LS_EVENT_DOWNLOAD_FINISHED, id,
                    json_pack("{s:s, s:I}", "version", d->version, "bytes", (json_int_t)total));
    if (!p->closing)
      ls_installs_after_download(p, id); /* install, or update when installed */
  } else if (err == LS_ECANCELED) {
    ls_rt_emit_game(p, LS_EVENT_DOWNLOAD_CANCELLED, id, NULL);
  } else {
    ls_rt_emit_failure(p, LS_EVENT_DOWNLOAD_FAILED, id, err, d->end_diag);
  }
}

static void on_end(void *user, int err, const char *diag)
{
  dl *d = user;
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
    .sources = names, .source_count = d->nsources, .ops = &engine_ops, .user = d,
  };
  if (rc == LS_OK)
    rc = ls_download_start(&c, &d->engine, &diag);
  ls_msg_clear(&manifest);
  if (rc != LS_OK)
    refuse(d, rc, diag.text);
}

static void on_listed(void *user, const char *version, const ls_msg *manifest, unsigned agreeing)
{
  dl *d = user;
  (void)agreeing;
  d->listing = NULL;
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

void ls_downloads_run(ls_peer *p, const ls_command *cmd)
{
  if (ls_ops_admit(p, LS_OP_DOWNLOAD, "download", cmd->id, cmd->tag, true) != LS_OK)
    return;
  ls_peerdb_game_view view = ls_peerdb_view(p->peerdb, cmd->id);
  if (!view.latest_version) {
    ls_rt_reply_error(p, cmd->tag, "download", LS_ENOPEER, "no connected peer has %s", cmd->id);
    return;
  }
  dl *d = calloc(1, sizeof *d);
  if (!d || !(d->version = strdup(view.latest_version)) ||
      (cmd->files && copy_files(d, cmd) != LS_OK) ||
      !(d->op = ls_ops_begin(p, LS_OP_DOWNLOAD, "download", cmd->id, cmd->tag))) {
    if (d) {
      uv_handle_t fake = {.data = d};
      free_dl(&fake);
    }
    ls_rt_reply_error(p, cmd->tag, "download", LS_ENOMEM, "out of memory");
    return;
  }
  d->p = p;
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

void ls_downloads_cancel(ls_peer *p, const ls_command *cmd)
{
  ls_op *op = cmd->id ? ls_ops_find(p, cmd->id) : NULL;
  if (!op || op->kind != LS_OP_DOWNLOAD || !op->cancellable) {
    ls_rt_reply_error(p, cmd->tag, "cancel", LS_ESTATE, "no download of %s is running",
                      cmd->id ? cmd->id : "");
    return;
  }
  dl *d = op->impl;
  op->cancellable = false;
  ls_rt_reply_ok(p, cmd->tag, "cancel", json_pack("{s:s}", "id", op->id));
  if (d->engine) {
    ls_download_cancel(d->engine); /* on_end(LS_ECANCELED) follows */
    return;
  }
  /* Still asking for the file list: nothing is on disk yet. */
  char id[ID_BUF];
  snprintf(id, sizeof id, "%s", op->id);
  ls_listing_abandon(d->listing);
  d->listing = NULL;
  refuse(d, LS_ECANCELED, "cancelled");
  ls_rt_emit_game(p, LS_EVENT_DOWNLOAD_CANCELLED, id, NULL);
}

void ls_downloads_close_all(ls_peer *p)
{
  for (ls_op *op = p->ops, *next; op; op = next) {
    next = op->next;
    dl *d = op->kind == LS_OP_DOWNLOAD ? op->impl : NULL;
    if (!d || (!d->engine && !d->listing))
      continue; /* ending: its refresh callback finishes it */
    if (d->engine)
      ls_download_abandon(d->engine); /* no callback follows */
    if (d->listing)
      ls_listing_abandon(d->listing);
    d->engine = NULL;
    d->listing = NULL;
    end_dl(d);
  }
}
