/* Owns RAR volume discovery for the unpacker (install/unpack.h): reading
 * the RAR main header, and finding and ordering the volumes of a set
 * (ls_unpack_volumes).
 *
 * libarchive 3.6.2 does not tell whether a RAR file is the first volume, so
 * we read the RAR main header ourselves: RAR5 archive flags 0x0001 (volume)
 * and 0x0002 (volume number present: every volume but the first); RAR4 main
 * header flags 0x0001 (volume) and 0x0100 (first volume, set since RAR
 * 3.0); the RAR5 end-of-archive header flag 0x0001 says "more volumes
 * follow". archive_read_open_filenames does no ordering, so we order the
 * volumes. */
#include "install/unpack_parts.h"

#include "core/array.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/walk.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_VOLUMES 10000
#define MAX_HEADER_WALK 100000 /* RAR5 headers read looking for the end header */

static const char *base_name(const char *path)
{
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

static bool has_prefix_ci(const char *s, const char *prefix)
{
  return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* ==== RAR main header sniffing =========================================== */

static const unsigned char RAR4_SIG[7] = {0x52, 0x61, 0x72, 0x21, 0x1A, 0x07, 0x00};
static const unsigned char RAR5_SIG[8] = {0x52, 0x61, 0x72, 0x21, 0x1A, 0x07, 0x01, 0x00};

/* Reads a RAR5 vint at *pos; false when it runs past n or over 64 bits. */
static bool read_vint(const unsigned char *b, size_t n, size_t *pos, uint64_t *out)
{
  uint64_t v = 0;
  for (unsigned shift = 0; shift < 64 && *pos < n; shift += 7) {
    unsigned char c = b[(*pos)++];
    v |= (uint64_t)(c & 0x7f) << shift;
    if (!(c & 0x80)) {
      *out = v;
      return true;
    }
  }
  return false;
}

static void parse_rar4_main(const unsigned char *b, size_t n, ls_rar_info *ri)
{
  /* marker(7) HEAD_CRC(2) HEAD_TYPE(1)=0x73 HEAD_FLAGS(2) */
  if (n < 12 || b[9] != 0x73)
    return;
  unsigned flags = (unsigned)b[10] | (unsigned)b[11] << 8;
  ri->header_known = true;
  ri->volume = flags & 0x0001;
  ri->first_known = flags & 0x0100;
}

static void parse_rar5_main(const unsigned char *b, size_t n, ls_rar_info *ri)
{
  size_t pos = 8 + 4; /* signature, header CRC32 */
  uint64_t size = 0, type = 0, hflags = 0, skip = 0, aflags = 0, volnum = 0;
  if (!read_vint(b, n, &pos, &size) || !read_vint(b, n, &pos, &type) || type != 1 ||
      !read_vint(b, n, &pos, &hflags))
    return; /* type 4 is the archive encryption header: nothing readable */
  if ((hflags & 0x0001) && !read_vint(b, n, &pos, &skip))
    return;
  if ((hflags & 0x0002) && !read_vint(b, n, &pos, &skip))
    return;
  if (!read_vint(b, n, &pos, &aflags))
    return;
  if ((aflags & 0x0002) && !read_vint(b, n, &pos, &volnum))
    return;
  ri->header_known = true;
  ri->volume = aflags & 0x0001;
  ri->volume_number = (aflags & 0x0002) ? (long)(volnum > LONG_MAX ? LONG_MAX : volnum) : 0;
}

void ls_rar_parse(const unsigned char *b, size_t n, ls_rar_info *ri)
{
  *ri = (ls_rar_info){.volume_number = -1};
  if (n >= sizeof RAR5_SIG && memcmp(b, RAR5_SIG, sizeof RAR5_SIG) == 0) {
    ri->version = 5;
    parse_rar5_main(b, n, ri);
  } else if (n >= sizeof RAR4_SIG && memcmp(b, RAR4_SIG, sizeof RAR4_SIG) == 0) {
    ri->version = 4;
    parse_rar4_main(b, n, ri);
  }
}

/* Reads up to cap bytes from the start of a regular file; negative (errno
 * set) on failure. */
ssize_t ls_unpack_read_head(const char *path, unsigned char *buf, size_t cap)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  struct stat st;
  ssize_t n = -1;
  if (fstat(fd, &st) != 0)
    goto out;
  if (!S_ISREG(st.st_mode)) {
    errno = EINVAL;
    goto out;
  }
  n = ls_pread_full(fd, buf, cap, 0);
out:;
  int saved = errno;
  close(fd);
  errno = saved;
  return n;
}

void ls_rar_sniff(const char *path, ls_rar_info *ri)
{
  unsigned char buf[LS_UNPACK_SNIFF_BYTES];
  ssize_t n = ls_unpack_read_head(path, buf, sizeof buf);
  ls_rar_parse(buf, n > 0 ? (size_t)n : 0, ri);
}

/* RAR5: true when the last header of the file is an end-of-archive header
 * saying another volume follows. Walks the headers, skipping data areas. */
static bool rar5_more_volumes_follow(const char *path)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  bool more = false;
  off_t off = sizeof RAR5_SIG;
  for (int i = 0; i < MAX_HEADER_WALK; i++) {
    unsigned char h[64];
    ssize_t n = ls_pread_full(fd, h, sizeof h, (uint64_t)off);
    size_t pos = 4;
    uint64_t size = 0, type = 0, hflags = 0, extra = 0, data = 0, eflags = 0;
    if (n < 8 || !read_vint(h, (size_t)n, &pos, &size) || size > (1u << 21))
      break;
    off_t next = off + (off_t)pos + (off_t)size;
    if (!read_vint(h, (size_t)n, &pos, &type) || !read_vint(h, (size_t)n, &pos, &hflags))
      break;
    if ((hflags & 0x0001) && !read_vint(h, (size_t)n, &pos, &extra))
      break;
    if ((hflags & 0x0002) && !read_vint(h, (size_t)n, &pos, &data))
      break;
    if (type == 5) {
      more = read_vint(h, (size_t)n, &pos, &eflags) && (eflags & 0x0001);
      break;
    }
    if (data > (uint64_t)INT64_MAX - (uint64_t)next)
      break;
    off = next + (off_t)data;
  }
  close(fd);
  return more;
}

