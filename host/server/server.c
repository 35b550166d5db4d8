/*
 * server.c: /healthz, /readyz and /metrics on libmicrohttpd's internal
 * polling thread (server.h). It owns the daemon and renders responses;
 * numbers come from metrics.h writers, readiness from a hook.
 */
#include "server/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "config/config.h"
#include "server/metrics.h"
#include "util/log.h"
#include "util/mem.h"

#define LOG_PREFIX "server"
#define CCM_SERVER_METRICS_INITIAL (64u * 1024u)
#define CCM_SERVER_METRICS_MAX (64u * 1024u * 1024u)
#define CCM_SERVER_CONNECTIONS 64
#define CCM_SERVER_TIMEOUT_S 30

#define CT_TEXT "text/plain; charset=utf-8"
#define CT_METRICS "text/plain; version=0.0.4; charset=utf-8"

struct server {
  struct MHD_Daemon *d;
  struct server_hooks hooks;
  unsigned port;
  atomic_bool started;
  char last_log[256]; /* libmicrohttpd's last message before started */
};

static void server_mhd_log(void *cls, const char *fmt, va_list ap)
    CCM_PRINTF(2, 0);
static void server_mhd_log(void *cls, const char *fmt, va_list ap)
{
  struct server *s = cls;
  char line[512];
  size_t n;

  vsnprintf(line, sizeof line, fmt, ap);
  n = strlen(line);
  while (n > 0 && line[n - 1] == '\n')
    line[--n] = '\0';
  if (s && !atomic_load(&s->started)) /* the caller reports start errors */
    snprintf(s->last_log, sizeof s->last_log, "%s", line);
  log_msg(CCM_LOG_WARN, LOG_PREFIX, "libmicrohttpd: %s", line);
}

static enum MHD_Result server_reply(struct MHD_Connection *c,
                                    unsigned status, const char *ctype,
                                    const char *body, size_t len)
{
  struct MHD_Response *r;
  enum MHD_Result rc;

  r = MHD_create_response_from_buffer(len, (void *)body,
                                      MHD_RESPMEM_MUST_COPY);
  if (!r)
    return MHD_NO;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
  MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
    MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
  rc = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return rc;
}

static enum MHD_Result server_text(struct MHD_Connection *c, unsigned status,
                                   const char *body)
{
  return server_reply(c, status, CT_TEXT, body, strlen(body));
}

/* Render every writer into one host-allocated buffer: fmemopen over it,
 * doubled until the text fits. */
static enum MHD_Result server_metrics(struct MHD_Connection *c)
{
  size_t cap = CCM_SERVER_METRICS_INITIAL;
  enum MHD_Result rc;
  char *buf = NULL;
  long len = -1;

  for (;;) {
    FILE *f;
    bool bad;

    buf = mem_alloc(cap);
    if (!buf)
      goto fail;
    f = fmemopen(buf, cap, "w");
    if (!f)
      goto fail;
    metrics_write_all(f);
    fflush(f);
    len = ftell(f);
    bad = ferror(f) != 0;
    fclose(f);
    /* A full buffer means the text may have been cut: grow and redo. */
    if (!bad && len >= 0 && (size_t)len < cap - 1)
      break;
    mem_free(buf);
    buf = NULL;
    if (cap >= CCM_SERVER_METRICS_MAX) {
      log_msg(CCM_LOG_ERROR, LOG_PREFIX, "/metrics: text larger than %u "
              "bytes", (unsigned)CCM_SERVER_METRICS_MAX);
      goto fail;
    }
    cap *= 2;
  }
  rc = server_reply(c, MHD_HTTP_OK, CT_METRICS, buf, (size_t)len);
  mem_free(buf);
  return rc;
fail:
  mem_free(buf);
  return server_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                     "cannot render metrics\n");
}

static enum MHD_Result server_readyz(struct server *s,
                                     struct MHD_Connection *c)
{
  char why[512] = "", body[600];

  if (!s->hooks.ready || s->hooks.ready(s->hooks.ud, why, sizeof why))
    return server_text(c, MHD_HTTP_OK, "ok");
  snprintf(body, sizeof body, "%s\n", why[0] ? why : "not ready");
  return server_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, body);
}

static enum MHD_Result server_handle(void *cls, struct MHD_Connection *c,
                                     const char *url, const char *method,
                                     const char *version,
                                     const char *upload_data,
                                     size_t *upload_data_size, void **con_cls)
{
  struct server *s = cls;

  (void)version;
  (void)upload_data;
  (void)upload_data_size;
  (void)con_cls;
  if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
      strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
    return server_text(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                       "method not allowed\n");
  if (strcmp(url, "/healthz") == 0)
    return server_text(c, MHD_HTTP_OK, "ok");
  if (strcmp(url, "/readyz") == 0)
    return server_readyz(s, c);
  if (strcmp(url, "/metrics") == 0)
    return server_metrics(c);
  return server_text(c, MHD_HTTP_NOT_FOUND, "404 page not found\n");
}

int server_start(const char *listen, const struct server_hooks *hooks,
                 struct server **out, char *err, size_t errlen)
{
  char addr[INET6_ADDRSTRLEN + 1], why[256];
  struct sockaddr_storage ss;
  struct server *s = NULL;
  const union MHD_DaemonInfo *info;
  unsigned port, flags;

  *out = NULL;
  if (config_listen_parse(listen, addr, sizeof addr, &port, why,
                          sizeof why) != 0) {
    snprintf(err, errlen, "listen: %s", why);
    return -1;
  }
  memset(&ss, 0, sizeof ss);
  flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
  if (strchr(addr, ':')) {
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;

    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, addr, &a6->sin6_addr) != 1)
      goto bad_addr;
    flags |= MHD_USE_IPv6;
  } else {
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;

    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, &a4->sin_addr) != 1)
      goto bad_addr;
  }
  s = mem_calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  if (hooks)
    s->hooks = *hooks;
  s->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, server_handle, s,
                          MHD_OPTION_EXTERNAL_LOGGER, server_mhd_log, s,
                          MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                          MHD_OPTION_CONNECTION_LIMIT,
                          (unsigned)CCM_SERVER_CONNECTIONS,
                          MHD_OPTION_CONNECTION_TIMEOUT,
                          (unsigned)CCM_SERVER_TIMEOUT_S,
                          MHD_OPTION_END);
  if (!s->d) {
    snprintf(err, errlen, "listen %s: cannot start the HTTP server: %s",
             listen, s->last_log[0] ? s->last_log : "libmicrohttpd failed");
    mem_free(s);
    return -1;
  }
  atomic_store(&s->started, true);
  info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
  s->port = info && info->port ? info->port : port;
  log_msg(CCM_LOG_INFO, LOG_PREFIX, "serving /healthz /readyz /metrics on "
          "%s%s%s:%u", strchr(addr, ':') ? "[" : "", addr,
          strchr(addr, ':') ? "]" : "", s->port);
  *out = s;
  return 0;
bad_addr:
  snprintf(err, errlen, "listen %s: bad address", listen);
  return -1;
}

unsigned server_port(const struct server *s)
{
  return s ? s->port : 0;
}

void server_stop(struct server *s)
{
  if (!s)
    return;
  MHD_stop_daemon(s->d);
  mem_free(s);
}
