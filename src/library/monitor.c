/* Owns the local game monitor (library/monitor.h): the local library
 * snapshot, the library index, the inotify watches on GAME_DIR and on each
 * game root, the set of ids waiting for a rescan, and the operation gate.
 *
 * Threads: everything here runs on the loop thread except scan_job_run,
 * which runs on a libuv worker. At most one scan job runs at a time and
 * only that job touches the index while it runs; the library snapshot is
 * touched only on the loop thread. */
#include "library/monitor.h"

#include "core/array.h"
#include "core/error.h"
#include "core/walk.h"
#include "library/index.h"
#include "library/layout.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_DEBOUNCE_MS 150
#define DEFAULT_FALLBACK_MS 300000

/* A set of game ids (small: a catalog's worth at most). */
typedef struct idset {
  size_t count, cap;
  char **ids;
} idset;

/* An inotify watch on one game root. Heap-allocated: libuv handles must not
 * move while open. */
typedef struct root_watch {
  uv_fs_event_t handle;
  ls_monitor *monitor;
  char *id;
  uint64_t ino;
  struct root_watch *next;
} root_watch;

/* One rescan, prepared on the loop, run on a worker, merged on the loop. */
typedef struct scan_result {
  char *id;
  int rc;             /* LS_OK, LS_ENOENT (root gone) or an error */
  uint64_t root_ino;
  ls_local_game game;
} scan_result;

typedef struct scan_job {
  uv_work_t work;
  ls_monitor *monitor;
  bool full;          /* list GAME_DIR for more ids before scanning */
  bool deep;
  size_t count;
  scan_result *results;
  idset extra_ids;    /* full scans: ids found in GAME_DIR by the worker */
  int save_rc;
  ls_diag diag;
} scan_job;

/* A caller waiting for a refresh of one id (ls_monitor_refresh). */
typedef struct refresh_waiter {
  struct refresh_waiter *next;
  char *id;
  bool queued;        /* its id went into a job that has started */
  void (*done)(void *user);
  void *user;
} refresh_waiter;

/* A caller waiting for the index (ls_monitor_with_index). */
typedef struct index_waiter {
  struct index_waiter *next;
  ls_monitor_index_fn fn;
  void *user;
} index_waiter;

struct ls_monitor {
  uv_loop_t *loop;
  char *game_dir, *state_dir;
  const ls_catalog *catalog;
  ls_index *index;    /* NULL until the first job opened it */
  ls_library library;
  unsigned debounce_ms, fallback_ms;
  ls_monitor_change_cb on_change;
  void *user;

  uv_fs_event_t dir_watch;
  root_watch *watches;
  uv_timer_t debounce, fallback;

  idset pending;      /* ids to rescan at the next job */
  idset held;         /* ids that changed while an operation runs on them */
  idset active;       /* ids with an operation running */
  idset forced;       /* ids to rescan even while active (refreshes) */
  refresh_waiter *refreshes;
  bool full_pending, deep_pending;
  bool save_pending;  /* the index changed outside a scan job */
  scan_job *job;      /* the running job, or NULL */
  bool deferred;      /* no job before ls_monitor_start_scanning */
  uv_work_t final_save; /* at close, on the pool: the index's last save */
  bool saving, saved;
  index_waiter *waiters, *waiters_tail;

  bool closing;
  int open_handles;
  void (*close_done)(void *);
  void *close_user;
  ls_monitor_stats stats;
};

/* ---- id sets ------------------------------------------------------------ */

static bool idset_has(const idset *s, const char *id)
{
  for (size_t i = 0; i < s->count; i++)
    if (strcmp(s->ids[i], id) == 0)
      return true;
  return false;
}

static int idset_add(idset *s, const char *id)
{
  if (idset_has(s, id))
    return LS_OK;
  char **ids = ls_array_reserve(s->ids, &s->cap, s->count + 1, sizeof *ids);
  if (!ids)
    return LS_ENOMEM;
  s->ids = ids;
  if (!(s->ids[s->count] = strdup(id)))
    return LS_ENOMEM;
  s->count++;
  return LS_OK;
}

static void idset_del(idset *s, const char *id)
{
  for (size_t i = 0; i < s->count; i++)
    if (strcmp(s->ids[i], id) == 0) {
      free(s->ids[i]);
      s->ids[i] = s->ids[--s->count];
      return;
    }
}

