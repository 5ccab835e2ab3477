/* Tests the libarchive unpacker (install/unpack.c): round trips of zip, tar
 * (pax, ustar) and 7z archives written with libarchive at test time; RAR5
 * archives and volume sets written by hand from the RAR 5.0 format
 * description (stored entries); malicious, corrupt and truncated archives;
 * detection by content; the external command; progress and cancel; fsync;
 * the extraction limits (zip, tar.xz, ratio, entry-count and external
 * bombs), masked modes, and the external command's confinement (bwrap). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testrun.h"

#include "bombs.h"
#include "testutil.h"
#include "install/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* ==== helpers ============================================================= */

typedef struct t_entry {
  const char *name;
  mode_t type;          /* AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFCHR, AE_IFIFO */
  unsigned perm;
  const char *content;  /* regular files; NULL with size: pseudo-random */
  size_t size;
  const char *link;     /* symlink target */
  const char *hardlink; /* hardlink target */
  long mtime;
} t_entry;

static unsigned char *pseudo_random(size_t size, unsigned seed)
{
  unsigned char *b = malloc(size ? size : 1);
  assert_non_null(b);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < size; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    b[i] = (unsigned char)x;
  }
  return b;
}

static const unsigned char *entry_data(const t_entry *e, size_t *size, unsigned char **owned)
{
  *owned = NULL;
  if (e->content) {
    *size = strlen(e->content);
    return (const unsigned char *)e->content;
  }
  *size = e->size;
  *owned = pseudo_random(e->size, (unsigned)strlen(e->name));
  return *owned;
}

typedef int (*format_fn)(struct archive *);

/* Writes entries to path with the given format; zip_deflate picks the zip
 * compression (ignored by other formats). */
static void write_archive(const char *path, format_fn format, int zip_deflate,
                          const t_entry *entries, size_t n)
{
  struct archive *a = archive_write_new();
  assert_int_equal(format(a), ARCHIVE_OK);
  if (format == archive_write_set_format_zip)
    assert_int_equal(zip_deflate ? archive_write_zip_set_compression_deflate(a)
                                 : archive_write_zip_set_compression_store(a),
                     ARCHIVE_OK);
  assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
  for (size_t i = 0; i < n; i++) {
    const t_entry *e = &entries[i];
    struct archive_entry *ae = archive_entry_new();
    archive_entry_set_pathname(ae, e->name);
    archive_entry_set_filetype(ae, e->hardlink ? AE_IFREG : e->type);
    archive_entry_set_perm(ae, e->perm ? e->perm : 0644);
    archive_entry_set_mtime(ae, e->mtime ? e->mtime : 1600000000, 0);
    if (e->link)
      archive_entry_set_symlink(ae, e->link);
    if (e->hardlink)
      archive_entry_set_hardlink(ae, e->hardlink);
    if (e->type == AE_IFCHR)
      archive_entry_set_rdev(ae, makedev(1, 3));
    size_t size = 0;
    unsigned char *owned = NULL;
    const unsigned char *data = e->type == AE_IFREG && !e->hardlink
                                    ? entry_data(e, &size, &owned)
                                    : NULL;
    archive_entry_set_size(ae, (la_int64_t)size);
    assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
    if (size)
      assert_int_equal(archive_write_data(a, data, size), (la_ssize_t)size);
    free(owned);
    archive_entry_free(ae);
  }
  assert_int_equal(archive_write_close(a), ARCHIVE_OK);
  archive_write_free(a);
}

static char *read_all(const char *path, size_t *len)
{
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)n + 1);
  assert_non_null(b);
  assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  b[n] = '\0';
  *len = (size_t)n;
  return b;
}

static void write_bytes(const char *path, const void *data, size_t len)
{
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
}

/* Compares the extracted tree with the entries: content, mode, mtime. */
static void check_extracted(const char *dest, const t_entry *entries, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    const t_entry *e = &entries[i];
    const char *path = t_path("%s/%s", dest, e->name);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    if (e->type == AE_IFDIR) {
      assert_true(S_ISDIR(st.st_mode));
    } else if (e->type == AE_IFLNK) {
      assert_true(S_ISLNK(st.st_mode));
      char target[256];
      ssize_t len = readlink(path, target, sizeof target - 1);
      assert_true(len > 0);
      target[len] = '\0';
      assert_string_equal(target, e->link);
      continue;
    } else {
      assert_true(S_ISREG(st.st_mode));
      size_t want_len = 0, got_len = 0;
      unsigned char *owned = NULL;
      const unsigned char *want = entry_data(e, &want_len, &owned);
      char *got = read_all(path, &got_len);
      assert_non_null(got);
      assert_int_equal(got_len, want_len);
      assert_memory_equal(got, want, want_len);
      free(got);
      free(owned);
    }
    assert_int_equal(st.st_mode & 0777, e->perm ? e->perm : 0644);
    assert_int_equal(st.st_mtime, e->mtime ? e->mtime : 1600000000);
  }
}

static ls_unpacker new_unpacker(const char *external)
{
  ls_unpacker u;
  ls_diag diag = {{0}};
  assert_int_equal(ls_unpacker_libarchive(&u, external, &diag), LS_OK);
  return u;
}

static int unpack(const char *archive, const char *dest, ls_diag *diag)
{
  ls_unpacker u = new_unpacker(NULL);
  int rc = u.unpack(u.self, archive, dest, NULL, NULL, NULL, diag);
  ls_unpacker_libarchive_free(&u);
  return rc;
}

static size_t count_entries(const char *dir)
{
  DIR *d = opendir(dir);
  assert_non_null(d);
  size_t n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL)
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
      n++;
  closedir(d);
  return n;
}

static const t_entry GAME[] = {
  {.name = "game", .type = AE_IFDIR, .perm = 0755, .mtime = 1500000000},
  {.name = "game/data", .type = AE_IFDIR, .perm = 0750, .mtime = 1500000001},
  {.name = "game/data/a.bin", .type = AE_IFREG, .size = 300000, .mtime = 1500000002},
  {.name = "game/readme.txt", .type = AE_IFREG, .perm = 0600, .content = "hello\n"},
  {.name = "game/run.sh", .type = AE_IFREG, .perm = 0755, .content = "#!/bin/sh\n"},
  {.name = "game/empty", .type = AE_IFREG, .content = ""},
  {.name = "game/link", .type = AE_IFLNK, .perm = 0777, .link = "data/a.bin"},
};
#define GAME_N (sizeof GAME / sizeof *GAME)

/* One format of the round trip: written with libarchive, read back by ours. */
typedef struct roundtrip_case {
  format_fn format;
  int deflate;
  const char *file_name;
} roundtrip_case;

static const roundtrip_case ZIP_STORED = {archive_write_set_format_zip, 0, "stored.part01.eti"};
static const roundtrip_case ZIP_DEFLATE = {archive_write_set_format_zip, 1, "deflate.eti"};
static const roundtrip_case TAR_PAX = {archive_write_set_format_pax, 0, "pax.eti"};
static const roundtrip_case TAR_USTAR = {archive_write_set_format_ustar, 0, "ustar.eti"};
static const roundtrip_case SEVENZIP = {archive_write_set_format_7zip, 0, "seven.eti"};

