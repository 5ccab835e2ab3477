/* Owns the libarchive unpacker (install/unpack.h): format detection by
 * content, RAR volume discovery and ordering, safe extraction with
 * libarchive, the external-command fallback, the post-extraction tree check
 * and ls_fsync_tree.
 *
 * What we rely on from libarchive 3.6.2 (docs/ARCHITECTURE.md, "Library
 * versions"):
 * - it does not tell whether a RAR file is the first volume, so we read the
 *   RAR main header ourselves: RAR5 archive flags 0x0001 (volume) and 0x0002
 *   (volume number present: every volume but the first); RAR4 main header
 *   flags 0x0001 (volume) and 0x0100 (first volume, set since RAR 3.0); the
 *   RAR5 end-of-archive header flag 0x0001 says "more volumes follow";
 * - archive_read_open_filenames does no ordering, so we order the volumes;
 * - the SECURE flags do not stop outward symlinks and resolve paths against
 *   the CWD, so we check names and symlink targets and prefix every path
 *   with realpath(dest_dir) (never chdir: the process is multi-threaded). */
#include "install/unpack.h"

#include "core/array.h"
#include "core/error.h"

#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define READ_BLOCK (1u << 20)           /* archive_read_open_filename(s) block size */
#define PROGRESS_STEP (4ull << 20)      /* progress callback at least every 4 MiB */
#define STDERR_KEEP 4096                /* tail of an external command's stderr */
#define SNIFF_BYTES 512
#define MAX_VOLUMES 10000
#define MAX_WALK_DEPTH 256
#define MAX_HEADER_WALK 100000          /* RAR5 headers read looking for the end header */
#define EXTRACT_FLAGS                                                                   \
  (ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_TIME | \
   ARCHIVE_EXTRACT_PERM)
#define INSTALL_HINT "install unrar (non-free) or p7zip-full, or pass --unpacker"

extern char **environ;

/* ==== the unpacker object ================================================= */

typedef struct unpacker_state {
  char *external_cmd; /* NULL: none configured */
} unpacker_state;

/* ==== small helpers ======================================================= */

