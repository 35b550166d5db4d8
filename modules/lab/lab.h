/*
 * lab.h: internal types of the lab provider module (never installed, never
 * seen by the host). The module reaches the host only through the
 * struct ccm_host_api it receives in init; nothing here may include host/.
 */
#ifndef CCM_LAB_H
#define CCM_LAB_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ccm_provider.h"

#define LAB_STATE_VERSION 1
#define LAB_PROVIDER_ID_PREFIX "lab://"
#define LAB_IPV6_WINDOW 65536u     /* addresses used from each IPv6 pool */
#define LAB_RETRY_EXHAUSTED_MS 60000u
#define LAB_STATE_MAX_BYTES (64u * 1024u * 1024u)
#define LAB_ADDR_TEXT 64           /* INET6_ADDRSTRLEN rounded up */
#define LAB_MAX_FAMILIES 2

/* An IPv4 (first 4 bytes used) or IPv6 address. */
struct lab_addr {
  uint8_t family; /* 4 or 6 */
  uint8_t bytes[16];
};

/* One configured pool: count usable addresses from first. */
struct lab_pool {
  char *name; /* "name=" prefix of the entry, NULL when unnamed */
  char *text; /* the entry as configured, for messages */
  struct lab_addr first;
  uint64_t count;
};

struct lab_port {
  char *name;
  uint32_t protocol; /* enum ccm_protocol */
  uint16_t port;
  uint16_t node_port;
};

/* One load balancer, keyed by the lb_name the host chose and records. */
struct lab_lb {
  char *name;
  char *service; /* "namespace/name" */
  char *uid;
  struct lab_addr ips[LAB_MAX_FAMILIES];
  size_t n_ips;
  char **nodes;
  size_t n_nodes;
  struct lab_port *ports;
  size_t n_ports;
};

struct lab_route {
  char *cluster;
  char *name;
  char *target_node;
  char *cidr;
};

struct lab_state {
  struct lab_lb **lbs;
  size_t n_lbs;
  struct lab_route **routes;
  size_t n_routes;
};

struct lab_zone_rule {
  char *match; /* fnmatch pattern on the node name */
  char *zone;  /* NULL: fall back to the default */
  char *region;
  char *instance_type;
};

struct lab_node_addr {
  char *node;
  char *internal_ip; /* each NULL when not configured */
  char *external_ip;
  char *hostname;
};

struct lab_config {
  char *state_file;
  struct lab_pool *pools; /* IPv4 and IPv6, in configured order */
  size_t n_pools;
  struct lab_zone_rule *zones;
  size_t n_zones;
  char *zone; /* defaults, NULL when unset */
  char *region;
  char *instance_type;
  bool has_nodes; /* false: every node exists */
  char **nodes;
  size_t n_nodes;
  char **shutdown_nodes;
  size_t n_shutdown;
  struct lab_node_addr *addrs;
  size_t n_addrs;
};

/* One module instance. cfg is immutable after init; state is guarded by mu. */
struct lab {
  const struct ccm_host_api *api;
  struct ccm_host *host;
  struct lab_config cfg;
  pthread_mutex_t mu;
  struct lab_state state;
};

/* ---- lab_ip.c: addresses and pools ---------------------------------- */
/* Parse a literal IPv4 or IPv6 address; false when it is neither. */
bool lab_addr_parse(const char *text, struct lab_addr *out);
void lab_addr_format(const struct lab_addr *a, char out[LAB_ADDR_TEXT]);
bool lab_addr_equal(const struct lab_addr *a, const struct lab_addr *b);
int lab_addr_compare(const struct lab_addr *a, const struct lab_addr *b);
/* Parse "[name=]a.b.c.d/n", "[name=]a.b.c.d-a.b.c.e" or "[name=]x::/n" for
 * family (4 or 6). On error returns false with a reason in err. */
bool lab_pool_parse(const struct ccm_host_api *api, const char *text,
                    uint8_t family, struct lab_pool *out, char *err,
                    size_t errlen);
void lab_pool_clear(const struct ccm_host_api *api, struct lab_pool *p);
bool lab_pool_contains(const struct lab_pool *p, const struct lab_addr *a);
/* Parse "a.b.c.d/n" or "x::/n" (for routes); false when malformed. */
bool lab_cidr_valid(const char *text);
/* First free address of family in the pools (only those named pool_name
 * when not NULL), skipping the sorted used[]; false when none is free. */
bool lab_pool_allocate(const struct lab_pool *pools, size_t n_pools,
                       uint8_t family, const char *pool_name,
                       const struct lab_addr *used, size_t n_used,
                       struct lab_addr *out);