/* ==== volume names ======================================================== */

/* NAME.partN.EXT: the length of "NAME", N and EXT. */
static bool parse_part_name(const char *base, size_t *prefix_len, unsigned long *n,
                            const char **ext)
{
  const char *dot = strrchr(base, '.');
  if (!dot || dot == base)
    return false;
  const char *digits_end = dot;
  const char *d = dot;
  while (d > base && isdigit((unsigned char)d[-1]))
    d--;
  if (d == digits_end || (size_t)(d - base) < 5 || !has_prefix_ci(d - 5, ".part"))
    return false;
  char *end = NULL;
  errno = 0;
  unsigned long v = strtoul(d, &end, 10);
  if (errno || end != digits_end)
    return false;
  *prefix_len = (size_t)(d - 5 - base);
  *n = v;
  *ext = dot + 1;
  return true;
}

/* NAME.rNN (two or three digits): an old-style later volume; *n is NN. */
static bool parse_old_next_name(const char *base, size_t *prefix_len, unsigned long *n)
{
  const char *dot = strrchr(base, '.');
  if (!dot || dot == base || tolower((unsigned char)dot[1]) != 'r')
    return false;
  size_t digits = strlen(dot + 2);
  if (digits < 2 || digits > 3)
    return false;
  for (size_t i = 0; i < digits; i++)
    if (!isdigit((unsigned char)dot[2 + i]))
      return false;
  *prefix_len = (size_t)(dot - base);
  *n = strtoul(dot + 2, NULL, 10);
  return true;
}

/* True when the name says "later volume" (partN with N > 1, or .rNN). */
static bool name_says_later_volume(const char *path)
{
  const char *base = base_name(path);
  size_t plen = 0;
  unsigned long n = 0;
  const char *ext = NULL;
  if (parse_part_name(base, &plen, &n, &ext))
    return n != 1;
  return parse_old_next_name(base, &plen, &n);
}

/* True when a RAR file is a later volume of a set, by header and name. */
bool ls_rar_is_later_volume(const char *path, const ls_rar_info *ri)
{
  if (ri->version == 5 && ri->header_known)
    return ri->volume && ri->volume_number != 0;
  if (ri->version == 4 && ri->header_known) {
    if (!ri->volume)
      return false;
    if (ri->first_known)
      return false;
  }
  return name_says_later_volume(path); /* RAR4 volumes, RAR5 encrypted headers */
}