static void roundtrip(void **state)
{
  const roundtrip_case *c = *state;
  char *tmp = t_tempdir();
  const char *archive = t_path("%s/%s", tmp, c->file_name);
  write_archive(archive, c->format, c->deflate, GAME, GAME_N);
  t_mkdir(tmp, "dest");
  ls_diag diag = {{0}};
  ls_unpacker u = new_unpacker(NULL);
  assert_true(u.is_archive(u.self, archive));
  int rc = u.unpack(u.self, archive, t_path("%s/dest", tmp), NULL, NULL, NULL, &diag);
  ls_unpacker_libarchive_free(&u);
  if (rc != LS_OK)
    fail_msg("%s", diag.text);
  check_extracted(t_path("%s/dest", tmp), GAME, GAME_N);
}

/* ==== a RAR5 writer (stored entries), after the RAR 5.0 technote ========== */

typedef struct bytes {
  unsigned char *b;
  size_t len, cap;
} bytes;

static void put(bytes *o, const void *p, size_t n)
{
  if (o->len + n > o->cap) {
    o->cap = (o->len + n) * 2 + 64;
    o->b = realloc(o->b, o->cap);
    assert_non_null(o->b);
  }
  memcpy(o->b + o->len, p, n);
  o->len += n;
}

static void put_vint(bytes *o, uint64_t v)
{
  do {
    unsigned char c = (unsigned char)(v & 0x7f);
    v >>= 7;
    if (v)
      c |= 0x80;
    put(o, &c, 1);
  } while (v);
}

static void put_u32(bytes *o, uint32_t v)
{
  unsigned char c[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                        (unsigned char)(v >> 24)};
  put(o, c, 4);
}

static uint32_t crc32_of(const void *data, size_t n)
{
  const unsigned char *p = data;
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++)
      c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
  }
  return ~c;
}

/* One block: CRC32 of (header size vint + body), header size, body. */
static void put_block(bytes *o, const bytes *body)
{
  bytes sized = {0};
  put_vint(&sized, body->len);
  put(&sized, body->b, body->len);
  put_u32(o, crc32_of(sized.b, sized.len));
  put(o, sized.b, sized.len);
  free(sized.b);
  free(body->b);
}

static void rar5_start(bytes *o, bool volume, unsigned long volume_number)
{
  static const unsigned char sig[8] = {0x52, 0x61, 0x72, 0x21, 0x1A, 0x07, 0x01, 0x00};
  put(o, sig, sizeof sig);
  bytes h = {0};
  put_vint(&h, 1); /* main archive header */
  put_vint(&h, 0); /* header flags */
  put_vint(&h, (volume ? 0x0001u : 0) | (volume_number ? 0x0002u : 0));
  if (volume_number)
    put_vint(&h, volume_number);
  put_block(o, &h);
}

/* A file (data != NULL) or directory header; split flags 0x0008 (continued
 * from the previous volume) and 0x0010 (continues in the next). */
static void rar5_file(bytes *o, const char *name, unsigned mode, const void *data, size_t len,
                      uint64_t unpacked, uint32_t crc, unsigned split)
{
  bool dir = data == NULL;
  bytes h = {0};
  put_vint(&h, 2);                            /* file header */
  put_vint(&h, 0x0002u | split);             /* data area present */
  put_vint(&h, dir ? 0 : len);                /* data size */
  put_vint(&h, dir ? 0x0003u : 0x0006u);      /* directory, mtime, CRC32 */
  put_vint(&h, dir ? 0 : unpacked);
  put_vint(&h, mode);                         /* attributes: Unix mode */
  put_u32(&h, 1600000000);                    /* mtime */
  if (!dir)
    put_u32(&h, crc);
  put_vint(&h, 0);                            /* compression: version 0, stored */
  put_vint(&h, 1);                            /* host OS: Unix */
  put_vint(&h, strlen(name));
  put(&h, name, strlen(name));
  put_block(o, &h);
  if (!dir)
    put(o, data, len);
}

static void rar5_end(bytes *o, bool more_volumes)
{
  bytes h = {0};
  put_vint(&h, 5);
  put_vint(&h, 0);
  put_vint(&h, more_volumes ? 1 : 0);
  put_block(o, &h);
}

static void rar5_write_file(const char *path, bytes *o)
{
  write_bytes(path, o->b, o->len);
  free(o->b);
  *o = (bytes){0};
}

/* A single RAR5 archive with a directory and two stored files. */
static void write_rar5(const char *path)
{
  bytes o = {0};
  rar5_start(&o, false, 0);
  rar5_file(&o, "dätä", 040755, NULL, 0, 0, 0, 0);
  const char *text = "stored in a RAR5 archive\n";
  rar5_file(&o, "dätä/ünï.txt", 0100644, text, strlen(text), strlen(text),
            crc32_of(text, strlen(text)), 0);
  unsigned char *blob = pseudo_random(100000, 7);
  rar5_file(&o, "blob.bin", 0100600, blob, 100000, 100000, crc32_of(blob, 100000), 0);
  free(blob);
  rar5_end(&o, false);
  rar5_write_file(path, &o);
}

/* A set of `parts` RAR5 volumes holding one file split evenly over them;
 * names[i] is volume i + 1. Returns the file content (malloc'ed). */
static unsigned char *write_rar5_set(char *const names[], size_t parts, size_t size)
{
  unsigned char *data = pseudo_random(size, 11);
  uint32_t full_crc = crc32_of(data, size);
  size_t per = size / parts;
  for (size_t i = 0; i < parts; i++) {
    size_t off = i * per, len = i + 1 == parts ? size - off : per;
    bool last = i + 1 == parts;
    unsigned split = (i > 0 ? 0x0008u : 0) | (last ? 0 : 0x0010u);
    bytes o = {0};
    rar5_start(&o, true, i);
    rar5_file(&o, "big.bin", 0100644, data + off, len, size,
              last ? full_crc : crc32_of(data + off, len), split);
    rar5_end(&o, !last);
    rar5_write_file(names[i], &o);
  }
  return data;
}

static void rar5_stored(void **state)
{
  (void)state;
  char *tmp = t_tempdir();
  const char *archive = t_path("%s/game.eti", tmp);
  write_rar5(archive);
  t_mkdir(tmp, "dest");
  ls_diag diag = {{0}};
  ls_unpacker u = new_unpacker(NULL);
  assert_true(u.is_archive(u.self, archive));
  int rc = u.unpack(u.self, archive, t_path("%s/dest", tmp), NULL, NULL, NULL, &diag);
  ls_unpacker_libarchive_free(&u);
  if (rc != LS_OK)
    fail_msg("%s", diag.text);
  size_t len = 0;
  char *got = read_all(t_path("%s/dest/dätä/ünï.txt", tmp), &len); /* UTF-8 name kept */
  assert_non_null(got);
  assert_string_equal(got, "stored in a RAR5 archive\n");
  free(got);
  unsigned char *blob = pseudo_random(100000, 7);
  got = read_all(t_path("%s/dest/blob.bin", tmp), &len);
  assert_non_null(got);
  assert_int_equal(len, 100000);
  assert_memory_equal(got, blob, len);
  free(got);
  free(blob);
}

