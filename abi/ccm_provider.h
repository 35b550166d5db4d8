/*
 * ccm_provider.h: the ccmhost provider ABI. This header is the whole contract
 * between ccm-host and a provider module (.so); abi/ABI.md numbers its rules.
 * It must not include anything beyond stdint/stddef/stdbool, and it only grows
 * at the end of each struct and table (each field names the minor that added it).
 */
#ifndef CCM_PROVIDER_H
#define CCM_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------
 * Versions. A different major is refused; an older minor is served and the
 * host never calls past what that minor defines.
 */
#define CCM_ABI_MAJOR 1
#define CCM_ABI_MINOR 0

/* The one symbol a module exports (see struct ccm_entry). */
#define CCM_ENTRY_SYMBOL "ccm_provider_entry"

#if defined(__GNUC__)
#define CCM_EXPORT __attribute__((visibility("default")))
#define CCM_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define CCM_EXPORT
#define CCM_PRINTF(fmt, args)
#endif

/* ---------------------------------------------------------------------------
 * Status codes. Every provider operation and host call returns one of these.
 * A message for the log and for Events goes in the call context
 * (ccm_host_api.call_set_error), never in the return value.
 */
enum ccm_status {
  CCM_OK = 0,
  CCM_ERR_NOT_FOUND = -1,       /* the resource or instance does not exist */
  CCM_ERR_NOT_IMPLEMENTED = -2, /* this provider does not do that */
  CCM_ERR_RETRY = -3,           /* try again after call_set_retry_after() */
  CCM_ERR_INVALID = -4,         /* permanent: the input cannot be served */
  CCM_ERR_AUTH = -5,            /* credentials missing, expired or refused */
  CCM_ERR_THROTTLED = -6,       /* the cloud asked us to slow down */
  CCM_ERR_INTERNAL = -7         /* anything else; the host backs off */
};

/* Upper bounds for strings crossing the boundary, terminator excluded.
 * Builders refuse longer strings with CCM_ERR_INVALID. */
#define CCM_MAX_NAME 253      /* names, hostnames, zones, regions, types */
#define CCM_MAX_ID 1024       /* providerIDs, URLs in results */
#define CCM_MAX_ADDRESS 64    /* an IPv4 or IPv6 address, or a CIDR */
#define CCM_MAX_LABEL_KEY 317 /* prefix (253) + "/" + name (63) */
#define CCM_MAX_LABEL_VALUE 63
#define CCM_MAX_ERROR 512     /* call_set_error message, longer is cut */

/* ---------------------------------------------------------------------------
 * Opaque handles. The module never sees their layout.
 */
struct ccm_host;          /* the host, as seen by one module instance */
struct ccm_call;          /* one provider call: deadline, cancel, id, error */
struct ccm_config;        /* a read-only group of the module's configuration */
struct ccm_lb_status;     /* result builder: load-balancer ingress */
struct ccm_instance_meta; /* result builder: instance metadata */
struct ccm_route_list;    /* result builder: listed routes */
struct ccm_blob;          /* result builder: exported state */
struct ccm_http_response; /* a response owned by the host */

/* ---------------------------------------------------------------------------
 * Inputs: read-only, size-prefixed, valid only for the duration of the call.
 * Arrays are arrays of pointers so that element structs can grow.
 */
struct ccm_kv {
  uint32_t struct_size; /* 1.0 */
  const char *key;      /* 1.0 */
  const char *value;    /* 1.0 */
};

enum ccm_option_type {
  CCM_OPT_STRING = 1,
  CCM_OPT_INT = 2,
  CCM_OPT_BOOL = 3,
  CCM_OPT_STRING_LIST = 4
};

/* One provider option, as the policy produced it and the host validated it
 * against the module's declarations (type always matches the declaration). */
struct ccm_option_value {
  uint32_t struct_size;         /* 1.0 */
  const char *name;             /* 1.0 */
  uint32_t type;                /* 1.0: enum ccm_option_type */
  const char *string_value;     /* 1.0: CCM_OPT_STRING */
  int64_t int_value;            /* 1.0: CCM_OPT_INT */
  bool bool_value;              /* 1.0: CCM_OPT_BOOL */
  const char *const *list;      /* 1.0: CCM_OPT_STRING_LIST */
  size_t list_len;              /* 1.0 */
};

enum ccm_protocol { CCM_PROTO_TCP = 1, CCM_PROTO_UDP = 2, CCM_PROTO_SCTP = 3 };

struct ccm_service_port {
  uint32_t struct_size; /* 1.0 */
  const char *name;     /* 1.0: may be "" */
  uint32_t protocol;    /* 1.0: enum ccm_protocol */
  uint16_t port;        /* 1.0 */
  uint16_t node_port;   /* 1.0 */
};

