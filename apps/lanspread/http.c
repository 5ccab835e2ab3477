/* Owns the libmicrohttpd daemon (one thread per connection, so a REST call
 * may wait for the runtime's reply and an event stream may wait for the
 * next record), the request checks of docs/API.md "Security" (who is
 * logged in is auth.c's), the login, logout and password-change requests
 * and the cookie, the request bodies and their limit, the compiled-in
 * pages, and the SSE responses.
 * Which connections it keeps is slots.c's rule: each connection's slot is
 * told when its request starts, is in, and is answered. */
#include "http.h"

#include "auth.h"
#include "slots.h"

#include "core/error.h"
#include "core/addr.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_BODY (16 * 1024)
/* A refused request's body up to this size is read and dropped before the
 * answer goes out: closing a socket with unread bytes resets it, and the
 * client would see the reset instead of the answer. A larger one is
 * answered at once and its connection closed. */
#define DRAIN_MAX (4 * 1024 * 1024)
#define KEEPALIVE_MS 15000u
#define HOST_MAX 300

extern const unsigned char ls_ui_index_html[], ls_ui_app_js[], ls_ui_style_css[],
  ls_ui_login_html[];
extern const size_t ls_ui_index_html_len, ls_ui_app_js_len, ls_ui_style_css_len,
  ls_ui_login_html_len;

#define COOKIE_ATTRIBUTES "; Path=/; HttpOnly; SameSite=Strict"

struct lsd_http {
  lsd_app *app;
  struct MHD_Daemon *mhd;
  lsd_slots *slots;
  char hosts[3][HOST_MAX]; /* accepted Host values; empty when unused */
  unsigned port;           /* the bound port */
  bool any_address;        /* bound to 0.0.0.0: any IPv4 literal of this port
                              is a Host of ours (a name could be a rebinding) */
  /* hosts[] is written once the daemon's port is known, after its threads
   * have started: they read it only after this is set (release/acquire). */
  atomic_bool hosts_ready;
  char url[HOST_MAX + 16];
};

/* Why a request is refused; status 0 while it is not. */
typedef struct refusal {
  unsigned status;
  const char *code, *text;
} refusal;

static const refusal too_large = {413, "too_large", "the request body is over 16 KiB"};

typedef struct request {
  char *body;
  size_t len;
  refusal refused;   /* answered once the body is in */
  size_t dropped;    /* bytes of a refused body read and dropped */
} request;

/* ---- responses ----------------------------------------------------------- */

static void add_common_headers(struct MHD_Response *r, const char *type)
{
  MHD_add_response_header(r, "Content-Type", type);
  MHD_add_response_header(r, "Cache-Control", "no-store");
  MHD_add_response_header(r, "X-Frame-Options", "DENY");
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
  MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
  MHD_add_response_header(r, "Content-Security-Policy",
                          "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                          "script-src 'self'; connect-src 'self'; frame-ancestors 'none'");
}

static enum MHD_Result send_bytes(struct MHD_Connection *c, unsigned status, const void *data,
                                  size_t len, const char *type)
{
  struct MHD_Response *r =
    MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
  if (!r)
    return MHD_NO;
  add_common_headers(r, type);
  enum MHD_Result ok = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ok;
}

/* Sends body (stolen) as JSON. */
static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *body)
{
  char *text = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  if (!text)
    return MHD_NO;
  enum MHD_Result ok = send_bytes(c, status, text, strlen(text), "application/json");
  free(text);
  return ok;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *code,
                                  const char *text)
{
  return send_json(c, status, lsd_error_json(code, "%s", text));
}

/* Queues r (destroyed) with a session cookie when sid is given ("" clears
 * it). */
static enum MHD_Result queue(struct MHD_Connection *c, unsigned status, struct MHD_Response *r,
                             const char *sid)
{
  char cookie[LSD_SESSION_ID_LEN + 128];
  if (sid) {
    snprintf(cookie, sizeof cookie, LSD_COOKIE "=%s%s%s", sid, COOKIE_ATTRIBUTES,
             sid[0] ? "" : "; Max-Age=0");
    MHD_add_response_header(r, "Set-Cookie", cookie);
  }
  enum MHD_Result ok = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ok;
}

/* To / with the new session's cookie (after a login). */
static enum MHD_Result send_logged_in(struct MHD_Connection *c, const char *sid)
{
  struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
  if (!r)
    return MHD_NO;
  add_common_headers(r, "text/plain");
  MHD_add_response_header(r, "Location", "/");
  return queue(c, 303, r, sid);
}

