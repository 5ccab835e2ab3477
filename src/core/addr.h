/* Socket addresses as text: "HOST:PORT" with HOST an IPv4 address, an
 * [IPv6] address or a host name. */
#ifndef LS_CORE_ADDR_H
#define LS_CORE_ADDR_H

#include <lanspread/error.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Parses and resolves text; a name that does not resolve is refused. */
int ls_parse_host_port(const char *text, struct sockaddr_storage *out, ls_diag *diag);
/* "1.2.3.4:5" or "[::1]:5" ("?" for other families). */
void ls_format_addr(const struct sockaddr *sa, char *out, size_t len);
/* a and b are the same IP address (ports aside); other families: false. */
bool ls_addr_same_ip(const struct sockaddr *a, const struct sockaddr *b);
/* sa is an IPv4 loopback address (127.0.0.0/8). */
bool ls_addr_is_loopback4(const struct sockaddr *sa);

#endif
