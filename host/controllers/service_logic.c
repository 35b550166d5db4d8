/*
 * service_logic.c: the service controller's pure decisions, after
 * k8s.io/cloud-provider controllers/service (ccm-semantics section 2).
 * It must stay free of I/O, locks and allocation.
 */
#include "controllers/service_logic.h"

#include <stdio.h>
#include <string.h>

static bool svc_str_eq(const char *a, const char *b)
{
  if (a == NULL || b == NULL)
    return a == b;
  return strcmp(a, b) == 0;
}

/* Absent and "" are the same for optional strings of the spec. */
static bool svc_opt_eq(const char *a, const char *b)
{
  return svc_str_eq(a && *a ? a : NULL, b && *b ? b : NULL);
}

int svc_parse_bool(const char *s, bool *out)
{
  static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
  static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
  size_t i;

  if (s == NULL)
    return -1;
  for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
    if (strcmp(s, yes[i]) == 0) {
      *out = true;
      return 0;
    }
    if (strcmp(s, no[i]) == 0) {
      *out = false;
      return 0;
    }
  }
  return -1;
}

bool svc_node_included(const struct obj_node *n)
{
  const char *v = obj_label(&n->meta, CCM_SVC_EXCLUDE_LABEL);
  bool b = true;

  if (v == NULL)
    return true;
  /* "", "true" and garbage all exclude; only a parsed false includes. */
  if (svc_parse_bool(v, &b) != 0)
    return false;
  return !b;
}

bool svc_node_is_backend(const struct obj_node *n)
{
  if (n == NULL || n->meta.deleting)
    return false;
  if (!svc_node_included(n))
    return false;
  return obj_node_taint(n, CCM_SVC_CA_TAINT) == NULL;
}

bool svc_node_update_triggers(const struct obj_node *old,
                              const struct obj_node *cur)
{
  if (old == NULL || cur == NULL)
    return old != cur;
  if (svc_node_included(old) != svc_node_included(cur))
    return true;
  return !svc_opt_eq(old->provider_id, cur->provider_id);
}

bool svc_wants_lb(const struct obj_service *s, bool served)
{
  return s != NULL && s->type == OBJ_SVC_LOAD_BALANCER && served;
}

bool svc_needs_cleanup(const struct obj_service *s)
{
  if (s == NULL || !obj_service_has_finalizer(s, CCM_SVC_FINALIZER))
    return false;
  return s->meta.deleting || s->type != OBJ_SVC_LOAD_BALANCER;
}

bool svc_should_enqueue(const struct obj_service *s, bool served)
{
  return svc_wants_lb(s, served) || svc_needs_cleanup(s);
}

enum svc_branch svc_branch_for(const struct obj_service *s, bool served)
{
  if (s == NULL)
    return SVC_BRANCH_NONE;
  if (svc_needs_cleanup(s))
    return SVC_BRANCH_DELETE;
  if (svc_wants_lb(s, served))
    return SVC_BRANCH_ENSURE;
  /* A LoadBalancer of another class is not ours: nothing at all. */
  if (s->type == OBJ_SVC_LOAD_BALANCER &&
      !obj_service_has_finalizer(s, CCM_SVC_FINALIZER))
    return SVC_BRANCH_NONE;
  /* As upstream: a key handed to sync that no longer wants a load
   * balancer runs the delete branch (get, delete if present, event). */
  return SVC_BRANCH_DELETE;
}

static bool svc_strv_eq(const char *const *a, size_t na,
                        const char *const *b, size_t nb)
{
  size_t i;

  if (na != nb)
    return false;
  for (i = 0; i < na; i++) {
    if (!svc_str_eq(a[i], b[i]))
      return false;
  }
  return true;
}

static bool svc_ports_eq(const struct obj_service *a,
                         const struct obj_service *b)
{
  uint16_t i;

  if (a->n_ports != b->n_ports)
    return false;
  for (i = 0; i < a->n_ports; i++) {
    const struct obj_port *p = &a->ports[i], *q = &b->ports[i];

    if (!svc_opt_eq(p->name, q->name) || !svc_str_eq(p->protocol, q->protocol)
        || p->port != q->port || p->node_port != q->node_port
        || !svc_opt_eq(p->target_port, q->target_port)
        || !svc_opt_eq(p->app_protocol, q->app_protocol))
      return false;
  }
  return true;
}

static bool svc_own_annotation(const char *key)
{
  return strncmp(key, CCM_SVC_ANNOTATION_PREFIX,
                 sizeof(CCM_SVC_ANNOTATION_PREFIX) - 1) == 0;
}

/* Both arrays are sorted by key; ccm-host's own records are skipped so
 * that writing them does not trigger another ensure. */