typedef struct volume_entry {
  unsigned long number; /* 1-based place in the set */
  char *name;
} volume_entry;

typedef struct volume_scan {
  volume_entry *v;
  size_t count, cap;
} volume_scan;

static int volume_cmp(const void *a, const void *b)
{
  const volume_entry *x = a, *y = b;
  return x->number < y->number ? -1 : x->number > y->number;
}

static int scan_add(volume_scan *s, unsigned long number, const char *name)
{
  if (s->count == MAX_VOLUMES)
    return LS_ETOOBIG;
  volume_entry *v = ls_array_reserve(s->v, &s->cap, s->count + 1, sizeof *v);
  if (!v)
    return LS_ENOMEM;
  s->v = v;
  s->v[s->count].name = strdup(name);
  if (!s->v[s->count].name)
    return LS_ENOMEM;
  s->v[s->count++].number = number;
  return LS_OK;
}

static void scan_free(volume_scan *s)
{
  for (size_t i = 0; i < s->count; i++)
    free(s->v[i].name);
  free(s->v);
}

/* The place in the set of directory entry `name`, 0 when it is not a volume
 * of the set whose first volume is `first` (a base name). */
static unsigned long volume_number_of(const char *first, const char *name)
{
  size_t fplen = 0, plen = 0;
  unsigned long fn = 0, n = 0;
  const char *fext = NULL, *ext = NULL;
  if (parse_part_name(first, &fplen, &fn, &fext)) {
    if (parse_part_name(name, &plen, &n, &ext) && plen == fplen &&
        strncmp(name, first, plen) == 0 && strcmp(ext, fext) == 0 && n > 0)
      return n;
    return 0;
  }
  if (strcmp(name, first) == 0)
    return 1;
  const char *fdot = strrchr(first, '.');
  size_t stem = fdot ? (size_t)(fdot - first) : strlen(first);
  if (parse_old_next_name(name, &plen, &n) && plen == stem && strncmp(name, first, stem) == 0)
    return n + 2;
  return 0;
}

/* The directory of a set's first volume, walked one level deep. */
typedef struct volume_walk {
  const char *dir, *first;
  volume_scan *s;
} volume_walk;

static int volume_visit(void *ctx, const ls_walk_entry *e, ls_diag *diag)
{
  volume_walk *v = ctx;
  unsigned long n = volume_number_of(v->first, e->name);
  int rc = n > 0 ? scan_add(v->s, n, e->name) : LS_OK;
  if (rc == LS_ENOMEM)
    return diag_oom(diag);
  if (rc != LS_OK)
    return ls_diag_set(diag, rc, "%s/%s: more than %d volumes", v->dir, v->first, MAX_VOLUMES);
  return LS_WALK_SKIP;
}

static int scan_volumes(const char *dir, const char *first, volume_scan *s, ls_diag *diag)
{
  volume_walk v = {dir, first, s};
  int rc = ls_walk(AT_FDCWD, dir, 0, volume_visit, &v, diag);
  if (rc == LS_OK)
    qsort(s->v, s->count, sizeof *s->v, volume_cmp);
  return rc;
}

/* Checks 1..count without gaps or duplicates, and RAR5 volume numbers. */
static int check_volume_sequence(const char *archive, const char *dir, const volume_scan *s,
                                 ls_diag *diag)
{
  for (size_t i = 0; i < s->count; i++) {
    if (s->v[i].number == i + 1)
      continue;
    if (s->v[i].number == i)
      return ls_diag_set(diag, LS_EFORMAT, "%s: volume %lu exists twice (%s and %s)", archive,
                         s->v[i].number, s->v[i - 1].name, s->v[i].name);
    return ls_diag_set(diag, LS_ENOENT,
                       "%s: volume %zu of the multi-volume set is missing (found %s)", archive,
                       i + 1, s->v[i].name);
  }
  for (size_t i = 1; i < s->count; i++) {
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, s->v[i].name) >= (int)sizeof path)
      return ls_diag_set(diag, LS_ETOOBIG, "%s: volume path too long", archive);
    ls_rar_info ri;
    ls_rar_sniff(path, &ri);
    if (ri.version == 0)
      return ls_diag_set(diag, LS_EFORMAT, "%s: volume %zu (%s) is not a RAR volume", archive,
                         i + 1, s->v[i].name);
    if (ri.version == 5 && ri.header_known && ri.volume_number != (long)i)
      return ls_diag_set(diag, LS_EFORMAT,
                         "%s: %s says it is volume %ld of the set, but its name puts it at %zu",
                         archive, s->v[i].name, ri.volume_number + 1, i + 1);
  }
  return LS_OK;
}