/* After a login by the one-time address: a page that goes on to / by
 * itself. A 303 would not do when the browser came from the login page
 * file (auth.c's login.html): a redirect chain a file started is
 * cross-site, so / would come without the SameSite=Strict cookie; a
 * navigation this page starts is same-site. */
static enum MHD_Result send_logged_in_page(struct MHD_Connection *c, const char *sid)
{
  static const char page[] = "<!DOCTYPE html>\n<meta charset=\"utf-8\">\n"
                             "<meta http-equiv=\"refresh\" content=\"0;url=/\">\n"
                             "<title>Lanspread</title>\n"
                             "<p><a href=\"/\">Logged in: go on</a></p>\n";
  struct MHD_Response *r =
    MHD_create_response_from_buffer(sizeof page - 1, (void *)page, MHD_RESPMEM_PERSISTENT);
  if (!r)
    return MHD_NO;
  add_common_headers(r, "text/html; charset=utf-8");
  return queue(c, 200, r, sid);
}

/* The login page: what happened (a fixed sentence, never request data)
 * and the password form when a password is set. No secret, no data. */
static enum MHD_Result send_login_page(lsd_http *h, struct MHD_Connection *c, unsigned status,
                                       const char *message)
{
  const char *page = (const char *)ls_ui_login_html;
  const char *msg = strstr(page, "@MESSAGE@"), *form = strstr(page, "@FORM@");
  if (!msg || !form || form < msg)
    return send_bytes(c, 500, "login page template broken", 26, "text/plain");
  bool password = lsd_auth_has_password(h->app->auth);
  char *text = NULL;
  int n = asprintf(&text, "%.*s%s%.*s%s%s", (int)(msg - page), page, message,
                   (int)(form - (msg + 9)), msg + 9, password ? "" : "hidden", form + 6);
  if (n < 0)
    return MHD_NO;
  enum MHD_Result ok = send_bytes(c, status, text, (size_t)n, "text/html; charset=utf-8");
  free(text);
  return ok;
}

static enum MHD_Result send_static(lsd_http *h, struct MHD_Connection *c, const char *url,
                                   bool logged_in)
{
  if (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0)
    return logged_in ? send_bytes(c, 200, ls_ui_index_html, ls_ui_index_html_len,
                                  "text/html; charset=utf-8")
                     : send_login_page(h, c, 200, "Log in to use Lanspread.");
  if (strcmp(url, "/app.js") == 0)
    return send_bytes(c, 200, ls_ui_app_js, ls_ui_app_js_len, "text/javascript; charset=utf-8");
  if (strcmp(url, "/style.css") == 0)
    return send_bytes(c, 200, ls_ui_style_css, ls_ui_style_css_len, "text/css; charset=utf-8");
  return send_error(c, 404, "not_found", "no such page");
}

/* ---- the event stream ---------------------------------------------------- */

static const char *session_of(struct MHD_Connection *c)
{
  return MHD_lookup_connection_value(c, MHD_COOKIE_KIND, LSD_COOKIE);
}

/* A stream for a session ends once the session does (logout, a new
 * password): at its next record or keep-alive, within KEEPALIVE_MS. */
typedef struct events {
  lsd_stream *stream;
  lsd_auth *auth;
  char sid[LSD_SESSION_ID_LEN + 1]; /* empty: opened with the API key */
} events;

static ssize_t read_events(void *cls, uint64_t pos, char *buf, size_t max)
{
  (void)pos;
  events *e = cls;
  static const char keepalive[] = ": keep-alive\n\n";
  long n = lsd_stream_read(e->stream, buf, max, KEEPALIVE_MS);
  if (n < 0 || (e->sid[0] && !lsd_auth_session_valid(e->auth, e->sid)))
    return MHD_CONTENT_READER_END_OF_STREAM;
  if (n == 0 && max >= sizeof keepalive - 1) {
    memcpy(buf, keepalive, sizeof keepalive - 1);
    n = sizeof keepalive - 1;
  }
  return n;
}

static void close_events(void *cls)
{
  events *e = cls;
  lsd_stream_close(e->stream);
  free(e);
}