static void idset_clear(idset *s)
{
  for (size_t i = 0; i < s->count; i++)
    free(s->ids[i]);
  free(s->ids);
  memset(s, 0, sizeof *s);
}

/* ---- comparing snapshots -------------------------------------------- */

static bool same_str(const char *a, const char *b)
{
  return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool same_game(const ls_local_game *a, const ls_local_game *b)
{
  if (!a || !b)
    return a == b;
  if (a->downloaded != b->downloaded || a->installed != b->installed ||
      !same_str(a->version, b->version) || a->size != b->size || a->file_count != b->file_count)
    return false;
  for (size_t i = 0; i < a->file_count; i++)
    if (a->files[i].size != b->files[i].size || strcmp(a->files[i].path, b->files[i].path))
      return false;
  return true;
}

/* ---- the scan job (worker thread) --------------------------------- */

/* Full scans: every catalog child of GAME_DIR joins the job (its scan
 * decides whether it is a game root). */
static int list_child(void *ctx, const ls_walk_entry *e, ls_diag *diag)
{
  scan_job *job = ctx;
  (void)diag;
  if (ls_catalog_find(job->monitor->catalog, e->name))
    idset_add(&job->extra_ids, e->name);
  return LS_WALK_SKIP;
}

static void list_game_dir(scan_job *job, int dir_fd)
{
  ls_walk(dir_fd, NULL, 0, list_child, job, NULL);
}

static void scan_one(scan_job *job, int dir_fd, scan_result *r)
{
  struct stat st;
  if (fstatat(dir_fd, r->id, &st, AT_SYMLINK_NOFOLLOW) == 0)
    r->root_ino = (uint64_t)st.st_ino;
  r->rc = ls_scan_game(dir_fd, r->id, job->monitor->index, job->deep, &r->game, NULL,
                       &job->diag);
}

/* Appends the worker-found ids that the loop did not already ask for. */
static int add_extra_results(scan_job *job)
{
  size_t n = job->count + job->extra_ids.count;
  scan_result *results = realloc(job->results, (n ? n : 1) * sizeof *results);
  if (!results)
    return LS_ENOMEM;
  job->results = results;
  for (size_t i = 0; i < job->extra_ids.count; i++) {
    const char *id = job->extra_ids.ids[i];
    bool known = false;
    for (size_t j = 0; j < job->count && !known; j++)
      known = strcmp(job->results[j].id, id) == 0;
    if (!known) {
      memset(&job->results[job->count], 0, sizeof *job->results);
      job->results[job->count].id = job->extra_ids.ids[i];
      job->extra_ids.ids[i] = NULL;
      job->count++;
    }
  }
  return LS_OK;
}

static void scan_job_run(uv_work_t *work)
{
  scan_job *job = work->data;
  ls_monitor *m = job->monitor;
  /* The index belongs to the running job: a monitor started in the
   * background opens it here, off the loop. */
  if (!m->index && ls_index_open(m->state_dir, &m->index, &job->diag) != LS_OK) {
    for (size_t i = 0; i < job->count; i++)
      job->results[i].rc = LS_ENOMEM;
    return;
  }
  int dir_fd = open(job->monitor->game_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) {
    ls_diag_errno(&job->diag, errno, "cannot open game directory", job->monitor->game_dir);
    for (size_t i = 0; i < job->count; i++)
      job->results[i].rc = LS_EIO;
    return;
  }
  if (job->full) {
    list_game_dir(job, dir_fd);
    add_extra_results(job);
  }
  for (size_t i = 0; i < job->count; i++)
    scan_one(job, dir_fd, &job->results[i]);
  close(dir_fd);
  job->save_rc = ls_index_save(job->monitor->index, &job->diag);
}

static void scan_job_free(scan_job *job)
{
  for (size_t i = 0; i < job->count; i++) {
    free(job->results[i].id);
    ls_local_game_clear(&job->results[i].game);
  }
  free(job->results);
  idset_clear(&job->extra_ids);
  free(job);
}

static void finish_refreshes(ls_monitor *m, bool job_finished);

/* ---- watches ------------------------------------------------------------ */

static void on_watch_closed(uv_handle_t *handle);
static void maybe_finish(ls_monitor *m);
static void on_root_event(uv_fs_event_t *h, const char *name, int events, int status);

static void close_watch(root_watch *w)
{
  w->monitor->open_handles++;
  uv_close((uv_handle_t *)&w->handle, on_watch_closed);
}

static root_watch *unlink_watch(ls_monitor *m, const char *id)
{
  for (root_watch **p = &m->watches; *p; p = &(*p)->next)
    if (strcmp((*p)->id, id) == 0) {
      root_watch *w = *p;
      *p = w->next;
      return w;
    }
  return NULL;
}

/* Makes the watches match the scan: one per existing root, re-made when the
 * root was replaced by another directory of the same name. */
static void update_watch(ls_monitor *m, const scan_result *r)
{
  root_watch *w = unlink_watch(m, r->id);
  bool exists = r->rc != LS_ENOENT && r->root_ino != 0;
  if (w && exists && w->ino == r->root_ino) {
    w->next = m->watches;
    m->watches = w;
    return;
  }
  if (w)
    close_watch(w);
  if (!exists || m->closing)
    return;
  w = calloc(1, sizeof *w);
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", m->game_dir, r->id);
  if (!w || !(w->id = strdup(r->id)) || uv_fs_event_init(m->loop, &w->handle) != 0) {
    if (w)
      free(w->id);
    free(w);
    return;
  }
  w->monitor = m;
  w->ino = r->root_ino;
  w->handle.data = w;
  if (uv_fs_event_start(&w->handle, on_root_event, path, 0) != 0) {
    close_watch(w);
    return;
  }
  w->next = m->watches;
  m->watches = w;
}

/* ---- scheduling ------------------------------------------------------- */

static void start_job(ls_monitor *m);

static void on_debounce(uv_timer_t *t)
{
  start_job(t->data);
}

static void schedule(ls_monitor *m, unsigned delay_ms)
{
  if (m->closing)
    return;
  if (delay_ms == 0 || !uv_is_active((uv_handle_t *)&m->debounce))
    uv_timer_start(&m->debounce, on_debounce, delay_ms, 0);
}

static void mark_changed(ls_monitor *m, const char *id)
{
  if (idset_has(&m->active, id)) {
    idset_add(&m->held, id);
    return;
  }
  idset_add(&m->pending, id);
  m->deep_pending = true; /* in-place edits keep directory stamps: stat files */
  schedule(m, m->debounce_ms);
}

static void on_dir_event(uv_fs_event_t *h, const char *name, int events, int status)
{
  ls_monitor *m = h->data;
  (void)events;
  m->stats.events++;
  if (status < 0 || !name) {
    m->full_pending = true;
    schedule(m, m->debounce_ms);
    return;
  }
  if (!ls_catalog_find(m->catalog, name)) {
    m->stats.events_ignored++;
    return;
  }
  mark_changed(m, name);
}

static void on_root_event(uv_fs_event_t *h, const char *name, int events, int status)
{
  root_watch *w = h->data;
  ls_monitor *m = w->monitor;
  (void)events;
  m->stats.events++;
  if (status == 0 && name && ls_layout_is_quiet(name)) {
    m->stats.events_ignored++;
    return;
  }
  mark_changed(m, w->id);
}

static void on_fallback(uv_timer_t *t)
{
  ls_monitor *m = t->data;
  m->full_pending = true;
  m->deep_pending = true;
  schedule(m, 0);
}

/* Moves the pending ids into a new job; NULL when there is nothing to do. */
static scan_job *take_pending(ls_monitor *m)
{
  if (!m->full_pending && m->pending.count == 0 && !m->save_pending)
    return NULL;
  scan_job *job = calloc(1, sizeof *job);
  idset ids = {0};
  if (m->full_pending) { /* also rescan what we know, to notice removals */
    for (size_t i = 0; i < m->library.count; i++)
      idset_add(&ids, m->library.games[i].id);
    for (root_watch *w = m->watches; w; w = w->next)
      idset_add(&ids, w->id);
  }
  for (size_t i = 0; i < m->pending.count; i++)
    if (!idset_has(&m->active, m->pending.ids[i]) || idset_has(&m->forced, m->pending.ids[i]))
      idset_add(&ids, m->pending.ids[i]);
  for (refresh_waiter *w = m->refreshes; w; w = w->next)
    w->queued = w->queued || idset_has(&ids, w->id);
  if (job)
    job->results = calloc(ids.count ? ids.count : 1, sizeof *job->results);
  if (!job || !job->results) {
    free(job);
    idset_clear(&ids);
    return NULL; /* out of memory: the fallback scan will retry */
  }
  for (size_t i = 0; i < ids.count; i++)
    job->results[i].id = ids.ids[i];
  job->count = ids.count;
  free(ids.ids);
  job->monitor = m;
  job->full = m->full_pending;
  job->deep = m->deep_pending;
  job->work.data = job;
  idset_clear(&m->pending);
  m->full_pending = m->deep_pending = m->save_pending = false;
  return job;
}

static void on_job_done(uv_work_t *work, int status);

/* Hands the index to everyone waiting for it; loop thread, no job running,
 * and the index opened (or the monitor closing: they get NULL). */
static void serve_waiters(ls_monitor *m)
{
  while (m->waiters && !m->job && (m->index || m->closing)) {
    index_waiter *w = m->waiters;
    m->waiters = w->next;
    if (!m->waiters)
      m->waiters_tail = NULL;
    w->fn(w->user, m->closing ? NULL : m->index);
    free(w);
  }
}

static void start_job(ls_monitor *m)
{
  if (m->job || m->closing || m->deferred)
    return; /* on_job_done starts the next one */
  serve_waiters(m);
  scan_job *job = take_pending(m);
  if (!job)
    return;
  m->job = job;
  if (uv_queue_work(m->loop, &job->work, scan_job_run, on_job_done) != 0) {
    m->job = NULL;
    scan_job_free(job);
  }
}

/* Puts one result into the snapshot; returns true when the entry changed. */
static bool merge_result(ls_monitor *m, scan_result *r)
{
  if (r->rc != LS_OK && r->rc != LS_ENOENT)
    return false; /* keep the last good state; the next event retries */
  if (idset_has(&m->active, r->id) && !idset_has(&m->forced, r->id)) {
    idset_add(&m->held, r->id); /* an operation began meanwhile: redo later */
    return false;
  }
  const ls_local_game *old = ls_library_find(&m->library, r->id);
  bool present = r->rc == LS_OK && ls_local_game_is_present(&r->game);
  if (same_game(old, present ? &r->game : NULL))
    return false;
  if (r->rc == LS_ENOENT)
    r->game.id = strdup(r->id); /* an id-only entry removes the game */
  return r->game.id && ls_library_put(&m->library, &r->game) == LS_OK;
}

static void on_job_done(uv_work_t *work, int status)
{
  scan_job *job = work->data;
  ls_monitor *m = job->monitor;
  m->job = NULL;
  m->stats.scans++;
  m->stats.ids_rescanned += (unsigned)job->count;
  const char **changed = calloc(job->count ? job->count : 1, sizeof *changed);
  size_t n = 0;
  for (size_t i = 0; status == 0 && i < job->count; i++) {
    scan_result *r = &job->results[i];
    if (!m->closing)
      update_watch(m, r);
    if (merge_result(m, r) && changed)
      changed[n++] = r->id;
  }
  if (job->save_rc != LS_OK)
    fprintf(stderr, "lanspread: library index not saved: %s\n", job->diag.text);
  if (n && m->on_change && !m->closing)
    m->on_change(m->user, &m->library, changed, n);
  free(changed);
  scan_job_free(job);
  finish_refreshes(m, true);
  serve_waiters(m);
  if (m->closing)
    maybe_finish(m);
  else
    start_job(m);
}

/* ---- refreshes ------------------------------------------------------------ */

/* Calls back the refreshes whose job has finished (all of them when the
 * monitor is closing). */
static void finish_refreshes(ls_monitor *m, bool job_finished)
{
  refresh_waiter **p = &m->refreshes;
  while (*p) {
    refresh_waiter *w = *p;
    if (!m->closing && !(job_finished && w->queued)) {
      p = &w->next;
      continue;
    }
    *p = w->next;
    idset_del(&m->forced, w->id);
    w->done(w->user);
    free(w->id);
    free(w);
  }
}

int ls_monitor_refresh(ls_monitor *m, const char *id, void (*done)(void *user), void *user)
{
  refresh_waiter *w = calloc(1, sizeof *w);
  if (!w || !(w->id = strdup(id)) || idset_add(&m->forced, id) != LS_OK ||
      idset_add(&m->pending, id) != LS_OK) {
    if (w)
      free(w->id);
    free(w);
    return LS_ENOMEM;
  }
  w->done = done;
  w->user = user;
  w->next = m->refreshes;
  m->refreshes = w;
  m->deep_pending = true;
  if (m->closing)
    finish_refreshes(m, false);
  else
    schedule(m, 0);
  return LS_OK;
}

/* ---- operation gate --------------------------------------------------- */

void ls_monitor_begin_operation(ls_monitor *m, const char *id)
{
  idset_add(&m->active, id);
  idset_del(&m->pending, id);
}

void ls_monitor_end_operation(ls_monitor *m, const char *id)
{
  idset_del(&m->active, id);
  idset_del(&m->held, id);
  idset_add(&m->pending, id);
  m->deep_pending = true;
  schedule(m, 0);
}

bool ls_monitor_is_busy(const ls_monitor *m, const char *id)
{
  return idset_has(&m->active, id);
}

bool ls_monitor_any_busy(const ls_monitor *m)
{
  return m->active.count > 0;
}

void ls_monitor_rescan(ls_monitor *m, const char *id)
{
  if (id)
    idset_add(&m->pending, id);
  else
    m->full_pending = true;
  schedule(m, 0);
}

const ls_library *ls_monitor_library(const ls_monitor *m)
{
  return &m->library;
}

int ls_monitor_with_index(ls_monitor *m, ls_monitor_index_fn fn, void *user)
{
  if (!m->job && (m->index || m->closing)) {
    fn(user, m->closing ? NULL : m->index);
    return LS_OK;
  }
  index_waiter *w = calloc(1, sizeof *w);
  if (!w)
    return LS_ENOMEM;
  w->fn = fn;
  w->user = user;
  if (m->waiters_tail)
    m->waiters_tail->next = w;
  else
    m->waiters = w;
  m->waiters_tail = w;
  return LS_OK;
}

void ls_monitor_start_scanning(ls_monitor *m)
{
  if (!m->deferred)
    return;
  m->deferred = false;
  schedule(m, 0);
}

void ls_monitor_index_changed(ls_monitor *m)
{
  m->save_pending = true;
  schedule(m, m->debounce_ms);
}

ls_monitor_stats ls_monitor_get_stats(const ls_monitor *m)
{
  return m->stats;
}

/* ---- start and close ------------------------------------------------------ */

/* In the background the first job opens the index and scans everything;
 * otherwise both happen here, on the caller's thread. */
static int first_scan(ls_monitor *m, bool in_background, ls_diag *diag)
{
  if (in_background) {
    struct stat st;
    if (stat(m->game_dir, &st) != 0)
      return ls_diag_errno(diag, errno, "cannot open game directory", m->game_dir);
    m->full_pending = true;
    return LS_OK;
  }
  int rc = ls_index_open(m->state_dir, &m->index, diag);
  if (rc == LS_OK)
    rc = ls_scan_local_library(m->game_dir, m->catalog, m->index, false, &m->library, NULL,
                               diag);
  ls_diag save_diag;
  if (rc == LS_OK && ls_index_save(m->index, &save_diag) != LS_OK)
    fprintf(stderr, "lanspread: library index not saved: %s\n", save_diag.text);
  return rc;
}

/* Watches every existing catalog root; called once the first scan is in. */
static void watch_existing_roots(ls_monitor *m)
{
  for (size_t i = 0; i < ls_catalog_count(m->catalog); i++) {
    const char *id = ls_catalog_at(m->catalog, i)->id;
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", m->game_dir, id);
    if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
      scan_result r = {.id = (char *)id, .rc = LS_OK, .root_ino = (uint64_t)st.st_ino};
      update_watch(m, &r);
    }
  }
}