static char **volume_names(const char *dir, const char *fmt, size_t parts)
{
  char **names = calloc(parts + 1, sizeof *names);
  assert_non_null(names);
  for (size_t i = 0; i < parts; i++) {
    char name[64];
    snprintf(name, sizeof name, fmt, (unsigned)(i + 1));
    assert_true(asprintf(&names[i], "%s/%s", dir, name) > 0);
  }
  return names;
}

static void free_names(char **names)
{
  for (size_t i = 0; names[i]; i++)
    free(names[i]);
  free(names);
}

/* 11 volumes: part10 and part11 must come after part9 (numeric order). */
static void rar5_multivolume_extracts_in_order(void **state)
{
  (void)state;
  char *tmp = t_tempdir();
  char **names = volume_names(tmp, "set.part%u.rar", 11);
  unsigned char *data = write_rar5_set(names, 11, 1100000);
  ls_volume_list vols;
  ls_diag diag = {{0}};
  assert_int_equal(ls_unpack_volumes(names[0], &vols, &diag), LS_OK);
  assert_int_equal(vols.count, 11);
  for (size_t i = 0; i < 11; i++)
    assert_string_equal(vols.paths[i], names[i]);
  assert_null(vols.paths[11]);
  ls_volume_list_free(&vols);

  ls_unpacker u = new_unpacker(NULL);
  assert_true(u.is_archive(u.self, names[0]));
  for (size_t i = 1; i < 11; i++)
    assert_false(u.is_archive(u.self, names[i]));
  t_mkdir(tmp, "dest");
  int rc = u.unpack(u.self, names[0], t_path("%s/dest", tmp), NULL, NULL, NULL, &diag);
  if (rc != LS_OK)
    fail_msg("%s", diag.text);
  size_t len = 0;
  char *got = read_all(t_path("%s/dest/big.bin", tmp), &len);
  assert_int_equal(len, 1100000);
  assert_memory_equal(got, data, len);
  free(got);
  /* a later volume is refused as a start */
  rc = u.unpack(u.self, names[1], t_path("%s/dest", tmp), NULL, NULL, NULL, &diag);
  assert_int_equal(rc, LS_EFORMAT);
  assert_non_null(strstr(diag.text, "not its first volume"));
  ls_unpacker_libarchive_free(&u);
  free(data);
  free_names(names);
}

static void rar5_missing_volume_refused(void **state)
{
  (void)state;
  char *tmp = t_tempdir();
  char **names = volume_names(tmp, "gap.part%02u.eti", 4);
  free(write_rar5_set(names, 4, 40000));
  ls_volume_list vols;
  ls_diag diag = {{0}};
  /* a gap in the middle */
  assert_int_equal(unlink(names[2]), 0);
  assert_int_equal(ls_unpack_volumes(names[0], &vols, &diag), LS_ENOENT);
  assert_non_null(strstr(diag.text, "volume 3"));
  assert_non_null(strstr(diag.text, "gap.part01.eti"));
  /* the last one missing: the end header of volume 3 says more follow */
  free(write_rar5_set(names, 4, 40000));
  assert_int_equal(unlink(names[3]), 0);
  assert_int_equal(ls_unpack_volumes(names[0], &vols, &diag), LS_ENOENT);
  assert_non_null(strstr(diag.text, "volume 4"));
  t_mkdir(tmp, "dest");
  assert_int_equal(unpack(names[0], t_path("%s/dest", tmp), &diag), LS_ENOENT);
  free_names(names);
}

static void rar5_misnamed_volume_refused(void **state)
{
  (void)state;
  char *tmp = t_tempdir();
  char **names = volume_names(tmp, "swap.part%u.rar", 3);
  free(write_rar5_set(names, 3, 30000));
  /* swap volumes 2 and 3 by renaming: the header numbers disagree */
  assert_int_equal(rename(names[1], t_path("%s/tmp", tmp)), 0);
  assert_int_equal(rename(names[2], names[1]), 0);
  assert_int_equal(rename(t_path("%s/tmp", tmp), names[2]), 0);
  ls_volume_list vols;
  ls_diag diag = {{0}};
  assert_int_equal(ls_unpack_volumes(names[0], &vols, &diag), LS_EFORMAT);
  assert_non_null(strstr(diag.text, "says it is volume 3"));
  free_names(names);
}

/* The old naming: NAME.rar, NAME.r00, NAME.r01 ... (ordering on names). */
static void old_style_volume_names_ordered(void **state)
{
  (void)state;
  char *tmp = t_tempdir();
  char *names[4] = {NULL};
  assert_true(asprintf(&names[0], "%s/old.rar", tmp) > 0);
  assert_true(asprintf(&names[1], "%s/old.r00", tmp) > 0);
  assert_true(asprintf(&names[2], "%s/old.r01", tmp) > 0);
  free(write_rar5_set(names, 3, 30000));
  t_write(tmp, "old.txt", "not a volume\n");
  t_write(tmp, "older.r02", "not a volume either\n");
  ls_volume_list vols;
  ls_diag diag = {{0}};
  assert_int_equal(ls_unpack_volumes(names[0], &vols, &diag), LS_OK);
  assert_int_equal(vols.count, 3);
  for (size_t i = 0; i < 3; i++)
    assert_string_equal(vols.paths[i], names[i]);
  ls_volume_list_free(&vols);
  ls_unpacker u = new_unpacker(NULL);
  assert_true(u.is_archive(u.self, names[0]));
  assert_false(u.is_archive(u.self, names[1]));
  ls_unpacker_libarchive_free(&u);
  for (size_t i = 0; i < 3; i++)
    free(names[i]);
}

/* ==== malicious archives ================================================== */

/* Extracts into TMP/dest with a canary TMP/canary beside it; asserts the
 * unpack fails with a diag naming the archive and `why`, and that nothing
 * appeared outside dest. */
static void expect_refused(const t_entry *entries, size_t n, format_fn format, const char *why)
{
  char *tmp = t_tempdir();
  t_mkdir(tmp, "arch");
  t_mkdir(tmp, "dest");
  t_mkdir(tmp, "canary");
  const char *archive = t_path("%s/arch/evil.eti", tmp);
  write_archive(archive, format, 0, entries, n);
  ls_diag diag = {{0}};
  int rc = unpack(archive, t_path("%s/dest", tmp), &diag);
  assert_int_not_equal(rc, LS_OK);
  if (!strstr(diag.text, "evil.eti") || !strstr(diag.text, why))
    fail_msg("diag '%s' lacks the archive name or '%s'", diag.text, why);
  assert_int_equal(count_entries(t_path("%s/canary", tmp)), 0);
  assert_int_equal(count_entries(tmp), 3); /* arch, dest, canary */
  assert_int_equal(count_entries(t_path("%s/arch", tmp)), 1);
}

static void refuses_dotdot(void **state)
{
  (void)state;
  t_entry e[] = {{.name = "../evil", .type = AE_IFREG, .content = "x"}};
  expect_refused(e, 1, archive_write_set_format_pax, "'..'");
  t_entry e2[] = {{.name = "a/../../canary/b", .type = AE_IFREG, .content = "x"}};
  expect_refused(e2, 1, archive_write_set_format_pax, "'..'");
  expect_refused(e2, 1, archive_write_set_format_zip, "'..'");
}

