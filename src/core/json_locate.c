/* Owns the skipping JSON scanner behind ls_json_locate (core/json_locate.h). */
#include "core/json_locate.h"

#include "core/utf8.h"

#include <lanspread/error.h>

#include <stdbool.h>
#include <stdint.h>

typedef struct scanner {
  const char *s;
  size_t len;
  size_t at;
} scanner;

static bool at_end(const scanner *sc)
{
  return sc->at >= sc->len;
}

static bool next_is(const scanner *sc, char c)
{
  return !at_end(sc) && sc->s[sc->at] == c;
}

static void skip_ws(scanner *sc)
{
  while (!at_end(sc)) {
    char c = sc->s[sc->at];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
      return;
    sc->at++;
  }
}

/* sc->at is on the opening quote; leaves it after the closing one. */
static int skip_string(scanner *sc)
{
  sc->at++;
  while (!at_end(sc)) {
    char c = sc->s[sc->at++];
    if (c == '"')
      return LS_OK;
    if (c == '\\')
      sc->at++; /* the escaped character; \uXXXX digits are plain characters */
  }
  return LS_EFORMAT;
}

static bool is_delimiter(char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' || c == ']' ||
         c == '}' || c == ':';
}

/* A number or a literal (true, false, null): up to the next delimiter. */
static int skip_scalar(scanner *sc)
{
  size_t start = sc->at;
  while (!at_end(sc) && !is_delimiter(sc->s[sc->at]))
    sc->at++;
  return sc->at > start ? LS_OK : LS_EFORMAT;
}

/* An object or array: count brackets, skipping strings whole. */
static int skip_container(scanner *sc)
{
  size_t depth = 0;
  while (!at_end(sc)) {
    char c = sc->s[sc->at];
    if (c == '"') {
      if (skip_string(sc) != LS_OK)
        return LS_EFORMAT;
      continue;
    }
    sc->at++;
    if (c == '{' || c == '[')
      depth++;
    else if ((c == '}' || c == ']') && --depth == 0)
      return LS_OK;
  }
  return LS_EFORMAT;
}

/* sc->at is on the value's first character. */
static int skip_value(scanner *sc)
{
  if (at_end(sc))
    return LS_EFORMAT;
  char c = sc->s[sc->at];
  if (c == '"')
    return skip_string(sc);
  if (c == '{' || c == '[')
    return skip_container(sc);
  return skip_scalar(sc);
}

static int hex_digit(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Reads the 4 hex digits after "\u" (sc->at is on the first digit). */
static int read_hex4(scanner *sc, uint32_t *out)
{
  if (sc->len - sc->at < 4)
    return LS_EFORMAT;
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    int d = hex_digit(sc->s[sc->at + (size_t)i]);
    if (d < 0)
      return LS_EFORMAT;
    v = v << 4 | (uint32_t)d;
  }
  sc->at += 4;
  *out = v;
  return LS_OK;
}

/* After "\uD8xx" (a high surrogate): combines it with a following "\uDCxx". */
static uint32_t join_surrogates(scanner *sc, uint32_t high)
{
  if (sc->len - sc->at < 6 || sc->s[sc->at] != '\\' || sc->s[sc->at + 1] != 'u')
    return high;
  scanner probe = *sc;
  probe.at += 2;
  uint32_t low;
  if (read_hex4(&probe, &low) != LS_OK || low < 0xDC00 || low > 0xDFFF)
    return high;
  *sc = probe;
  return 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
}