static int start_handles(ls_monitor *m, ls_diag *diag)
{
  uv_timer_init(m->loop, &m->debounce);
  uv_timer_init(m->loop, &m->fallback);
  uv_fs_event_init(m->loop, &m->dir_watch);
  m->debounce.data = m->fallback.data = m->dir_watch.data = m;
  int e = uv_fs_event_start(&m->dir_watch, on_dir_event, m->game_dir, 0);
  if (e != 0)
    return ls_diag_set(diag, LS_EIO, "cannot watch %s: %s", m->game_dir, uv_strerror(e));
  uv_timer_start(&m->fallback, on_fallback, m->fallback_ms, m->fallback_ms);
  if (m->full_pending && !m->deferred)
    schedule(m, 0); /* the background first scan; its results set the watches */
  else
    watch_existing_roots(m);
  return LS_OK;
}

int ls_monitor_start(const ls_monitor_config *config, ls_monitor **out, ls_diag *diag)
{
  *out = NULL;
  ls_monitor *m = calloc(1, sizeof *m);
  if (!m || !(m->game_dir = strdup(config->game_dir)) ||
      !(m->state_dir = strdup(config->state_dir))) {
    if (m)
      free(m->game_dir);
    free(m);
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  }
  m->deferred = config->scan_in_background && config->defer_first_scan;
  m->loop = config->loop;
  m->catalog = config->catalog;
  m->debounce_ms = config->debounce_ms ? config->debounce_ms : DEFAULT_DEBOUNCE_MS;
  m->fallback_ms = config->fallback_scan_ms ? config->fallback_scan_ms : DEFAULT_FALLBACK_MS;
  m->on_change = config->on_change;
  m->user = config->user;
  int rc = first_scan(m, config->scan_in_background, diag);
  if (rc == LS_OK)
    rc = start_handles(m, diag);
  if (rc != LS_OK && m->debounce.loop) {
    ls_monitor_close(m, NULL, NULL); /* handles exist: close them through the loop */
    return rc;
  }
  if (rc != LS_OK) {
    ls_library_clear(&m->library);
    ls_index_free(m->index);
    free(m->game_dir);
    free(m->state_dir);
    free(m);
    return rc;
  }
  *out = m;
  return LS_OK;
}