static void refuses_absolute(void **state)
{
  (void)state;
  char *tmp = t_tempdir();
  t_entry e[] = {{.name = t_path("%s/abs", tmp), .type = AE_IFREG, .content = "x"}};
  expect_refused(e, 1, archive_write_set_format_pax, "absolute path");
  struct stat st;
  assert_int_equal(lstat(t_path("%s/abs", tmp), &st), -1);
}

static void refuses_symlink_escapes(void **state)
{
  (void)state;
  t_entry through[] = {{.name = "link", .type = AE_IFLNK, .link = "/etc"},
                       {.name = "link/passwd", .type = AE_IFREG, .content = "x"}};
  expect_refused(through, 2, archive_write_set_format_pax, "absolute target");
  t_entry absolute[] = {{.name = "l", .type = AE_IFLNK, .link = "/etc/passwd"}};
  expect_refused(absolute, 1, archive_write_set_format_pax, "absolute target");
  t_entry up[] = {{.name = "d/l", .type = AE_IFLNK, .link = "../../canary"}};
  expect_refused(up, 1, archive_write_set_format_pax, "outside the destination");
  /* lexically inside, really outside: s -> . then t -> s/.. */
  t_entry chained[] = {{.name = "s", .type = AE_IFLNK, .link = "."},
                       {.name = "t", .type = AE_IFLNK, .link = "s/.."}};
  expect_refused(chained, 2, archive_write_set_format_pax, "pointing outside");
}

/* An inside symlink passes our check; libarchive's SECURE_SYMLINKS must still
 * refuse writing a file through it. */
static void refuses_write_through_symlink(void **state)
{
  (void)state;
  t_entry e[] = {{.name = "sub", .type = AE_IFDIR, .perm = 0755},
                 {.name = "ok", .type = AE_IFLNK, .link = "sub"},
                 {.name = "ok/file", .type = AE_IFREG, .content = "x"}};
  expect_refused(e, 3, archive_write_set_format_pax, "symlink");
}

static void refuses_outside_hardlink(void **state)
{
  (void)state;
  t_entry e[] = {{.name = "h", .type = AE_IFREG, .hardlink = "/etc/hostname"}};
  expect_refused(e, 1, archive_write_set_format_pax, "absolute path");
  t_entry e2[] = {{.name = "h", .type = AE_IFREG, .hardlink = "../canary/x"}};
  expect_refused(e2, 1, archive_write_set_format_pax, "'..'");
}

static void refuses_special_files(void **state)
{
  (void)state;
  t_entry dev[] = {{.name = "null", .type = AE_IFCHR}};
  expect_refused(dev, 1, archive_write_set_format_pax, "character device");
  t_entry fifo[] = {{.name = "pipe", .type = AE_IFIFO}};
  expect_refused(fifo, 1, archive_write_set_format_pax, "FIFO");
}

static void inside_hardlink_and_symlink_work(void **state)
{
  (void)state;
  char *tmp = t_tempdir();
  t_entry e[] = {{.name = "d/f", .type = AE_IFREG, .content = "data"},
                 {.name = "d/h", .type = AE_IFREG, .hardlink = "d/f"},
                 {.name = "d/s", .type = AE_IFLNK, .link = "../d/f"}};
  const char *archive = t_path("%s/ok.tar", tmp);
  write_archive(archive, archive_write_set_format_pax, 0, e, 3);
  t_mkdir(tmp, "dest");
  ls_diag diag = {{0}};
  if (unpack(archive, t_path("%s/dest", tmp), &diag) != LS_OK)
    fail_msg("%s", diag.text);
  struct stat a, b;
  assert_int_equal(stat(t_path("%s/dest/d/f", tmp), &a), 0);
  assert_int_equal(stat(t_path("%s/dest/d/h", tmp), &b), 0);
  assert_int_equal(a.st_ino, b.st_ino);
  assert_int_equal(stat(t_path("%s/dest/d/s", tmp), &b), 0);
  assert_int_equal(a.st_ino, b.st_ino);
}

/* ==== corrupt and truncated archives ===================================== */

static void expect_broken(const char *archive, const char *dest)
{
  ls_diag diag = {{0}};
  int rc = unpack(archive, dest, &diag);
  if (rc == LS_OK)
    fail_msg("%s was extracted", archive);
  if (!strstr(diag.text, archive))
    fail_msg("diag '%s' does not name %s", diag.text, archive);
}

static void corrupt_and_truncated_fail(void **state)
{
  (void)state;
  char *tmp = t_tempdir();
  t_mkdir(tmp, "dest");
  char dest[4096];
  snprintf(dest, sizeof dest, "%s/dest", tmp);
  static const t_entry big[] = {{.name = "f.bin", .type = AE_IFREG, .size = 200000}};
  const char *formats[] = {"zipstore", "zipdeflate", "tar", "7z"};
  for (size_t i = 0; i < 4; i++) {
    const char *archive = t_path("%s/%s.eti", tmp, formats[i]);
    format_fn fn = i < 2 ? archive_write_set_format_zip
                   : i == 2 ? archive_write_set_format_pax
                            : archive_write_set_format_7zip;
    write_archive(archive, fn, i == 1, big, 1);
    size_t len = 0;
    char *b = read_all(archive, &len);
    /* truncated to half */
    write_bytes(archive, b, len / 2);
    expect_broken(archive, dest);
    if (i != 2) { /* tar has no payload checksum */
      for (size_t k = 0; k < 16; k++)
        b[len / 2 + k] ^= 0x5a;
      write_bytes(archive, b, len);
      expect_broken(archive, dest);
    }
    free(b);
  }
  /* a tar with a corrupt header checksum */
  const char *archive = t_path("%s/hdr.tar", tmp);
  write_archive(archive, archive_write_set_format_ustar, 0, big, 1);
  size_t len = 0;
  char *b = read_all(archive, &len);
  b[0] ^= 0x20;
  write_bytes(archive, b, len);
  free(b);
  expect_broken(archive, dest);
}

/* ==== detection by content ================================================ */

static void detects_by_content(void **state)
{
  (void)state;
  char *tmp = t_tempdir();
  static const t_entry one[] = {{.name = "f", .type = AE_IFREG, .content = "x"}};
  write_archive(t_path("%s/x.eti", tmp), archive_write_set_format_zip, 1, one, 1);
  write_archive(t_path("%s/y.eti", tmp), archive_write_set_format_pax, 0, one, 1);
  write_archive(t_path("%s/v7.eti", tmp), archive_write_set_format_v7tar, 0, one, 1);
  write_archive(t_path("%s/g.part02.eti", tmp), archive_write_set_format_zip, 0, one, 1);
  t_write(tmp, "z.zip", "just some text, not a zip\n");
  t_write(tmp, "e.rar", "");
  write_rar5(t_path("%s/r.part2.eti", tmp)); /* not a volume: a whole archive */
  char *names[3] = {NULL};
  assert_true(asprintf(&names[0], "%s/v.part1.eti", tmp) > 0);
  assert_true(asprintf(&names[1], "%s/v.part2.eti", tmp) > 0);
  free(write_rar5_set(names, 2, 1000));
  ls_unpacker u = new_unpacker(NULL);
  assert_true(u.is_archive(u.self, t_path("%s/x.eti", tmp)));
  assert_true(u.is_archive(u.self, t_path("%s/y.eti", tmp)));
  assert_true(u.is_archive(u.self, t_path("%s/v7.eti", tmp)));
  assert_true(u.is_archive(u.self, t_path("%s/g.part02.eti", tmp)));
  assert_true(u.is_archive(u.self, t_path("%s/r.part2.eti", tmp)));
  assert_false(u.is_archive(u.self, t_path("%s/z.zip", tmp)));
  assert_false(u.is_archive(u.self, t_path("%s/e.rar", tmp)));
  assert_false(u.is_archive(u.self, t_path("%s/missing", tmp)));
  assert_false(u.is_archive(u.self, tmp)); /* a directory */
  assert_true(u.is_archive(u.self, names[0]));
  assert_false(u.is_archive(u.self, names[1]));
  ls_unpacker_libarchive_free(&u);
  free(names[0]);
  free(names[1]);
}

