/* The local game monitor: owns the local library snapshot and keeps it in
 * step with GAME_DIR.
 *
 * It watches GAME_DIR and each catalog game root non-recursively (inotify via
 * uv_fs_event), collects the ids that changed, waits for the burst to settle
 * (debounce), and rescans just those ids on a worker thread. Changes to quiet
 * names (install state, version transients, foreign markers) are ignored.
 * While an operation runs on a game, its rescans are held back and run once
 * when the operation ends. A deep fallback scan of everything runs
 * periodically (300 s by default) to catch missed events.
 *
 * All functions run on the loop's thread; the callback is called there too. */
#ifndef LS_LIBRARY_MONITOR_H
#define LS_LIBRARY_MONITOR_H

#include "library/library.h"

#include <uv.h>

typedef struct ls_monitor ls_monitor;

/* The local library changed: `ids` lists the games whose entry changed (added,
 * removed or different). `library` is the new snapshot, valid until the next
 * callback or until the monitor is closed. */
typedef void (*ls_monitor_change_cb)(void *user, const ls_library *library,
                                     const char *const *ids, size_t count);

typedef struct ls_monitor_config {
  uv_loop_t *loop;
  const char *game_dir;
  const char *state_dir;         /* holds the library index */
  const ls_catalog *catalog;     /* must outlive the monitor */
  unsigned debounce_ms;          /* 0: default 150 */
  unsigned fallback_scan_ms;     /* 0: default 300000 */
  bool scan_in_background;       /* see ls_monitor_start */
  /* With scan_in_background: no job (and no index file read) before
   * ls_monitor_start_scanning, e.g. until the monitor that owned the index
   * before (another game directory) has saved it and closed. */
  bool defer_first_scan;
  ls_monitor_change_cb on_change;
  void *user;
} ls_monitor_config;

/* Opens the index and runs the first scan: synchronously, so that
 * ls_monitor_library() is complete as soon as this returns, or with
 * scan_in_background on a worker (the index is opened there too), the
 * library then starting empty and filling through on_change (for a running
 * loop that must not touch the disk). */
int ls_monitor_start(const ls_monitor_config *config, ls_monitor **out, ls_diag *diag);
/* Lets a monitor started with defer_first_scan begin. */
void ls_monitor_start_scanning(ls_monitor *monitor);

/* Stops watching; `done` runs on the loop once every handle is closed,
 * every worker job has returned and the index's last save (on a worker)
 * is done, after which the monitor is freed. */
void ls_monitor_close(ls_monitor *monitor, void (*done)(void *user), void *user);

const ls_library *ls_monitor_library(const ls_monitor *monitor);

/* Operation gating: between begin and end, changes to id are held back;
 * end rescans id once (always, so every terminal branch refreshes it). */
void ls_monitor_begin_operation(ls_monitor *monitor, const char *id);
void ls_monitor_end_operation(ls_monitor *monitor, const char *id);
bool ls_monitor_is_busy(const ls_monitor *monitor, const char *id);
/* Rescans id now, also while an operation runs on it, and calls done once
 * the snapshot holds the result: an operation's terminal branch refreshes
 * the game's local state with this before it ends the operation. When the
 * monitor closes first, done runs then. */
int ls_monitor_refresh(ls_monitor *monitor, const char *id, void (*done)(void *user),
                       void *user);
bool ls_monitor_any_busy(const ls_monitor *monitor);

/* Asks for a rescan of id (or of everything when id is NULL). */
void ls_monitor_rescan(ls_monitor *monitor, const char *id);

/* The library index belongs to the running scan job, or to the loop thread
 * between jobs. fn runs on the loop thread with the index: at once when no
 * job runs, otherwise right after the running one. When the monitor closes
 * first, fn runs with index NULL. After changing the index (say, storing
 * chunk hashes), call ls_monitor_index_changed to have it saved. */
typedef void (*ls_monitor_index_fn)(void *user, ls_index *index);
int ls_monitor_with_index(ls_monitor *monitor, ls_monitor_index_fn fn, void *user);
void ls_monitor_index_changed(ls_monitor *monitor);

/* Counters for tests and benchmarks. */
typedef struct ls_monitor_stats {
  unsigned scans;          /* scan jobs finished */
  unsigned ids_rescanned;  /* game roots rescanned by those jobs */
  unsigned events;         /* fs events received */
  unsigned events_ignored; /* of those, quiet names or non-catalog */
} ls_monitor_stats;
ls_monitor_stats ls_monitor_get_stats(const ls_monitor *monitor);

#endif