static const char *base_name(const char *path)
{
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

static bool has_prefix_ci(const char *s, const char *prefix)
{
  return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

static int diag_oom(ls_diag *diag)
{
  return ls_diag_set(diag, LS_ENOMEM, "out of memory");
}

/* ==== RAR main header sniffing =========================================== */

typedef struct rar_info {
  int version;        /* 0: not RAR; 4 or 5 */
  bool header_known;  /* the main header was read */
  bool volume;        /* part of a multi-volume set */
  bool first_known;   /* RAR4 "first volume" flag set */
  long volume_number; /* RAR5: 0 for the first volume, -1 unknown */
} rar_info;

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

static void parse_rar4_main(const unsigned char *b, size_t n, rar_info *ri)
{
  /* marker(7) HEAD_CRC(2) HEAD_TYPE(1)=0x73 HEAD_FLAGS(2) */
  if (n < 12 || b[9] != 0x73)
    return;
  unsigned flags = (unsigned)b[10] | (unsigned)b[11] << 8;
  ri->header_known = true;
  ri->volume = flags & 0x0001;
  ri->first_known = flags & 0x0100;
}

static void parse_rar5_main(const unsigned char *b, size_t n, rar_info *ri)
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

static void parse_rar(const unsigned char *b, size_t n, rar_info *ri)
{
  *ri = (rar_info){.volume_number = -1};
  if (n >= sizeof RAR5_SIG && memcmp(b, RAR5_SIG, sizeof RAR5_SIG) == 0) {
    ri->version = 5;
    parse_rar5_main(b, n, ri);
  } else if (n >= sizeof RAR4_SIG && memcmp(b, RAR4_SIG, sizeof RAR4_SIG) == 0) {
    ri->version = 4;
    parse_rar4_main(b, n, ri);
  }
}

/* Reads up to cap bytes from the start of a regular file; -1 with errno. */
static ssize_t read_head(const char *path, unsigned char *buf, size_t cap)
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
  n = pread(fd, buf, cap, 0);
out:;
  int saved = errno;
  close(fd);
  errno = saved;
  return n;
}

static void sniff_rar(const char *path, rar_info *ri)
{
  unsigned char buf[SNIFF_BYTES];
  ssize_t n = read_head(path, buf, sizeof buf);
  parse_rar(buf, n > 0 ? (size_t)n : 0, ri);
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
    ssize_t n = pread(fd, h, sizeof h, off);
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
static bool rar_is_later_volume(const char *path, const rar_info *ri)
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

static int scan_volumes(const char *dir, const char *first, volume_scan *s, ls_diag *diag)
{
  DIR *d = opendir(dir);
  if (!d)
    return ls_diag_errno(diag, errno, "cannot list", dir);
  int rc = LS_OK;
  struct dirent *de;
  while (rc == LS_OK && (de = readdir(d)) != NULL) {
    unsigned long n = volume_number_of(first, de->d_name);
    if (n > 0)
      rc = scan_add(s, n, de->d_name);
  }
  closedir(d);
  if (rc != LS_OK)
    return rc == LS_ENOMEM ? diag_oom(diag)
                           : ls_diag_set(diag, rc, "%s/%s: more than %d volumes", dir, first,
                                         MAX_VOLUMES);
  qsort(s->v, s->count, sizeof *s->v, volume_cmp);
  return LS_OK;
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
    rar_info ri;
    sniff_rar(path, &ri);
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
  rar_info ri;
  sniff_rar(archive, &ri);
  if (ri.version && rar_is_later_volume(archive, &ri))
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

/* ==== detection by content ================================================ */

static void enable_formats(struct archive *a)
{
  archive_read_support_format_tar(a);
  archive_read_support_format_zip(a);
  archive_read_support_format_7zip(a);
  archive_read_support_format_rar(a);
  archive_read_support_format_rar5(a);
  /* compressed tars; no filter that would spawn a program of unknown origin */
  archive_read_support_filter_gzip(a);
  archive_read_support_filter_bzip2(a);
  archive_read_support_filter_xz(a);
  archive_read_support_filter_lzma(a);
  archive_read_support_filter_zstd(a);
}

static bool magic_is_archive(const unsigned char *b, size_t n)
{
  static const unsigned char sevenz[6] = {'7', 'z', 0xBC, 0xAF, 0x27, 0x1C};
  if (n >= 4 && b[0] == 'P' && b[1] == 'K' &&
      ((b[2] == 3 && b[3] == 4) || (b[2] == 5 && b[3] == 6)))
    return true; /* zip local file header, or an empty zip */
  if (n >= sizeof sevenz && memcmp(b, sevenz, sizeof sevenz) == 0)
    return true;
  return n >= 262 && memcmp(b + 257, "ustar", 5) == 0;
}

static bool libarchive_probe(const char *path)
{
  struct archive *a = archive_read_new();
  if (!a)
    return false;
  enable_formats(a);
  struct archive_entry *e = NULL;
  bool ok = archive_read_open_filename(a, path, 64 * 1024) == ARCHIVE_OK &&
            archive_read_next_header(a, &e) >= ARCHIVE_WARN;
  archive_read_free(a);
  return ok;
}

static bool la_is_archive(void *self, const char *path)
{
  (void)self;
  unsigned char buf[SNIFF_BYTES];
  ssize_t n = read_head(path, buf, sizeof buf);
  if (n <= 0)
    return false;
  rar_info ri;
  parse_rar(buf, (size_t)n, &ri);
  if (ri.version)
    return !rar_is_later_volume(path, &ri);
  if (magic_is_archive(buf, (size_t)n))
    return true;
  return libarchive_probe(path);
}

/* ==== entry checks ======================================================== */

/* The next component of the path at *p, skipping empty and "." ones;
 * false at the end. */
static bool next_component(const char **p, const char **comp, size_t *len)
{
  for (;;) {
    while (**p == '/')
      (*p)++;
    if (**p == '\0')
      return false;
    *comp = *p;
    *len = strcspn(*p, "/");
    *p += *len;
    if (!(*len == 1 && (*comp)[0] == '.'))
      return true;
  }
}

static bool is_dotdot(const char *comp, size_t len)
{
  return len == 2 && comp[0] == '.' && comp[1] == '.';
}

/* "./a//b" -> "a/b"-like checks: refuses absolute names and ".." components.
 * *skip when the name is empty or only "." components (the root itself). */
static int check_entry_name(const char *archive, const char *what, const char *name,
                            bool *skip, ls_diag *diag)
{
  *skip = false;
  if (name[0] == '/')
    return ls_diag_set(diag, LS_EFORMAT, "%s: refused %s '%s': absolute path", archive, what,
                       name);
  bool any = false;
  const char *p = name, *comp;
  size_t len;
  while (next_component(&p, &comp, &len)) {
    if (is_dotdot(comp, len))
      return ls_diag_set(diag, LS_EFORMAT, "%s: refused %s '%s': '..' in the path", archive,
                         what, name);
    any = true;
  }
  *skip = !any;
  return LS_OK;
}

/* Lexical check of a symlink target relative to the entry's directory:
 * refuses absolute targets and targets climbing above dest_dir. */
static int check_symlink_target(const char *archive, const char *name, const char *target,
                                ls_diag *diag)
{
  if (target[0] == '\0')
    return ls_diag_set(diag, LS_EFORMAT, "%s: refused symlink '%s': empty target", archive, name);
  if (target[0] == '/')
    return ls_diag_set(diag, LS_EFORMAT, "%s: refused symlink '%s' -> '%s': absolute target",
                       archive, name, target);
  long depth = -1; /* components of the entry's directory: the link's own is not one */
  const char *p = name, *comp;
  size_t len;
  while (next_component(&p, &comp, &len))
    depth++;
  for (p = target; next_component(&p, &comp, &len);) {
    depth += is_dotdot(comp, len) ? -1 : 1;
    if (depth < 0)
      return ls_diag_set(diag, LS_EFORMAT,
                         "%s: refused symlink '%s' -> '%s': target outside the destination",
                         archive, name, target);
  }
  return LS_OK;
}

/* A hardlink target must not pass through (or be reached via) a symlink
 * component already on disk; libarchive only checks its own pathname. */
static int check_hardlink_path(const char *archive, const char *dest, const char *target,
                               ls_diag *diag)
{
  char path[PATH_MAX];
  size_t dlen = strlen(dest);
  if (snprintf(path, sizeof path, "%s/%s", dest, target) >= (int)sizeof path)
    return ls_diag_set(diag, LS_ETOOBIG, "%s: hardlink target '%s': path too long", archive,
                       target);
  for (char *p = path + dlen + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    struct stat st;
    bool link = lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
    *p = '/';
    if (link)
      return ls_diag_set(diag, LS_EFORMAT,
                         "%s: refused hardlink to '%s': the path passes through a symlink",
                         archive, target);
  }
  return LS_OK;
}

static const char *type_name(mode_t type)
{
  switch (type) {
  case AE_IFCHR: return "character device";
  case AE_IFBLK: return "block device";
  case AE_IFIFO: return "FIFO";
  case AE_IFSOCK: return "socket";
  default: return "special file";
  }
}

/* ==== extraction with libarchive ========================================= */

typedef struct unpack_job {
  const char *archive;
  char dest[PATH_MAX];   /* realpath(dest_dir) */
  ls_unpack_progress_cb progress;
  void *progress_user;
  uint64_t bytes;
  uint64_t last_report;
  size_t symlinks;       /* symlinks created: the tree check runs when > 0 */
  size_t entries;        /* entries extracted */
  bool fallback_ok;      /* the failure may be fixed by unrar/7z/--unpacker */
  bool unsupported;      /* libarchive said "unsupported", not "corrupt" */
} unpack_job;

static bool message_says_unsupported(const char *msg)
{
  static const char *const needles[] = {"solid archive support unavailable",
                                        "encryption support unavailable",
                                        "Encryption is not supported",
                                        "Unsupported block header size",
                                        "encrypted",
                                        "not supported",
                                        "Unsupported"};
  for (size_t i = 0; msg && i < sizeof needles / sizeof *needles; i++)
    if (strcasestr(msg, needles[i]))
      return true;
  return false;
}

static bool format_has_sidecar(int format)
{
  int base = format & ARCHIVE_FORMAT_BASE_MASK;
  return base == ARCHIVE_FORMAT_RAR || base == ARCHIVE_FORMAT_RAR_V5 ||
         base == ARCHIVE_FORMAT_7ZIP;
}

static int code_from_archive_errno(int e)
{
  switch (e) {
  case ENOMEM: case ENOENT: case EACCES: case EIO: case ENOSPC: case EDQUOT: case EROFS:
    return ls_err_from_errno(e);
  default:
    return LS_EFORMAT;
  }
}

/* A read-side failure: names the archive and libarchive's message. */
static int read_failure(unpack_job *j, struct archive *a, ls_diag *diag)
{
  const char *msg = archive_error_string(a);
  if (!msg)
    msg = "unknown error";
  if (format_has_sidecar(archive_format(a)))
    j->fallback_ok = true;
  if (message_says_unsupported(msg)) {
    j->unsupported = true;
    return ls_diag_set(diag, LS_EUNSUPPORTED, "%s: unsupported by libarchive: %s", j->archive,
                       msg);
  }
  return ls_diag_set(diag, code_from_archive_errno(archive_errno(a)), "%s: %s", j->archive, msg);
}

static int write_failure(unpack_job *j, struct archive *w, const char *name, ls_diag *diag)
{
  const char *msg = archive_error_string(w);
  int e = archive_errno(w);
  int code = (e == ENOSPC || e == EDQUOT || e == EIO || e == EROFS || e == EACCES)
                 ? ls_err_from_errno(e)
                 : LS_EFORMAT;
  return ls_diag_set(diag, code, "%s: cannot extract '%s': %s", j->archive, name,
                     msg ? msg : "unknown error");
}

static int report_progress(unpack_job *j, bool force, ls_diag *diag)
{
  if (!j->progress || (!force && j->bytes - j->last_report < PROGRESS_STEP))
    return LS_OK;
  j->last_report = j->bytes;
  if (!j->progress(j->progress_user, j->bytes))
    return ls_diag_set(diag, LS_ECANCELED, "%s: extraction cancelled", j->archive);
  return LS_OK;
}

static int copy_data(unpack_job *j, struct archive *a, struct archive *w, const char *name,
                     ls_diag *diag)
{
  for (;;) {
    const void *buf = NULL;
    size_t size = 0;
    la_int64_t off = 0;
    int r = archive_read_data_block(a, &buf, &size, &off);
    if (r == ARCHIVE_EOF)
      return LS_OK;
    if (r != ARCHIVE_OK) /* a WARN here is a bad CRC: the data is wrong */
      return read_failure(j, a, diag);
    if (archive_write_data_block(w, buf, size, off) < ARCHIVE_WARN)
      return write_failure(j, w, name, diag);
    j->bytes += size;
    int rc = report_progress(j, false, diag);
    if (rc != LS_OK)
      return rc;
  }
}

/* Checks the entry and rewrites its pathname (and hardlink) under dest.
 * *skip for the root entry ("./"). */
static int prepare_entry(unpack_job *j, struct archive_entry *e, bool *skip, ls_diag *diag)
{
  const char *name = archive_entry_pathname(e);
  if (!name)
    return ls_diag_set(diag, LS_EFORMAT, "%s: an entry name cannot be converted to UTF-8",
                       j->archive);
  int rc = check_entry_name(j->archive, "entry", name, skip, diag);
  if (rc != LS_OK || *skip)
    return rc;
  const char *hardlink = archive_entry_hardlink(e);
  mode_t type = archive_entry_filetype(e);
  if (!hardlink && type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
    return ls_diag_set(diag, LS_EFORMAT, "%s: refused entry '%s': %s", j->archive, name,
                       type_name(type));
  if (archive_entry_is_encrypted(e)) {
    j->fallback_ok = j->unsupported = true;
    return ls_diag_set(diag, LS_EUNSUPPORTED, "%s: entry '%s' is encrypted", j->archive, name);
  }
  if (type == AE_IFLNK && !hardlink) {
    const char *target = archive_entry_symlink(e);
    rc = check_symlink_target(j->archive, name, target ? target : "", diag);
    if (rc != LS_OK)
      return rc;
    j->symlinks++;
  }
  char path[PATH_MAX];
  if (hardlink) {
    bool hskip = false;
    rc = check_entry_name(j->archive, "hardlink target", hardlink, &hskip, diag);
    if (rc == LS_OK && hskip)
      rc = ls_diag_set(diag, LS_EFORMAT, "%s: refused hardlink '%s' to the destination itself",
                       j->archive, name);
    if (rc == LS_OK)
      rc = check_hardlink_path(j->archive, j->dest, hardlink, diag);
    if (rc != LS_OK)
      return rc;
    if (snprintf(path, sizeof path, "%s/%s", j->dest, hardlink) >= (int)sizeof path)
      return ls_diag_set(diag, LS_ETOOBIG, "%s: '%s': path too long", j->archive, hardlink);
    archive_entry_copy_hardlink(e, path);
  }
  if (snprintf(path, sizeof path, "%s/%s", j->dest, name) >= (int)sizeof path)
    return ls_diag_set(diag, LS_ETOOBIG, "%s: '%s': path too long", j->archive, name);
  archive_entry_copy_pathname(e, path);
  archive_entry_set_perm(e, archive_entry_perm(e) & 0777); /* no setuid/setgid/sticky */
  return LS_OK;
}

static int extract_entry(unpack_job *j, struct archive *a, struct archive *w,
                         struct archive_entry *e, ls_diag *diag)
{
  bool skip = false;
  int rc = prepare_entry(j, e, &skip, diag);
  if (rc != LS_OK)
    return rc;
  if (skip)
    return LS_OK;
  const char *full = archive_entry_pathname(e);
  const char *name = full + strlen(j->dest) + 1;
  if (archive_write_header(w, e) < ARCHIVE_WARN)
    return write_failure(j, w, name, diag);
  if (archive_entry_filetype(e) == AE_IFREG) { /* RAR5 refuses reading a directory */
    rc = copy_data(j, a, w, name, diag);
    if (rc != LS_OK)
      return rc;
  }
  if (archive_write_finish_entry(w) < ARCHIVE_WARN)
    return write_failure(j, w, name, diag);
  return LS_OK;
}

static int extract_all(unpack_job *j, struct archive *a, struct archive *w, ls_diag *diag)
{
  for (;;) {
    struct archive_entry *e = NULL;
    int r = archive_read_next_header(a, &e);
    if (r == ARCHIVE_EOF)
      break;
    if (r < ARCHIVE_WARN)
      return read_failure(j, a, diag);
    int rc = extract_entry(j, a, w, e, diag);
    if (rc != LS_OK)
      return rc;
    j->entries++;
  }
  if (j->entries == 0 && format_has_sidecar(archive_format(a)) &&
      (archive_format(a) & ARCHIVE_FORMAT_BASE_MASK) != ARCHIVE_FORMAT_7ZIP) {
    /* libarchive's RAR readers end cleanly on headers they cannot parse */
    j->fallback_ok = true;
    return ls_diag_set(diag, LS_EFORMAT, "%s: no entry could be read (corrupt RAR?)",
                       j->archive);
  }
  if (archive_write_close(w) < ARCHIVE_WARN)
    return write_failure(j, w, "(directory times and modes)", diag);
  return report_progress(j, true, diag);
}

static pthread_once_t g_locale_once = PTHREAD_ONCE_INIT;
static locale_t g_utf8_locale = (locale_t)0;

static void init_utf8_locale(void)
{
  g_utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

static int extract_volumes(unpack_job *j, const ls_volume_list *vols, ls_diag *diag)
{
  struct archive *a = archive_read_new();
  struct archive *w = archive_write_disk_new();
  int rc = LS_OK;
  if (!a || !w) {
    rc = diag_oom(diag);
    goto out;
  }
  enable_formats(a);
  archive_write_disk_set_options(w, EXTRACT_FLAGS);
  if (archive_read_open_filenames(a, (const char **)vols->paths, READ_BLOCK) != ARCHIVE_OK)
    rc = read_failure(j, a, diag);
  else
    rc = extract_all(j, a, w, diag);
out:
  if (w)
    archive_write_free(w);
  if (a)
    archive_read_free(a);
  return rc;
}

/* Extraction under a thread-local C.UTF-8 locale (RAR Unicode names). */
static int extract_libarchive(unpack_job *j, const ls_volume_list *vols, ls_diag *diag)
{
  pthread_once(&g_locale_once, init_utf8_locale);
  locale_t old = g_utf8_locale ? uselocale(g_utf8_locale) : (locale_t)0;
  int rc = extract_volumes(j, vols, diag);
  if (g_utf8_locale)
    uselocale(old);
  return rc;
}

/* ==== external command ==================================================== */

typedef struct word_list {
  char **v;
  size_t count, cap;
} word_list;

static void words_free(word_list *w)
{
  for (size_t i = 0; i < w->count; i++)
    free(w->v[i]);
  free(w->v);
  *w = (word_list){0};
}

static int words_push(word_list *w, char *s)
{
  char **v = ls_array_reserve(w->v, &w->cap, w->count + 2, sizeof *v); /* + the NULL */
  if (!v) {
    free(s);
    return LS_ENOMEM;
  }
  w->v = v;
  w->v[w->count++] = s;
  w->v[w->count] = NULL;
  return LS_OK;
}

/* Reads one shell-like word starting at *p into out (cap bytes, as long as
 * the template): quotes group, backslash escapes outside single quotes. */
static int read_word(const char **p, char *out, ls_diag *diag)
{
  const char *s = *p;
  char quote = 0;
  size_t n = 0;
  for (; *s && (quote || !isspace((unsigned char)*s)); s++) {
    if (quote && *s == quote) {
      quote = 0;
    } else if (!quote && (*s == '\'' || *s == '"')) {
      quote = *s;
    } else if (*s == '\\' && quote != '\'' && s[1]) {
      out[n++] = *++s;
    } else {
      out[n++] = *s;
    }
  }
  out[n] = '\0';
  *p = s;
  if (quote)
    return ls_diag_set(diag, LS_EINVAL, "--unpacker: unterminated %c quote", quote);
  return LS_OK;
}

static int split_template(const char *tmpl, word_list *out, ls_diag *diag)
{
  *out = (word_list){0};
  size_t len = strlen(tmpl);
  for (const char *p = tmpl;;) {
    while (isspace((unsigned char)*p))
      p++;
    if (!*p)
      break;
    char *word = malloc(len + 1);
    if (!word)
      return words_free(out), diag_oom(diag);
    int rc = read_word(&p, word, diag);
    if (rc == LS_OK)
      rc = words_push(out, word);
    else
      free(word);
    if (rc != LS_OK) {
      words_free(out);
      return rc == LS_ENOMEM ? diag_oom(diag) : rc;
    }
  }
  if (out->count == 0)
    return ls_diag_set(diag, LS_EINVAL, "--unpacker: empty command");
  return LS_OK;
}

static int validate_template(const char *tmpl, ls_diag *diag)
{
  word_list w;
  int rc = split_template(tmpl, &w, diag);
  if (rc != LS_OK)
    return rc;
  bool has_archive = false, has_dest = false;
  for (size_t i = 0; i < w.count; i++) {
    has_archive |= strstr(w.v[i], "{archive}") != NULL;
    has_dest |= strstr(w.v[i], "{dest}") != NULL;
  }
  words_free(&w);
  if (!has_archive || !has_dest)
    return ls_diag_set(diag, LS_EINVAL, "--unpacker '%s': must contain {archive} and {dest}",
                       tmpl);
  return LS_OK;
}

/* A copy of word with every {archive} and {dest} replaced. */
static char *substitute(const char *word, const char *archive, const char *dest)
{
  size_t cap = strlen(word) + 1;
  for (const char *p = word; (p = strchr(p, '{')); p++)
    cap += strlen(archive) + strlen(dest);
  char *out = malloc(cap);
  if (!out)
    return NULL;
  size_t n = 0;
  for (const char *p = word; *p;) {
    const char *value = NULL;
    size_t skip = 0;
    if (strncmp(p, "{archive}", 9) == 0)
      value = archive, skip = 9;
    else if (strncmp(p, "{dest}", 6) == 0)
      value = dest, skip = 6;
    if (value) {
      memcpy(out + n, value, strlen(value));
      n += strlen(value);
      p += skip;
    } else {
      out[n++] = *p++;
    }
  }
  out[n] = '\0';
  return out;
}

/* Keeps the last STDERR_KEEP bytes of a stream. */
typedef struct tail_buf {
  char data[2 * STDERR_KEEP + 1]; /* + 1 for the NUL of tail_text */
  size_t len;
} tail_buf;

static void tail_read(tail_buf *t, int fd, bool *eof)
{
  if (t->len > STDERR_KEEP) {
    memmove(t->data, t->data + t->len - STDERR_KEEP, STDERR_KEEP);
    t->len = STDERR_KEEP;
  }
  ssize_t n = read(fd, t->data + t->len, sizeof t->data - 1 - t->len);
  if (n > 0)
    t->len += (size_t)n;
  else if (n == 0 || (errno != EINTR && errno != EAGAIN))
    *eof = true;
}

/* The tail as one line: control characters become spaces, trimmed. */
static const char *tail_text(tail_buf *t, size_t max)
{
  size_t start = t->len > max ? t->len - max : 0;
  char *s = t->data + start;
  size_t n = t->len - start;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
      s[i] = ' ';
  while (n > 0 && s[n - 1] == ' ')
    n--;
  s[n] = '\0';
  while (*s == ' ')
    s++;
  return s;
}

static int spawn_with_stderr(char *const argv[], int err_fd, pid_t *pid)
{
  posix_spawn_file_actions_t fa;
  if (posix_spawn_file_actions_init(&fa) != 0)
    return ENOMEM;
  int e = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  if (!e)
    e = posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  if (!e)
    e = posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
  if (!e)
    e = posix_spawnp(pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  return e;
}

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads stderr until EOF, polling progress; false when cancelled (the
 * child is killed). */
static bool drain_child(pid_t pid, int fd, tail_buf *t, ls_unpack_progress_cb progress,
                        void *user)
{
  bool eof = false;
  double last = now_s();
  while (!eof) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, 250);
    if (r > 0)
      tail_read(t, fd, &eof);
    else if (r < 0 && errno != EINTR)
      eof = true;
    if (progress && now_s() - last >= 0.5) {
      last = now_s();
      if (!progress(user, 0)) {
        kill(pid, SIGKILL);
        return false;
      }
    }
  }
  return true;
}

static int wait_child(pid_t pid, int *status)
{
  while (waitpid(pid, status, 0) < 0)
    if (errno != EINTR)
      return errno;
  return 0;
}

static int child_failure(const char *archive, const char *prog, int status, tail_buf *t,
                         ls_diag *diag)
{
  char how[64];
  if (WIFEXITED(status))
    snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(status));
  else
    snprintf(how, sizeof how, "was killed by signal %d", WTERMSIG(status));
  const char *err = tail_text(t, 300);
  return ls_diag_set(diag, LS_EIO, "%s: external unpacker '%s' %s%s%s", archive, prog, how,
                     *err ? ": " : "", err);
}

static int run_argv(char *const argv[], const char *archive, ls_unpack_progress_cb progress,
                    void *user, ls_diag *diag)
{
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0)
    return ls_diag_errno(diag, errno, "cannot create a pipe for", archive);
  pid_t pid = 0;
  int e = spawn_with_stderr(argv, fds[1], &pid);
  close(fds[1]);
  if (e != 0) {
    close(fds[0]);
    return ls_diag_set(diag, e == ENOENT ? LS_ENOENT : LS_EIO,
                       "%s: cannot run external unpacker '%s': %s", archive, argv[0],
                       strerror(e));
  }
  tail_buf *t = calloc(1, sizeof *t);
  bool done = t ? drain_child(pid, fds[0], t, progress, user) : true;
  close(fds[0]);
  int status = 0;
  e = wait_child(pid, &status);
  int rc = LS_OK;
  if (!t)
    rc = diag_oom(diag);
  else if (!done)
    rc = ls_diag_set(diag, LS_ECANCELED, "%s: extraction cancelled", archive);
  else if (e != 0)
    rc = ls_diag_errno(diag, e, "cannot wait for the unpacker of", archive);
  else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    rc = child_failure(archive, argv[0], status, t, diag);
  free(t);
  return rc;
}

int ls_unpack_external(const char *cmd_template, const char *archive, const char *dest_dir,
                       ls_unpack_progress_cb progress, void *progress_user, ls_diag *diag)
{
  word_list w;
  int rc = split_template(cmd_template, &w, diag);
  if (rc != LS_OK)
    return rc;
  for (size_t i = 0; i < w.count; i++) {
    char *s = substitute(w.v[i], archive, dest_dir);
    if (!s) {
      words_free(&w);
      return diag_oom(diag);
    }
    free(w.v[i]);
    w.v[i] = s;
  }
  rc = run_argv(w.v, archive, progress, progress_user, diag);
  words_free(&w);
  return rc;
}

/* ==== fallback ============================================================ */

static int check_tree_of(const char *archive, const char *dest, ls_diag *diag);

static bool on_path(const char *prog)
{
  const char *path = getenv("PATH");
  if (!path || !*path)
    path = "/usr/local/bin:/usr/bin:/bin";
  for (const char *p = path; *p;) {
    size_t len = strcspn(p, ":");
    char full[PATH_MAX];
    if (len > 0 && snprintf(full, sizeof full, "%.*s/%s", (int)len, p, prog) < (int)sizeof full &&
        access(full, X_OK) == 0)
      return true;
    p += len;
    if (*p == ':')
      p++;
  }
  return false;
}

/* The fallback command template for this archive, NULL when none. */
static const char *fallback_template(const unpacker_state *st, bool is_rar)
{
  if (st && st->external_cmd)
    return st->external_cmd;
  if (is_rar && on_path("unrar"))
    return "unrar x -o+ -y -p- {archive} {dest}/";
  if (on_path("7z"))
    return "7z x -y -o{dest} {archive}";
  return NULL;
}

static int run_fallback(const unpacker_state *st, unpack_job *j, const char *la_msg,
                        ls_diag *diag)
{
  rar_info ri;
  sniff_rar(j->archive, &ri);
  const char *tmpl = fallback_template(st, ri.version != 0);
  if (!tmpl)
    return ls_diag_set(diag, j->unsupported ? LS_EUNSUPPORTED : LS_EFORMAT,
                       "%s: libarchive cannot extract it (%s); " INSTALL_HINT, j->archive,
                       la_msg);
  int rc = ls_unpack_external(tmpl, j->archive, j->dest, j->progress, j->progress_user, diag);
  if (rc != LS_OK && rc != LS_ECANCELED) {
    char ext[LS_DIAG_MAX];
    snprintf(ext, sizeof ext, "%s", diag ? diag->text : "");
    return ls_diag_set(diag, rc, "%s (libarchive: %s)", ext, la_msg);
  }
  if (rc == LS_OK)
    rc = check_tree_of(j->archive, j->dest, diag);
  return rc;
}

/* ==== tree walks: safety check and fsync ================================= */

/* ls_unpack_check_tree, with the archive's name in front of the diag. */
static int check_tree_of(const char *archive, const char *dest, ls_diag *diag)
{
  int rc = ls_unpack_check_tree(dest, diag);
  if (rc != LS_OK && diag) {
    char text[LS_DIAG_MAX];
    snprintf(text, sizeof text, "%s", diag->text);
    ls_diag_set(diag, rc, "%s: %s", archive, text);
  }
  return rc;
}

typedef struct walk_ctx {
  bool fsync;          /* fsync files and directories */
  bool check;          /* remove outward symlinks and special files */
  const char *root;    /* realpath of the walked directory (check) */
  char path[PATH_MAX]; /* the current directory's path */
  int rc;              /* first failure */
  ls_diag *diag;
} walk_ctx;

static void walk_fail(walk_ctx *c, int rc, const char *fmt, const char *name,
                      const char *extra)
{
  if (c->rc != LS_OK)
    return;
  c->rc = rc;
  ls_diag_set(c->diag, rc, fmt, c->path, name, extra);
}

static bool under_root(const char *root, const char *path)
{
  size_t n = strlen(root);
  return strncmp(root, path, n) == 0 && (path[n] == '/' || path[n] == '\0' ||
                                         (n == 1 && root[0] == '/'));
}

static bool symlink_escapes(walk_ctx *c, int dfd, const char *name)
{
  char full[PATH_MAX + 256], real[PATH_MAX];
  snprintf(full, sizeof full, "%s/%s", c->path, name);
  if (realpath(full, real))
    return !under_root(c->root, real);
  char target[PATH_MAX];
  ssize_t n = readlinkat(dfd, name, target, sizeof target - 1);
  if (n < 0)
    return true;
  target[n] = '\0';
  bool skip = false;
  return target[0] == '/' || check_entry_name("", "", target, &skip, NULL) != LS_OK;
}

static void check_entry(walk_ctx *c, int dfd, const char *name, mode_t mode)
{
  if (S_ISLNK(mode) && symlink_escapes(c, dfd, name)) {
    unlinkat(dfd, name, 0);
    walk_fail(c, LS_EFORMAT, "%s/%s: removed a symlink pointing outside the destination%s",
              name, "");
  } else if (S_ISCHR(mode) || S_ISBLK(mode) || S_ISFIFO(mode) || S_ISSOCK(mode)) {
    unlinkat(dfd, name, 0);
    walk_fail(c, LS_EFORMAT, "%s/%s: removed a %s", name,
              S_ISFIFO(mode) ? "FIFO" : S_ISSOCK(mode) ? "socket" : "device node");
  }
}

static void fsync_file(walk_ctx *c, int dfd, const char *name)
{
  int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0 || fsync(fd) != 0)
    walk_fail(c, ls_err_from_errno(errno), "cannot fsync %s/%s: %s", name, strerror(errno));
  if (fd >= 0)
    close(fd);
}

static void walk_dir(walk_ctx *c, int dfd, int depth);

static void walk_subdir(walk_ctx *c, int dfd, const char *name, int depth)
{
  int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    walk_fail(c, ls_err_from_errno(errno), "cannot open %s/%s: %s", name, strerror(errno));
    return;
  }
  size_t len = strlen(c->path);
  if (len + 1 + strlen(name) >= sizeof c->path) {
    close(fd);
    walk_fail(c, LS_ETOOBIG, "%s/%s: path too long%s", name, "");
    return;
  }
  snprintf(c->path + len, sizeof c->path - len, "/%s", name);
  walk_dir(c, fd, depth + 1); /* closes fd */
  c->path[len] = '\0';
}

