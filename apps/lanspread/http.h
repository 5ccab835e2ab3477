/* The daemon's HTTP server: the page, the REST API and the event stream,
 * with the checks every request passes first (Host, Origin, API key, size). */
#ifndef LSD_HTTP_H
#define LSD_HTTP_H

#include "app.h"

typedef struct lsd_http lsd_http;

/* Listens on addr ("HOST:PORT", an IPv4 address or a name that resolves to
 * one; port 0 picks a free port). */
int lsd_http_start(lsd_app *app, const char *addr, lsd_http **out, ls_diag *diag);
/* "http://HOST:PORT/" as bound. */
const char *lsd_http_url(const lsd_http *http);
/* Stops serving; event streams must have been ended (lsd_hub_close). */
void lsd_http_stop(lsd_http *http);

#endif