static int check_last_volume(const char *archive, const char *dir, const volume_scan *s,
                             int version, ls_diag *diag)
{
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s/%s", dir, s->v[s->count - 1].name) >= (int)sizeof path)
    return ls_diag_set(diag, LS_ETOOBIG, "%s: volume path too long", archive);
  if (version == 5 && rar5_more_volumes_follow(path))
    return ls_diag_set(diag, LS_ENOENT,
                       "%s: volume %zu of the multi-volume set is missing (%s says more "
                       "volumes follow)",
                       archive, s->count + 1, s->v[s->count - 1].name);
  return LS_OK;
}

static int list_from_scan(const char *dir, volume_scan *s, ls_volume_list *out, ls_diag *diag)
{
  out->paths = calloc(s->count + 1, sizeof *out->paths);
  if (!out->paths)
    return diag_oom(diag);
  for (size_t i = 0; i < s->count; i++) {
    if (asprintf(&out->paths[i], "%s/%s", dir, s->v[i].name) < 0) {
      out->paths[i] = NULL;
      ls_volume_list_free(out);
      return diag_oom(diag);
    }
    out->count = i + 1;
  }
  return LS_OK;
}

static int single_volume(const char *archive, ls_volume_list *out, ls_diag *diag)
{
  out->paths = calloc(2, sizeof *out->paths);
  if (!out->paths || !(out->paths[0] = strdup(archive))) {
    free(out->paths);
    out->paths = NULL;
    return diag_oom(diag);
  }
  out->count = 1;
  return LS_OK;
}

static int split_dir(const char *archive, char *dir, size_t cap)
{
  const char *slash = strrchr(archive, '/');
  if (!slash)
    return snprintf(dir, cap, ".") < (int)cap ? LS_OK : LS_ETOOBIG;
  size_t len = slash == archive ? 1 : (size_t)(slash - archive);
  if (len >= cap)
    return LS_ETOOBIG;
  memcpy(dir, archive, len);
  dir[len] = '\0';
  return LS_OK;
}

int ls_unpack_volumes(const char *archive, ls_volume_list *out, ls_diag *diag)
{
  *out = (ls_volume_list){0};
  ls_rar_info ri;
  ls_rar_sniff(archive, &ri);
  if (ri.version && ls_rar_is_later_volume(archive, &ri))
    return ls_diag_set(diag, LS_EFORMAT,
                       "%s: is a later volume of a multi-volume RAR set, not its first volume",
                       archive);
  if (!ri.version || !ri.volume)
    return single_volume(archive, out, diag);
  char dir[PATH_MAX];
  if (split_dir(archive, dir, sizeof dir) != LS_OK)
    return ls_diag_set(diag, LS_ETOOBIG, "%s: path too long", archive);
  volume_scan s = {0};
  int rc = scan_volumes(dir, base_name(archive), &s, diag);
  if (rc == LS_OK && s.count == 0)
    rc = ls_diag_set(diag, LS_ENOENT, "%s: not found in %s", archive, dir);
  if (rc == LS_OK)
    rc = check_volume_sequence(archive, dir, &s, diag);
  if (rc == LS_OK)
    rc = check_last_volume(archive, dir, &s, ri.version, diag);
  if (rc == LS_OK)
    rc = list_from_scan(dir, &s, out, diag);
  scan_free(&s);
  return rc;
}

void ls_volume_list_free(ls_volume_list *v)
{
  if (!v || !v->paths)
    return;
  for (size_t i = 0; v->paths[i]; i++)
    free(v->paths[i]);
  free(v->paths);
  *v = (ls_volume_list){0};
}