static enum MHD_Result send_events(lsd_http *h, struct MHD_Connection *c)
{
  events *e = calloc(1, sizeof *e);
  if (!e)
    return MHD_NO;
  e->auth = h->app->auth;
  const char *sid = session_of(c);
  if (sid && !MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Lanspread-Key"))
    snprintf(e->sid, sizeof e->sid, "%s", sid); /* checked already: 64 characters */
  e->stream = lsd_stream_open(lsd_hub_log(h->app->hub));
  struct MHD_Response *r =
    e->stream ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, read_events, e,
                                                  close_events)
              : NULL;
  if (!r) {
    lsd_stream_close(e->stream);
    free(e);
    return MHD_NO;
  }
  add_common_headers(r, "text/event-stream");
  MHD_add_response_header(r, "Cache-Control", "no-cache");
  enum MHD_Result ok = MHD_queue_response(c, 200, r);
  MHD_destroy_response(r);
  return ok;
}

/* ---- checks -------------------------------------------------------------- */

/* "A.B.C.D:PORT" with this server's port. */
static bool is_ipv4_literal_of(const char *host, unsigned port)
{
  char ip[INET_ADDRSTRLEN];
  unsigned got = 0;
  int end = 0;
  struct in_addr a;
  return sscanf(host, "%15[0-9.]:%5u%n", ip, &got, &end) == 2 && host[end] == '\0' &&
         got == port && inet_pton(AF_INET, ip, &a) == 1;
}

static bool host_accepted(const lsd_http *h, const char *host)
{
  if (!atomic_load_explicit(&h->hosts_ready, memory_order_acquire))
    return false; /* a request before lsd_http_start returned */
  for (size_t i = 0; host && i < 3; i++)
    if (h->hosts[i][0] && strcasecmp(h->hosts[i], host) == 0)
      return true;
  return host && h->any_address && is_ipv4_literal_of(host, h->port);
}

static bool origin_accepted(const lsd_http *h, const char *origin)
{
  return !origin || (strncmp(origin, "http://", 7) == 0 && host_accepted(h, origin + 7));
}

/* The login form is posted from a page with Referrer-Policy: no-referrer,
 * for which a browser sends Origin: null: there it counts as no Origin
 * (the CSRF rule then wants Sec-Fetch-Site: same-origin). */
static bool origin_accepted_at(const lsd_http *h, const char *url, const char *origin)
{
  return origin_accepted(h, origin) ||
         (strcmp(url, "/login") == 0 && strcmp(origin, "null") == 0);
}

static bool unsafe_method(const char *method)
{
  return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
}

/* A state change comes from the page itself (auth.c's rule). */
static bool csrf_ok(struct MHD_Connection *c, const char *method)
{
  const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
  const char *site = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-Fetch-Site");
  return lsd_auth_csrf_ok(method, origin, site);
}

/* /api/ is for a session (a browser) or the API key of STATE_DIR/api-key
 * in X-Lanspread-Key (local programs: a custom header, which no other site
 * can make a browser send, so it needs no CSRF check). */
static refusal check_credentials(lsd_http *h, struct MHD_Connection *c, const char *method)
{
  const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Lanspread-Key");
  if (key)
    return lsd_equal_secret(h->app->api_key, key)
             ? (refusal){0}
             : (refusal){401, "bad_key", "wrong API key (X-Lanspread-Key)"};
  if (!lsd_auth_session_valid(h->app->auth, session_of(c)))
    return (refusal){401, "login_required",
                     "not logged in: open the address 'lanspread --login-url' prints"};
  if (!csrf_ok(c, method))
    return (refusal){403, "csrf", "a change must come from the page itself (Origin)"};
  return (refusal){0};
}

/* The refusal the headers already explain (Host, Origin, credentials,
 * declared size), or status 0. */
static refusal check_headers(lsd_http *h, struct MHD_Connection *c, const char *url,
                             const char *method)
{
  const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
  const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
  const char *length = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
  if (!host_accepted(h, host))
    return (refusal){403, "bad_host", "this server answers only to its own address"};
  if (!origin_accepted_at(h, url, origin))
    return (refusal){403, "bad_origin", "requests from other sites are refused"};
  if (strncmp(url, "/api/", 5) == 0) {
    refusal r = check_credentials(h, c, method);
    if (r.status)
      return r;
  } else if (strcmp(url, "/login") == 0 && !csrf_ok(c, method)) {
    return (refusal){403, "csrf", "a login must come from the login page (Origin)"};
  }
  if (length && strtoull(length, NULL, 10) > MAX_BODY)
    return too_large;
  return (refusal){0};
}

