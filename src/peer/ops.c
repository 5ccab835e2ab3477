/* Owns the runtime's one list of operations (get, download, install,
 * uninstall, remove): the checks that admit a command on a game (the game
 * is in the catalog, nothing exclusive runs on it), the monitor's operation
 * gate held while an exclusive operation runs, and the operation each game
 * reports in the games view. gets.c, downloads.c and installs.c keep their
 * own state next to the ls_op they register here. Loop thread only. */
#include "peer/runtime.h"

#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {
  [LS_OP_GET] = "get", [LS_OP_DOWNLOAD] = "download", [LS_OP_INSTALL] = "install",
  [LS_OP_UNINSTALL] = "uninstall", [LS_OP_REMOVE] = "remove", [LS_OP_VERIFY] = "verify",
};

static bool exclusive(ls_op_kind kind)
{
  return kind != LS_OP_GET;
}

int ls_ops_admit(ls_peer *p, ls_op_kind kind, const char *cmd, const char *id, uint64_t tag,
                 bool tag_reply)
{
  int code = LS_OK;
  if (!id || !ls_catalog_find(p->catalog, id)) {
    code = LS_ENOENT;
    if (tag_reply)
      ls_rt_reply_error(p, tag, cmd, code, "'%s' is not a game of the catalog", id ? id : "");
  } else if (exclusive(kind) && ls_ops_find(p, id)) {
    code = LS_EBUSY;
    if (tag_reply)
      ls_rt_reply_error(p, tag, cmd, code, "%s is busy: an operation is already running", id);
  }
  return code;
}

static json_t *changed_list(const char *id)
{
  return json_pack("[s]", id);
}

ls_op *ls_ops_begin(ls_peer *p, ls_op_kind kind, const char *cmd, const char *id, uint64_t tag)
{
  ls_op *op = calloc(1, sizeof *op);
  if (!op || !(op->id = strdup(id))) {
    free(op);
    return NULL;
  }
  op->peer = p;
  op->kind = kind;
  op->cmd = cmd;
  op->tag = tag;
  op->cancellable = kind == LS_OP_DOWNLOAD || kind == LS_OP_VERIFY;
  op->next = p->ops;
  p->ops = op;
  if (exclusive(kind)) {
    ls_monitor_begin_operation(p->monitor, id);
    ls_rt_emit_games(p, changed_list(id));
  }
  return op;
}

void ls_ops_end(ls_peer *p, ls_op *op)
{
  for (ls_op **q = &p->ops; *q; q = &(*q)->next)
    if (*q == op) {
      *q = op->next;
      break;
    }
  if (exclusive(op->kind)) {
    if (p->monitor)
      ls_monitor_end_operation(p->monitor, op->id);
    if (!p->closing)
      ls_rt_emit_games(p, changed_list(op->id));
  }
  free(op->id);
  free(op);
}

ls_op *ls_ops_find(const ls_peer *p, const char *id)
{
  for (ls_op *op = p->ops; op; op = op->next)
    if (exclusive(op->kind) && strcmp(op->id, id) == 0)
      return op;
  return NULL;
}

bool ls_ops_any_exclusive(const ls_peer *p)
{
  for (ls_op *op = p->ops; op; op = op->next)
    if (exclusive(op->kind))
      return true;
  return false;
}

json_t *ls_ops_json(const ls_op *op)
{
  return json_pack("{s:s, s:I, s:I, s:I}", "kind", kind_names[op->kind], "bytes",
                   (json_int_t)op->bytes, "total_bytes", (json_int_t)op->total_bytes,
                   "bytes_per_sec", (json_int_t)op->bytes_per_sec);
}