static size_t utf8_encode(uint32_t cp, unsigned char out[4])
{
  if (cp < 0x80) {
    out[0] = (unsigned char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (unsigned char)(0xC0 | cp >> 6);
    out[1] = (unsigned char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (unsigned char)(0xE0 | cp >> 12);
    out[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    out[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (unsigned char)(0xF0 | cp >> 18);
  out[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
  out[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
  out[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
}

static unsigned char simple_escape(char c)
{
  switch (c) {
  case 'b': return '\b';
  case 'f': return '\f';
  case 'n': return '\n';
  case 'r': return '\r';
  case 't': return '\t';
  default: return (unsigned char)c; /* '"', '\\', '/' */
  }
}

/* Decodes the escape after a backslash (sc->at is on the letter) into out. */
static int decode_escape(scanner *sc, unsigned char out[4], size_t *n)
{
  if (at_end(sc))
    return LS_EFORMAT;
  char c = sc->s[sc->at++];
  if (c != 'u') {
    out[0] = simple_escape(c);
    *n = 1;
    return LS_OK;
  }
  uint32_t cp;
  if (read_hex4(sc, &cp) != LS_OK)
    return LS_EFORMAT;
  if (cp >= 0xD800 && cp <= 0xDBFF)
    cp = join_surrogates(sc, cp);
  *n = utf8_encode(cp, out);
  return LS_OK;
}

/* Reads the string at sc->at (on its opening quote) and tells whether its
 * decoded bytes equal key. */
static int match_key(scanner *sc, const char *key, bool *match)
{
  const unsigned char *k = (const unsigned char *)key;
  bool same = true;
  sc->at++;
  for (;;) {
    if (at_end(sc))
      return LS_EFORMAT;
    unsigned char buf[4];
    size_t n = 1;
    char c = sc->s[sc->at++];
    if (c == '"')
      break;
    buf[0] = (unsigned char)c;
    if (c == '\\' && decode_escape(sc, buf, &n) != LS_OK)
      return LS_EFORMAT;
    for (size_t i = 0; i < n && same; i++) {
      if (*k != buf[i] || *k == '\0')
        same = false;
      else
        k++;
    }
  }
  *match = same && *k == '\0';
  return LS_OK;
}

/* After a member or element: a ',' (returns true) or the closer (false). */
static int after_item(scanner *sc, char closer, bool *more)
{
  skip_ws(sc);
  if (next_is(sc, ',')) {
    sc->at++;
    *more = true;
    return LS_OK;
  }
  if (next_is(sc, closer)) {
    *more = false;
    return LS_OK;
  }
  return LS_EFORMAT;
}

/* Scans one "key": value member; *value is where the value starts. */
static int scan_member(scanner *sc, const char *key, bool *match, size_t *value)
{
  skip_ws(sc);
  if (!next_is(sc, '"') || match_key(sc, key, match) != LS_OK)
    return LS_EFORMAT;
  skip_ws(sc);
  if (!next_is(sc, ':'))
    return LS_EFORMAT;
  sc->at++;
  skip_ws(sc);
  *value = sc->at;
  return skip_value(sc);
}

/* sc->at is on '{'; moves it to the value of the last member named key. */
static int enter_member(scanner *sc, const char *key)
{
  sc->at++;
  skip_ws(sc);
  if (next_is(sc, '}'))
    return LS_ENOENT;
  size_t found = SIZE_MAX;
  bool more = true;
  while (more) {
    bool match;
    size_t value;
    if (scan_member(sc, key, &match, &value) != LS_OK ||
        after_item(sc, '}', &more) != LS_OK)
      return LS_EFORMAT;
    if (match)
      found = value;
  }
  if (found == SIZE_MAX)
    return LS_ENOENT;
  sc->at = found;
  return LS_OK;
}

/* sc->at is on '['; moves it to the element at index. */
static int enter_element(scanner *sc, size_t index)
{
  sc->at++;
  skip_ws(sc);
  if (next_is(sc, ']'))
    return LS_ENOENT;
  for (size_t i = 0;; i++) {
    skip_ws(sc);
    if (i == index)
      return at_end(sc) ? LS_EFORMAT : LS_OK;
    bool more;
    if (skip_value(sc) != LS_OK || after_item(sc, ']', &more) != LS_OK)
      return LS_EFORMAT;
    if (!more)
      return LS_ENOENT;
  }
}

static int take_step(scanner *sc, const ls_json_step *step)
{
  if (at_end(sc))
    return LS_EFORMAT;
  char c = sc->s[sc->at];
  if (step->key)
    return c == '{' ? enter_member(sc, step->key) : LS_ENOENT;
  return c == '[' ? enter_element(sc, step->index) : LS_ENOENT;
}

int ls_json_locate(const char *text, size_t len, const ls_json_step *path, size_t depth,
                   ls_json_pos *pos)
{
  if (!text || !pos || (depth > 0 && !path))
    return LS_EINVAL;
  scanner sc = {.s = text, .len = len, .at = 0};
  skip_ws(&sc);
  if (at_end(&sc))
    return LS_EFORMAT;
  for (size_t i = 0; i < depth; i++) {
    int rc = take_step(&sc, &path[i]);
    if (rc != LS_OK)
      return rc;
  }
  ls_json_position_of(text, len, sc.at, pos);
  return LS_OK;
}

void ls_json_position_of(const char *text, size_t len, size_t offset, ls_json_pos *pos)
{
  if (offset > len)
    offset = len;
  int line = 1, column = 1;
  for (size_t i = 0; i < offset; i++) {
    if (text[i] == '\n') {
      line++;
      column = 1;
    } else if (!ls_utf8_is_continuation(text[i])) {
      column++;
    }
  }
  pos->offset = offset;
  pos->line = line;
  pos->column = column;
}