/* ==== external unpacker =================================================== */

static const char *write_script(const char *dir, const char *name, const char *body)
{
  t_write(dir, name, body);
  const char *path = t_path("%s/%s", dir, name);
  assert_int_equal(chmod(path, 0755), 0);
  return path;
}

static void external_success_and_substitution(void **state)
{
  (void)state;
  char *tmp = t_tempdir();
  t_mkdir(tmp, "my tools");
  t_mkdir(tmp, "dest dir");
  write_script(t_path("%s/my tools", tmp), "ok.sh",
               "#!/bin/sh\n[ $# -eq 3 ] || exit 9\ncp \"$1\" \"$2/copied\"\n"
               "printf '%s' \"$3\" > \"$2/third\"\n");
  t_write(tmp, "an archive.eti", "payload\n");
  const char *tmpl = t_path("'%s/my tools/ok.sh' {archive} {dest} \"x y\"", tmp);
  ls_diag diag = {{0}};
  int rc = ls_unpack_external(tmpl, t_path("%s/an archive.eti", tmp), t_path("%s/dest dir", tmp),
                              NULL, NULL, NULL, &diag);
  if (rc != LS_OK)
    fail_msg("%s", diag.text);
  size_t len = 0;
  char *got = read_all(t_path("%s/dest dir/copied", tmp), &len);
  assert_non_null(got);
  assert_string_equal(got, "payload\n");
  free(got);
  got = read_all(t_path("%s/dest dir/third", tmp), &len);
  assert_string_equal(got, "x y");
  free(got);
}

static void external_failure_reports_status_and_stderr(void **state)
{
  (void)state;
  char *tmp = t_tempdir();
  const char *script =
    write_script(tmp, "fail.sh", "#!/bin/sh\necho \"cannot open $1\" >&2\nexit 3\n");
  ls_diag diag = {{0}};
  int rc = ls_unpack_external(t_path("%s {archive} {dest}", script), "/no/such.rar", tmp, NULL,
                              NULL, NULL, &diag);
  assert_int_equal(rc, LS_EIO);
  assert_non_null(strstr(diag.text, "/no/such.rar"));
  assert_non_null(strstr(diag.text, "status 3"));
  assert_non_null(strstr(diag.text, "cannot open /no/such.rar"));
  /* a shell construct is not interpreted: /bin/sh gets the words as is */
  rc = ls_unpack_external("/nonexistent/prog {archive} {dest}", "a", tmp, NULL, NULL, NULL,
                          &diag);
  assert_int_equal(rc, LS_ENOENT);
  assert_non_null(strstr(diag.text, "/nonexistent/prog"));
}

static void external_template_validation(void **state)
{
  (void)state;
  ls_unpacker u;
  ls_diag diag = {{0}};
  assert_int_equal(ls_unpacker_libarchive(&u, "unrar x {archive}", &diag), LS_EINVAL);
  assert_non_null(strstr(diag.text, "{dest}"));
  assert_int_equal(ls_unpacker_libarchive(&u, "unrar 'x {archive} {dest}", &diag), LS_EINVAL);
  assert_non_null(strstr(diag.text, "unterminated"));
  assert_int_equal(ls_unpacker_libarchive(&u, "   ", &diag), LS_EINVAL);
}

/* A RAR5 archive with an archive encryption header: libarchive refuses it. */
static void write_encrypted_rar5(const char *path)
{
  static const unsigned char sig[8] = {0x52, 0x61, 0x72, 0x21, 0x1A, 0x07, 0x01, 0x00};
  bytes o = {0};
  put(&o, sig, sizeof sig);
  bytes h = {0};
  put_vint(&h, 4); /* archive encryption header */
  put_vint(&h, 0);
  put_vint(&h, 0); /* encryption version: AES-256 */
  put_vint(&h, 0); /* flags */
  unsigned char kdf_and_salt[17] = {15};
  put(&h, kdf_and_salt, sizeof kdf_and_salt);
  put_block(&o, &h);
  unsigned char junk[64] = {0};
  put(&o, junk, sizeof junk);
  rar5_write_file(path, &o);
}

static void unsupported_rar_falls_back(void **state)
{
  (void)state;
  char *tmp = t_tempdir();
  const char *archive = t_path("%s/secret.eti", tmp);
  write_encrypted_rar5(archive);
  t_mkdir(tmp, "dest");
  char dest[4096];
  snprintf(dest, sizeof dest, "%s/dest", tmp);
  /* no sidecar on PATH: the message says what to install */
  char *old_path = strdup(getenv("PATH") ? getenv("PATH") : "");
  setenv("PATH", tmp, 1);
  ls_diag diag = {{0}};
  int rc = unpack(archive, dest, &diag);
  assert_true(rc == LS_EUNSUPPORTED || rc == LS_EFORMAT);
  assert_non_null(strstr(diag.text, archive));
  assert_non_null(strstr(diag.text, "install unrar"));
  setenv("PATH", old_path, 1);
  free(old_path);
  /* with --unpacker: the command runs */
  const char *script = write_script(tmp, "side car.sh", "#!/bin/sh\necho ok > \"$2/by-sidecar\"\n");
  ls_unpacker u = new_unpacker(t_path("'%s' {archive} {dest}", script));
  rc = u.unpack(u.self, archive, dest, NULL, NULL, NULL, &diag);
  if (rc != LS_OK)
    fail_msg("%s", diag.text);
  struct stat st;
  assert_int_equal(stat(t_path("%s/by-sidecar", dest), &st), 0);
  ls_unpacker_libarchive_free(&u);
  /* the sidecar's outward symlinks and FIFOs are removed and refused */
  script = write_script(tmp, "evil.sh",
                        "#!/bin/sh\nln -s /etc \"$2/etc\"\nmkfifo \"$2/fifo\"\n"
                        "ln -s inside \"$2/fine\"\n");
  u = new_unpacker(t_path("%s {archive} {dest}", script));
  rc = u.unpack(u.self, archive, dest, NULL, NULL, NULL, &diag);
  assert_int_equal(rc, LS_EFORMAT);
  assert_non_null(strstr(diag.text, "removed"));
  assert_int_equal(lstat(t_path("%s/etc", dest), &st), -1);
  assert_int_equal(lstat(t_path("%s/fifo", dest), &st), -1);
  assert_int_equal(lstat(t_path("%s/fine", dest), &st), 0);
  ls_unpacker_libarchive_free(&u);
}

/* ==== progress, cancel, fsync ============================================ */

