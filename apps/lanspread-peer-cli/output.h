/* JSON-lines output of lanspread-peer-cli: one object per line on stdout,
 * flushed per line (docs/CLI.md). */
#ifndef LS_CLI_OUTPUT_H
#define LS_CLI_OUTPUT_H

#include <jansson.h>

/* Prints obj as one line and releases it (steals the reference). */
void out_line(json_t *obj);

/* {"type":"reply","cmd":CMD,"ok":true, ...fields} — fields may be NULL;
 * its members are merged in and it is released. */
void out_reply_ok(const char *cmd, json_t *fields);
/* {"type":"reply","cmd":CMD,"ok":false,"error":TEXT,"code":ls_error_name(CODE)} */
void out_reply_error(const char *cmd, int code, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));

#endif