/* ---- lab_state.c: records, JSON, the state file --------------------- */
void lab_lb_free(const struct ccm_host_api *api, struct lab_lb *lb);
struct lab_lb *lab_lb_clone(const struct ccm_host_api *api,
                            const struct lab_lb *lb);
bool lab_lb_equal(const struct lab_lb *a, const struct lab_lb *b);
void lab_route_free(const struct ccm_host_api *api, struct lab_route *r);
void lab_state_clear(const struct ccm_host_api *api, struct lab_state *st);

/* Index of the load balancer or route named name, or -1. */
long lab_state_find_lb(const struct lab_state *st, const char *name);
long lab_state_find_route(const struct lab_state *st, const char *cluster,
                          const char *name);
/* Load balancer holding address a, or NULL. */
const struct lab_lb *lab_state_holder(const struct lab_state *st,
                                      const struct lab_addr *a);

/* Append (index < 0) or replace at index; *old receives the replaced
 * record. Returns CCM_OK or CCM_ERR_INTERNAL when memory is short. */
int lab_state_put_lb(const struct ccm_host_api *api, struct lab_state *st,
                     long index, struct lab_lb *lb, struct lab_lb **old);
struct lab_lb *lab_state_take_lb(struct lab_state *st, size_t index);
int lab_state_insert_lb(const struct ccm_host_api *api, struct lab_state *st,
                        size_t index, struct lab_lb *lb);
int lab_state_put_route(const struct ccm_host_api *api, struct lab_state *st,
                        long index, struct lab_route *r,
                        struct lab_route **old);
struct lab_route *lab_state_take_route(struct lab_state *st, size_t index);
int lab_state_insert_route(const struct ccm_host_api *api,
                           struct lab_state *st, size_t index,
                           struct lab_route *r);

/* Serialise to JSON text; free it with cJSON_free. NULL when out of memory. */
char *lab_state_to_json(const struct lab_state *st);
/* Parse JSON text from source (a file name or "imported state") into out,
 * which must be empty. On error returns CCM_ERR_INVALID with one line in err
 * naming source and the problem. */
int lab_state_from_json(const struct ccm_host_api *api, const char *text,
                        size_t len, const char *source, struct lab_state *out,
                        char *err, size_t errlen);
/* Read path into out. A missing file leaves out empty and sets *missing. */
int lab_state_read_file(const struct ccm_host_api *api, const char *path,
                        struct lab_state *out, bool *missing, char *err,
                        size_t errlen);
/* Write atomically: temp file in the same directory, fsync, rename, fsync
 * of the directory. Returns CCM_OK or CCM_ERR_INTERNAL with err set. */
int lab_state_write_file(const struct lab_state *st, const char *path,
                         char *err, size_t errlen);

/* ---- lab_lb.c, lab_nodes.c: operations ------------------------------ */
int lab_lb_get(void *instance, struct ccm_call *call,
               const struct ccm_service *svc, struct ccm_lb_status *out);
int lab_lb_ensure(void *instance, struct ccm_call *call,
                  const struct ccm_service *svc,
                  const struct ccm_node_list *nodes,
                  struct ccm_lb_status *out);
int lab_lb_update_hosts(void *instance, struct ccm_call *call,
                        const struct ccm_service *svc,
                        const struct ccm_node_list *nodes);
int lab_lb_delete(void *instance, struct ccm_call *call,
                  const struct ccm_service *svc);
int lab_instance_exists(void *instance, struct ccm_call *call,
                        const struct ccm_node *node, bool *exists);
int lab_instance_shutdown(void *instance, struct ccm_call *call,
                          const struct ccm_node *node, bool *shutdown);
int lab_instance_metadata(void *instance, struct ccm_call *call,
                          const struct ccm_node *node,
                          struct ccm_instance_meta *out);
int lab_instance_metadata_batch(void *instance, struct ccm_call *call,
                                const struct ccm_node *const *nodes,
                                size_t n_nodes,
                                struct ccm_instance_meta *const *out,
                                int *status);
int lab_route_list(void *instance, struct ccm_call *call,
                   const char *cluster_name, struct ccm_route_list *out);
int lab_route_create(void *instance, struct ccm_call *call,
                     const char *cluster_name, const char *name_hint,
                     const struct ccm_route *route);
int lab_route_delete(void *instance, struct ccm_call *call,
                     const char *cluster_name, const struct ccm_route *route);

/* Persist the in-memory state (caller holds mu); err names the file. */
int lab_save(struct lab *lab, char *err, size_t errlen);
/* True when name is in list. */
bool lab_name_in(char *const *list, size_t n, const char *name);

#endif
