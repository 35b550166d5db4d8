/*
 * client.h: the Kubernetes API transport. It owns connection settings
 * (kubeconfig, in-cluster, --master), TLS, bearer tokens (re-read as
 * client-go does), the client-side QPS/burst limiter, retries with backoff,
 * and error mapping. It knows paths and bodies, not object kinds: decoding,
 * caches, writes helpers, events and leases live in their own files.
 */
#ifndef CCM_KUBE_CLIENT_H
#define CCM_KUBE_CLIENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Errors the controllers can act on. */
enum kube_status {
  KUBE_OK = 0,
  KUBE_NOT_FOUND = -1,    /* 404 */
  KUBE_CONFLICT = -2,     /* 409 Conflict (stale resourceVersion) */
  KUBE_EXISTS = -3,       /* 409 AlreadyExists */
  KUBE_GONE = -4,         /* 410: relist */
  KUBE_INVALID = -5,      /* 400/422: message from the server's Status */
  KUBE_THROTTLED = -6,    /* 429 after retries */
  KUBE_UNAVAILABLE = -7,  /* 5xx or connection errors after retries */
  KUBE_UNAUTHORIZED = -8, /* 401 after re-reading the token */
  KUBE_FORBIDDEN = -9,    /* 403 */
  KUBE_ERROR = -10        /* anything else, including local failures */
};

const char *kube_status_name(int status);

struct kube_client_opts {
  const char *kubeconfig; /* NULL: in-cluster, unless master is set */
  const char *context;    /* NULL: current-context */
  const char *master;     /* overrides the server URL */
  double qps;             /* default 20 */
  int burst;              /* default 30 */
  uint32_t timeout_ms;    /* per request, default 30000 */
  const char *user_agent; /* default "ccm-host/<version>" */
  /* Added by the transport; 0 means the default. */
  int max_tries;            /* attempts per request, default 5 */
  uint32_t backoff_base_ms; /* first backoff, default 200 */
  uint32_t backoff_cap_ms;  /* longest backoff, default 5000 */
  uint32_t retry_after_max_ms; /* longest Retry-After honoured, default 60000 */
};

/* Retry defaults (documented in docs/kubernetes.md). */
#define CCM_KUBE_MAX_TRIES 5
#define CCM_KUBE_BACKOFF_BASE_MS 200
#define CCM_KUBE_BACKOFF_CAP_MS 5000
#define CCM_KUBE_RETRY_AFTER_MAX_MS 60000
#define CCM_KUBE_TOKEN_REFRESH_MS 60000 /* token file re-read period */

struct kube_client;

/* Resolve the connection and build the client. On failure returns -1 with
 * one line in err naming the file and what is wrong. Never logs a token,
 * key or certificate. */
int kube_client_new(const struct kube_client_opts *opts,
                    struct kube_client **out, char *err, size_t errlen);
void kube_client_free(struct kube_client *c);

/* The server URL in use (for logs). */
const char *kube_client_server(const struct kube_client *c);

/* The namespace of the kubeconfig context, or NULL. */
const char *kube_client_namespace(const struct kube_client *c);

/* Map an HTTP status and body (a metav1.Status or anything else) to a
 * kube_status, and copy the server's message (or "HTTP <code>") into msg.
 * http_status 0 means no response (connection error). */
int kube_status_map(long http_status, const char *body, size_t len,
                    char *msg, size_t msglen);

struct kube_response {
  long http_status;  /* 0 when no response arrived */
  char *body;        /* NUL-terminated; free with kube_response_free */
  size_t len;
  char message[512]; /* the server's Status message or the local error */
};

void kube_response_free(struct kube_response *r);

/* One request, through the limiter, with bounded retries: 429 honours
 * Retry-After, 5xx and connection errors back off with jitter, a 401
 * re-reads the token once. content_type may be NULL for no body.
 * Returns a kube_status; the response is filled in either case. */
int kube_request(struct kube_client *c, const char *method,
                 const char *path, const char *content_type,
                 const char *body, size_t body_len,
                 struct kube_response *out);

/* Per-request overrides for callers with their own deadline (the lease):
 * 0 keeps the client's value. */
struct kube_request_opts {
  uint32_t timeout_ms;
  int max_tries;
  bool discard_ok_body; /* a 2xx reply's body is not kept (out->body "") */
};
int kube_request_ex(struct kube_client *c, const char *method,
                    const char *path, const char *content_type,
                    const char *body, size_t body_len,
                    const struct kube_request_opts *ro,
                    struct kube_response *out);

/* CPU the calling thread has spent inside kube_request and
 * kube_request_ex (building, sending and receiving, with retries), in ns,
 * since it started: callers take differences to tell their own CPU from
 * their requests'. */
uint64_t kube_thread_request_cpu_ns(void);

/* CPU of every thread, in ns since the process started, spent exchanging
 * bytes with the API server: inside kube_request and kube_request_ex, and
 * inside kube_watch outside its line callbacks (curl and the kernel
 * reading the stream). What a process spends beyond these and its
 * provider calls is its own work. */
struct kube_io_cpu {
  uint64_t requests_ns;
  uint64_t watch_reads_ns;
};
struct kube_io_cpu kube_io_cpu(void);
/* kube_io_cpu as ccm_kube_client_cpu_seconds_total{part}, for /metrics. */
void kube_client_metrics_write(FILE *out);

/* A watch stream: one callback per complete JSON line (NUL-terminated).
 * Returns when the server closes, *stop becomes true, the callback returns
 * non-zero, or an error occurs. Watches do not consume the limiter.
 * Returns KUBE_OK when the stream ended normally (server close, *stop, or
 * the callback's non-zero return); a non-2xx reply maps like kube_request
 * (a 401 re-reads the token once). *stop is checked about once a second
 * while the stream is idle. There is no total timeout: put timeoutSeconds
 * in the path. */
typedef int kube_line_fn(const char *line, size_t len, void *ud);
int kube_watch(struct kube_client *c, const char *path, kube_line_fn *fn,
               void *ud, atomic_bool *stop, struct kube_response *out);

#endif
