/*
 * conf_calls.c: the kit's calls into the module under test, made directly
 * through the generation's provider so that raw statuses (even outside the
 * enum) are seen, plus the evidence those calls leave for the contract group.
 * It must not interpret results beyond their bounds: checks judge them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "conformance.h"

static const char *const STATUS_NAMES[] = {
    "CCM_OK",           "CCM_ERR_NOT_FOUND", "CCM_ERR_NOT_IMPLEMENTED",
    "CCM_ERR_RETRY",    "CCM_ERR_INVALID",   "CCM_ERR_AUTH",
    "CCM_ERR_THROTTLED", "CCM_ERR_INTERNAL"};

static bool status_in_enum(int status) {
  return status <= CCM_OK && status >= CCM_ERR_INTERNAL;
}

const char *conf_status_str(int status, char *buf, size_t cap) {
  if (status_in_enum(status))
    return STATUS_NAMES[-status];
  snprintf(buf, cap, "%d (outside enum ccm_status)", status);
  return buf;
}

void conf_appendf(char *buf, size_t cap, const char *fmt, ...) {
  size_t used = strnlen(buf, cap);
  va_list ap;

  if (used + 1 >= cap)
    return;
  va_start(ap, fmt);
  vsnprintf(buf + used, cap - used, fmt, ap);
  va_end(ap);
}

/* ---- evidence ------------------------------------------------------- */

void conf_track(struct conf_run *run, const char *op, int status,
                const struct ccm_call *call) {
  struct conf_evidence *ev = &run->ev;

  pthread_mutex_lock(&ev->lock);
  ev->calls++;
  if (!status_in_enum(status)) {
    ev->bad_status++;
    if (ev->bad_status <= 4)
      conf_appendf(ev->status_notes, sizeof ev->status_notes,
                   "%s%s returned %d", ev->bad_status > 1 ? "; " : "", op,
                   status);
  } else if (status == CCM_ERR_INVALID) {
    /* The kit's inputs are valid, so INVALID means the module refused
     * them or a builder refused one of its result strings. */
    ev->invalid++;
    if (ev->invalid <= 3)
      conf_appendf(ev->invalid_notes, sizeof ev->invalid_notes,
                   "%s%s returned CCM_ERR_INVALID (%s)",
                   ev->invalid > 1 ? "; " : "", op,
                   call && call->error[0] ? call->error : "no message");
  }
  pthread_mutex_unlock(&ev->lock);
}

static bool bound_note(struct conf_run *run, const char *op, const char *what,
                       const char *value, size_t max) {
  struct conf_evidence *ev = &run->ev;
  size_t len;

  if (value == NULL)
    return true;
  len = strlen(value);
  if (len <= max)
    return true;
  pthread_mutex_lock(&ev->lock);
  ev->bad_bounds++;
  if (ev->bad_bounds <= 4)
    conf_appendf(ev->bounds_notes, sizeof ev->bounds_notes,
                 "%s%s: %s is %zu bytes (max %zu)",
                 ev->bad_bounds > 1 ? "; " : "", op, what, len, max);
  pthread_mutex_unlock(&ev->lock);
  return false;
}

static bool shape_note(struct conf_run *run, const char *op, const char *what) {
  struct conf_evidence *ev = &run->ev;

  pthread_mutex_lock(&ev->lock);
  ev->bad_bounds++;
  if (ev->bad_bounds <= 4)
    conf_appendf(ev->bounds_notes, sizeof ev->bounds_notes, "%s%s: %s",
                 ev->bad_bounds > 1 ? "; " : "", op, what);
  pthread_mutex_unlock(&ev->lock);
  return false;
}

bool conf_bounds_lb(struct conf_run *run, const char *op,
                    const struct ccm_lb_status *st) {
  bool ok = true;

  for (size_t i = 0; i < st->n; i++) {
    const struct lb_ingress *in = &st->items[i];
    if (in->ip == NULL && in->hostname == NULL)
      ok = shape_note(run, op, "ingress with neither IP nor hostname") && ok;
    ok = bound_note(run, op, "ingress IP", in->ip, CCM_MAX_ADDRESS) && ok;
    ok = bound_note(run, op, "ingress hostname", in->hostname, CCM_MAX_NAME) &&
         ok;
  }
  return ok;
}