static bool body_too_long_to_drain(struct MHD_Connection *c)
{
  const char *length = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
  return length && strtoull(length, NULL, 10) > DRAIN_MAX;
}

/* ---- connections --------------------------------------------------------- */

static lsd_slot *slot_of(struct MHD_Connection *c)
{
  const union MHD_ConnectionInfo *info =
    MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return info ? info->socket_context : NULL;
}

/* Started: on the listener thread, before the connection's own thread.
 * Closed: after that thread ended, before the socket is closed. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
  lsd_http *h = cls;
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    const union MHD_ConnectionInfo *fd, *from;
    fd = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    from = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    *socket_context =
      fd ? lsd_slots_admit(h->slots, fd->connect_fd, from ? from->client_addr : NULL) : NULL;
  } else {
    lsd_slots_release(h->slots, *socket_context);
    *socket_context = NULL;
  }
}

/* Called when a request's line is in (its return value is the request's
 * first *con_cls: none). */
static void *on_request_line(void *cls, const char *uri, struct MHD_Connection *c)
{
  (void)uri;
  lsd_http *h = cls;
  lsd_slots_request_started(h->slots, slot_of(c));
  return NULL;
}

/* ---- requests ------------------------------------------------------------ */

/* ---- logging in and out -------------------------------------------------- */

/* The value of `password` in an application/x-www-form-urlencoded body
 * (decoded in place), or NULL. */
static char *form_password(request *req)
{
  if (!req->body)
    return NULL;
  req->body[req->len] = '\0';
  for (char *save, *f = strtok_r(req->body, "&", &save); f; f = strtok_r(NULL, "&", &save)) {
    if (strncmp(f, "password=", 9) != 0)
      continue;
    for (char *p = f + 9; *p; p++)
      if (*p == '+')
        *p = ' ';
    MHD_http_unescape(f + 9);
    return f + 9;
  }
  return NULL;
}

/* GET /login?token=T spends the one-time token; POST /login (the form)
 * checks the password. Both answer with a session cookie, or with the
 * login page saying why not. */
static enum MHD_Result login(lsd_http *h, struct MHD_Connection *c, const char *method,
                             request *req)
{
  char sid[LSD_SESSION_ID_LEN + 1];
  if (strcmp(method, "GET") == 0) {
    const char *token = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "token");
    int rc = lsd_auth_redeem(h->app->auth, token, sid);
    if (rc == LS_OK)
      return send_logged_in_page(c, sid);
    if (rc == LS_ETIMEDOUT)
      return send_login_page(h, c, 403, "This login address has expired: each works for 15 "
                                        "minutes. Run lanspread --login-url for a new one.");
    return send_login_page(h, c, 403, "This login address was used already or is wrong.");
  }
  if (strcmp(method, "POST") != 0)
    return send_error(c, 405, "method", "use GET or POST");
  const union MHD_ConnectionInfo *from =
    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (!from)
    return MHD_NO;
  int rc = lsd_auth_password_login(h->app->auth, from->client_addr, form_password(req), sid);
  if (rc == LS_OK)
    return send_logged_in(c, sid);
  if (rc == LS_EBUSY)
    return send_login_page(h, c, 429, "Too many wrong passwords: wait a minute.");
  return send_login_page(h, c, 403, "Wrong password.");
}

/* POST /api/logout (its credentials checked already): the session ends
 * and its cookie is cleared. */
static enum MHD_Result logout(lsd_http *h, struct MHD_Connection *c, const char *method)
{
  if (strcmp(method, "POST") != 0)
    return send_error(c, 405, "method", "use POST");
  lsd_auth_logout(h->app->auth, session_of(c));
  static const char ok[] = "{\"ok\":true}";
  struct MHD_Response *r =
    MHD_create_response_from_buffer(sizeof ok - 1, (void *)ok, MHD_RESPMEM_PERSISTENT);
  if (!r)
    return MHD_NO;
  add_common_headers(r, "application/json");
  return queue(c, 200, r, "");
}

/* A UI may be without a password only on loopback: where it serves now
 * and where the settings make it serve next. */
static bool may_clear_password(lsd_http *h)
{
  lsd_app *app = h->app;
  pthread_mutex_lock(&app->settings_lock);
  bool ok = lsd_gui_is_loopback(h->hosts[0]) &&
            (!app->saved.gui || lsd_gui_is_loopback(app->saved.gui)) &&
            (!app->effective.gui || lsd_gui_is_loopback(app->effective.gui));
  pthread_mutex_unlock(&app->settings_lock);
  return ok;
}