/* Visits every entry of the directory dfd (closed on return). */
static void walk_dir(walk_ctx *c, int dfd, int depth)
{
  if (depth > MAX_WALK_DEPTH) {
    close(dfd);
    walk_fail(c, LS_ETOOBIG, "%s%s: more than %s directory levels", "", "256");
    return;
  }
  DIR *d = fdopendir(dfd);
  if (!d) {
    close(dfd);
    walk_fail(c, ls_err_from_errno(errno), "cannot list %s%s: %s", "", strerror(errno));
    return;
  }
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    struct stat st;
    if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
      continue; /* vanished */
    if (S_ISDIR(st.st_mode))
      walk_subdir(c, dirfd(d), de->d_name, depth);
    else if (c->check)
      check_entry(c, dirfd(d), de->d_name, st.st_mode);
    else if (c->fsync && S_ISREG(st.st_mode))
      fsync_file(c, dirfd(d), de->d_name);
  }
  if (c->fsync && fsync(dirfd(d)) != 0)
    walk_fail(c, ls_err_from_errno(errno), "cannot fsync %s%s: %s", "", strerror(errno));
  closedir(d);
}

static int walk_tree(const char *dir, bool fsync_mode, ls_diag *diag)
{
  walk_ctx *c = calloc(1, sizeof *c);
  char *root = realpath(dir, NULL);
  if (!c || !root) {
    int e = errno;
    free(c);
    free(root);
    return ls_diag_errno(diag, e, "cannot resolve", dir);
  }
  *c = (walk_ctx){.fsync = fsync_mode, .check = !fsync_mode, .root = root, .diag = diag};
  snprintf(c->path, sizeof c->path, "%s", root);
  int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    c->rc = ls_diag_errno(diag, errno, "cannot open", root);
  else
    walk_dir(c, fd, 0);
  int rc = c->rc;
  free(root);
  free(c);
  return rc;
}

