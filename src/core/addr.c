/* Owns the text form of socket addresses: "HOST:PORT" parsed (numeric or a
 * name, resolved) and printed, for every "--listen", "--peer" and "--gui". */
#include "core/addr.h"

#include "core/error.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ls_format_addr(const struct sockaddr *sa, char *out, size_t len)
{
  char host[INET6_ADDRSTRLEN] = "?";
  unsigned port = 0;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs(in->sin_port);
    snprintf(out, len, "%s:%u", host, port);
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    port = ntohs(in6->sin6_port);
    snprintf(out, len, "[%s]:%u", host, port);
  } else {
    snprintf(out, len, "?");
  }
}

int ls_parse_host_port(const char *text, struct sockaddr_storage *out, ls_diag *diag)
{
  char host[256];
  const char *colon = strrchr(text, ':');
  if (!colon || colon == text || !colon[1])
    return ls_diag_set(diag, LS_EINVAL, "'%s' is not HOST:PORT", text);
  size_t hlen = (size_t)(colon - text);
  if (text[0] == '[' && colon[-1] == ']') {
    text++;
    hlen -= 2;
  }
  if (hlen >= sizeof host)
    return ls_diag_set(diag, LS_EINVAL, "'%s': host name too long", text);
  memcpy(host, text, hlen);
  host[hlen] = '\0';
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (*end || port < 0 || port > 65535)
    return ls_diag_set(diag, LS_EINVAL, "'%s': port must be 0 to 65535", colon + 1);
  struct addrinfo hints = {.ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV}, *res;
  int e = getaddrinfo(host, colon + 1, &hints, &res);
  if (e != 0)
    return ls_diag_set(diag, LS_EINVAL, "cannot resolve '%s': %s", host, gai_strerror(e));
  memset(out, 0, sizeof *out);
  memcpy(out, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  return LS_OK;
}

bool ls_addr_same_ip(const struct sockaddr *a, const struct sockaddr *b)
{
  if (a->sa_family != b->sa_family)
    return false;
  if (a->sa_family == AF_INET)
    return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
           ((const struct sockaddr_in *)b)->sin_addr.s_addr;
  if (a->sa_family == AF_INET6)
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
  return false;
}

bool ls_addr_is_loopback4(const struct sockaddr *sa)
{
  return sa->sa_family == AF_INET &&
         (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
}
