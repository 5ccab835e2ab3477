/* Owns ls_json_locate: where a value starts in a JSON text.
 *
 * jansson keeps no source positions for values once parsing succeeded, yet
 * semantic errors (a duplicate id, a field of the wrong type) must still say
 * "FILE:LINE:COLUMN: reason". This helper re-scans the text, which jansson
 * already accepted, along a path of object keys and array indexes, and
 * returns the position of the value the path names. It is a skipping scanner,
 * not a parser: it understands strings with escapes, numbers, literals and
 * nested objects and arrays, but does not validate them. On text that is not
 * valid JSON the result is unspecified but safe: it never reads past len. */
#ifndef LS_CORE_JSON_LOCATE_H
#define LS_CORE_JSON_LOCATE_H

#include <stddef.h>

/* One step of a path: an object member (key != NULL) or an array element. */
typedef struct ls_json_step {
  const char *key; /* member name, unescaped UTF-8, NUL-terminated; NULL for an index */
  size_t index;    /* 0-based array index, when key is NULL */
} ls_json_step;

#define LS_JSON_KEY(k) ((ls_json_step){.key = (k), .index = 0})
#define LS_JSON_INDEX(i) ((ls_json_step){.key = NULL, .index = (i)})

/* Where a value starts. Lines and columns count like jansson's: 1-based,
 * lines end at '\n', and a column counts characters (a UTF-8 sequence is one
 * column), so they match the positions in jansson's own error messages. */
typedef struct ls_json_pos {
  size_t offset; /* byte offset of the value's first character */
  int line;
  int column;
} ls_json_pos;

/* Finds the value at path[0..depth-1] in text[0..len-1] (depth 0 names the
 * top-level value) and stores where it starts in *pos. Keys are compared
 * after decoding their escapes ("\u0069d" matches "id"). When an object holds
 * a key twice, the last one is found, as jansson keeps the last one.
 * Returns LS_OK; LS_ENOENT when the path does not exist (missing key, index
 * past the end, a step into a scalar); LS_EFORMAT when the text is cut short
 * or not JSON where the scanner looks; LS_EINVAL for NULL arguments. */
int ls_json_locate(const char *text, size_t len, const ls_json_step *path, size_t depth,
                   ls_json_pos *pos);

/* The line and column (as above) of a byte offset into text. An offset past
 * len is taken as len. */
void ls_json_position_of(const char *text, size_t len, size_t offset, ls_json_pos *pos);

#endif