enum ccm_ip_family { CCM_IPV4 = 4, CCM_IPV6 = 6 };

struct ccm_service {
  uint32_t struct_size;           /* 1.0 */
  const char *cluster_name;       /* 1.0: --cluster-name */
  const char *namespace_;         /* 1.0 */
  const char *name;               /* 1.0 */
  const char *uid;                /* 1.0 */
  const char *lb_name;            /* 1.0: the name the host chose and records */
  const char *lb_class;           /* 1.0: NULL when unset */
  const char *load_balancer_ip;   /* 1.0: spec.loadBalancerIP, NULL when unset */
  const struct ccm_service_port *const *ports; /* 1.0 */
  size_t n_ports;                              /* 1.0 */
  const char *const *source_ranges;            /* 1.0: CIDRs */
  size_t n_source_ranges;                      /* 1.0 */
  const uint32_t *ip_families;                 /* 1.0: enum ccm_ip_family */
  size_t n_ip_families;                        /* 1.0 */
  bool external_traffic_local;                 /* 1.0: eTP == Local */
  uint16_t health_check_node_port;             /* 1.0: 0 when unset */
  bool session_affinity_client_ip;             /* 1.0 */
  const struct ccm_option_value *const *options; /* 1.0: from the policy */
  size_t n_options;                              /* 1.0 */
  const struct ccm_kv *const *tags;              /* 1.0: resource tags */
  size_t n_tags;                                 /* 1.0 */
};

enum ccm_address_type {
  CCM_ADDR_HOSTNAME = 1,
  CCM_ADDR_EXTERNAL_IP = 2,
  CCM_ADDR_INTERNAL_IP = 3,
  CCM_ADDR_EXTERNAL_DNS = 4,
  CCM_ADDR_INTERNAL_DNS = 5
};

struct ccm_node_address {
  uint32_t struct_size; /* 1.0 */
  uint32_t type;        /* 1.0: enum ccm_address_type */
  const char *address;  /* 1.0 */
};

struct ccm_node {
  uint32_t struct_size;     /* 1.0 */
  const char *name;         /* 1.0 */
  const char *uid;          /* 1.0 */
  const char *provider_id;  /* 1.0: spec.providerID, NULL when unset */
  const struct ccm_node_address *const *addresses; /* 1.0 */
  size_t n_addresses;                              /* 1.0 */
  const struct ccm_kv *const *labels;              /* 1.0 */
  size_t n_labels;                                 /* 1.0 */
};

struct ccm_node_list {
  uint32_t struct_size;               /* 1.0 */
  const struct ccm_node *const *nodes; /* 1.0 */
  size_t n_nodes;                      /* 1.0 */
};

struct ccm_route {
  uint32_t struct_size;          /* 1.0 */
  const char *name;              /* 1.0: as listed; ignored by create */
  const char *target_node;       /* 1.0: node name */
  const char *destination_cidr;  /* 1.0 */
  bool blackhole;                /* 1.0: target gone; only on listed routes */
  const struct ccm_node_address *const *target_addresses; /* 1.0 */
  size_t n_target_addresses;                              /* 1.0 */
};

/* ---------------------------------------------------------------------------
 * Declarations a module publishes: options and load-balancer name rules.
 */
struct ccm_option_decl {
  uint32_t struct_size;      /* 1.0 */
  const char *name;          /* 1.0: [a-z0-9_-.], unique in the module */
  uint32_t type;             /* 1.0: enum ccm_option_type */
  const char *help;          /* 1.0: one line */
  const char *default_value; /* 1.0: textual default, NULL = none */
};

struct ccm_name_rules {
  uint32_t struct_size;      /* 1.0 */
  uint32_t min_length;       /* 1.0 */
  uint32_t max_length;       /* 1.0 */
  const char *allowed;       /* 1.0: characters allowed anywhere */
  const char *allowed_first; /* 1.0: for the first character, NULL = allowed */
  const char *allowed_last;  /* 1.0: for the last character, NULL = allowed */
};

/* ---------------------------------------------------------------------------
 * Host API: filled by the host, read-only for the module, append-only.
 * A module built for minor M may use entries up to M and must check
 * struct_size (or NULL) before using later ones.
 */
enum ccm_log_level {
  CCM_LOG_ERROR = 0,
  CCM_LOG_WARN = 1,
  CCM_LOG_INFO = 2,
  CCM_LOG_DEBUG = 3
};

struct ccm_http_request {
  uint32_t struct_size;        /* 1.0 */
  const char *method;          /* 1.0: "GET", "POST", ... */
  const char *url;             /* 1.0 */
  const char *const *headers;  /* 1.0: "Name: value", NULL-terminated or NULL */
  const void *body;            /* 1.0: NULL for none */
  size_t body_len;             /* 1.0 */
  uint32_t timeout_ms;         /* 1.0: 0 = the module's default */
  bool body_is_secret;         /* 1.0: never log the body */
};