typedef struct progress_log {
  unsigned calls;
  uint64_t last;
  bool monotonic;
  uint64_t cancel_after; /* 0: never */
} progress_log;

static bool on_progress(void *user, uint64_t done)
{
  progress_log *p = user;
  if (done < p->last)
    p->monotonic = false;
  p->last = done;
  p->calls++;
  return !(p->cancel_after && done >= p->cancel_after);
}

static void progress_and_cancel(void **state)
{
  (void)state;
  char *tmp = t_tempdir();
  static const t_entry e[] = {{.name = "a.bin", .type = AE_IFREG, .size = 12u << 20},
                              {.name = "b.bin", .type = AE_IFREG, .size = 12u << 20}};
  const char *archive = t_path("%s/big.eti", tmp);
  write_archive(archive, archive_write_set_format_pax, 0, e, 2);
  t_mkdir(tmp, "dest");
  ls_unpacker u = new_unpacker(NULL);
  progress_log log = {.monotonic = true};
  ls_diag diag = {{0}};
  int rc = u.unpack(u.self, archive, t_path("%s/dest", tmp), NULL, on_progress, &log, &diag);
  if (rc != LS_OK)
    fail_msg("%s", diag.text);
  assert_true(log.calls >= 6);
  assert_true(log.monotonic);
  assert_int_equal(log.last, 24u << 20);
  t_mkdir(tmp, "dest2");
  log = (progress_log){.monotonic = true, .cancel_after = 4u << 20};
  rc = u.unpack(u.self, archive, t_path("%s/dest2", tmp), NULL, on_progress, &log, &diag);
  assert_int_equal(rc, LS_ECANCELED);
  assert_true(log.last < 12u << 20);
  struct stat st;
  assert_int_equal(lstat(t_path("%s/dest2/b.bin", tmp), &st), -1);
  ls_unpacker_libarchive_free(&u);
  assert_int_equal(ls_fsync_tree(t_path("%s/dest", tmp), &diag), LS_OK);
  assert_int_equal(ls_fsync_tree(t_path("%s/nope", tmp), &diag), LS_ENOENT);
}


/* ==== extraction limits =================================================== */

static uint64_t g_tree_bytes, g_tree_entries;

static int tree_visit(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void)path;
  (void)flag;
  if (ftw->level > 0)
    g_tree_entries++;
  if (S_ISREG(st->st_mode))
    g_tree_bytes += (uint64_t)st->st_size;
  return 0;
}

/* Bytes of the regular files under dir (their sizes), and its entries. */
static uint64_t tree_size(const char *dir, uint64_t *entries)
{
  g_tree_bytes = g_tree_entries = 0;
  assert_int_equal(nftw(dir, tree_visit, 16, FTW_PHYS), 0);
  if (entries)
    *entries = g_tree_entries;
  return g_tree_bytes;
}

static uint64_t file_size_of(const char *path)
{
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  return (uint64_t)st.st_size;
}

/* Unpacks archive into TMP/dest under the game limits begun with rule
 * (NULL: the default) for a payload of the archive's size; asserts the
 * refusal `code` naming the archive and `why`, and that the files on disk
 * never went past the budget. Returns the bytes on disk. */
static uint64_t expect_limit(const char *tmp, const char *archive, const ls_unpack_rule *rule,
                             int code, const char *why, uint64_t *budget)
{
  const char *dest = t_path("%s/dest", tmp);
  t_mkdir(tmp, "dest");
  ls_unpack_limits l;
  ls_diag diag = {{0}};
  assert_int_equal(ls_unpack_limits_begin(&l, rule, dest, file_size_of(archive), &diag), LS_OK);
  ls_unpacker u = new_unpacker(NULL);
  int rc = u.unpack(u.self, archive, dest, &l, NULL, NULL, &diag);
  ls_unpacker_libarchive_free(&u);
  if (rc != code || !strstr(diag.text, archive) || !strstr(diag.text, why))
    fail_msg("rc %d (%s), diag '%s': wanted %s and '%s'", rc, ls_error_name(rc), diag.text,
             ls_error_name(code), why);
  uint64_t on_disk = tree_size(dest, NULL);
  if (on_disk > l.budget)
    fail_msg("%llu bytes on disk, over the budget of %llu", (unsigned long long)on_disk,
             (unsigned long long)l.budget);
  if (budget)
    *budget = l.budget;
  return on_disk;
}

/* A zip bomb: 24 entries of 8 MiB zeros (192 MiB) in 190 KB. The budget
 * is 32 x 190 KB + 64 MiB: the entry that would pass it is refused before
 * a byte of it is written. Also through the unpacker alone (no limits
 * given: the same rule for this archive). */
static void zip_bomb_refused(void **state)
{
  (void)state;
  char *tmp = t_tempdir();
  const char *archive = t_path("%s/bomb.zip", tmp);
  t_zero_bomb(archive, false, "", 24, 8u << 20);
  assert_true(file_size_of(archive) < (1u << 20));
  uint64_t budget = 0;
  uint64_t on_disk = expect_limit(tmp, archive, NULL, LS_ELIMIT, "expands beyond its limit",
                                  &budget);
  assert_true(on_disk + (8u << 20) > budget); /* it wrote up to the cap, not beyond */
  t_rmtree(t_path("%s/dest", tmp));
  t_mkdir(tmp, "dest");
  ls_diag diag = {{0}};
  assert_int_equal(unpack(archive, t_path("%s/dest", tmp), &diag), LS_ELIMIT);
  assert_true(tree_size(t_path("%s/dest", tmp), NULL) <= budget);
}

/* A tar.xz bomb (the issue's: KBs of xz that become hundreds of MiB). */
static void tar_xz_bomb_refused(void **state)
{
  (void)state;
  char *tmp = t_tempdir();
  const char *archive = t_path("%s/bomb.tar.xz", tmp);
  t_zero_bomb(archive, true, "", 8, 16u << 20);
  assert_true(file_size_of(archive) < (256u << 10));
  uint64_t budget = 0;
  uint64_t on_disk = expect_limit(tmp, archive, NULL, LS_ELIMIT, "expands beyond its limit",
                                  &budget);
  assert_true(on_disk + (16u << 20) > budget);
}

/* The expansion ratio, checked per block of data: 1 MiB of noise, then
 * zeros that gzip squeezes 1000:1; at 10:1 past the first 2 MiB the zeros
 * are stopped long before their 64 MiB, in the middle of the file. */
