/* Owns reading numbers of a process from /proc (procfs.h). */
#include "procfs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

long t_proc_number(int pid, const char *file, const char *prefix)
{
  char path[64], line[512];
  snprintf(path, sizeof path, "/proc/%d/%s", pid, file);
  FILE *f = fopen(path, "r");
  long value = -1;
  size_t n = strlen(prefix);
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, prefix, n) == 0) {
      char *end;
      long v = strtol(line + n, &end, 10);
      if (end != line + n)
        value = v;
      break;
    }
  if (f)
    fclose(f);
  return value;
}
