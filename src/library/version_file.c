/* Owns the parsing of version.ini content (library/version_file.h). */
#include "library/version_file.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct span {
  const char *p;
  size_t n;
} span;

static bool is_space(char c)
{
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

static span trim(span s)
{
  while (s.n && is_space(s.p[0])) {
    s.p++;
    s.n--;
  }
  while (s.n && is_space(s.p[s.n - 1]))
    s.n--;
  return s;
}

static char *copy_version(span s)
{
  if (s.n >= 2 && (s.p[0] == '"' || s.p[0] == '\'') && s.p[s.n - 1] == s.p[0])
    s = trim((span){s.p + 1, s.n - 2});
  if (s.n == 0 || s.n > LS_VERSION_MAX)
    return NULL;
  for (size_t i = 0; i < s.n; i++)
    if ((unsigned char)s.p[i] < 0x20 || s.p[i] == 0x7f)
      return NULL;
  char *out = malloc(s.n + 1);
  if (out) {
    memcpy(out, s.p, s.n);
    out[s.n] = '\0';
  }
  return out;
}

/* Splits the next line off *rest. */
static span next_line(span *rest)
{
  const char *nl = memchr(rest->p, '\n', rest->n);
  size_t n = nl ? (size_t)(nl - rest->p) : rest->n;
  span line = {rest->p, n};
  rest->p += nl ? n + 1 : n;
  rest->n -= nl ? n + 1 : n;
  return line;
}

/* Finds `version = value` among key=value lines; *has_pairs tells whether
 * the content is key=value at all. */
static char *find_version_key(span content, bool *has_pairs)
{
  *has_pairs = false;
  span rest = content;
  while (rest.n) {
    span line = trim(next_line(&rest));
    if (line.n == 0 || line.p[0] == '#' || line.p[0] == ';' || line.p[0] == '[')
      continue;
    const char *eq = memchr(line.p, '=', line.n);
    if (!eq)
      continue;
    *has_pairs = true;
    span key = trim((span){line.p, (size_t)(eq - line.p)});
    span value = trim((span){eq + 1, line.n - (size_t)(eq - line.p) - 1});
    if (key.n == 7 && strncasecmp(key.p, "version", 7) == 0)
      return copy_version(value);
  }
  return NULL;
}

char *ls_version_file_parse(const char *text, size_t len)
{
  span content = {text, len};
  if (content.n >= 3 && memcmp(content.p, "\xEF\xBB\xBF", 3) == 0) {
    content.p += 3;
    content.n -= 3;
  }
  if (memchr(content.p, '\0', content.n))
    return NULL;
  bool has_pairs;
  char *version = find_version_key(content, &has_pairs);
  if (has_pairs)
    return version;
  span whole = trim(content);
  if (memchr(whole.p, '\n', whole.n))
    return NULL;
  return copy_version(whole);
}
