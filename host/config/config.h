/*
 * config.h: the host configuration (host.cfg, libconfig). One schema table
 * drives validation, defaults, --help text and docs/configuration.md. It
 * owns parsing and validation only; it must not load modules.
 */
#ifndef CCM_CONFIG_H
#define CCM_CONFIG_H

#include <libconfig.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "modules/host_api.h" /* struct http_settings */
#include "util/hash.h"

#define CCM_CTRL_SERVICE (1u << 0)
#define CCM_CTRL_NODE (1u << 1)
#define CCM_CTRL_NODE_LIFECYCLE (1u << 2)
#define CCM_CTRL_ROUTE (1u << 3)

struct provider_config {
  struct host_config *owner;  /* the config this entry lives in */
  const char *name;           /* unique, [a-z0-9-] */
  const char *module;         /* absolute path or relative to the cfg dir */
  bool is_default;            /* exactly one provider is the default */
  const char *lb_class;       /* spec.loadBalancerClass, NULL for default */
  const config_setting_t *config; /* module's own group, may be NULL */
  struct http_settings http;
  uint32_t call_timeout_ms;   /* per provider call */
  char config_hash[CCM_HASH_HEX]; /* of config + http + timeout, for reload */
  char module_abs[4096];      /* resolved module path */
};

struct leader_config {
  bool enabled;
  const char *lease_name;
  const char *lease_namespace;
  uint32_t lease_duration_s, renew_deadline_s, retry_period_s;
};

struct host_config {
  config_t lc;               /* owns every string above and below */
  atomic_int refs;           /* config_hold / config_free */
  char *path;
  char *kubeconfig_abs;      /* owns the resolved kubeconfig path */
  const char *cluster_name;
  const char *kubeconfig;    /* NULL = in-cluster; resolved like module */
  const char *master;        /* NULL = from kubeconfig */
  double kube_api_qps;       /* client-side limiter to the API server */
  int kube_api_burst;
  uint32_t controllers;      /* CCM_CTRL_* */
  uint32_t service_workers, node_workers;
  uint32_t service_node_sync_period_s;  /* service LB host-set resync */
  bool service_status_writer;           /* ensure tails on their thread */
  uint32_t node_status_update_period_s; /* node address refresh */
  uint32_t node_monitor_period_s;       /* node lifecycle loop */
  const char *cluster_cidr;             /* route controller; NULL = none */
  bool configure_cloud_routes;
  uint32_t route_reconcile_period_s;
  const char *listen;        /* "ADDR:PORT" */
  const char *log_level;
  const char *state_dir;     /* private module copies live here */
  uint32_t drain_timeout_ms; /* hot-swap drain deadline */
  struct leader_config leader;
  const char **policies;     /* policy files */
  size_t n_policies;
  struct provider_config *providers;
  size_t n_providers;
};

/* Parse and validate FILE. On error returns -1 with one line in err naming
 * file, line and key ("host.cfg:12: providers.[0].module: ..."); nothing
 * is left allocated. */
int config_load(const char *path, struct host_config **out, char *err,
                size_t errlen);
/* A loaded config is reference counted: config_load returns one
 * reference, config_hold adds one (a provider generation holds its config
 * while its module reads the config group), config_free drops one and
 * frees the config with the last. */
void config_hold(struct host_config *cfg);
void config_free(struct host_config *cfg);

/* The default provider, or the one bound to lb_class; NULL when none. */
const struct provider_config *config_provider_default(
    const struct host_config *cfg);
const struct provider_config *config_provider_for_class(
    const struct host_config *cfg, const char *lb_class);

/* Split a listen value "ADDR:PORT" (IPv4, "[IPv6]" or bare IPv6, where
 * the last colon starts the port) into addr and port. On error returns -1
 * with the reason in why. */
int config_listen_parse(const char *listen, char *addr, size_t addr_cap,
                        unsigned *port, char *why, size_t cap);

/* Markdown reference of every key, from the schema table. */
void config_write_docs(FILE *out);

#endif