struct ccm_host_api {
  uint32_t struct_size; /* 1.0: sizeof as the host built it */
  uint32_t abi_minor;   /* 1.0: the host's minor */

  /* Logging: one line, prefixed with the module's name. 1.0 */
  void (*log)(struct ccm_host *host, int level, const char *fmt, ...)
      CCM_PRINTF(3, 4);
  /* Declare a secret value; the host redacts it from every log line. 1.0 */
  void (*secret_add)(struct ccm_host *host, const char *secret);

  /* Configuration of this module instance. Paths are dotted ("a.b"); the
   * root group is cfg_root(). Getters return CCM_OK, CCM_ERR_NOT_FOUND when
   * absent, or CCM_ERR_INVALID on a type mismatch (and log file:line). 1.0 */
  const struct ccm_config *(*cfg_root)(struct ccm_host *host);
  int (*cfg_string)(const struct ccm_config *cfg, const char *path,
                    const char **out);
  int (*cfg_int)(const struct ccm_config *cfg, const char *path,
                 int64_t *out);
  int (*cfg_bool)(const struct ccm_config *cfg, const char *path, bool *out);
  /* Lists and arrays of strings: count, then item i. */
  int (*cfg_list_len)(const struct ccm_config *cfg, const char *path,
                      size_t *out);
  int (*cfg_list_string)(const struct ccm_config *cfg, const char *path,
                         size_t index, const char **out);
  /* A nested group; a list of groups is reached with path "name.[i]". */
  int (*cfg_group)(const struct ccm_config *cfg, const char *path,
                   const struct ccm_config **out);

  /* Allocation: memory the module keeps between calls. 1.0 */
  void *(*alloc)(size_t size);
  void *(*calloc)(size_t n, size_t size);
  void *(*realloc)(void *ptr, size_t size);
  void (*free)(void *ptr);
  char *(*strdup)(const char *s);

  /* Call context. 1.0 */
  int64_t (*call_remaining_ms)(const struct ccm_call *call); /* < 0: past */
  bool (*call_cancelled)(const struct ccm_call *call);
  const char *(*call_request_id)(const struct ccm_call *call);
  void (*call_set_error)(struct ccm_call *call, const char *fmt, ...)
      CCM_PRINTF(2, 3);
  void (*call_set_retry_after)(struct ccm_call *call, uint32_t delay_ms);

  /* HTTP through the host (libcurl): connection reuse, TLS settings, rate
   * limit, metrics, redaction and fault injection. On CCM_OK *out holds a
   * response (any HTTP status) to release with http_release. Transport
   * failures return CCM_ERR_RETRY (timeouts, refused, reset), CCM_ERR_INTERNAL
   * (a certificate that does not verify) or CCM_ERR_INVALID (bad request). 1.0 */
  int (*http_do)(struct ccm_host *host, struct ccm_call *call,
                 const struct ccm_http_request *req,
                 struct ccm_http_response **out);
  long (*http_status)(const struct ccm_http_response *resp);
  const char *(*http_body)(const struct ccm_http_response *resp,
                           size_t *len);
  /* First header with that name (case-insensitive), or NULL. */
  const char *(*http_header)(const struct ccm_http_response *resp,
                             const char *name);
  void (*http_release)(struct ccm_http_response *resp);

  /* Result builders: the host copies every string. 1.0 */
  int (*lb_add_ingress)(struct ccm_lb_status *st, const char *ip,
                        const char *hostname);
  int (*meta_set)(struct ccm_instance_meta *m, int field, const char *value);
  int (*meta_add_address)(struct ccm_instance_meta *m, uint32_t type,
                          const char *address);
  int (*meta_add_label)(struct ccm_instance_meta *m, const char *key,
                        const char *value);
  int (*routes_add)(struct ccm_route_list *list, const struct ccm_route *r);
  int (*blob_set)(struct ccm_blob *blob, const void *data, size_t len);
};

/* Fields for ccm_host_api.meta_set. */
enum ccm_meta_field {
  CCM_META_PROVIDER_ID = 1,
  CCM_META_INSTANCE_TYPE = 2,
  CCM_META_ZONE = 3,
  CCM_META_REGION = 4
};

/* ---------------------------------------------------------------------------
 * The provider: a static, read-only descriptor the module returns at
 * negotiation. Operations left NULL are unsupported (the host answers
 * CCM_ERR_NOT_IMPLEMENTED for them without calling the module).
 *
 * Every operation receives the instance from init, the call context and
 * read-only inputs, and returns an enum ccm_status.
 */
enum ccm_thread_safety {
  CCM_THREAD_SERIAL = 0, /* the host serialises every call */
  CCM_THREAD_SAFE = 1    /* any operation may run concurrently */
};