int ls_unpack_check_tree(const char *dest_dir, ls_diag *diag)
{
  return walk_tree(dest_dir, false, diag);
}

int ls_fsync_tree(const char *dir, ls_diag *diag)
{
  return walk_tree(dir, true, diag);
}

/* ==== the vtable ========================================================== */

static int la_unpack(void *self, const char *archive, const char *dest_dir,
                     ls_unpack_progress_cb progress, void *progress_user, ls_diag *diag)
{
  unpack_job j = {.archive = archive, .progress = progress, .progress_user = progress_user};
  if (!realpath(dest_dir, j.dest))
    return ls_diag_errno(diag, errno, "cannot resolve the destination", dest_dir);
  ls_volume_list vols;
  int rc = ls_unpack_volumes(archive, &vols, diag);
  if (rc != LS_OK)
    return rc;
  rc = extract_libarchive(&j, &vols, diag);
  ls_volume_list_free(&vols);
  if (rc == LS_OK && j.symlinks > 0)
    rc = check_tree_of(archive, j.dest, diag);
  if (rc != LS_OK && rc != LS_ECANCELED && j.fallback_ok) {
    char la_msg[LS_DIAG_MAX];
    snprintf(la_msg, sizeof la_msg, "%s", diag ? diag->text : "error");
    const char *msg = strncmp(la_msg, archive, strlen(archive)) == 0 &&
                              la_msg[strlen(archive)] == ':'
                          ? la_msg + strlen(archive) + 2
                          : la_msg;
    rc = run_fallback(self, &j, msg, diag);
  }
  return rc;
}

int ls_unpacker_libarchive(ls_unpacker *out, const char *external_cmd, ls_diag *diag)
{
  *out = (ls_unpacker){0};
  if (external_cmd) {
    int rc = validate_template(external_cmd, diag);
    if (rc != LS_OK)
      return rc;
  }
  unpacker_state *st = calloc(1, sizeof *st);
  if (!st || (external_cmd && !(st->external_cmd = strdup(external_cmd)))) {
    free(st);
    return diag_oom(diag);
  }
  *out = (ls_unpacker){.unpack = la_unpack, .is_archive = la_is_archive, .self = st};
  return LS_OK;
}

void ls_unpacker_libarchive_free(ls_unpacker *u)
{
  if (!u || !u->self)
    return;
  unpacker_state *st = u->self;
  free(st->external_cmd);
  free(st);
  *u = (ls_unpacker){0};
}
