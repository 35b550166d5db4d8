/*
 * objects.h: the compact cache structs for Nodes and Services and their
 * decoders from cJSON. Each object is ONE allocation (struct, arrays and
 * strings packed together) and is reference counted. It must not keep any
 * JSON, log, or know about stores, informers or the network.
 */
#ifndef CCM_KUBE_OBJECTS_H
#define CCM_KUBE_OBJECTS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;

/* Limits on external input; an object over a limit is rejected. */
#define CCM_OBJ_MAX_STRING (64u * 1024u)    /* bytes in one string */
#define CCM_OBJ_MAX_SIZE (1024u * 1024u)    /* bytes of one decoded object */
#define CCM_OBJ_MAX_ITEMS 4096u             /* entries in one list or map */

/* Never cached: large, and no controller or policy reads it. */
#define CCM_OBJ_LAST_APPLIED "kubectl.kubernetes.io/last-applied-configuration"

enum obj_kind { OBJ_KIND_NODE = 1, OBJ_KIND_SERVICE = 2 };

enum obj_status {
  OBJ_OK = 0,
  OBJ_INVALID = -1, /* bad input: skip the object, keep the cache */
  OBJ_NOMEM = -2
};

/* Condition status: absent conditions read as OBJ_COND_UNKNOWN. */
enum obj_cond { OBJ_COND_UNKNOWN = 0, OBJ_COND_TRUE = 1, OBJ_COND_FALSE = 2 };

enum obj_svc_type {
  OBJ_SVC_CLUSTER_IP = 0, /* also when spec.type is absent */
  OBJ_SVC_NODE_PORT,
  OBJ_SVC_LOAD_BALANCER,
  OBJ_SVC_EXTERNAL_NAME,
  OBJ_SVC_OTHER
};

struct obj_kv {
  const char *key;
  const char *value;
};

/* The header every cached object starts with. Strings are NUL-terminated,
 * valid UTF-8 (invalid bytes became U+FFFD) and NULL when absent. They live
 * in the object's one allocation, except well-known keys (obj_known_key)
 * and the default port protocol, which point at constants. */
struct obj_meta {
  atomic_uint refs;
  uint8_t kind;             /* enum obj_kind */
  bool deleting;            /* metadata.deletionTimestamp is set */
  uint32_t size;            /* bytes of the one allocation */
  const char *ns;           /* NULL for cluster-scoped kinds */
  const char *name;
  const char *uid;
  const char *resource_version;
  int64_t generation;
  const struct obj_kv *labels; /* sorted by key */
  uint32_t n_labels;
  uint32_t n_annotations;
  const struct obj_kv *annotations; /* sorted by key */
};

struct obj_taint {
  const char *key;
  const char *value;  /* NULL when absent */
  const char *effect;
};

struct obj_address {
  const char *type;
  const char *address;
};

/* Node annotations kept: only CCM_OBJ_NODE_IP_ANNOTATION. */
#define CCM_OBJ_NODE_IP_ANNOTATION "alpha.kubernetes.io/provided-node-ip"

struct obj_node {
  struct obj_meta meta;
  const char *provider_id;
  const char *provided_node_ip; /* the annotation, NULL when absent */
  bool unschedulable;
  uint8_t ready;                /* enum obj_cond */
  uint8_t network_unavailable;  /* enum obj_cond */
  int64_t ready_transition;     /* Ready.lastTransitionTime, Unix s, 0 = none */
  const char *network_unavailable_reason;
  const struct obj_taint *taints;     /* spec order */
  const struct obj_address *addresses;/* status order */
  const char *const *pod_cidrs;       /* spec.podCIDRs, else [spec.podCIDR] */
  uint16_t n_taints;
  uint16_t n_addresses;
  uint16_t n_pod_cidrs;
};

struct obj_port {
  const char *name;         /* NULL when absent */
  const char *protocol;     /* "TCP" when absent */
  const char *target_port;  /* as text ("8080" or a name), NULL when absent */
  const char *app_protocol;
  int32_t port;
  int32_t node_port;        /* 0 when absent */
};

struct obj_ingress {
  const char *ip;
  const char *hostname;
  const char *ip_mode;
};

struct obj_service {
  struct obj_meta meta;
  uint8_t type;                       /* enum obj_svc_type */
  const char *type_name;              /* spec.type as sent, NULL when absent */
  const char *lb_class;
  const char *lb_ip;
  const char *external_traffic_policy;
  const char *session_affinity;
  int32_t session_affinity_timeout;   /* clientIP.timeoutSeconds, 0 = none */
  int32_t health_check_node_port;
  const char *const *source_ranges;
  const char *const *external_ips;
  const char *const *ip_families;
  const char *const *finalizers;
  const struct obj_port *ports;
  const struct obj_ingress *ingress;
  uint16_t n_source_ranges;
  uint16_t n_external_ips;
  uint16_t n_ip_families;
  uint16_t n_finalizers;
  uint16_t n_ports;
  uint16_t n_ingress;
};

/* Decode one API object (a Node or a Service JSON object). On OBJ_OK *out
 * holds one reference. On OBJ_INVALID err names the field; unknown fields
 * are ignored, a known field of the wrong type rejects the object. */
int obj_decode(enum obj_kind kind, const struct cJSON *item,
               struct obj_meta **out, char *err, size_t errlen);

/* Parse then decode; len bounds the text (no NUL needed). */
int obj_decode_text(enum obj_kind kind, const char *text, size_t len,
                    struct obj_meta **out, char *err, size_t errlen);

/* References: obj_ref returns obj; the last obj_unref frees it. Both are
 * safe on NULL and from any thread. */
struct obj_meta *obj_ref(const struct obj_meta *obj);
void obj_unref(const struct obj_meta *obj);

/* Typed views; NULL when obj is NULL or of another kind. */
const struct obj_node *obj_as_node(const struct obj_meta *obj);
const struct obj_service *obj_as_service(const struct obj_meta *obj);

/* Lookups in the sorted label and annotation arrays; NULL when absent. */
const char *obj_label(const struct obj_meta *obj, const char *key);
const char *obj_annotation(const struct obj_meta *obj, const char *key);

/* Node helpers for the controllers. */
const struct obj_taint *obj_node_taint(const struct obj_node *n,
                                       const char *key);
bool obj_service_has_finalizer(const struct obj_service *s, const char *f);

/* "ns/name" or "name" into buf; returns the length, or -1 if it did not
 * fit. */
int obj_key(const struct obj_meta *obj, char *buf, size_t cap);

/* The shared constant for a well-known label or annotation key, or NULL.
 * Cached objects point at these instead of copying the key. */
const char *obj_known_key(const char *key);
size_t obj_known_keys(const char *const **out);

/* Validate or repair UTF-8: the length after replacing each invalid
 * sequence by U+FFFD, and the copy itself (dst holds that length + 1). */
size_t obj_utf8_fixed_len(const char *s, size_t len, bool *was_valid);
void obj_utf8_fix(char *dst, const char *s, size_t len);

/* RFC 3339 ("2024-01-02T03:04:05Z", optional fraction and offset) to Unix
 * seconds; -1 when malformed. */
int obj_parse_time(const char *s, int64_t *out);

#endif