/* Capability flags, derived by the host from the non-NULL operations and
 * reported by --check-module; a module may also set them for documentation. */
#define CCM_CAP_LOAD_BALANCER (1u << 0)
#define CCM_CAP_INSTANCES (1u << 1)
#define CCM_CAP_INSTANCES_BATCH (1u << 2)
#define CCM_CAP_ROUTES (1u << 3)
#define CCM_CAP_STATE (1u << 4)

struct ccm_provider {
  uint32_t struct_size; /* 1.0 */
  const char *name;     /* 1.0: [a-z0-9-], also the providerID scheme */
  const char *version;  /* 1.0: the module's own version */
  const char *description; /* 1.0 */
  uint32_t thread_safety;  /* 1.0: enum ccm_thread_safety */
  uint32_t capabilities;   /* 1.0: CCM_CAP_* the module claims */
  const struct ccm_option_decl *const *options; /* 1.0: NULL-terminated */
  const struct ccm_name_rules *lb_name_rules;   /* 1.0: NULL = no limits */

  /* Lifecycle. init builds the instance from the module's config and may
   * fail with a message in call; destroy must release everything. 1.0 */
  int (*init)(const struct ccm_host_api *api, struct ccm_host *host,
              struct ccm_call *call, void **instance);
  void (*destroy)(void *instance);

  /* Load balancers. get answers CCM_ERR_NOT_FOUND when absent; delete
   * answers CCM_OK when absent. 1.0 */
  int (*lb_get)(void *instance, struct ccm_call *call,
                const struct ccm_service *svc, struct ccm_lb_status *out);
  int (*lb_ensure)(void *instance, struct ccm_call *call,
                   const struct ccm_service *svc,
                   const struct ccm_node_list *nodes,
                   struct ccm_lb_status *out);
  int (*lb_update_hosts)(void *instance, struct ccm_call *call,
                         const struct ccm_service *svc,
                         const struct ccm_node_list *nodes);
  int (*lb_delete)(void *instance, struct ccm_call *call,
                   const struct ccm_service *svc);

  /* Instances. Unknown instances answer CCM_ERR_NOT_FOUND (exists: CCM_OK
   * with *exists = false); a stopped instance exists. 1.0 */
  int (*instance_exists)(void *instance, struct ccm_call *call,
                         const struct ccm_node *node, bool *exists);
  int (*instance_shutdown)(void *instance, struct ccm_call *call,
                           const struct ccm_node *node, bool *shutdown);
  int (*instance_metadata)(void *instance, struct ccm_call *call,
                           const struct ccm_node *node,
                           struct ccm_instance_meta *out);
  /* Batched metadata: fills out[i] and status[i] for each node. 1.0 */
  int (*instance_metadata_batch)(void *instance, struct ccm_call *call,
                                 const struct ccm_node *const *nodes,
                                 size_t n_nodes,
                                 struct ccm_instance_meta *const *out,
                                 int *status);

  /* Routes of cluster_name. create names the route itself (name_hint is
   * the node UID); delete takes a route as listed. 1.0 */
  int (*route_list)(void *instance, struct ccm_call *call,
                    const char *cluster_name, struct ccm_route_list *out);
  int (*route_create)(void *instance, struct ccm_call *call,
                      const char *cluster_name, const char *name_hint,
                      const struct ccm_route *route);
  int (*route_delete)(void *instance, struct ccm_call *call,
                      const char *cluster_name,
                      const struct ccm_route *route);

  /* Hot-swap between versions: the old generation exports, the new one
   * imports before it serves its first call. Either may be NULL. 1.0 */
  int (*state_export)(void *instance, struct ccm_call *call,
                      struct ccm_blob *out);
  int (*state_import)(void *instance, struct ccm_call *call,
                      const void *data, size_t len);
};

/* ---------------------------------------------------------------------------
 * Negotiation: the host fills the host_* fields and calls the entry symbol;
 * the module writes its own version and its provider, and returns CCM_OK.
 * The host refuses a different major before touching anything else.
 */
struct ccm_entry {
  uint32_t struct_size;      /* 1.0: sizeof as the host built it */
  uint32_t host_abi_major;   /* 1.0 */
  uint32_t host_abi_minor;   /* 1.0 */
  uint32_t module_abi_major; /* 1.0: out */
  uint32_t module_abi_minor; /* 1.0: out */
  const struct ccm_provider *provider; /* 1.0: out, static in the module */
};

typedef int ccm_entry_fn(struct ccm_entry *entry);

/* The prototype every module defines (and exports, with CCM_EXPORT). */
CCM_EXPORT int ccm_provider_entry(struct ccm_entry *entry);

#ifdef __cplusplus
}
#endif

#endif /* CCM_PROVIDER_H */
