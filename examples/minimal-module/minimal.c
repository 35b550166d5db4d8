/*
 * minimal.c: the smallest complete ccmhost provider module, the example of
 * docs/writing-a-module.md. It keeps load balancers in memory and hands out
 * addresses from one /24; it reaches the host only through ccm_host_api.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ccm_provider.h"

#define MINIMAL_SLOTS 254 /* one load balancer per host address of a /24 */

struct minimal_lb {
  char name[CCM_MAX_NAME + 1]; /* the lb_name the host chose; "" = free */
};

struct minimal {
  const struct ccm_host_api *api;
  struct ccm_host *host;
  char prefix[16]; /* "192.0.2." : the /24 we allocate from */
  struct minimal_lb lbs[MINIMAL_SLOTS];
};

/* ---- declarations ---------------------------------------------------- */

static const struct ccm_option_decl opt_hostname = {
    sizeof(struct ccm_option_decl), "hostname", CCM_OPT_STRING,
    "DNS name to report next to the address in the Service status", NULL};
static const struct ccm_option_decl *const minimal_options[] = {
    &opt_hostname, NULL};

/* A DNS label, which the upstream default ("a" + uid) always satisfies. */
static const struct ccm_name_rules minimal_name_rules = {
    sizeof(struct ccm_name_rules), 1, 63,
    "abcdefghijklmnopqrstuvwxyz0123456789-", "abcdefghijklmnopqrstuvwxyz",
    "abcdefghijklmnopqrstuvwxyz0123456789"};

/* ---- helpers ---------------------------------------------------------- */

static int find(const struct minimal *m, const char *name) {
  for (int i = 0; i < MINIMAL_SLOTS; i++)
    if (strcmp(m->lbs[i].name, name) == 0)
      return i;
  return -1;
}

/* The value of a string option the policy set for this Service, or NULL. */
static const char *option(const struct ccm_service *svc, const char *name) {
  for (size_t i = 0; i < svc->n_options; i++)
    if (strcmp(svc->options[i]->name, name) == 0)
      return svc->options[i]->string_value;
  return NULL;
}

static int status_fill(struct minimal *m, int slot,
                       const struct ccm_service *svc,
                       struct ccm_lb_status *out) {
  char ip[CCM_MAX_ADDRESS + 1];

  snprintf(ip, sizeof ip, "%s%d", m->prefix, slot + 1);
  return m->api->lb_add_ingress(out, ip, option(svc, "hostname"));
}

/* ---- lifecycle ------------------------------------------------------- */

static int minimal_init(const struct ccm_host_api *api, struct ccm_host *host,
                        struct ccm_call *call, void **instance) {
  const char *prefix = "192.0.2.";
  struct minimal *m;
  int rc;

  rc = api->cfg_string(api->cfg_root(host), "address_prefix", &prefix);
  if (rc != CCM_OK && rc != CCM_ERR_NOT_FOUND) {
    api->call_set_error(call, "address_prefix must be a string");
    return CCM_ERR_INVALID;
  }
  if (strlen(prefix) < 6 || strlen(prefix) > 12 ||
      prefix[strlen(prefix) - 1] != '.') {
    api->call_set_error(call, "address_prefix \"%s\" is not like "
                        "\"192.0.2.\"", prefix);
    return CCM_ERR_INVALID;
  }
  m = api->calloc(1, sizeof *m);
  if (m == NULL) {
    api->call_set_error(call, "out of memory");
    return CCM_ERR_INTERNAL;
  }
  m->api = api;
  m->host = host;
  snprintf(m->prefix, sizeof m->prefix, "%s", prefix);
  api->log(host, CCM_LOG_INFO, "allocating from %s0/24", m->prefix);
  *instance = m;
  return CCM_OK;
}

static void minimal_destroy(void *instance) {
  struct minimal *m = instance;

  m->api->free(m);
}

/* ---- load balancers ---------------------------------------------------- */

static int minimal_lb_get(void *instance, struct ccm_call *call,
                          const struct ccm_service *svc,
                          struct ccm_lb_status *out) {
  struct minimal *m = instance;
  int slot = find(m, svc->lb_name);

  (void)call;
  if (slot < 0)
    return CCM_ERR_NOT_FOUND;
  return status_fill(m, slot, svc, out);
}