static void ratio_limit_refused(void **state)
{
  (void)state;
  char *tmp = t_tempdir();
  const char *archive = t_path("%s/ratio.tgz", tmp);
  struct archive *a = archive_write_new();
  assert_int_equal(archive_write_set_format_pax(a), ARCHIVE_OK);
  assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
  assert_int_equal(archive_write_open_filename(a, archive), ARCHIVE_OK);
  unsigned char *noise = pseudo_random(1u << 20, 3);
  unsigned char *zeros = calloc(1, 1u << 20);
  for (int i = 0; i < 2; i++) {
    struct archive_entry *ae = archive_entry_new();
    archive_entry_set_pathname(ae, i == 0 ? "noise.bin" : "zeros.bin");
    archive_entry_set_filetype(ae, AE_IFREG);
    archive_entry_set_perm(ae, 0644);
    archive_entry_set_size(ae, i == 0 ? (1 << 20) : (64 << 20));
    assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
    for (int k = 0; k < (i == 0 ? 1 : 64); k++)
      assert_int_equal(archive_write_data(a, i == 0 ? noise : zeros, 1u << 20), 1 << 20);
    archive_entry_free(ae);
  }
  free(noise);
  free(zeros);
  assert_int_equal(archive_write_close(a), ARCHIVE_OK);
  archive_write_free(a);
  ls_unpack_rule rule = ls_unpack_rule_default();
  rule.game_ratio = 1000000; /* the budget out of the way */
  rule.ratio = 10;
  rule.ratio_free = 2u << 20;
  expect_limit(tmp, archive, &rule, LS_ELIMIT, "expands more than 10:1", NULL);
  /* the blocks written: libarchive extends a file to its declared size
   * when it is abandoned (a hole, counted in the budget at its header) */
  struct stat st;
  assert_int_equal(stat(t_path("%s/dest/zeros.bin", tmp), &st), 0);
  assert_true((uint64_t)st.st_blocks * 512 < (32u << 20));
  assert_int_equal(file_size_of(t_path("%s/dest/noise.bin", tmp)), 1u << 20);
}

/* Many tiny entries: refused at the entry past the limit (100 here; the
 * default is LS_UNPACK_MAX_ENTRIES), also when counted over two archives. */
static void entry_count_bomb_refused(void **state)
{
  (void)state;
  char *tmp = t_tempdir();
  const char *archive = t_path("%s/many.zip", tmp);
  t_zero_bomb(archive, false, "", 500, 1);
  ls_unpack_rule rule = ls_unpack_rule_default();
  rule.max_entries = 100;
  expect_limit(tmp, archive, &rule, LS_ELIMIT, "more than 100 entries", NULL);
  uint64_t entries = 0;
  tree_size(t_path("%s/dest", tmp), &entries);
  assert_int_equal(entries, 100);
  /* two archives of 60 under one game's limits */
  const char *a1 = t_path("%s/a1.zip", tmp);
  t_zero_bomb(a1, false, "", 60, 1);
  t_mkdir(tmp, "two");
  ls_unpack_limits l;
  ls_diag diag = {{0}};
  assert_int_equal(ls_unpack_limits_begin(&l, &rule, t_path("%s/two", tmp), 1000, &diag), LS_OK);
  ls_unpacker u = new_unpacker(NULL);
  const char *first = t_path("%s/two/first", tmp), *second = t_path("%s/two/second", tmp);
  t_mkdir(tmp, "two/first");
  t_mkdir(tmp, "two/second");
  assert_int_equal(u.unpack(u.self, a1, first, &l, NULL, NULL, &diag), LS_OK);
  assert_int_equal(u.unpack(u.self, a1, second, &l, NULL, NULL, &diag), LS_ELIMIT);
  ls_unpacker_libarchive_free(&u);
}

/* The free-space bound: a reserve larger than the disk refuses the first
 * byte with LS_ENOSPC, naming the reserve. */
static void disk_reserve_refused(void **state)
{
  (void)state;
  char *tmp = t_tempdir();
  const char *archive = t_path("%s/small.zip", tmp);
  t_zero_bomb(archive, false, "", 2, 4096);
  struct statvfs sv;
  assert_int_equal(statvfs(tmp, &sv), 0);
  ls_unpack_rule rule = ls_unpack_rule_default();
  rule.disk_reserve = (uint64_t)sv.f_blocks * sv.f_frsize + 1;
  uint64_t on_disk = expect_limit(tmp, archive, &rule, LS_ENOSPC, "MiB free", NULL);
  assert_int_equal(on_disk, 0);
}

/* ==== modes =============================================================== */

static void assert_masked(const char *path, unsigned want)
{
  struct stat st;
  assert_int_equal(lstat(path, &st), 0);
  if ((st.st_mode & 07777) != want)
    fail_msg("%s: mode %04o, wanted %04o", path, (unsigned)(st.st_mode & 07777), want);
}

/* Files and directories with setuid, setgid, sticky and world write come
 * out with none of them; a directory the archive does not list (made by
 * libarchive under the umask) too, even with umask 0. */
static void modes_masked(void **state)
{
  (void)state;
  char *tmp = t_tempdir();
  static const unsigned perms[] = {04777, 02777, 0777, 01777, 06775, 0666};
  t_entry e[2 * 6 + 1];
  char names[2 * 6][32];
  for (size_t i = 0; i < 6; i++) {
    snprintf(names[2 * i], sizeof names[0], "d%04o", perms[i]);
    snprintf(names[2 * i + 1], sizeof names[0], "f%04o", perms[i]);
    e[2 * i] = (t_entry){.name = names[2 * i], .type = AE_IFDIR, .perm = perms[i]};
    e[2 * i + 1] = (t_entry){.name = names[2 * i + 1], .type = AE_IFREG, .perm = perms[i],
                             .content = "x"};
  }
  e[12] = (t_entry){.name = "implicit/parent/f", .type = AE_IFREG, .perm = 0644, .content = "y"};
  const char *archive = t_path("%s/modes.tar", tmp);
  write_archive(archive, archive_write_set_format_pax, 0, e, 13);
  t_mkdir(tmp, "dest");
  mode_t old = umask(0);
  ls_diag diag = {{0}};
  int rc = unpack(archive, t_path("%s/dest", tmp), &diag);
  umask(old);
  if (rc != LS_OK)
    fail_msg("%s", diag.text);
  for (size_t i = 0; i < 12; i++)
    assert_masked(t_path("%s/dest/%s", tmp, names[i]), perms[i % 2 ? (i - 1) / 2 : i / 2] & 0755);
  assert_masked(t_path("%s/dest/implicit", tmp), 0755);
  assert_masked(t_path("%s/dest/implicit/parent", tmp), 0755);
}

/* ==== the external command: limits, modes, confinement ==================== */

/* Runs the script as --unpacker on the encrypted RAR5 of
 * unsupported_rar_falls_back (libarchive refuses it) into TMP/dest. */
static int run_fallback_script(const char *tmp, const char *body, ls_unpack_limits *l,
                               ls_diag *diag)
{
  const char *archive = t_path("%s/locked.eti", tmp);
  write_encrypted_rar5(archive);
  const char *script = write_script(tmp, "unpacker.sh", body);
  char tmpl[4200];
  snprintf(tmpl, sizeof tmpl, "'%s' {archive} {dest}", script);
  ls_unpacker u = new_unpacker(tmpl);
  int rc = u.unpack(u.self, archive, t_path("%s/dest", tmp), l, NULL, NULL, diag);
  ls_unpacker_libarchive_free(&u);
  return rc;
}

static void external_modes_masked(void **state)
{
  (void)state;
  char *tmp = t_tempdir();
  t_mkdir(tmp, "dest");
  ls_diag diag = {{0}};
  int rc = run_fallback_script(
    tmp,
    "#!/bin/sh\ncd \"$2\" || exit 1\n"
    "for m in 4777 2777 0777 1777 6775; do mkdir d$m; chmod $m d$m; "
    "echo x > f$m; chmod $m f$m; done\nchmod 0777 .\n",
    NULL, &diag);
  if (rc != LS_OK)
    fail_msg("%s", diag.text);
  static const char *const modes[] = {"4777", "2777", "0777", "1777", "6775"};
  for (size_t i = 0; i < 5; i++) {
    unsigned want = (unsigned)strtoul(modes[i], NULL, 8) & 0755;
    assert_masked(t_path("%s/dest/d%s", tmp, modes[i]), want);
    assert_masked(t_path("%s/dest/f%s", tmp, modes[i]), want);
  }
  assert_masked(t_path("%s/dest", tmp), 0755);
}

