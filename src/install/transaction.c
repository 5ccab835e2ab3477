/* Owns the install transactions of install/transaction.h: the intent log
 * (.lanspread.json), the reserved directories .local.installing/ and
 * .local.backup/ with their .lanspread_owned markers, the install, update,
 * uninstall and remove-downloaded operations, and the startup recovery.
 * Every path inside a game root is reached with *at() calls from the root's
 * descriptor, opened with O_NOFOLLOW; only the unpacker gets path strings. */
#include "install/transaction.h"

#include "core/array.h"
#include "core/error.h"
#include "core/teststep.h"
#include "core/fs.h"
#include "core/walk.h"
#include "library/layout.h"
#include "library/version_file.h"

#include <lanspread/catalog.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define INTENT_FORMAT 1
#define INTENT_MAX (64 * 1024)
#define INTENT_TMP LS_INTENT_FILE ".tmp" /* ls_write_file_atomic_at's temp name */
#define VERSION_MAX_BYTES 4096
#define ROOT_PATH_MAX (PATH_MAX / 2) /* leaves room for names inside the root */

/* ---- the game root ------------------------------------------------------ */

typedef struct root {
  int fd;
  char path[ROOT_PATH_MAX]; /* GAME_DIR/ID, for messages and the unpacker */
} root;

typedef enum entry_kind { ENTRY_ABSENT, ENTRY_DIR, ENTRY_OTHER } entry_kind;

static entry_kind entry_at(int dir_fd, const char *name)
{
  struct stat st;
  if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
    return ENTRY_ABSENT;
  return S_ISDIR(st.st_mode) ? ENTRY_DIR : ENTRY_OTHER;
}

static const char *path_in(const root *r, const char *name, char buf[PATH_MAX])
{
  snprintf(buf, PATH_MAX, "%s/%s", r->path, name);
  return buf;
}

static int fsync_root(const root *r, ls_diag *diag)
{
  if (fsync(r->fd) != 0)
    return ls_diag_errno(diag, errno, "cannot fsync", r->path);
  return LS_OK;
}

/* Opens GAME_DIR/ID without following a symlink. LS_ENOENT (diag set) when
 * it does not exist. */