static int minimal_lb_ensure(void *instance, struct ccm_call *call,
                             const struct ccm_service *svc,
                             const struct ccm_node_list *nodes,
                             struct ccm_lb_status *out) {
  struct minimal *m = instance;
  int slot = find(m, svc->lb_name);

  if (slot < 0) {
    if (strlen(svc->lb_name) > CCM_MAX_NAME) {
      m->api->call_set_error(call, "load-balancer name too long");
      return CCM_ERR_INVALID;
    }
    slot = find(m, ""); /* a free slot */
    if (slot < 0) {
      m->api->call_set_error(call, "no free address in %s0/24", m->prefix);
      m->api->call_set_retry_after(call, 60000);
      return CCM_ERR_RETRY;
    }
    snprintf(m->lbs[slot].name, sizeof m->lbs[slot].name, "%s", svc->lb_name);
    m->api->log(m->host, CCM_LOG_INFO, "created %s for %s/%s with %zu nodes",
                svc->lb_name, svc->namespace_, svc->name, nodes->n_nodes);
  }
  return status_fill(m, slot, svc, out);
}

static int minimal_lb_update_hosts(void *instance, struct ccm_call *call,
                                   const struct ccm_service *svc,
                                   const struct ccm_node_list *nodes) {
  struct minimal *m = instance;

  (void)call;
  if (find(m, svc->lb_name) < 0)
    return CCM_ERR_NOT_FOUND;
  m->api->log(m->host, CCM_LOG_DEBUG, "%s now has %zu nodes", svc->lb_name,
              nodes->n_nodes);
  return CCM_OK;
}

static int minimal_lb_delete(void *instance, struct ccm_call *call,
                             const struct ccm_service *svc) {
  struct minimal *m = instance;
  int slot = find(m, svc->lb_name);

  (void)call;
  if (slot >= 0) /* deleting what is absent is success */
    m->lbs[slot].name[0] = '\0';
  return CCM_OK;
}

/* ---- state for hot-swap: one "slot name" line per load balancer ------- */

static int minimal_state_export(void *instance, struct ccm_call *call,
                                struct ccm_blob *out) {
  struct minimal *m = instance;
  size_t cap = MINIMAL_SLOTS * (CCM_MAX_NAME + 6), used = 0;
  char *buf = m->api->alloc(cap);
  int rc;

  if (buf == NULL) {
    m->api->call_set_error(call, "out of memory");
    return CCM_ERR_INTERNAL;
  }
  for (int i = 0; i < MINIMAL_SLOTS; i++)
    if (m->lbs[i].name[0])
      used += (size_t)snprintf(buf + used, cap - used, "%d %s\n", i,
                               m->lbs[i].name);
  rc = m->api->blob_set(out, buf, used);
  m->api->free(buf);
  return rc;
}

static int minimal_state_import(void *instance, struct ccm_call *call,
                                const void *data, size_t len) {
  struct minimal *m = instance;
  const char *p = data, *end = p + len;

  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    char line[CCM_MAX_NAME + 8], *name;
    long slot;

    if (nl == NULL || (size_t)(nl - p) >= sizeof line)
      goto bad;
    memcpy(line, p, (size_t)(nl - p));
    line[nl - p] = '\0';
    slot = strtol(line, &name, 10);
    if (name == line || *name != ' ' || slot < 0 || slot >= MINIMAL_SLOTS)
      goto bad;
    snprintf(m->lbs[slot].name, sizeof m->lbs[slot].name, "%s", name + 1);
    p = nl + 1;
  }
  return CCM_OK;
bad:
  m->api->call_set_error(call, "state: malformed line");
  return CCM_ERR_INVALID;
}

/* ---- the descriptor and the entry symbol ------------------------------- */

static const struct ccm_provider minimal_provider = {
    .struct_size = sizeof(struct ccm_provider),
    .name = "minimal",
    .version = "1.0.0",
    .description = "in-memory load balancers from one /24 (example module)",
    .thread_safety = CCM_THREAD_SERIAL,
    .capabilities = CCM_CAP_LOAD_BALANCER | CCM_CAP_STATE,
    .options = minimal_options,
    .lb_name_rules = &minimal_name_rules,
    .init = minimal_init,
    .destroy = minimal_destroy,
    .lb_get = minimal_lb_get,
    .lb_ensure = minimal_lb_ensure,
    .lb_update_hosts = minimal_lb_update_hosts,
    .lb_delete = minimal_lb_delete,
    .state_export = minimal_state_export,
    .state_import = minimal_state_import,
};

CCM_EXPORT int ccm_provider_entry(struct ccm_entry *entry) {
  if (entry->struct_size < offsetof(struct ccm_entry, provider) +
                               sizeof(entry->provider))
    return CCM_ERR_INVALID;
  entry->module_abi_major = CCM_ABI_MAJOR;
  entry->module_abi_minor = CCM_ABI_MINOR;
  entry->provider = &minimal_provider;
  return CCM_OK;
}
