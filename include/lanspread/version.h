/* Ordering of game versions (the content of a game's version.ini).
 *
 * Natural order: runs of digits compare as numbers (2.10 > 2.9,
 * 20240115 > 20231231), everything else byte by byte. Leading zeros do not
 * change a number's value; two versions that differ only in leading zeros
 * are ordered by their text so the order stays total. A version that is a
 * prefix of another is smaller (1.0 < 1.0a). NULL and "" (unknown) are
 * smaller than every real version. */
#ifndef LANSPREAD_VERSION_H
#define LANSPREAD_VERSION_H

/* <0, 0 or >0 as a is older than, the same as, or newer than b. */
int ls_version_cmp(const char *a, const char *b);

#endif