bool conf_bounds_meta(struct conf_run *run, const char *op,
                      const struct ccm_instance_meta *m) {
  bool ok = true;

  ok = bound_note(run, op, "providerID", m->provider_id, CCM_MAX_ID) && ok;
  ok = bound_note(run, op, "instance type", m->instance_type, CCM_MAX_NAME) &&
       ok;
  ok = bound_note(run, op, "zone", m->zone, CCM_MAX_NAME) && ok;
  ok = bound_note(run, op, "region", m->region, CCM_MAX_NAME) && ok;
  for (size_t i = 0; i < m->n_addresses; i++) {
    const struct meta_address *a = &m->addresses[i];
    bool is_ip = a->type == CCM_ADDR_EXTERNAL_IP ||
                 a->type == CCM_ADDR_INTERNAL_IP;
    if (a->type < CCM_ADDR_HOSTNAME || a->type > CCM_ADDR_INTERNAL_DNS)
      ok = shape_note(run, op, "address type outside enum ccm_address_type") &&
           ok;
    ok = bound_note(run, op, "address", a->address,
                    is_ip ? CCM_MAX_ADDRESS : CCM_MAX_NAME) && ok;
  }
  for (size_t i = 0; i < m->n_labels; i++) {
    ok = bound_note(run, op, "label key", m->labels[i].key,
                    CCM_MAX_LABEL_KEY) && ok;
    ok = bound_note(run, op, "label value", m->labels[i].value,
                    CCM_MAX_LABEL_VALUE) && ok;
  }
  return ok;
}

static void bounds_routes(struct conf_run *run,
                          const struct ccm_route_list *l) {
  for (size_t i = 0; i < l->n; i++) {
    bound_note(run, "route_list", "route name", l->items[i].name,
               CCM_MAX_NAME);
    bound_note(run, "route_list", "target node", l->items[i].target_node,
               CCM_MAX_NAME);
    bound_note(run, "route_list", "destination CIDR",
               l->items[i].destination_cidr, CCM_MAX_ADDRESS);
  }
}

/* ---- the calls ------------------------------------------------------ */

static void call_begin(struct conf_run *run, struct ccm_call *call) {
  call_init(call, CCM_CONF_CALL_TIMEOUT_MS);
  if (run->serial)
    pthread_mutex_lock(run->serial);
}

static int call_end(struct conf_run *run, struct ccm_call *call,
                    const char *op, int status, char *err, size_t cap) {
  if (run->serial)
    pthread_mutex_unlock(run->serial);
  conf_track(run, op, status, call);
  if (err && cap) {
    if (status != CCM_OK && call->error[0])
      snprintf(err, cap, "%s", call->error);
    else
      err[0] = '\0';
  }
  return status;
}

static int missing(char *err, size_t cap, const char *op) {
  if (err && cap)
    snprintf(err, cap, "module has no %s", op);
  return CCM_ERR_NOT_IMPLEMENTED;
}

int conf_lb_get(struct conf_run *run, const struct ccm_service *svc,
                struct ccm_lb_status *out, char *err, size_t cap) {
  struct ccm_call call;
  int st;

  if (!MODULE_HAS(run->mod, lb_get))
    return missing(err, cap, "lb_get");
  call_begin(run, &call);
  st = run->prov->lb_get(run->instance, &call, svc, out);
  call_end(run, &call, "lb_get", st, err, cap);
  if (st != CCM_OK)
    lb_status_clear(out);
  else
    conf_bounds_lb(run, "lb_get", out);
  return st;
}

int conf_lb_ensure(struct conf_run *run, const struct ccm_service *svc,
                   const struct ccm_node_list *nodes,
                   struct ccm_lb_status *out, char *err, size_t cap) {
  struct ccm_call call;
  int st;

  if (!MODULE_HAS(run->mod, lb_ensure))
    return missing(err, cap, "lb_ensure");
  call_begin(run, &call);
  st = run->prov->lb_ensure(run->instance, &call, svc, nodes, out);
  call_end(run, &call, "lb_ensure", st, err, cap);
  if (st != CCM_OK)
    lb_status_clear(out);
  else
    conf_bounds_lb(run, "lb_ensure", out);
  return st;
}

int conf_lb_update_hosts(struct conf_run *run, const struct ccm_service *svc,
                         const struct ccm_node_list *nodes, char *err,
                         size_t cap) {
  struct ccm_call call;
  int st;

  if (!MODULE_HAS(run->mod, lb_update_hosts))
    return missing(err, cap, "lb_update_hosts");
  call_begin(run, &call);
  st = run->prov->lb_update_hosts(run->instance, &call, svc, nodes);
  return call_end(run, &call, "lb_update_hosts", st, err, cap);
}

int conf_lb_delete(struct conf_run *run, const struct ccm_service *svc,
                   char *err, size_t cap) {
  struct ccm_call call;
  int st;

  if (!MODULE_HAS(run->mod, lb_delete))
    return missing(err, cap, "lb_delete");
  call_begin(run, &call);
  st = run->prov->lb_delete(run->instance, &call, svc);
  return call_end(run, &call, "lb_delete", st, err, cap);
}

