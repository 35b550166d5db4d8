/*
 * http.h: the HTTP client modules use through the host API (libcurl).
 * One client per module instance: a pool of reusable easy handles, TLS
 * settings, a token-bucket rate limit, request metrics, log redaction and a
 * fault-injection hook for tests. It must never log a secret header or body.
 */
#ifndef CCM_HTTP_H
#define CCM_HTTP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "host_api.h"

/* Process-wide libcurl init/cleanup; the host calls them once. */
int http_global_init(void);
void http_global_cleanup(void);

struct http_client *http_client_new(const char *owner,
                                    const struct http_settings *settings,
                                    char *err, size_t errlen);
void http_client_free(struct http_client *c);

/* The implementation behind ccm_host_api.http_do and friends. */
int http_do(struct ccm_host *host, struct ccm_call *call,
            const struct ccm_http_request *req,
            struct ccm_http_response **out);
long http_status(const struct ccm_http_response *resp);
const char *http_body(const struct ccm_http_response *resp, size_t *len);
const char *http_header(const struct ccm_http_response *resp,
                        const char *name);
void http_release(struct ccm_http_response *resp);

/* Fault injection (tests, and the config key http.faults): requests whose
 * URL contains url_part get latency_ms of delay, then either status (a
 * synthetic response with body), or a dropped connection when status == 0,
 * for the next count requests (count < 0: forever). */
struct http_fault {
  const char *url_part;
  uint32_t latency_ms;
  long status;
  const char *body;
  int count;
};
int http_fault_add(struct http_client *c, const struct http_fault *f);
void http_faults_clear(struct http_client *c);

/* Metrics: Prometheus text for every client alive now and every one that
 * ever was (counters survive a swap). */
void http_metrics_write(FILE *out);

#endif
