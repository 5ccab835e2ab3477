/* Owns what the unpacker (install/unpack.h) does with libarchive: detection
 * of archives by content, the checks of every entry (names, symlink and
 * hardlink targets, file types, modes), the extraction limits checked
 * before each entry and each block of data is written (install/
 * unpack_limits.h), and the extraction of a volume set under a
 * thread-local C.UTF-8 locale.
 *
 * libarchive's SECURE flags do not stop outward symlinks and resolve paths
 * against the CWD, so we check names and symlink targets with the path rule
 * (core/relpath.h) and prefix every path with realpath(dest_dir) (never
 * chdir: the process is multi-threaded). */
#include "install/unpack_parts.h"

#include "core/error.h"
#include "core/relpath.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define READ_BLOCK (1u << 20)      /* archive_read_open_filename(s) block size */
#define PROGRESS_STEP (4ull << 20) /* progress callback at least every 4 MiB */
#define EXTRACT_FLAGS                                                                   \
  (ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_TIME | \
   ARCHIVE_EXTRACT_PERM)

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

bool ls_unpack_is_archive(const char *path)
{
  unsigned char buf[LS_UNPACK_SNIFF_BYTES];
  ssize_t n = ls_unpack_read_head(path, buf, sizeof buf);
  if (n <= 0)
    return false;
  ls_rar_info ri;
  ls_rar_parse(buf, (size_t)n, &ri);
  if (ri.version)
    return !ls_rar_is_later_volume(path, &ri);
  if (magic_is_archive(buf, (size_t)n))
    return true;
  return libarchive_probe(path);
}

/* ==== entry checks ======================================================== */

/* An archive's entry name by the path rule, relaxed for archives: "./",
 * "dir/" and "a//b" are fine. *skip when it names the root itself. */
static int check_entry_name(const char *archive, const char *what, const char *name,
                            bool *skip, ls_diag *diag)
{
  ls_diag why;
  size_t depth = 0;
  if (ls_relpath_check_flags(name, LS_RELPATH_ALLOW_EMPTY, &depth, &why) != LS_OK)
    return ls_diag_set(diag, LS_EFORMAT, "%s: refused %s '%s': %s", archive, what, name,
                       why.text);
  *skip = depth == 0;
  return LS_OK;
}

/* A symlink target may climb with ".." but never above dest_dir. */
static int check_symlink_target(const char *archive, const char *name, const char *target,
                                ls_diag *diag)
{
  ls_diag why;
  if (ls_relpath_check_link(name, target, &why) != LS_OK)
    return ls_diag_set(diag, LS_EFORMAT, "%s: refused symlink '%s' -> '%s': %s", archive, name,
                       target, why.text);
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

/* ==== extraction ========================================================== */

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
static int read_failure(ls_unpack_job *j, struct archive *a, ls_diag *diag)
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

static int write_failure(ls_unpack_job *j, struct archive *w, const char *name, ls_diag *diag)
{
  const char *msg = archive_error_string(w);
  int e = archive_errno(w);
  int code = (e == ENOSPC || e == EDQUOT || e == EIO || e == EROFS || e == EACCES)
                 ? ls_err_from_errno(e)
                 : LS_EFORMAT;
  return ls_diag_set(diag, code, "%s: cannot extract '%s': %s", j->archive, name,
                     msg ? msg : "unknown error");
}

static int report_progress(ls_unpack_job *j, bool force, ls_diag *diag)
{
  if (!j->progress || (!force && j->bytes - j->last_report < PROGRESS_STEP))
    return LS_OK;
  j->last_report = j->bytes;
  if (!j->progress(j->progress_user, j->bytes))
    return ls_diag_set(diag, LS_ECANCELED, "%s: extraction cancelled", j->archive);
  return LS_OK;
}

/* Before a block of data lands at [off, off + size) of the current file:
 * the growth past its declared size (counted at its header) and the
 * expansion ratio against what was read of the archive. */
static int check_block(ls_unpack_job *j, struct archive *a, la_int64_t off, size_t size,
                       ls_diag *diag)
{
  uint64_t end = (uint64_t)(off > 0 ? off : 0) + size;
  uint64_t counted = j->entry_end > j->entry_size ? j->entry_end : j->entry_size;
  int rc = LS_OK;
  if (end > counted)
    rc = ls_unpack_limits_grow(j->limits, j->archive, end - counted, diag);
  if (end > j->entry_end)
    j->entry_end = end;
  la_int64_t read = archive_filter_bytes(a, -1);
  if (rc == LS_OK)
    rc = ls_unpack_limits_data(j->limits, j->archive, size, read > 0 ? (uint64_t)read : 0, diag);
  return rc;
}

static int copy_data(ls_unpack_job *j, struct archive *a, struct archive *w, const char *name,
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
    int rc = check_block(j, a, off, size, diag);
    if (rc != LS_OK)
      return rc;
    if (archive_write_data_block(w, buf, size, off) < ARCHIVE_WARN)
      return write_failure(j, w, name, diag);
    j->bytes += size;
    rc = report_progress(j, false, diag);
    if (rc != LS_OK)
      return rc;
  }
}

/* Checks the entry and rewrites its pathname (and hardlink) under dest.
 * *skip for the root entry ("./"). */
static int prepare_entry(ls_unpack_job *j, struct archive_entry *e, bool *skip, ls_diag *diag)
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
  archive_entry_set_perm(e, archive_entry_perm(e) & LS_UNPACK_MODE_MASK);
  return LS_OK;
}

/* Before the entry is made: one more entry, and a file's declared size
 * (libarchive extends the file to it at the end) against the budget. */
static int check_entry_limits(ls_unpack_job *j, struct archive_entry *e, ls_diag *diag)
{
  int rc = ls_unpack_limits_entry(j->limits, j->archive, diag);
  j->entry_size = j->entry_end = 0;
  if (rc == LS_OK && archive_entry_filetype(e) == AE_IFREG && archive_entry_size_is_set(e) &&
      archive_entry_size(e) > 0) {
    j->entry_size = (uint64_t)archive_entry_size(e);
    rc = ls_unpack_limits_grow(j->limits, j->archive, j->entry_size, diag);
  }
  return rc;
}

static int extract_entry(ls_unpack_job *j, struct archive *a, struct archive *w,
                         struct archive_entry *e, ls_diag *diag)
{
  bool skip = false;
  int rc = prepare_entry(j, e, &skip, diag);
  if (rc != LS_OK)
    return rc;
  if (skip)
    return LS_OK;
  rc = check_entry_limits(j, e, diag);
  if (rc != LS_OK)
    return rc;
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

static int extract_all(ls_unpack_job *j, struct archive *a, struct archive *w, ls_diag *diag)
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

static int extract_volumes(ls_unpack_job *j, const ls_volume_list *vols, ls_diag *diag)
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
int ls_unpack_extract(ls_unpack_job *j, const ls_volume_list *vols, ls_diag *diag)
{
  pthread_once(&g_locale_once, init_utf8_locale);
  locale_t old = g_utf8_locale ? uselocale(g_utf8_locale) : (locale_t)0;
  int rc = extract_volumes(j, vols, diag);
  if (g_utf8_locale)
    uselocale(old);
  return rc;
}