static void monitor_free(ls_monitor *m)
{
  void (*done)(void *) = m->close_done;
  void *user = m->close_user;
  ls_library_clear(&m->library);
  ls_index_free(m->index);
  idset_clear(&m->pending);
  idset_clear(&m->held);
  idset_clear(&m->active);
  idset_clear(&m->forced);
  free(m->game_dir);
  free(m->state_dir);
  free(m);
  if (done)
    done(user);
}

/* The last save (hashes stored since the last job), on the pool. */
static void final_save_run(uv_work_t *work)
{
  ls_monitor *m = work->data;
  ls_diag diag;
  if (ls_index_save(m->index, &diag) != LS_OK)
    fprintf(stderr, "lanspread: library index not saved: %s\n", diag.text);
}

static void final_save_done(uv_work_t *work, int status)
{
  ls_monitor *m = work->data;
  (void)status;
  m->saving = false;
  maybe_finish(m);
}

static bool start_final_save(ls_monitor *m)
{
  m->saved = true;
  m->final_save.data = m;
  m->saving = uv_queue_work(m->loop, &m->final_save, final_save_run, final_save_done) == 0;
  return m->saving;
}

/* Frees the monitor once closing and nothing is left open or running. */
static void maybe_finish(ls_monitor *m)
{
  if (!m->closing || m->open_handles || m->job || m->saving)
    return;
  if (m->index && !m->saved && start_final_save(m))
    return;
  monitor_free(m);
}

static void on_monitor_handle_closed(uv_handle_t *handle)
{
  ls_monitor *m = handle->data;
  m->open_handles--;
  maybe_finish(m);
}

static void on_watch_closed(uv_handle_t *handle)
{
  root_watch *w = handle->data;
  ls_monitor *m = w->monitor;
  free(w->id);
  free(w);
  m->open_handles--;
  maybe_finish(m);
}

void ls_monitor_close(ls_monitor *m, void (*done)(void *user), void *user)
{
  m->closing = true;
  m->close_done = done;
  m->close_user = user;
  uv_handle_t *own[] = {(uv_handle_t *)&m->dir_watch, (uv_handle_t *)&m->debounce,
                        (uv_handle_t *)&m->fallback};
  for (size_t i = 0; i < 3; i++) {
    m->open_handles++;
    uv_close(own[i], on_monitor_handle_closed);
  }
  while (m->watches)
    close_watch(unlink_watch(m, m->watches->id));
  if (m->job)
    uv_cancel((uv_req_t *)&m->job->work); /* fails harmlessly once running */
  else
    serve_waiters(m); /* with a NULL index: they clean up */
  finish_refreshes(m, false);
}
