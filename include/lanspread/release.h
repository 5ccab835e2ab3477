/* The version of this Lanspread build, set in one place: the project()
 * version in CMakeLists.txt. Every program's --version prints it. */
#ifndef LANSPREAD_RELEASE_H
#define LANSPREAD_RELEASE_H

/* "MAJOR.MINOR.PATCH", e.g. "0.1.0". Cannot fail. */
const char *ls_release_version(void);

#endif
