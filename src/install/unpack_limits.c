/* Owns the extraction limits (install/unpack_limits.h): the default rule,
 * the budget of an install from its payload and the destination's free
 * space, and every check the unpacker paths make before they write. */
#include "install/unpack_limits.h"

#include "core/error.h"
#include "core/fs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define MIB (1024.0 * 1024.0)

ls_unpack_rule ls_unpack_rule_default(void)
{
  return (ls_unpack_rule){
    .game_ratio = LS_UNPACK_GAME_RATIO, .game_slack = LS_UNPACK_GAME_SLACK,
    .ratio = LS_UNPACK_RATIO, .ratio_free = LS_UNPACK_RATIO_FREE,
    .max_entries = LS_UNPACK_MAX_ENTRIES, .disk_reserve = LS_UNPACK_DISK_RESERVE,
  };
}

/* a x b + c, saturating at UINT64_MAX. */
static uint64_t mul_add(uint64_t a, uint64_t b, uint64_t c)
{
  if (a != 0 && b > (UINT64_MAX - c) / a)
    return UINT64_MAX;
  return a * b + c;
}


int ls_unpack_limits_begin(ls_unpack_limits *l, const ls_unpack_rule *rule, const char *dest_dir,
                           uint64_t declared, ls_diag *diag)
{
  memset(l, 0, sizeof *l);
  l->rule = rule ? *rule : ls_unpack_rule_default();
  if (snprintf(l->dest, sizeof l->dest, "%s", dest_dir) >= (int)sizeof l->dest)
    return ls_diag_set(diag, LS_EINVAL, "%s: path too long", dest_dir);
  uint64_t avail = 0;
  int rc = ls_free_space(l->dest, &avail, diag);
  if (rc != LS_OK)
    return rc;
  l->declared = declared;
  l->budget = mul_add(l->rule.game_ratio, declared, l->rule.game_slack);
  uint64_t by_space = avail > l->rule.disk_reserve ? avail - l->rule.disk_reserve : 0;
  if (by_space < l->budget) {
    l->budget = by_space;
    l->budget_by_space = true;
  }
  l->next_space_check = LS_UNPACK_SPACE_CHECK;
  return LS_OK;
}

void ls_unpack_limits_archive(ls_unpack_limits *l, uint64_t size)
{
  l->archive_size = size;
  l->archive_base = l->bytes;
  l->archive_data = 0;
  l->archive_read = 0;
}

uint64_t ls_unpack_limits_left(const ls_unpack_limits *l)
{
  return l->bytes < l->budget ? l->budget - l->bytes : 0;
}

static int over_entries(const ls_unpack_limits *l, const char *archive, ls_diag *diag)
{
  return ls_diag_set(diag, LS_ELIMIT,
                     "%s: refused: more than %llu entries for this game (the entry limit)",
                     archive, (unsigned long long)l->rule.max_entries);
}

static int over_budget(const ls_unpack_limits *l, const char *archive, ls_diag *diag)
{
  if (l->budget_by_space)
    return ls_diag_set(diag, LS_ENOSPC,
                       "%s: refused: the game would leave less than %.0f MiB free on the "
                       "filesystem of %s (%.1f MiB may be written)",
                       archive, (double)l->rule.disk_reserve / MIB, l->dest,
                       (double)l->budget / MIB);
  return ls_diag_set(diag, LS_ELIMIT,
                     "%s: refused: the game expands beyond its limit of %.1f MiB "
                     "(%llu x its %.1f MiB of archives + %.0f MiB)",
                     archive, (double)l->budget / MIB, (unsigned long long)l->rule.game_ratio,
                     (double)l->declared / MIB, (double)l->rule.game_slack / MIB);
}

static int over_ratio(const ls_unpack_limits *l, const char *archive, ls_diag *diag)
{
  return ls_diag_set(diag, LS_ELIMIT,
                     "%s: refused: it expands more than %llu:1 (%.1f MiB from %.1f MiB read; "
                     "the expansion limit past the first %.0f MiB)",
                     archive, (unsigned long long)l->rule.ratio,
                     (double)l->archive_data / MIB, (double)l->archive_read / MIB,
                     (double)l->rule.ratio_free / MIB);
}

int ls_unpack_limits_entry(ls_unpack_limits *l, const char *archive, ls_diag *diag)
{
  if (l->entries >= l->rule.max_entries)
    return over_entries(l, archive, diag);
  l->entries++;
  return LS_OK;
}

/* Every LS_UNPACK_SPACE_CHECK bytes: the filesystem still keeps its
 * reserve (a download or another program may write to it too). */
static int check_space(ls_unpack_limits *l, const char *archive, ls_diag *diag)
{
  if (l->bytes < l->next_space_check)
    return LS_OK;
  l->next_space_check = l->bytes + LS_UNPACK_SPACE_CHECK;
  uint64_t avail = 0;
  int rc = ls_free_space(l->dest, &avail, diag);
  if (rc != LS_OK || avail >= l->rule.disk_reserve)
    return rc;
  return ls_diag_set(diag, LS_ENOSPC,
                     "%s: refused: less than %.0f MiB left free on the filesystem of %s",
                     archive, (double)l->rule.disk_reserve / MIB, l->dest);
}

int ls_unpack_limits_grow(ls_unpack_limits *l, const char *archive, uint64_t n, ls_diag *diag)
{
  if (n > ls_unpack_limits_left(l))
    return over_budget(l, archive, diag);
  l->bytes += n;
  return check_space(l, archive, diag);
}

int ls_unpack_limits_data(ls_unpack_limits *l, const char *archive, uint64_t n, uint64_t read,
                          ls_diag *diag)
{
  if (read > l->archive_read)
    l->archive_read = read;
  uint64_t allowed = mul_add(l->rule.ratio, l->archive_read, l->rule.ratio_free);
  if (l->archive_data + n > allowed) {
    l->archive_data += n;
    return over_ratio(l, archive, diag);
  }
  l->archive_data += n;
  return LS_OK;
}

int ls_unpack_limits_observe(ls_unpack_limits *l, const char *archive, uint64_t bytes,
                             uint64_t entries, ls_diag *diag)
{
  if (entries > l->rule.max_entries)
    return over_entries(l, archive, diag);
  if (bytes > l->budget)
    return over_budget(l, archive, diag);
  uint64_t data = bytes > l->archive_base ? bytes - l->archive_base : 0;
  if (data > l->archive_data) {
    int rc = ls_unpack_limits_data(l, archive, data - l->archive_data, l->archive_size, diag);
    if (rc != LS_OK)
      return rc;
  }
  l->entries = entries;
  if (bytes > l->bytes)
    l->bytes = bytes;
  return check_space(l, archive, diag);
}