int conf_instance_exists(struct conf_run *run, const struct ccm_node *node,
                         bool *exists, char *err, size_t cap) {
  struct ccm_call call;
  int st;

  *exists = false;
  if (!MODULE_HAS(run->mod, instance_exists))
    return missing(err, cap, "instance_exists");
  call_begin(run, &call);
  st = run->prov->instance_exists(run->instance, &call, node, exists);
  return call_end(run, &call, "instance_exists", st, err, cap);
}

int conf_instance_shutdown(struct conf_run *run, const struct ccm_node *node,
                           bool *shutdown, char *err, size_t cap) {
  struct ccm_call call;
  int st;

  *shutdown = false;
  if (!MODULE_HAS(run->mod, instance_shutdown))
    return missing(err, cap, "instance_shutdown");
  call_begin(run, &call);
  st = run->prov->instance_shutdown(run->instance, &call, node, shutdown);
  return call_end(run, &call, "instance_shutdown", st, err, cap);
}

int conf_instance_metadata(struct conf_run *run, const struct ccm_node *node,
                           struct ccm_instance_meta *out, char *err,
                           size_t cap) {
  struct ccm_call call;
  int st;

  if (!MODULE_HAS(run->mod, instance_metadata))
    return missing(err, cap, "instance_metadata");
  call_begin(run, &call);
  st = run->prov->instance_metadata(run->instance, &call, node, out);
  call_end(run, &call, "instance_metadata", st, err, cap);
  if (st != CCM_OK)
    instance_meta_clear(out);
  else
    conf_bounds_meta(run, "instance_metadata", out);
  return st;
}

int conf_instance_metadata_batch(struct conf_run *run,
                                 const struct ccm_node *const *nodes,
                                 size_t n, struct ccm_instance_meta *const *out,
                                 int *status, char *err, size_t cap) {
  struct ccm_call call;
  int st;

  if (!MODULE_HAS(run->mod, instance_metadata_batch))
    return missing(err, cap, "instance_metadata_batch");
  for (size_t i = 0; i < n; i++)
    status[i] = CCM_ERR_INTERNAL; /* a module that skips one is caught */
  call_begin(run, &call);
  st = run->prov->instance_metadata_batch(run->instance, &call, nodes, n, out,
                                          status);
  call_end(run, &call, "instance_metadata_batch", st, err, cap);
  for (size_t i = 0; i < n; i++) {
    conf_track(run, "instance_metadata_batch status[i]", status[i], NULL);
    if (st != CCM_OK || status[i] != CCM_OK)
      instance_meta_clear(out[i]);
    else
      conf_bounds_meta(run, "instance_metadata_batch", out[i]);
  }
  return st;
}

int conf_route_list(struct conf_run *run, struct ccm_route_list *out,
                    char *err, size_t cap) {
  struct ccm_call call;
  int st;

  if (!MODULE_HAS(run->mod, route_list))
    return missing(err, cap, "route_list");
  call_begin(run, &call);
  st = run->prov->route_list(run->instance, &call, run->cluster, out);
  call_end(run, &call, "route_list", st, err, cap);
  if (st != CCM_OK)
    route_list_clear(out);
  else
    bounds_routes(run, out);
  return st;
}

int conf_route_create(struct conf_run *run, const char *name_hint,
                      const struct ccm_route *route, char *err, size_t cap) {
  struct ccm_call call;
  int st;

  if (!MODULE_HAS(run->mod, route_create))
    return missing(err, cap, "route_create");
  call_begin(run, &call);
  st = run->prov->route_create(run->instance, &call, run->cluster, name_hint,
                               route);
  return call_end(run, &call, "route_create", st, err, cap);
}

int conf_route_delete(struct conf_run *run, const struct ccm_route *route,
                      char *err, size_t cap) {
  struct ccm_call call;
  int st;

  if (!MODULE_HAS(run->mod, route_delete))
    return missing(err, cap, "route_delete");
  call_begin(run, &call);
  st = run->prov->route_delete(run->instance, &call, run->cluster, route);
  return call_end(run, &call, "route_delete", st, err, cap);
}

int conf_state_export(struct conf_run *run, struct ccm_blob *out, char *err,
                      size_t cap) {
  struct ccm_call call;
  int st;

  if (!MODULE_HAS(run->mod, state_export))
    return missing(err, cap, "state_export");
  call_begin(run, &call);
  st = run->prov->state_export(run->instance, &call, out);
  call_end(run, &call, "state_export", st, err, cap);
  if (st != CCM_OK)
    blob_clear(out);
  return st;
}
