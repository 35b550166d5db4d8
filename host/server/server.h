/*
 * server.h: the host's HTTP endpoints on libmicrohttpd (one internal
 * thread): GET /healthz, /readyz (asks a hook) and /metrics (every writer
 * registered with metrics.h). It owns the listening socket only; it must
 * not know the registry, the runtime or any controller.
 */
#ifndef CCM_SERVER_H
#define CCM_SERVER_H

#include <stdbool.h>
#include <stddef.h>

struct server_hooks {
  /* /readyz: true when ready; else one line in why (capacity cap) says
   * what is missing. NULL: always ready. Runs on the server's thread. */
  bool (*ready)(void *ud, char *why, size_t cap);
  void *ud;
};

struct server;

/* Listen on "ADDR:PORT" (IPv4, "[IPv6]" or bare IPv6; port 0 picks a free
 * port, see server_port) and serve on libmicrohttpd's thread:
 *   GET /healthz  200 "ok"
 *   GET /readyz   200 "ok", or 503 with the hook's reason line
 *   GET /metrics  200 text/plain; version=0.0.4, metrics_write_all()
 *   other paths   404; methods other than GET and HEAD: 405.
 * hooks is copied (may be NULL). Returns 0, or -1 with one line in err. */
int server_start(const char *listen, const struct server_hooks *hooks,
                 struct server **out, char *err, size_t errlen);
/* The bound port (the real one when started with port 0). */
unsigned server_port(const struct server *s);
/* Stop listening, finish the connection being served, join the thread
 * and free. NULL is a no-op. */
void server_stop(struct server *s);

#endif
