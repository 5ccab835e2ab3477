/* Owns the helpers of tests/fuzz/fuzz_util.h. */
#include "fuzz_util.h"

#include "core/fs.h"
#include "library/layout.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char scratch[PATH_MAX];

static void remove_scratch(void)
{
  fuzz_rmtree(scratch);
}

const char *fuzz_scratch_dir(void)
{
  if (scratch[0])
    return scratch;
  const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
  snprintf(scratch, sizeof scratch, "%s/lanspread-fuzz-XXXXXX", base && *base ? base : "/tmp");
  FUZZ_CHECK(mkdtemp(scratch) != NULL);
  atexit(remove_scratch);
  return scratch;
}

void fuzz_check_ok(int rc, const ls_diag *diag, const char *what)
{
  if (rc != LS_OK)
    fprintf(stderr, "%s: %s: %s\n", what, ls_strerror(rc), diag->text);
  FUZZ_CHECK(rc == LS_OK);
}

const char *fuzz_game_dir(void)
{
  static char games[PATH_MAX];
  if (games[0])
    return games;
  snprintf(games, sizeof games, "%s/games", fuzz_scratch_dir());
  fuzz_mkdir(games);
  fuzz_mkdir(fuzz_path("%s/other", games));
  fuzz_write(fuzz_path("%s/other/a.bin", games), "other", 5);
  fuzz_write(fuzz_path("%s/outside", fuzz_scratch_dir()), "outside", 7);
  return games;
}

bool fuzz_surroundings_intact(void)
{
  return fuzz_exists(fuzz_path("%s/other/a.bin", fuzz_game_dir())) &&
         fuzz_exists(fuzz_path("%s/outside", fuzz_scratch_dir()));
}

const char *fuzz_fresh_game_root(void)
{
  static char root[PATH_MAX];
  if (!root[0])
    snprintf(root, sizeof root, "%s/g", fuzz_game_dir());
  fuzz_rmtree(root);
  fuzz_mkdir(root);
  fuzz_write(fuzz_path("%s/" LS_VERSION_FILE, root), "1.0\n", 4);
  return root;
}

const char *fuzz_path(const char *fmt, ...)
{
  static char bufs[8][PATH_MAX];
  static unsigned next;
  char *buf = bufs[next++ % 8];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, PATH_MAX, fmt, ap);
  va_end(ap);
  FUZZ_CHECK(n >= 0 && n < PATH_MAX);
  return buf;
}

void fuzz_write(const char *path, const void *data, size_t len)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  FUZZ_CHECK(fd >= 0);
  const char *p = data;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    FUZZ_CHECK(n > 0 || (n < 0 && errno == EINTR));
    if (n > 0) {
      p += n;
      len -= (size_t)n;
    }
  }
  FUZZ_CHECK(close(fd) == 0);
}

void fuzz_mkdir(const char *path)
{
  FUZZ_CHECK(mkdir(path, 0755) == 0);
}

void fuzz_rmtree(const char *path)
{
  FUZZ_CHECK(ls_rmtree_at(AT_FDCWD, path, NULL) == LS_OK);
}

bool fuzz_exists(const char *path)
{
  struct stat st;
  return lstat(path, &st) == 0;
}
