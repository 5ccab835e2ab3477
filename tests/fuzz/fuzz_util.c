/* Owns the helpers of tests/fuzz/fuzz_util.h. */
#include "fuzz_util.h"

#include "core/fs.h"

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

char *fuzz_read(const char *path, size_t *len)
{
  char *data = NULL;
  size_t n = 0;
  if (ls_read_file_at(AT_FDCWD, path, (size_t)1 << 30, &data, &n, NULL) != LS_OK)
    return NULL;
  if (len)
    *len = n;
  return data;
}
