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

typedef struct kind_info {
  ls_op_kind op;
  const char *cmd;
  ls_event_kind begin, finished, failed;
} kind_info;

static const kind_info kinds[] = {
  {LS_OP_INSTALL, "install", LS_EVENT_INSTALL_BEGIN, LS_EVENT_INSTALL_FINISHED,
   LS_EVENT_INSTALL_FAILED},
  {LS_OP_UNINSTALL, "uninstall", LS_EVENT_UNINSTALL_BEGIN, LS_EVENT_UNINSTALL_FINISHED,
   LS_EVENT_UNINSTALL_FAILED},
  {LS_OP_REMOVE, "remove", LS_EVENT_REMOVE_BEGIN, LS_EVENT_REMOVE_FINISHED,
   LS_EVENT_REMOVE_FAILED},
};

typedef struct install_op {
  uv_work_t work;
  uv_timer_t progress;
  ls_peer *p;
  ls_op *op;
  const kind_info *kind;
  const ls_catalog *catalog;
  char *id, *game_dir;
  _Atomic uint64_t done, total; /* written by the worker, read by the timer */
  atomic_bool stop;             /* set on the loop when the runtime stops */
  uint64_t reported;            /* bytes of the last progress event */
  int rc;
  ls_diag diag;
} install_op;

static bool on_worker_progress(void *user, uint64_t done, uint64_t total)
{
  install_op *op = user;
  atomic_store(&op->done, done);
  atomic_store(&op->total, total);
  return !atomic_load(&op->stop);
}

static void on_progress(uv_timer_t *t)
{
  install_op *op = t->data;
  uint64_t total = atomic_load(&op->total), done = atomic_load(&op->done);
  if (!total || (done == op->reported && done == total))
    return; /* nothing yet, or 100% already said */
  op->reported = done;
  op->op->bytes = done;
  op->op->total_bytes = total;
  ls_rt_emit_game(op->p, LS_EVENT_INSTALL_PROGRESS, op->id,
                  json_pack("{s:I, s:I}", "bytes", (json_int_t)done, "total_bytes",
                            (json_int_t)total));
}

static void run_op(uv_work_t *work)
{
  install_op *op = work->data;
  switch (op->kind->op) {
  case LS_OP_INSTALL:
    op->rc = ls_install_game(op->game_dir, op->id, &op->p->unpacker, on_worker_progress, op,
                             &op->diag);
    break;
  case LS_OP_UNINSTALL:
    op->rc = ls_uninstall_game(op->game_dir, op->id, &op->diag);
    break;
  default:
    op->rc = ls_remove_downloaded_game(op->game_dir, op->catalog, op->id, &op->diag);
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
  ls_ops_end(op->p, op->op);
  if (op->rc == LS_OK)
    ls_rt_emit_game(op->p, op->kind->finished, op->id,
                    op->diag.text[0] ? json_pack("{s:s}", "note", op->diag.text) : NULL);
  else
    ls_rt_emit_failure(op->p, op->kind->failed, op->id, op->rc, op->diag.text);
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
  if (op->rc == LS_OK && op->kind->op == LS_OP_INSTALL)
    on_progress(&op->progress); /* 100% */
  if (!op->p->monitor || op->p->closing ||
      ls_monitor_refresh(op->p->monitor, op->id, after_refresh, op) != LS_OK)
    after_refresh(op);
}

/* The refusal the current snapshot already explains (its code, *why), or
 * LS_OK. The transaction checks again on disk; this only gives the clear
 * answer early. */
static int precondition(const ls_peer *p, ls_op_kind kind, const char *id, const char **why)
{
  const ls_local_game *g = ls_library_find(ls_monitor_library(p->monitor), id);
  bool downloaded = g && g->downloaded, installed = g && g->installed;
  *why = NULL;
  if (kind == LS_OP_INSTALL && !downloaded)
    *why = "not downloaded: download it first";
  else if (kind == LS_OP_UNINSTALL && !installed)
    *why = "not installed";
  else if (kind == LS_OP_REMOVE && installed)
    return (*why = "installed: uninstall it first"), LS_ESTATE;
  else if (kind == LS_OP_REMOVE && !downloaded)
    *why = "not downloaded: there are no files to remove";
  return *why ? LS_ENOENT : LS_OK;
}

/* Starts an operation; with `reply`, the command's reply says whether it
 * began (the automatic install after a download has no command). */
static void start_op(ls_peer *p, const kind_info *kind, const char *id, uint64_t tag, bool reply)
{
  const char *why;
  if (ls_ops_admit(p, kind->op, kind->cmd, id, tag, reply) != LS_OK)
    return;
  int code = precondition(p, kind->op, id, &why);
  if (code != LS_OK) {
    if (reply)
      ls_rt_reply_error(p, tag, kind->cmd, code, "%s: %s", id, why);
    return;
  }
  install_op *op = calloc(1, sizeof *op);
  if (!op || !(op->id = strdup(id)) || !(op->game_dir = strdup(p->game_dir)) ||
      !(op->op = ls_ops_begin(p, kind->op, kind->cmd, id, tag))) {
    if (op) {
      free(op->id);
      free(op->game_dir);
      free(op);
    }
    if (reply)
      ls_rt_reply_error(p, tag, kind->cmd, LS_ENOMEM, "out of memory");
    return;
  }
  op->p = p;
  op->kind = kind;
  op->catalog = p->catalog;
  op->op->impl = op;
  op->work.data = op;
  uv_timer_init(&p->loop, &op->progress);
  op->progress.data = op;
  ls_rt_emit_game(p, kind->begin, id, NULL);
  if (reply)
    ls_rt_reply_ok(p, tag, kind->cmd, json_pack("{s:s}", "id", id));
  if (kind->op == LS_OP_INSTALL)
    uv_timer_start(&op->progress, on_progress, PROGRESS_MS, PROGRESS_MS);
  if (uv_queue_work(&p->loop, &op->work, run_op, op_done) != 0) {
    op->rc = LS_EIO;
    snprintf(op->diag.text, sizeof op->diag.text, "cannot start a worker");
    op_done(&op->work, 0);
  }
}

void ls_installs_run(ls_peer *p, const ls_command *cmd)
{
  const kind_info *kind = cmd->type == LS_CMD_INSTALL_GAME     ? &kinds[0]
                          : cmd->type == LS_CMD_UNINSTALL_GAME ? &kinds[1]
                                                               : &kinds[2];
  start_op(p, kind, cmd->id, cmd->tag, true);
}

void ls_installs_after_download(ls_peer *p, const char *id)
{
  start_op(p, &kinds[0], id, 0, false);
}

void ls_installs_close_all(ls_peer *p)
{
  for (ls_op *op = p->ops; op; op = op->next)
    if (op->kind == LS_OP_INSTALL || op->kind == LS_OP_UNINSTALL || op->kind == LS_OP_REMOVE)
      atomic_store(&((install_op *)op->impl)->stop, true);
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