static bool svc_annotations_eq(const struct obj_meta *a,
                               const struct obj_meta *b)
{
  uint32_t i = 0, j = 0;

  for (;;) {
    while (i < a->n_annotations && svc_own_annotation(a->annotations[i].key))
      i++;
    while (j < b->n_annotations && svc_own_annotation(b->annotations[j].key))
      j++;
    if (i == a->n_annotations || j == b->n_annotations)
      return i == a->n_annotations && j == b->n_annotations;
    if (!svc_str_eq(a->annotations[i].key, b->annotations[j].key)
        || !svc_str_eq(a->annotations[i].value, b->annotations[j].value))
      return false;
    i++;
    j++;
  }
}

bool svc_needs_update(const struct obj_service *old, bool old_served,
                      const struct obj_service *cur, bool cur_served)
{
  bool ow = svc_wants_lb(old, old_served), cw = svc_wants_lb(cur, cur_served);

  if (old == NULL || cur == NULL)
    return cw;
  if (!ow && !cw)
    return false;
  if (ow != cw)
    return true;
  if (cw && !svc_strv_eq(old->source_ranges, old->n_source_ranges,
                         cur->source_ranges, cur->n_source_ranges))
    return true;
  if (!svc_ports_eq(old, cur))
    return true;
  if (!svc_opt_eq(old->session_affinity, cur->session_affinity)
      || old->session_affinity_timeout != cur->session_affinity_timeout)
    return true;
  if (!svc_opt_eq(old->lb_ip, cur->lb_ip))
    return true;
  if (!svc_strv_eq(old->external_ips, old->n_external_ips, cur->external_ips,
                   cur->n_external_ips))
    return true;
  if (!svc_annotations_eq(&old->meta, &cur->meta))
    return true;
  if (!svc_str_eq(old->meta.uid, cur->meta.uid))
    return true;
  if (!svc_opt_eq(old->external_traffic_policy, cur->external_traffic_policy))
    return true;
  if (old->health_check_node_port != cur->health_check_node_port)
    return true;
  return old->n_ip_families != cur->n_ip_families;
}

int svc_default_lb_name(const char *uid, char *buf, size_t cap)
{
  size_t n = 0;
  const char *p;

  if (uid == NULL || *uid == '\0' || cap < CCM_SVC_DEFAULT_NAME_LEN + 1)
    return -1;
  buf[n++] = 'a';
  for (p = uid; *p != '\0' && n < CCM_SVC_DEFAULT_NAME_LEN; p++) {
    if (*p != '-')
      buf[n++] = *p;
  }
  buf[n] = '\0';
  return (int)n;
}

int svc_lb_name_check(const char *name, const struct ccm_name_rules *rules,
                      char *why, size_t cap)
{
  size_t len, i;

  if (name == NULL || *name == '\0') {
    snprintf(why, cap, "load balancer name is empty");
    return -1;
  }
  if (rules == NULL)
    return 0;
  len = strlen(name);
  if (len < rules->min_length || (rules->max_length > 0 &&
                                  len > rules->max_length)) {
    snprintf(why, cap, "load balancer name \"%s\" has %zu characters, the "
             "provider allows %u to %u", name, len, rules->min_length,
             rules->max_length);
    return -1;
  }
  for (i = 0; i < len; i++) {
    const char *set = rules->allowed;

    if (i == 0 && rules->allowed_first != NULL)
      set = rules->allowed_first;
    else if (i == len - 1 && rules->allowed_last != NULL)
      set = rules->allowed_last;
    if (set != NULL && strchr(set, name[i]) == NULL) {
      snprintf(why, cap, "load balancer name \"%s\": character '%c' at "
               "position %zu is not allowed by the provider", name, name[i],
               i);
      return -1;
    }
  }
  return 0;
}

bool svc_ingress_equal(const struct obj_ingress *cur, size_t n_cur,
                       const struct ccm_lb_status *next)
{
  size_t i, n_next = next != NULL ? next->n : 0;

  if (n_cur != n_next)
    return false;
  for (i = 0; i < n_cur; i++) {
    if (!svc_opt_eq(cur[i].ip, next->items[i].ip)
        || !svc_opt_eq(cur[i].hostname, next->items[i].hostname))
      return false;
  }
  return true;
}

bool svc_finalizer_add_needed(const struct obj_service *s)
{
  if (!obj_service_has_finalizer(s, CCM_SVC_FINALIZER))
    return true;
  if (obj_annotation(&s->meta, CCM_SVC_NAME_ANNOTATION) == NULL)
    return true;
  return s->lb_class != NULL &&
         obj_annotation(&s->meta, CCM_SVC_CLASS_ANNOTATION) == NULL;
}

bool svc_finalizer_remove_allowed(int provider_delete_status)
{
  return provider_delete_status == CCM_OK;
}