/* PUT /api/password {"current", "new"} (credentials checked already): a
 * new UI password, or none ("new": "" or null) on a loopback UI. The
 * session that asks stays logged in; every other one ends. */
static enum MHD_Result change_password(lsd_http *h, struct MHD_Connection *c,
                                       const char *method, json_t *body)
{
  if (strcmp(method, "PUT") != 0)
    return send_error(c, 405, "method", "use PUT");
  json_t *cur = json_object_get(body, "current"), *next = json_object_get(body, "new");
  if (!body || !next || (!json_is_string(next) && !json_is_null(next)) ||
      (cur && !json_is_string(cur) && !json_is_null(cur)))
    return send_error(c, 400, "bad_request", "give {\"current\": \"...\", \"new\": \"...\"} "
                                             "(\"new\": \"\" removes the password)");
  const char *new_pw = json_string_value(next);
  if ((!new_pw || !*new_pw) && !may_clear_password(h))
    return send_error(c, 400, "bad_request", "a UI off loopback needs a password: it cannot be "
                                             "removed (set --gui 127.0.0.1:PORT first)");
  const union MHD_ConnectionInfo *from =
    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (!from)
    return MHD_NO;
  const char *sid = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Lanspread-Key")
                      ? NULL : session_of(c);
  ls_diag diag;
  int rc = lsd_auth_change_password(h->app->auth, from->client_addr, sid, json_string_value(cur),
                                    new_pw, &diag);
  if (rc == LS_EACCES)
    return send_error(c, 403, "wrong_password", diag.text);
  if (rc == LS_EBUSY)
    return send_error(c, 429, "throttled", diag.text);
  if (rc == LS_EINVAL)
    return send_error(c, 400, "bad_request", diag.text);
  if (rc == LS_ESTATE)
    return send_error(c, 409, "refused", diag.text);
  if (rc != LS_OK)
    return send_error(c, 500, "failed", diag.text);
  pthread_mutex_lock(&h->app->settings_lock);
  lsd_app_publish_status(h->app);
  pthread_mutex_unlock(&h->app->settings_lock);
  return send_json(c, 200, json_pack("{s:b, s:b}", "ok", 1, "password_set",
                                     lsd_auth_has_password(h->app->auth)));
}

/* The whole request is in (or will not be read): it is answered now. */
static enum MHD_Result route(lsd_http *h, struct MHD_Connection *c, const char *url,
                             const char *method, request *req)
{
  lsd_slots_request_received(h->slots, slot_of(c));
  if (req->refused.status)
    return send_error(c, req->refused.status, req->refused.code, req->refused.text);
  if (strcmp(url, "/login") == 0)
    return login(h, c, method, req);
  if (strncmp(url, "/api/", 5) != 0) {
    if (unsafe_method(method))
      return send_error(c, 405, "method", "use GET");
    return send_static(h, c, url, lsd_auth_session_valid(h->app->auth, session_of(c)));
  }
  if (strcmp(url, "/api/logout") == 0)
    return logout(h, c, method);
  if (strcmp(url, "/api/events") == 0)
    return strcmp(method, "GET") == 0 ? send_events(h, c)
                                      : send_error(c, 405, "method", "use GET");
  json_t *body = NULL;
  if (req->len > 0) {
    json_error_t err;
    body = json_loadb(req->body, req->len, JSON_REJECT_DUPLICATES, &err);
    if (!json_is_object(body)) {
      json_decref(body);
      char text[256];
      snprintf(text, sizeof text, "the body must be a JSON object (line %d, column %d: %s)",
               err.line, err.column, err.text);
      return send_error(c, 400, "bad_json", text);
    }
  }
  if (strcmp(url, "/api/password") == 0) {
    enum MHD_Result ok = change_password(h, c, method, body);
    json_decref(body);
    return ok;
  }
  json_t *answer = NULL;
  int status = lsd_api_handle(h->app, method, url, body, &answer);
  json_decref(body);
  return send_json(c, (unsigned)status, answer);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
  (void)version;
  lsd_http *h = cls;
  request *req = *con_cls;
  if (!req) {
    refusal r = check_headers(h, c, url, method);
    if (r.status && body_too_long_to_drain(c)) { /* answered now, the body unread */
      request unread = {.refused = r};
      return route(h, c, url, method, &unread);
    }
    if (!(req = calloc(1, sizeof *req)))
      return MHD_NO;
    req->refused = r;
    *con_cls = req;
    return MHD_YES;
  }
  if (*upload_data_size > 0) {
    size_t n = *upload_data_size;
    *upload_data_size = 0;
    if (!req->refused.status && req->len + n > MAX_BODY)
      req->refused = too_large;
    if (req->refused.status) {
      req->dropped += n;
      return req->dropped > DRAIN_MAX ? MHD_NO : MHD_YES; /* never stored */
    }
    char *grown = realloc(req->body, req->len + n + 1);
    if (!grown)
      return MHD_NO;
    memcpy(grown + req->len, upload_data, n);
    req->body = grown;
    req->len += n;
    return MHD_YES;
  }
  return route(h, c, url, method, req);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode code)
{
  (void)code;
  lsd_http *h = cls;
  lsd_slots_request_done(h->slots, slot_of(c));
  request *req = *con_cls;
  if (req) {
    free(req->body);
    free(req);
    *con_cls = NULL;
  }
}