/* One big file: the file size cap stops it at the budget exactly (so the
 * command fails, as an unpacker does on a write error); the refusal is the
 * limit, not the command's failure. */
static void external_big_file_refused(void **state)
{
  (void)state;
  char *tmp = t_tempdir();
  t_mkdir(tmp, "dest");
  ls_unpack_limits l;
  ls_diag diag = {{0}};
  ls_unpack_rule rule = ls_unpack_rule_default();
  rule.game_slack = 8u << 20;
  assert_int_equal(ls_unpack_limits_begin(&l, &rule, t_path("%s/dest", tmp), 1000, &diag), LS_OK);
  int rc = run_fallback_script(
    tmp, "#!/bin/sh\nhead -c 200000000 /dev/zero > \"$2/big\" || exit 1\necho done > \"$2/done\"\n",
    &l, &diag);
  if (rc != LS_ELIMIT || !strstr(diag.text, "expands beyond its limit"))
    fail_msg("rc %s: %s", ls_error_name(rc), diag.text);
  uint64_t on_disk = tree_size(t_path("%s/dest", tmp), NULL);
  if (on_disk > l.budget)
    fail_msg("%llu bytes on disk, budget %llu: %s", (unsigned long long)on_disk,
             (unsigned long long)l.budget, diag.text);
}

/* Many files, each under the cap: the watch counts the destination while
 * the command runs and kills it (with its process group) over the budget,
 * long before it finishes. */
static void external_many_files_killed(void **state)
{
  (void)state;
  char *tmp = t_tempdir();
  t_mkdir(tmp, "dest");
  ls_unpack_limits l;
  ls_diag diag = {{0}};
  ls_unpack_rule rule = ls_unpack_rule_default();
  rule.game_slack = 8u << 20;
  assert_int_equal(ls_unpack_limits_begin(&l, &rule, t_path("%s/dest", tmp), 1000, &diag), LS_OK);
  int rc = run_fallback_script(tmp,
                               "#!/bin/sh\ni=0\nwhile [ $i -lt 2000 ]; do\n"
                               "  head -c 1000000 /dev/zero > \"$2/f$i\" || exit 1\n"
                               "  sleep 0.01; i=$((i + 1))\ndone\necho done > \"$2/done\"\n",
                               &l, &diag);
  if (rc != LS_ELIMIT)
    fail_msg("rc %s: %s", ls_error_name(rc), diag.text);
  struct stat st;
  assert_int_equal(lstat(t_path("%s/dest/done", tmp), &st), -1);
  uint64_t on_disk = tree_size(t_path("%s/dest", tmp), NULL);
  usleep(300 * 1000); /* killed: nothing grows any more */
  assert_int_equal(tree_size(t_path("%s/dest", tmp), NULL), on_disk);
  assert_true(on_disk < l.budget + (64u << 20));
}

/* Under bwrap the command cannot write outside its destination, and has
 * no network but loopback. Skipped when bwrap is missing or cannot make
 * its namespaces here (the runtime then warns at start). */
static void external_confined_by_bwrap(void **state)
{
  (void)state;
  char why[LS_DIAG_MAX];
  if (!ls_unpack_sandboxed(why, sizeof why))
    ls_skip("external unpacker not confined: %s", why);
  char *tmp = t_tempdir();
  t_mkdir(tmp, "dest");
  t_mkdir(tmp, "outside");
  char body[8192];
  snprintf(body, sizeof body,
           "#!/bin/sh\necho escaped > '%s/outside/escaped'\necho escaped > '%s/escaped'\n"
           "cat /proc/net/dev > \"$2/netdev\"\necho inside > \"$2/inside\"\n",
           tmp, tmp);
  ls_diag diag = {{0}};
  int rc = run_fallback_script(tmp, body, NULL, &diag);
  if (rc != LS_OK)
    fail_msg("%s", diag.text);
  struct stat st;
  assert_int_equal(lstat(t_path("%s/outside/escaped", tmp), &st), -1);
  assert_int_equal(lstat(t_path("%s/escaped", tmp), &st), -1);
  assert_int_equal(lstat(t_path("%s/dest/inside", tmp), &st), 0);
  size_t len = 0;
  char *netdev = read_all(t_path("%s/dest/netdev", tmp), &len);
  assert_non_null(netdev);
  /* header lines, then one line per interface: only lo */
  size_t lines = 0;
  for (size_t i = 0; i < len; i++)
    lines += netdev[i] == '\n';
  if (lines != 3 || !strstr(netdev, "lo:"))
    fail_msg("the unpacker sees network interfaces:\n%s", netdev);
  free(netdev);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
#define ROUNDTRIP(name, c) {name, roundtrip, NULL, NULL, (void *)&(c)}
    ROUNDTRIP("zip_stored_roundtrip", ZIP_STORED),
    ROUNDTRIP("zip_deflate_roundtrip", ZIP_DEFLATE),
    ROUNDTRIP("tar_pax_roundtrip", TAR_PAX),
    ROUNDTRIP("tar_ustar_roundtrip", TAR_USTAR),
    ROUNDTRIP("sevenzip_roundtrip", SEVENZIP),
    cmocka_unit_test(rar5_stored),
    cmocka_unit_test(rar5_multivolume_extracts_in_order),
    cmocka_unit_test(rar5_missing_volume_refused),
    cmocka_unit_test(rar5_misnamed_volume_refused),
    cmocka_unit_test(old_style_volume_names_ordered),
    cmocka_unit_test(refuses_dotdot),
    cmocka_unit_test(refuses_absolute),
    cmocka_unit_test(refuses_symlink_escapes),
    cmocka_unit_test(refuses_write_through_symlink),
    cmocka_unit_test(refuses_outside_hardlink),
    cmocka_unit_test(refuses_special_files),
    cmocka_unit_test(inside_hardlink_and_symlink_work),
    cmocka_unit_test(corrupt_and_truncated_fail),
    cmocka_unit_test(detects_by_content),
    cmocka_unit_test(external_success_and_substitution),
    cmocka_unit_test(external_failure_reports_status_and_stderr),
    cmocka_unit_test(external_template_validation),
    cmocka_unit_test(unsupported_rar_falls_back),
    cmocka_unit_test(progress_and_cancel),
    cmocka_unit_test(zip_bomb_refused),
    cmocka_unit_test(tar_xz_bomb_refused),
    cmocka_unit_test(ratio_limit_refused),
    cmocka_unit_test(entry_count_bomb_refused),
    cmocka_unit_test(disk_reserve_refused),
    cmocka_unit_test(modes_masked),
    cmocka_unit_test(external_modes_masked),
    cmocka_unit_test(external_big_file_refused),
    cmocka_unit_test(external_many_files_killed),
    cmocka_unit_test(external_confined_by_bwrap),
  };
  return ls_run_tests(tests, NULL, NULL);
}
