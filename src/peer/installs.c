/* Owns the install-side operations of the runtime: InstallGame (install or
 * update), UninstallGame and RemoveDownloadedGame, each run on a worker
 * thread under the monitor's operation gate, with begin / progress /
 * finished / failed events; the automatic install after a download; and
 * the startup recovery of interrupted install transactions. The transactions
 * themselves are src/install/transaction.c. */
#include "peer/runtime.h"

#include "install/transaction.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROGRESS_MS 250

typedef enum op_kind { OP_INSTALL, OP_UNINSTALL, OP_REMOVE } op_kind;

static const char *const op_names[] = {"install", "uninstall", "remove"};
static const char *const event_prefix[] = {"game-install", "game-uninstall", "game-remove"};

typedef struct install_op {
  uv_work_t work;
  uv_timer_t progress;
  ls_peer *p;
  op_kind kind;
  char *id, *game_dir;
  _Atomic uint64_t done, total; /* written by the worker, read by the timer */
  uint64_t reported;       /* bytes of the last progress event */
  int rc;
  ls_diag diag;
} install_op;

static void emit(install_op *op, const char *suffix, json_t *fields)
{
  char type[64];
  snprintf(type, sizeof type, "%s-%s", event_prefix[op->kind], suffix);
  json_t *obj = json_pack("{s:s, s:s}", "type", type, "id", op->id);
  if (fields) {
    json_object_update(obj, fields);
    json_decref(fields);
  }
  ls_rt_emit(op->p, obj);
}

static bool on_worker_progress(void *user, uint64_t done, uint64_t total)
{
  install_op *op = user;
  atomic_store(&op->done, done);
  atomic_store(&op->total, total);
  return !op->p->closing;
}

static void on_progress(uv_timer_t *t)
{
  install_op *op = t->data;
  uint64_t total = atomic_load(&op->total), done = atomic_load(&op->done);
  if (!total || (done == op->reported && done == total))
    return; /* nothing yet, or 100% already said */
  op->reported = done;
  emit(op, "progress",
       json_pack("{s:I, s:I}", "bytes", (json_int_t)done, "total_bytes", (json_int_t)total));
}

static void run_op(uv_work_t *work)
{
  install_op *op = work->data;
  switch (op->kind) {
  case OP_INSTALL:
    op->rc = ls_install_game(op->game_dir, op->id, &op->p->unpacker, on_worker_progress, op,
                             &op->diag);
    break;
  case OP_UNINSTALL:
    op->rc = ls_uninstall_game(op->game_dir, op->id, &op->diag);
    break;
  case OP_REMOVE:
    op->rc = ls_remove_downloaded_game(op->game_dir, op->p->catalog, op->id, &op->diag);
    break;
  }
}

static void free_op(uv_handle_t *h)
{
  install_op *op = h->data;
  free(op->id);
  free(op->game_dir);
  free(op);
}

/* After the refresh: the operation ends, then its last event goes out. */
static void after_refresh(void *user)
{
  install_op *op = user;
  if (op->p->monitor)
    ls_monitor_end_operation(op->p->monitor, op->id);
  if (op->rc == LS_OK)
    emit(op, "finished", op->diag.text[0] ? json_pack("{s:s}", "note", op->diag.text) : NULL);
  else
    emit(op, "failed", json_pack("{s:s}", "error", op->diag.text));
  uv_close((uv_handle_t *)&op->progress, free_op);
}

static void op_done(uv_work_t *work, int status)
{
  install_op *op = work->data;
  if (status != 0 && op->rc == LS_OK) {
    op->rc = LS_ECANCELED;
    snprintf(op->diag.text, sizeof op->diag.text, "cancelled");
  }
  uv_timer_stop(&op->progress);
  if (op->rc == LS_OK && op->kind == OP_INSTALL)
    on_progress(&op->progress); /* 100% */
  if (!op->p->monitor || op->p->closing ||
      ls_monitor_refresh(op->p->monitor, op->id, after_refresh, op) != LS_OK)
    after_refresh(op);
}

/* The refusal the current snapshot already explains, or NULL. The
 * transaction checks again on disk; this only gives the clear answer early. */
static const char *precondition(const ls_peer *p, op_kind kind, const char *id)
{
  const ls_local_game *g = ls_library_find(ls_monitor_library(p->monitor), id);
  bool downloaded = g && g->downloaded, installed = g && g->installed;
  if (kind == OP_INSTALL && !downloaded)
    return "not downloaded: download it first";
  if (kind == OP_UNINSTALL && !installed)
    return "not installed";
  if (kind == OP_REMOVE && installed)
    return "installed: uninstall it first";
  if (kind == OP_REMOVE && !downloaded)
    return "not downloaded: there are no files to remove";
  return NULL;
}

/* Starts an operation; when `reply`, a command's reply says whether it
 * began (the automatic install after a download has no command). */
static void start_op(ls_peer *p, op_kind kind, const char *id, uint64_t tag, bool reply)
{
  const char *name = op_names[kind];
  if (!id || !ls_catalog_find(p->catalog, id)) {
    if (reply)
      ls_rt_reply_error(p, tag, name, "'%s' is not a game of the catalog", id ? id : "");
    return;
  }
  if (ls_monitor_is_busy(p->monitor, id)) {
    if (reply)
      ls_rt_reply_error(p, tag, name, "%s is busy: an operation is already running", id);
    return;
  }
  const char *why = precondition(p, kind, id);
  if (why) {
    if (reply)
      ls_rt_reply_error(p, tag, name, "%s: %s", id, why);
    return;
  }
  install_op *op = calloc(1, sizeof *op);
  if (!op || !(op->id = strdup(id)) || !(op->game_dir = strdup(p->game_dir))) {
    if (op) {
      free(op->id);
      free(op);
    }
    if (reply)
      ls_rt_reply_error(p, tag, name, "out of memory");
    return;
  }
  op->p = p;
  op->kind = kind;
  op->work.data = op;
  uv_timer_init(&p->loop, &op->progress);
  op->progress.data = op;
  ls_monitor_begin_operation(p->monitor, id);
  emit(op, "begin", NULL);
  if (reply)
    ls_rt_reply_ok(p, tag, name, json_pack("{s:s}", "id", id));
  if (kind == OP_INSTALL)
    uv_timer_start(&op->progress, on_progress, PROGRESS_MS, PROGRESS_MS);
  if (uv_queue_work(&p->loop, &op->work, run_op, op_done) != 0) {
    op->rc = LS_EIO;
    snprintf(op->diag.text, sizeof op->diag.text, "cannot start a worker");
    op_done(&op->work, 0);
  }
}

void ls_installs_run(ls_peer *p, const ls_command *cmd)
{
  op_kind kind = cmd->type == LS_CMD_INSTALL_GAME     ? OP_INSTALL
                 : cmd->type == LS_CMD_UNINSTALL_GAME ? OP_UNINSTALL
                                                      : OP_REMOVE;
  start_op(p, kind, cmd->id, cmd->tag, true);
}

void ls_installs_after_download(ls_peer *p, const char *id)
{
  start_op(p, OP_INSTALL, id, 0, false);
}

void ls_installs_recover(ls_peer *p)
{
  for (size_t i = 0; i < ls_catalog_count(p->catalog); i++) {
    const char *id = ls_catalog_at(p->catalog, i)->id;
    ls_txn_recovery_report report;
    ls_diag diag = {{0}};
    int rc = ls_recover_game_root(p->game_dir, id, &report, &diag);
    if (rc != LS_OK || diag.text[0])
      ls_rt_log("%s: %s", id, diag.text[0] ? diag.text : ls_strerror(rc));
  }
}