static int root_open(const char *game_dir, const char *id, root *r, ls_diag *diag)
{
  r->fd = -1;
  if (!ls_catalog_id_is_safe(id))
    return ls_diag_set(diag, LS_EINVAL, "\"%s\" is not a valid game id", id);
  if (snprintf(r->path, sizeof r->path, "%s/%s", game_dir, id) >= (int)sizeof r->path)
    return ls_diag_set(diag, LS_EINVAL, "%s/%s: path too long", game_dir, id);
  r->fd = open(r->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (r->fd >= 0)
    return LS_OK;
  int e = errno;
  if (e == ENOENT)
    return ls_diag_set(diag, LS_ENOENT, "%s does not exist", r->path);
  if (e == ELOOP || e == ENOTDIR)
    return ls_diag_set(diag, LS_EINVAL, "%s is a symbolic link or not a directory", r->path);
  return ls_diag_errno(diag, e, "cannot open game root", r->path);
}

static void root_close(root *r)
{
  if (r->fd >= 0)
    close(r->fd);
  r->fd = -1;
}

/* ---- markers ------------------------------------------------------------ */

static int open_subdir(const root *r, const char *name, int *out, ls_diag *diag)
{
  char buf[PATH_MAX];
  *out = openat(r->fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  return *out >= 0 ? LS_OK : ls_diag_errno(diag, errno, "cannot open", path_in(r, name, buf));
}

static bool dir_is_marked(const root *r, const char *name)
{
  int fd = -1;
  if (open_subdir(r, name, &fd, NULL) != LS_OK)
    return false;
  bool marked = ls_is_regular_at(fd, LS_OWNED_MARKER);
  close(fd);
  return marked;
}

/* Creates the marker in r/name and makes it durable. */
static int mark_dir(const root *r, const char *name, ls_diag *diag)
{
  char buf[PATH_MAX];
  int dfd = -1;
  int rc = open_subdir(r, name, &dfd, diag);
  if (rc != LS_OK)
    return rc;
  int fd = openat(dfd, LS_OWNED_MARKER, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
  int e = fd < 0 ? errno : 0;
  if (!e && fsync(fd) != 0)
    e = errno;
  if (fd >= 0)
    close(fd);
  if (!e && fsync(dfd) != 0)
    e = errno;
  close(dfd);
  return e ? ls_diag_errno(diag, e, "cannot mark", path_in(r, name, buf)) : LS_OK;
}

/* Removes the marker from r/name (a missing one is fine), durably. */
static int unmark_dir(const root *r, const char *name, ls_diag *diag)
{
  char buf[PATH_MAX];
  int dfd = -1;
  int rc = open_subdir(r, name, &dfd, diag);
  if (rc != LS_OK)
    return rc;
  int e = unlinkat(dfd, LS_OWNED_MARKER, 0) == 0 || errno == ENOENT ? 0 : errno;
  if (!e && fsync(dfd) != 0)
    e = errno;
  close(dfd);
  return e ? ls_diag_errno(diag, e, "cannot unmark", path_in(r, name, buf)) : LS_OK;
}

/* ---- moves and deletions ------------------------------------------------ */

/* Renames r/from to r/to (never over an existing entry), then fsyncs r. */
static int move_entry(const root *r, const char *from, const char *to, ls_diag *diag)
{
  char buf[PATH_MAX];
  int rc = renameat2(r->fd, from, r->fd, to, RENAME_NOREPLACE);
  if (rc != 0 && (errno == EINVAL || errno == ENOSYS)) { /* fs without NOREPLACE */
    if (entry_at(r->fd, to) != ENTRY_ABSENT)
      return ls_diag_set(diag, LS_EEXIST, "%s/%s already exists", r->path, to);
    rc = renameat(r->fd, from, r->fd, to);
  }
  if (rc != 0)
    return ls_diag_errno(diag, errno, "cannot rename", path_in(r, from, buf));
  return fsync_root(r, diag);
}

static int remove_entry(const root *r, const char *name, ls_diag *diag)
{
  int rc = ls_rmtree_at(r->fd, name, diag);
  return rc != LS_OK ? rc : fsync_root(r, diag);
}

/* ---- the intent log ----------------------------------------------------- */

typedef enum intent_kind {
  INTENT_NONE,    /* no intent file */
  INTENT_VALID,   /* a readable intent of ours */
  INTENT_CORRUPT, /* a regular file we cannot understand: proves nothing */
  INTENT_FOREIGN, /* something that is not a regular file: not ours */
} intent_kind;

typedef struct intent {
  intent_kind kind;
  ls_txn_op op;
  ls_txn_phase ph;
} intent;

static const char *const op_names[] = {"none", "install", "update", "uninstall"};
static const char *const phase_names[] = {"extracting", "swapping", "removing"};

static int name_index(const char *name, const char *const *names, int count)
{
  for (int i = 0; i < count; i++)
    if (strcmp(name, names[i]) == 0)
      return i;
  return -1;
}

static bool phase_fits_op(ls_txn_op op, ls_txn_phase ph)
{
  switch (op) {
  case LS_TXN_OP_INSTALL: return ph == LS_TXN_PHASE_EXTRACTING;
  case LS_TXN_OP_UPDATE: return ph == LS_TXN_PHASE_EXTRACTING || ph == LS_TXN_PHASE_SWAPPING;
  case LS_TXN_OP_UNINSTALL: return ph == LS_TXN_PHASE_REMOVING;
  default: return false;
  }
}

/* A version as JSON: null when unknown or not UTF-8. */
static json_t *version_json(const char *version)
{
  json_t *v = version ? json_string(version) : NULL;
  return v ? v : json_null();
}

static int intent_write(const root *r, const char *id, ls_txn_op op, ls_txn_phase ph,
                        const char *from, const char *to, ls_diag *diag)
{
  json_t *obj = json_pack("{s:i, s:s, s:s, s:s, s:o, s:o}", "format", INTENT_FORMAT, "id", id,
                          "op", op_names[op], "phase", phase_names[ph], "from",
                          version_json(from), "to", version_json(to));
  char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
  json_decref(obj);
  if (!text)
    return ls_diag_set(diag, LS_ENOMEM, "%s: cannot encode the intent", r->path);
  int rc = ls_write_file_atomic_at(r->fd, LS_INTENT_FILE, text, strlen(text), 0644, diag);
  free(text);
  return rc;
}

int ls_txn_intent_parse(const char *text, size_t len, ls_txn_intent *out, ls_diag *diag)
{
  json_error_t err;
  json_t *obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
  json_int_t format = 0;
  const char *op = NULL, *ph = NULL;
  int rc = LS_OK;
  if (!obj) {
    rc = ls_diag_set(diag, LS_EFORMAT, "not JSON (line %d, column %d)", err.line, err.column);
  } else if (json_unpack(obj, "{s:I, s:s, s:s}", "format", &format, "op", &op, "phase", &ph) != 0 ||
             format != INTENT_FORMAT) {
    rc = ls_diag_set(diag, LS_EFORMAT, "not an intent of format %d", INTENT_FORMAT);
  } else {
    int o = name_index(op, op_names, 4);
    int p = name_index(ph, phase_names, 3);
    if (o > 0 && p >= 0 && phase_fits_op((ls_txn_op)o, (ls_txn_phase)p))
      *out = (ls_txn_intent){(ls_txn_op)o, (ls_txn_phase)p};
    else
      rc = ls_diag_set(diag, LS_EFORMAT, "not an operation and phase of ours");
  }
  json_decref(obj);
  return rc;
}

static void intent_from_text(const char *text, size_t len, intent *in)
{
  ls_txn_intent parsed;
  in->kind = ls_txn_intent_parse(text, len, &parsed, NULL) == LS_OK ? INTENT_VALID : INTENT_CORRUPT;
  if (in->kind == INTENT_VALID) {
    in->op = parsed.op;
    in->ph = parsed.phase;
  }
}

/* Reads the intent. Only a read error (not a parse error) fails. */
static int intent_read(const root *r, intent *in, ls_diag *diag)
{
  in->kind = INTENT_NONE;
  in->op = LS_TXN_OP_NONE;
  in->ph = LS_TXN_PHASE_EXTRACTING;
  struct stat st;
  if (fstatat(r->fd, LS_INTENT_FILE, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    char buf[PATH_MAX];
    return errno == ENOENT ? LS_OK
                           : ls_diag_errno(diag, errno, "cannot stat", path_in(r, LS_INTENT_FILE, buf));
  }
  if (!S_ISREG(st.st_mode)) {
    in->kind = INTENT_FOREIGN;
    return LS_OK;
  }
  if (st.st_size > INTENT_MAX) {
    in->kind = INTENT_CORRUPT;
    return LS_OK;
  }
  char *text = NULL;
  size_t len = 0;
  int rc = ls_read_file_at(r->fd, LS_INTENT_FILE, INTENT_MAX, &text, &len, diag);
  if (rc == LS_ETOOBIG) /* grew since the stat */
    in->kind = INTENT_CORRUPT;
  else if (rc == LS_OK)
    intent_from_text(text, len, in);
  free(text);
  return rc == LS_ETOOBIG ? LS_OK : rc;
}

/* Deletes the intent (unless it is not a regular file: not ours) and a temp
 * file an interrupted write left, durably. */
static int intent_clear(const root *r, ls_diag *diag)
{
  char buf[PATH_MAX];
  if (unlinkat(r->fd, INTENT_TMP, 0) != 0 && errno != ENOENT)
    return ls_diag_errno(diag, errno, "cannot delete", path_in(r, INTENT_TMP, buf));
  if (ls_is_regular_at(r->fd, LS_INTENT_FILE) && unlinkat(r->fd, LS_INTENT_FILE, 0) != 0 &&
      errno != ENOENT)
    return ls_diag_errno(diag, errno, "cannot delete", path_in(r, LS_INTENT_FILE, buf));
  return fsync_root(r, diag);
}

/* A step boundary, for crash injection in test builds (core/teststep.h). */
static void step(ls_txn_op op, const char *name)
{
  ls_test_step(op_names[op], name);
}

/* ---- recovery ----------------------------------------------------------- */

/* What is on disk in a game root, as far as transactions care. */
typedef struct observed {
  entry_kind local, installing, backup;
  bool installing_marked, backup_marked;
} observed;

static void observe(const root *r, observed *o)
{
  o->local = entry_at(r->fd, LS_LOCAL_DIR);
  o->installing = entry_at(r->fd, LS_INSTALLING_DIR);
  o->backup = entry_at(r->fd, LS_BACKUP_DIR);
  o->installing_marked = o->installing == ENTRY_DIR && dir_is_marked(r, LS_INSTALLING_DIR);
  o->backup_marked = o->backup == ENTRY_DIR && dir_is_marked(r, LS_BACKUP_DIR);
}

/* The intent proves .local.installing/ ours: install and update create it
 * only after writing their intent. */
static bool installing_ours(const intent *in, const observed *o)
{
  if (o->installing != ENTRY_DIR)
    return false;
  bool by_intent = in->kind == INTENT_VALID &&
                   (in->op == LS_TXN_OP_INSTALL || in->op == LS_TXN_OP_UPDATE);
  return by_intent || o->installing_marked;
}

/* The intent proves .local.backup/ ours only in the phases that make it,
 * and only in a state where our rename can have made it: while local/ is
 * still there (uninstall), or local/ and .local.installing/ both are
 * (update), the rename has not happened and a backup is someone else's. */
static bool backup_ours(const intent *in, const observed *o)
{
  if (o->backup != ENTRY_DIR)
    return false;
  if (o->backup_marked)
    return true;
  if (in->kind != INTENT_VALID)
    return false;
  bool has_local = o->local != ENTRY_ABSENT;
  if (in->op == LS_TXN_OP_UNINSTALL)
    return !has_local;
  if (in->op == LS_TXN_OP_UPDATE && in->ph == LS_TXN_PHASE_SWAPPING)
    return !(has_local && o->installing != ENTRY_ABSENT);
  return false;
}

/* What recovery will do. */
typedef struct plan {
  bool restore_backup;     /* back: unmark .local.backup, rename it to local */
  bool forward_installing; /* forward: unmark .local.installing, rename it to local */
  bool delete_installing;
  bool delete_backup;
  bool forward;            /* the operation's new state is what remains */
} plan;

static void make_plan(const intent *in, const observed *o, plan *p)
{
  memset(p, 0, sizeof *p);
  bool inst = installing_ours(in, o), back = backup_ours(in, o);
  bool valid = in->kind == INTENT_VALID;
  bool no_local = o->local == ENTRY_ABSENT;
  bool uninstall = valid && in->op == LS_TXN_OP_UNINSTALL;
  bool update_swapping = valid && in->op == LS_TXN_OP_UPDATE && in->ph == LS_TXN_PHASE_SWAPPING;
  p->restore_backup = back && no_local && !uninstall;
  /* The backup goes once the new state is in place: a new local/ tree, or
   * no local/ for an uninstall. A local/ that is not a directory is not a
   * tree to keep: then the backup stays. */
  p->delete_backup = back && !p->restore_backup && (o->local == ENTRY_DIR || uninstall);
  /* A complete new tree with neither local/ nor a backup to restore (the
   * backup vanished): install it rather than leave the game lost. */
  p->forward_installing = inst && update_swapping && no_local && !p->restore_backup;
  p->delete_installing = inst && !p->forward_installing;
  if (!valid)
    return;
  if (in->op == LS_TXN_OP_INSTALL)
    p->forward = o->local == ENTRY_DIR;
  else if (in->op == LS_TXN_OP_UNINSTALL)
    p->forward = no_local;
  else
    p->forward = p->forward_installing ||
                 (update_swapping && o->installing == ENTRY_ABSENT && !p->restore_backup &&
                  o->local == ENTRY_DIR);
}

static int run_plan(const root *r, const plan *p, ls_diag *diag)
{
  int rc = LS_OK;
  if (p->restore_backup) {
    rc = unmark_dir(r, LS_BACKUP_DIR, diag);
    if (rc == LS_OK)
      rc = move_entry(r, LS_BACKUP_DIR, LS_LOCAL_DIR, diag);
  }
  if (rc == LS_OK && p->forward_installing) {
    rc = unmark_dir(r, LS_INSTALLING_DIR, diag);
    if (rc == LS_OK)
      rc = move_entry(r, LS_INSTALLING_DIR, LS_LOCAL_DIR, diag);
  }
  if (rc == LS_OK && p->delete_installing)
    rc = remove_entry(r, LS_INSTALLING_DIR, diag);
  if (rc == LS_OK && p->delete_backup)
    rc = remove_entry(r, LS_BACKUP_DIR, diag);
  return rc;
}

static void describe_recovery(const root *r, const ls_txn_recovery_report *rep, ls_diag *diag)
{
  static const char *const outcomes[] = {"nothing to do", "rolled back", "rolled forward",
                                         "cleaned up"};
  if (!diag)
    return;
  diag->text[0] = '\0';
  if (rep->outcome == LS_TXN_RECOVERY_NOTHING && !rep->intent_unreadable &&
      !rep->foreign_installing && !rep->foreign_backup)
    return;
  snprintf(diag->text, sizeof diag->text, "%.160s: %s%s%s%s%s%s", r->path, outcomes[rep->outcome],
           rep->op != LS_TXN_OP_NONE ? " an interrupted " : "",
           rep->op != LS_TXN_OP_NONE ? op_names[rep->op] : "",
           rep->intent_unreadable ? "; unreadable " LS_INTENT_FILE " ignored" : "",
           rep->foreign_installing ? "; " LS_INSTALLING_DIR " is not ours (no marker, no intent): left alone" : "",
           rep->foreign_backup ? "; " LS_BACKUP_DIR " is not ours (no marker, no intent): left alone" : "");
}

static int recover_root(const root *r, ls_txn_recovery_report *rep, ls_diag *diag)
{
  memset(rep, 0, sizeof *rep);
  intent in;
  int rc = intent_read(r, &in, diag);
  if (rc != LS_OK)
    return rc;
  observed o;
  observe(r, &o);
  plan p;
  make_plan(&in, &o, &p);
  rc = run_plan(r, &p, diag);
  bool intent_left = in.kind == INTENT_VALID || in.kind == INTENT_CORRUPT ||
                     entry_at(r->fd, INTENT_TMP) != ENTRY_ABSENT;
  if (rc == LS_OK && intent_left) /* a root without any stays untouched: no fsync */
    rc = intent_clear(r, diag);
  if (rc != LS_OK)
    return rc;
  rep->op = in.kind == INTENT_VALID ? in.op : LS_TXN_OP_NONE;
  rep->intent_unreadable = in.kind == INTENT_CORRUPT || in.kind == INTENT_FOREIGN;
  rep->foreign_installing = o.installing != ENTRY_ABSENT && !installing_ours(&in, &o);
  rep->foreign_backup = o.backup != ENTRY_ABSENT && !backup_ours(&in, &o);
  bool acted = p.restore_backup || p.forward_installing || p.delete_installing || p.delete_backup;
  if (in.kind == INTENT_VALID)
    rep->outcome = p.forward ? LS_TXN_RECOVERY_ROLLED_FORWARD : LS_TXN_RECOVERY_ROLLED_BACK;
  else if (acted || in.kind == INTENT_CORRUPT)
    rep->outcome = LS_TXN_RECOVERY_CLEANED;
  describe_recovery(r, rep, diag);
  return LS_OK;
}

int ls_recover_game_root(const char *game_dir, const char *id, ls_txn_recovery_report *report,
                         ls_diag *diag)
{
  ls_txn_recovery_report local_report;
  ls_txn_recovery_report *rep = report ? report : &local_report;
  memset(rep, 0, sizeof *rep);
  if (diag)
    diag->text[0] = '\0';
  root r;
  int rc = root_open(game_dir, id, &r, diag);
  if (rc == LS_ENOENT) {
    if (diag)
      diag->text[0] = '\0';
    return LS_OK;
  }
  if (rc == LS_OK)
    rc = recover_root(&r, rep, diag);
  root_close(&r);
  return rc;
}

/* ---- common preconditions ------------------------------------------------- */

/* Settles a leftover transaction and refuses when a reserved entry that is
 * not ours is in the way. */
static int settle_and_check(const root *r, ls_diag *diag)
{
  ls_txn_recovery_report rep;
  ls_diag ignored;
  int rc = recover_root(r, &rep, &ignored);
  if (rc != LS_OK)
    return ls_diag_set(diag, rc, "%s", ignored.text);
  if (rep.foreign_installing || rep.foreign_backup)
    return ls_diag_set(diag, LS_ESTATE,
                       "%s/%s exists and was not created by Lanspread: move or delete it first",
                       r->path, rep.foreign_installing ? LS_INSTALLING_DIR : LS_BACKUP_DIR);
  if (entry_at(r->fd, LS_INTENT_FILE) != ENTRY_ABSENT)
    return ls_diag_set(diag, LS_ESTATE, "%s/%s is not a regular file: move or delete it first",
                       r->path, LS_INTENT_FILE);
  return LS_OK;
}

static int check_no_download(const root *r, ls_diag *diag)
{
  if (entry_at(r->fd, LS_DOWNLOAD_JOURNAL) != ENTRY_ABSENT ||
      entry_at(r->fd, LS_VERSION_TMP) != ENTRY_ABSENT)
    return ls_diag_set(diag, LS_ESTATE, "%s: a download is in flight or unfinished", r->path);
  return LS_OK;
}

/* The version named by version.ini (NULL when unknown). LS_ESTATE "not
 * downloaded" when it is not a regular file. */
static int read_version(const root *r, char **version, ls_diag *diag)
{
  *version = NULL;
  if (!ls_is_regular_at(r->fd, LS_VERSION_FILE))
    return ls_diag_set(diag, LS_ESTATE, "%s: not downloaded (no regular %s)", r->path,
                       LS_VERSION_FILE);
  char *text = NULL;
  size_t len = 0;
  ls_diag ignored;
  if (ls_read_file_at(r->fd, LS_VERSION_FILE, VERSION_MAX_BYTES, &text, &len, &ignored) == LS_OK)
    *version = ls_version_file_parse(text, len);
  free(text);
  return LS_OK;
}

/* ---- archive list ----------------------------------------------------------- */

typedef struct archive {
  char *rel;     /* relative to the root */
  uint64_t size;
} archive;

typedef struct archive_list {
  archive *items;
  size_t count, cap;
  uint64_t payload; /* bytes of every payload file: what the limits scale with */
} archive_list;

static void archives_free(archive_list *l)
{
  for (size_t i = 0; i < l->count; i++)
    free(l->items[i].rel);
  free(l->items);
  memset(l, 0, sizeof *l);
}

static int archives_push(archive_list *l, const char *rel, uint64_t size)
{
  archive *items = ls_array_reserve(l->items, &l->cap, l->count + 1, sizeof *items);
  if (!items)
    return LS_ENOMEM;
  l->items = items;
  char *copy = strdup(rel);
  if (!copy)
    return LS_ENOMEM;
  l->items[l->count++] = (archive){copy, size};
  return LS_OK;
}

/* Collects the payload's regular files as candidates: what the scan lists
 * (library/layout.h), so reserved names, including the intent's .tmp, and
 * what lies deeper than the path rule allows are left out. */
static int collect_visit(void *ctx, const ls_walk_entry *e, ls_diag *diag)
{
  archive_list *l = ctx;
  if (ls_layout_check_payload_path(e->path, NULL) != LS_OK)
    return LS_WALK_SKIP;
  if (e->type != LS_WALK_FILE)
    return LS_OK;
  if (archives_push(l, e->path, (uint64_t)e->st->st_size) != LS_OK)
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  return LS_OK;
}

static int archive_cmp(const void *a, const void *b)
{
  return strcmp(((const archive *)a)->rel, ((const archive *)b)->rel);
}

/* The archives to extract, sorted by relative path; first volumes only, as
 * the unpacker's is_archive decides. */
static int list_archives(const root *r, const ls_unpacker *u, archive_list *out, ls_diag *diag)
{
  archive_list all = {0};
  memset(out, 0, sizeof *out);
  int rc = ls_walk(r->fd, NULL, LS_WALK_SKIP_DEEP, collect_visit, &all, diag);
  if (rc == LS_OK)
    qsort(all.items, all.count, sizeof *all.items, archive_cmp);
  for (size_t i = 0; rc == LS_OK && i < all.count; i++) {
    char path[PATH_MAX];
    out->payload += all.items[i].size;
    if (u->is_archive(u->self, path_in(r, all.items[i].rel, path)) &&
        archives_push(out, all.items[i].rel, all.items[i].size) != LS_OK)
      rc = ls_diag_set(diag, LS_ENOMEM, "out of memory");
  }
  archives_free(&all);
  if (rc == LS_OK && out->count == 0)
    rc = ls_diag_set(diag, LS_ENOENT, "%s: no archive to install", r->path);
  if (rc != LS_OK)
    archives_free(out);
  return rc;
}

/* ---- extraction ------------------------------------------------------------ */

typedef struct progress {
  ls_install_progress_cb cb;
  void *user;
  uint64_t total, before, current_size, reported;
} progress;

static bool progress_report(progress *p, uint64_t done)
{
  if (done < p->reported)
    done = p->reported;
  p->reported = done;
  return p->cb ? p->cb(p->user, done, p->total) : true;
}

static bool on_unpack_progress(void *user, uint64_t bytes_done)
{
  progress *p = user;
  uint64_t capped = bytes_done < p->current_size ? bytes_done : p->current_size;
  return progress_report(p, p->before + capped);
}

/* One transaction in flight. */
typedef struct txn {
  root r;
  const char *id;
  ls_txn_op op;
  char *from, *to;
} txn;

/* Extracts every archive into .local.installing/ under one set of
 * extraction limits for the game (install/unpack_limits.h), scaled by the
 * payload's bytes: a limit refused fails the install like any error. */
static int extract_archives(txn *t, const ls_unpacker *u, const archive_list *l, progress *p,
                            ls_diag *diag)
{
  char dest[PATH_MAX];
  path_in(&t->r, LS_INSTALLING_DIR, dest);
  ls_unpack_limits limits;
  int rc = ls_unpack_limits_begin(&limits, NULL, dest, l->payload, diag);
  for (size_t i = 0; rc == LS_OK && i < l->count; i++) {
    char path[PATH_MAX];
    p->current_size = l->items[i].size;
    rc = u->unpack(u->self, path_in(&t->r, l->items[i].rel, path), dest, &limits,
                   on_unpack_progress, p, diag);
    if (rc != LS_OK)
      return rc;
    p->before += l->items[i].size;
    if (!progress_report(p, p->before))
      return ls_diag_set(diag, LS_ECANCELED, "%s: install cancelled", t->r.path);
    char name[48];
    snprintf(name, sizeof name, "archive-%zu-extracted", i + 1);
    step(t->op, name);
  }
  return rc;
}

/* Writes the intent, then builds the complete new tree in a marked
 * .local.installing/ and makes it durable. */
static int build_new_tree(txn *t, const ls_unpacker *u, const archive_list *l, progress *p,
                          ls_diag *diag)
{
  char path[PATH_MAX];
  int rc = intent_write(&t->r, t->id, t->op, LS_TXN_PHASE_EXTRACTING, t->from, t->to, diag);
  if (rc != LS_OK)
    return rc;
  step(t->op, "intent-written");
  if (mkdirat(t->r.fd, LS_INSTALLING_DIR, 0755) != 0)
    return ls_diag_errno(diag, errno, "cannot create", path_in(&t->r, LS_INSTALLING_DIR, path));
  rc = mark_dir(&t->r, LS_INSTALLING_DIR, diag);
  if (rc == LS_OK)
    rc = fsync_root(&t->r, diag);
  if (rc != LS_OK)
    return rc;
  step(t->op, "installing-created");
  if (!progress_report(p, 0))
    return ls_diag_set(diag, LS_ECANCELED, "%s: install cancelled", t->r.path);
  rc = extract_archives(t, u, l, p, diag);
  if (rc == LS_OK)
    rc = ls_fsync_tree_at(t->r.fd, LS_INSTALLING_DIR, diag); /* libarchive never fsyncs */
  if (rc == LS_OK)
    step(t->op, "tree-synced");
  return rc;
}

/* Moves the finished .local.installing/ to local/: the marker goes first
 * (the intent still proves ownership), then the rename. */
static int commit_new_tree(txn *t, ls_diag *diag)
{
  int rc = unmark_dir(&t->r, LS_INSTALLING_DIR, diag);
  if (rc != LS_OK)
    return rc;
  step(t->op, "installing-unmarked");
  rc = move_entry(&t->r, LS_INSTALLING_DIR, LS_LOCAL_DIR, diag);
  if (rc == LS_OK)
    step(t->op, "local-committed");
  return rc;
}

/* Moves the old local/ aside as the marked .local.backup/. */
static int park_old_tree(txn *t, ls_diag *diag)
{
  int rc = move_entry(&t->r, LS_LOCAL_DIR, LS_BACKUP_DIR, diag);
  if (rc != LS_OK)
    return rc;
  step(t->op, "local-moved-to-backup");
  rc = mark_dir(&t->r, LS_BACKUP_DIR, diag);
  if (rc == LS_OK)
    step(t->op, "backup-marked");
  return rc;
}

/* After the commit point: the cleanup. A failure is reported in the diag
 * but the operation stands (recovery finishes it). */
static int finish_after_commit(txn *t, ls_diag *diag)
{
  ls_diag why;
  int rc = LS_OK;
  if (t->op != LS_TXN_OP_INSTALL) {
    rc = remove_entry(&t->r, LS_BACKUP_DIR, &why);
    if (rc == LS_OK)
      step(t->op, "backup-deleted");
  }
  if (rc == LS_OK)
    rc = intent_clear(&t->r, &why);
  if (rc == LS_OK) {
    step(t->op, "intent-cleared");
    if (diag)
      diag->text[0] = '\0';
    return LS_OK;
  }
  ls_diag_set(diag, rc, "%s: %s done, but its cleanup failed (finished at next start): %s",
              t->r.path, op_names[t->op], why.text);
  return LS_OK;
}

/* A failure before the commit point: recovery rolls back (or forward when
 * the failure came after it); the original diag is kept. */
static int fail(txn *t, int rc)
{
  ls_txn_recovery_report rep;
  ls_diag ignored;
  recover_root(&t->r, &rep, &ignored);
  return rc;
}

static int run_install(txn *t, const ls_unpacker *u, const archive_list *l, progress *p,
                       ls_diag *diag)
{
  int rc = build_new_tree(t, u, l, p, diag);
  if (rc == LS_OK)
    rc = commit_new_tree(t, diag);
  if (rc != LS_OK)
    return fail(t, rc);
  return finish_after_commit(t, diag);
}

static int run_update(txn *t, const ls_unpacker *u, const archive_list *l, progress *p,
                      ls_diag *diag)
{
  int rc = build_new_tree(t, u, l, p, diag);
  if (rc == LS_OK)
    rc = intent_write(&t->r, t->id, t->op, LS_TXN_PHASE_SWAPPING, t->from, t->to, diag);
  if (rc == LS_OK) {
    step(t->op, "intent-swapping");
    rc = park_old_tree(t, diag);
  }
  if (rc == LS_OK)
    rc = commit_new_tree(t, diag);
  if (rc != LS_OK)
    return fail(t, rc);
  return finish_after_commit(t, diag);
}

static void txn_free(txn *t)
{
  root_close(&t->r);
  free(t->from);
  free(t->to);
}

/* ---- operations ------------------------------------------------------------ */

static int open_for_install(const char *game_dir, const char *id, txn *t, ls_diag *diag)
{
  memset(t, 0, sizeof *t);
  t->id = id;
  int rc = root_open(game_dir, id, &t->r, diag);
  if (rc == LS_ENOENT)
    return ls_diag_set(diag, LS_ENOENT, "%s/%s: not downloaded", game_dir, id);
  if (rc == LS_OK)
    rc = settle_and_check(&t->r, diag);
  if (rc == LS_OK)
    rc = check_no_download(&t->r, diag);
  if (rc == LS_OK)
    rc = read_version(&t->r, &t->to, diag);
  if (rc != LS_OK)
    return rc;
  entry_kind local = entry_at(t->r.fd, LS_LOCAL_DIR);
  if (local == ENTRY_OTHER)
    return ls_diag_set(diag, LS_ESTATE, "%s/%s is not a directory: move or delete it first",
                       t->r.path, LS_LOCAL_DIR);
  t->op = local == ENTRY_DIR ? LS_TXN_OP_UPDATE : LS_TXN_OP_INSTALL;
  return LS_OK;
}

int ls_install_game(const char *game_dir, const char *id, const ls_unpacker *unpacker,
                    ls_install_progress_cb progress_cb, void *progress_user, ls_diag *diag)
{
  if (diag)
    diag->text[0] = '\0';
  txn t;
  archive_list l = {0};
  int rc = open_for_install(game_dir, id, &t, diag);
  if (rc == LS_OK)
    rc = list_archives(&t.r, unpacker, &l, diag);
  if (rc == LS_OK) {
    progress p = {.cb = progress_cb, .user = progress_user};
    for (size_t i = 0; i < l.count; i++)
      p.total += l.items[i].size;
    rc = t.op == LS_TXN_OP_UPDATE ? run_update(&t, unpacker, &l, &p, diag)
                                  : run_install(&t, unpacker, &l, &p, diag);
  }
  archives_free(&l);
  txn_free(&t);
  return rc;
}

/* After the commit point of an uninstall: the marker is extra proof for a
 * recovery that finds the intent unreadable; the deletion follows even if
 * marking failed (the intent proves the backup ours). */
static int finish_uninstall(txn *t, ls_diag *diag)
{
  step(t->op, "local-moved-to-backup");
  ls_diag ignored;
  if (mark_dir(&t->r, LS_BACKUP_DIR, &ignored) == LS_OK)
    step(t->op, "backup-marked");
  return finish_after_commit(t, diag);
}

int ls_uninstall_game(const char *game_dir, const char *id, ls_diag *diag)
{
  if (diag)
    diag->text[0] = '\0';
  txn t;
  memset(&t, 0, sizeof t);
  t.id = id;
  t.op = LS_TXN_OP_UNINSTALL;
  int rc = root_open(game_dir, id, &t.r, diag);
  if (rc == LS_ENOENT)
    rc = ls_diag_set(diag, LS_ENOENT, "%s/%s: not installed (no game root)", game_dir, id);
  if (rc == LS_OK)
    rc = settle_and_check(&t.r, diag);
  if (rc == LS_OK && entry_at(t.r.fd, LS_LOCAL_DIR) != ENTRY_DIR)
    rc = ls_diag_set(diag, LS_ESTATE, "%s: not installed (no %s/ directory)", t.r.path,
                     LS_LOCAL_DIR);
  if (rc == LS_OK) {
    read_version(&t.r, &t.from, NULL); /* best effort: the intent's "from" */
    rc = intent_write(&t.r, id, t.op, LS_TXN_PHASE_REMOVING, t.from, NULL, diag);
    if (rc == LS_OK) {
      step(t.op, "intent-written");
      rc = move_entry(&t.r, LS_LOCAL_DIR, LS_BACKUP_DIR, diag); /* the commit point */
      rc = rc == LS_OK ? finish_uninstall(&t, diag) : fail(&t, rc);
    }
  }
  txn_free(&t);
  return rc;
}

/* Refusals of remove-downloaded that need the open root. */
static int check_removable(const root *r, ls_diag *diag)
{
  if (entry_at(r->fd, LS_LOCAL_DIR) != ENTRY_ABSENT)
    return ls_diag_set(diag, LS_ESTATE, "%s: installed: uninstall it first", r->path);
  if (entry_at(r->fd, LS_INSTALLING_DIR) != ENTRY_ABSENT ||
      entry_at(r->fd, LS_BACKUP_DIR) != ENTRY_ABSENT ||
      entry_at(r->fd, LS_INTENT_FILE) != ENTRY_ABSENT)
    return ls_diag_set(diag, LS_ESTATE, "%s: an install is in flight or unfinished", r->path);
  int rc = check_no_download(r, diag);
  if (rc != LS_OK)
    return rc;
  if (!ls_is_regular_at(r->fd, LS_VERSION_FILE))
    return ls_diag_set(diag, LS_ESTATE, "%s: not downloaded (no regular %s)", r->path,
                       LS_VERSION_FILE);
  return LS_OK;
}

int ls_remove_downloaded_game(const char *game_dir, const struct ls_catalog *catalog,
                              const char *id, ls_diag *diag)
{
  if (diag)
    diag->text[0] = '\0';
  if (catalog && ls_catalog_id_is_safe(id) && !ls_catalog_find(catalog, id))
    return ls_diag_set(diag, LS_ENOENT, "\"%s\" is not a catalog game", id);
  root r;
  int rc = root_open(game_dir, id, &r, diag);
  if (rc == LS_ENOENT)
    return ls_diag_set(diag, LS_ENOENT, "%s/%s: not downloaded", game_dir, id);
  if (rc == LS_OK)
    rc = check_removable(&r, diag);
  if (rc == LS_OK) {
    int game_fd = open(game_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (game_fd < 0)
      rc = ls_diag_errno(diag, errno, "cannot open", game_dir);
    /* The root was checked through r.fd; make sure the name still is it. */
    struct stat a, b;
    if (rc == LS_OK && (fstat(r.fd, &a) != 0 || fstatat(game_fd, id, &b, AT_SYMLINK_NOFOLLOW) != 0 ||
                        a.st_ino != b.st_ino || a.st_dev != b.st_dev))
      rc = ls_diag_set(diag, LS_ESTATE, "%s changed while being removed", r.path);
    if (rc == LS_OK)
      rc = ls_rmtree_at(game_fd, id, diag);
    if (rc == LS_OK && fsync(game_fd) != 0)
      rc = ls_diag_errno(diag, errno, "cannot fsync", game_dir);
    if (game_fd >= 0)
      close(game_fd);
  }
  root_close(&r);
  return rc;
}