/* ---- start and stop ------------------------------------------------------ */

/* The address to bind (IPv4) and the host part as written, which the
 * Host check accepts too. */
static int resolve(const char *addr, struct sockaddr_in *sin, char *host, size_t host_size,
                   ls_diag *diag)
{
  struct sockaddr_storage ss;
  int rc = ls_parse_host_port(addr, &ss, diag);
  if (rc != LS_OK)
    return rc;
  if (ss.ss_family != AF_INET)
    return ls_diag_set(diag, LS_EINVAL, "--gui %s: an IPv4 address is needed", addr);
  memcpy(sin, &ss, sizeof *sin);
  const char *colon = strrchr(addr, ':');
  snprintf(host, host_size, "%.*s", (int)(colon - addr), addr);
  return LS_OK;
}

int lsd_http_start(lsd_app *app, const char *addr, lsd_http **out, ls_diag *diag)
{
  char host[HOST_MAX - 8];
  struct sockaddr_in sin;
  int rc = resolve(addr, &sin, host, sizeof host, diag);
  if (rc != LS_OK)
    return rc;
  lsd_http *h = calloc(1, sizeof *h);
  if (!h)
    return ls_diag_set(diag, LS_ENOMEM, "out of memory");
  h->app = app;
  if ((rc = lsd_slots_create(&h->slots, diag)) != LS_OK) {
    free(h);
    return rc;
  }
  /* libmicrohttpd's own per-address limit would refuse the newest
   * connection: on 127.0.0.1 that is the user's own, so slots.c decides. */
  h->mhd = MHD_start_daemon(
    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL,
    NULL, on_request, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
    MHD_OPTION_CONNECTION_LIMIT, (unsigned)LSD_SLOTS_HARD_LIMIT,
    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)LSD_IDLE_TIMEOUT_S,
    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
    MHD_OPTION_NOTIFY_CONNECTION, on_connection, h, MHD_OPTION_URI_LOG_CALLBACK,
    on_request_line, h, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_END);
  if (!h->mhd) {
    lsd_slots_free(h->slots);
    free(h);
    return ls_diag_set(diag, LS_EIO, "cannot serve the UI on %s (address in use?); choose "
                                     "another with --gui HOST:PORT", addr);
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
  unsigned port = info ? info->port : ntohs(sin.sin_port);
  sin.sin_port = htons((uint16_t)port);
  h->port = port;
  h->any_address = sin.sin_addr.s_addr == htonl(INADDR_ANY);
  ls_format_addr((struct sockaddr *)&sin, h->hosts[0], HOST_MAX);
  snprintf(h->hosts[1], HOST_MAX, "%s:%u", host, port);
  if (ls_addr_is_loopback4((const struct sockaddr *)&sin))
    snprintf(h->hosts[2], HOST_MAX, "localhost:%u", port);
  snprintf(h->url, sizeof h->url, "http://%s/", h->hosts[0]);
  atomic_store_explicit(&h->hosts_ready, true, memory_order_release);
  *out = h;
  return LS_OK;
}

const char *lsd_http_url(const lsd_http *h)
{
  return h->url;
}

void lsd_http_stop(lsd_http *h)
{
  if (!h)
    return;
  MHD_stop_daemon(h->mhd);
  lsd_slots_free(h->slots);
  free(h);
}
