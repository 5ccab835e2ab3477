/* Owns the natural ordering of version strings (include/lanspread/version.h). */
#include <lanspread/version.h>

#include <ctype.h>
#include <stddef.h>
#include <string.h>

static int is_digit(char c)
{
  return c >= '0' && c <= '9';
}

/* Compares the digit runs starting at *pa and *pb by value and advances both
 * past them. Arbitrary length: no overflow. */
static int compare_numbers(const char **pa, const char **pb)
{
  const char *a = *pa, *b = *pb;
  while (*a == '0')
    a++;
  while (*b == '0')
    b++;
  size_t la = 0, lb = 0;
  while (is_digit(a[la]))
    la++;
  while (is_digit(b[lb]))
    lb++;
  *pa = a + la;
  *pb = b + lb;
  if (la != lb)
    return la < lb ? -1 : 1;
  int c = memcmp(a, b, la);
  return c < 0 ? -1 : c > 0;
}

int ls_version_cmp(const char *a, const char *b)
{
  const char *sa = a ? a : "", *sb = b ? b : "";
  const char *pa = sa, *pb = sb;
  while (*pa && *pb) {
    if (is_digit(*pa) && is_digit(*pb)) {
      int c = compare_numbers(&pa, &pb);
      if (c)
        return c;
      continue;
    }
    if (*pa != *pb)
      return (unsigned char)*pa < (unsigned char)*pb ? -1 : 1;
    pa++;
    pb++;
  }
  if (*pa || *pb)
    return *pa ? 1 : -1;
  /* Equal by value: order by text (leading zeros) to keep the order total. */
  int c = strcmp(sa, sb);
  return c < 0 ? -1 : c > 0;
}
