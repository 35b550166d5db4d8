/*
 * host_api.h: the host side of the ABI. It defines the layouts behind the
 * opaque handles (call, host, result builders) and hands modules the
 * function table. It owns per-module-instance state (name, config, HTTP
 * client); it must not know about generations or controllers.
 */
#ifndef CCM_HOST_API_H
#define CCM_HOST_API_H

#include <libconfig.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "ccm_provider.h"

struct http_client; /* http.h */

/* ---- per-call context ---------------------------------------------- */
struct ccm_call {
  int64_t deadline_ms;        /* CLOCK_MONOTONIC ms; 0 = none */
  atomic_bool cancelled;
  char request_id[40];
  char error[CCM_MAX_ERROR + 1];
  uint32_t retry_after_ms;
  bool has_retry_after;
};

/* Prepare a call with a timeout (0 = no deadline) and a fresh request id. */
void call_init(struct ccm_call *call, uint32_t timeout_ms);
void call_cancel(struct ccm_call *call);
int64_t call_now_ms(void); /* CLOCK_MONOTONIC in ms */

/* ---- per-module-instance host handle -------------------------------- */
struct ccm_host {
  char *name;                       /* provider name from host config */
  char *log_prefix;                 /* "provider:<name>" */
  const config_setting_t *config;   /* the module's group, may be NULL */
  struct http_client *http;         /* never NULL after host_new */
  atomic_bool closing;              /* set while the instance is destroyed */
};

/* HTTP settings of one provider (host config "http" group). */
struct http_settings {
  const char *ca_file;        /* NULL = system store */
  bool insecure_skip_verify;  /* default false */
  double qps;                 /* <= 0: unlimited */
  int burst;                  /* tokens, >= 1 */
  uint32_t timeout_ms;        /* default per request */
  const char *proxy;          /* NULL = environment */
};

/* Build the handle for one module instance. config and settings strings
 * must outlive the handle (they belong to the host config). */
struct ccm_host *host_new(const char *name, const config_setting_t *config,
                          const struct http_settings *http, char *err,
                          size_t errlen);
void host_free(struct ccm_host *host);

/* The function table handed to every module (static, never freed). */
const struct ccm_host_api *host_api(void);

/* ---- result builders: the host-owned layouts ------------------------ */
struct lb_ingress {
  char *ip;       /* NULL when only a hostname */
  char *hostname; /* NULL when only an IP */
};

struct ccm_lb_status {
  size_t n;
  struct lb_ingress *items;
};

struct meta_address {
  uint32_t type; /* enum ccm_address_type */
  char *address;
};

struct meta_label {
  char *key;
  char *value;
};

struct ccm_instance_meta {
  char *provider_id;
  char *instance_type;
  char *zone;
  char *region;
  size_t n_addresses;
  struct meta_address *addresses;
  size_t n_labels;
  struct meta_label *labels;
};

struct route_entry {
  char *name;
  char *target_node;
  char *destination_cidr;
  bool blackhole;
};

struct ccm_route_list {
  size_t n;
  struct route_entry *items;
};

struct ccm_blob {
  void *data;
  size_t len;
};

/* Release what a builder holds and return it to empty. */
void lb_status_clear(struct ccm_lb_status *st);
void instance_meta_clear(struct ccm_instance_meta *m);
void route_list_clear(struct ccm_route_list *l);
void blob_clear(struct ccm_blob *b);

#endif
