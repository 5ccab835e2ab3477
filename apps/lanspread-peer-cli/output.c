/* Owns stdout: every line the CLI prints goes through here. */
#include "output.h"

#include <lanspread/error.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void out_line(json_t *obj)
{
  char *text = json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII);
  json_decref(obj);
  if (!text)
    return;
  fputs(text, stdout);
  fputc('\n', stdout);
  fflush(stdout);
  free(text);
}

void out_reply_ok(const char *cmd, json_t *fields)
{
  json_t *obj = json_pack("{s:s, s:s, s:b}", "type", "reply", "cmd", cmd, "ok", 1);
  if (fields) {
    json_object_update(obj, fields);
    json_decref(fields);
  }
  out_line(obj);
}

void out_reply_error(const char *cmd, int code, const char *fmt, ...)
{
  char text[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  out_line(json_pack("{s:s, s:s, s:b, s:s, s:s}", "type", "reply", "cmd", cmd, "ok", 0, "error",
                     text, "code", ls_error_name(code)));
}
