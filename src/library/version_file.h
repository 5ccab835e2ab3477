/* Parsing of a game's version.ini into a version string. */
#ifndef LS_LIBRARY_VERSION_FILE_H
#define LS_LIBRARY_VERSION_FILE_H

#include <stddef.h>

#define LS_VERSION_MAX 128

/* The version named by version.ini's content: the value of a `version` key
 * when the file holds key=value lines (ini sections and comments allowed),
 * otherwise the trimmed content. NULL (unknown) when empty, longer than
 * LS_VERSION_MAX, spread over several lines, or holding control characters.
 * The result is malloc'ed. */
char *ls_version_file_parse(const char *text, size_t len);

#endif
