/*
 * conf_contract.c: the "contract" group: the descriptor, option and name-
 * rule declarations, concurrency of a CCM_THREAD_SAFE module, state export
 * and import, and the evidence every other call left (statuses in the enum,
 * result strings within bounds). It runs last so that evidence is complete.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.h"
#include "util/mem.h"

#define ERRLEN 600

static bool chars_in(const char *s, const char *set) {
  for (; *s; s++)
    if (strchr(set, *s) == NULL)
      return false;
  return true;
}

/* ---- descriptor --------------------------------------------------------- */

struct cap_ops {
  uint32_t cap;
  const char *name;
  size_t n;
  bool has[4];
  const char *ops[4];
};

static int check_descriptor(struct conf_run *run, char *why, size_t cap) {
  const struct ccm_provider *p = run->prov;
  const struct module *m = run->mod;
  struct cap_ops groups[] = {
      {CCM_CAP_LOAD_BALANCER, "load balancer", 4,
       {MODULE_HAS(m, lb_get), MODULE_HAS(m, lb_ensure),
        MODULE_HAS(m, lb_update_hosts), MODULE_HAS(m, lb_delete)},
       {"lb_get", "lb_ensure", "lb_update_hosts", "lb_delete"}},
      {CCM_CAP_INSTANCES, "instances", 3,
       {MODULE_HAS(m, instance_exists), MODULE_HAS(m, instance_shutdown),
        MODULE_HAS(m, instance_metadata), false},
       {"instance_exists", "instance_shutdown", "instance_metadata", NULL}},
      {CCM_CAP_INSTANCES_BATCH, "batched instances", 1,
       {MODULE_HAS(m, instance_metadata_batch), false, false, false},
       {"instance_metadata_batch", NULL, NULL, NULL}},
      {CCM_CAP_ROUTES, "routes", 3,
       {MODULE_HAS(m, route_list), MODULE_HAS(m, route_create),
        MODULE_HAS(m, route_delete), false},
       {"route_list", "route_create", "route_delete", NULL}},
      {CCM_CAP_STATE, "state", 2,
       {MODULE_HAS(m, state_export), MODULE_HAS(m, state_import), false,
        false},
       {"state_export", "state_import", NULL, NULL}}};

  if (p->name == NULL || p->name[0] == '\0' ||
      strlen(p->name) > CCM_MAX_NAME ||
      !chars_in(p->name, "abcdefghijklmnopqrstuvwxyz0123456789-"))
    return conf_fail(why, cap, "provider name \"%s\" is not [a-z0-9-]+",
                     p->name ? p->name : "(null)");
  if (p->version == NULL || p->version[0] == '\0')
    return conf_fail(why, cap, "provider has no version string");
  if (p->thread_safety != CCM_THREAD_SERIAL &&
      p->thread_safety != CCM_THREAD_SAFE)
    return conf_fail(why, cap, "thread_safety %u is not CCM_THREAD_SERIAL or "
                     "CCM_THREAD_SAFE", p->thread_safety);
  for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
    size_t have = 0;
    for (size_t i = 0; i < groups[g].n; i++)
      have += groups[g].has[i];
    for (size_t i = 0; i < groups[g].n; i++) {
      bool claimed = (p->capabilities & groups[g].cap) != 0;
      /* The controllers need the whole set; state may come alone. */
      bool partial = have > 0 && groups[g].cap != CCM_CAP_STATE;
      if (!groups[g].has[i] && (claimed || partial))
        return conf_fail(why, cap, "%s operations are %s but %s is NULL",
                         groups[g].name, claimed ? "claimed" : "partial",
                         groups[g].ops[i]);
    }
  }
  conf_note(run, "provider %s %s, %s", p->name, p->version,
            p->thread_safety == CCM_THREAD_SAFE ? "thread-safe" : "serial");
  return CONF_PASS;
}

/* ---- options ------------------------------------------------------------ */

static bool default_parses(uint32_t type, const char *v) {
  char *end = NULL;

  switch (type) {
  case CCM_OPT_INT:
    errno = 0;
    (void)strtoll(v, &end, 10);
    return errno == 0 && end != v && *end == '\0';
  case CCM_OPT_BOOL:
    return strcmp(v, "true") == 0 || strcmp(v, "false") == 0;
  default:
    return true;
  }
}

#define OPTIONS_MAX 1024 /* a missing NULL terminator stops here */

static int check_options(struct conf_run *run, char *why, size_t cap) {
  const struct ccm_option_decl *const *opts = run->prov->options;
  size_t n = 0;

  if (opts == NULL) {
    conf_note(run, "module declares no options");
    return CONF_PASS;
  }
  for (; opts[n] != NULL; n++) {
    const struct ccm_option_decl *o = opts[n];
    if (n >= OPTIONS_MAX)
      return conf_fail(why, cap, "options list is not NULL-terminated "
                       "(over %d entries)", OPTIONS_MAX);
    if (o->struct_size < sizeof *o)
      return conf_fail(why, cap, "option %zu: struct_size %u < %zu", n,
                       o->struct_size, sizeof *o);
    if (o->name == NULL || o->name[0] == '\0' ||
        strlen(o->name) > CCM_MAX_NAME ||
        !chars_in(o->name, "abcdefghijklmnopqrstuvwxyz0123456789_-."))
      return conf_fail(why, cap, "option %zu: name \"%s\" is not "
                       "[a-z0-9_.-]+", n, o->name ? o->name : "(null)");
    for (size_t j = 0; j < n; j++)
      if (strcmp(opts[j]->name, o->name) == 0)
        return conf_fail(why, cap, "option \"%s\" is declared twice",
                         o->name);
    if (o->type < CCM_OPT_STRING || o->type > CCM_OPT_STRING_LIST)
      return conf_fail(why, cap, "option \"%s\": type %u is not a "
                       "ccm_option_type", o->name, o->type);
    if (o->help == NULL || o->help[0] == '\0' || strchr(o->help, '\n'))
      return conf_fail(why, cap, "option \"%s\": help must be one "
                       "non-empty line", o->name);
    if (o->default_value && !default_parses(o->type, o->default_value))
      return conf_fail(why, cap, "option \"%s\": default \"%s\" does not "
                       "parse as its type", o->name, o->default_value);
  }
  conf_note(run, "%zu options declared", n);
  return CONF_PASS;
}

/* ---- name rules --------------------------------------------------------- */

static bool shares_char(const char *a, const char *b) {
  for (; *a; a++)
    if (strchr(b, *a))
      return true;
  return false;
}

static int check_name_rules(struct conf_run *run, char *why, size_t cap) {
  const struct ccm_name_rules *r = run->prov->lb_name_rules;
  struct conf_service s;

  if (r == NULL) {
    conf_note(run, "module declares no name rules (no limits)");
    return CONF_PASS;
  }
  if (r->struct_size < sizeof *r)
    return conf_fail(why, cap, "lb_name_rules struct_size %u < %zu",
                     r->struct_size, sizeof *r);
  if (r->max_length == 0 || r->min_length > r->max_length)
    return conf_fail(why, cap, "length bounds [%u, %u] are empty",
                     r->min_length, r->max_length);
  if (r->allowed == NULL || r->allowed[0] == '\0')
    return conf_fail(why, cap, "allowed character set is empty");
  if (r->allowed_first && !shares_char(r->allowed_first, r->allowed))
    return conf_fail(why, cap, "no character is allowed first");
  if (r->allowed_last && !shares_char(r->allowed_last, r->allowed))
    return conf_fail(why, cap, "no character is allowed last");
  if (!conf_service_make(run, &s, "name-rules", why, cap))
    return CONF_FAIL;
  conf_note(run, "name rules [%u, %u] \"%s\"; kit uses names like %s",
            r->min_length, r->max_length, r->allowed, s.lb_name);
  return CONF_PASS;
}

/* ---- concurrency -------------------------------------------------------- */

struct worker {
  struct conf_run *run;
  struct conf_service s;
  struct conf_node unknown;
  size_t index;
  bool failed;
  char why[CCM_CONF_WHY];
};

static bool worker_lb_round(struct worker *w) {
  struct conf_run *run = w->run;
  struct conf_node_set set;
  struct ccm_lb_status ens = {0}, got = {0};
  char err[ERRLEN];
  bool ok = false;
  int st;

  conf_nodes_a(run, &set);
  st = conf_lb_ensure(run, &w->s.svc, &set.list, &ens, err, sizeof err);
  if (st != CCM_OK) {
    conf_call_fail(w->why, sizeof w->why, "lb_ensure", st, "CCM_OK", err);
    goto done;
  }
  st = conf_lb_get(run, &w->s.svc, &got, err, sizeof err);
  if (st != CCM_OK || !conf_lb_equal(&ens, &got)) {
    if (st == CCM_OK)
      conf_fail(w->why, sizeof w->why, "lb_get differs from lb_ensure");
    else
      conf_call_fail(w->why, sizeof w->why, "lb_get", st, "CCM_OK", err);
    goto done;
  }
  lb_status_clear(&got);
  st = conf_lb_delete(run, &w->s.svc, err, sizeof err);
  if (st != CCM_OK) {
    conf_call_fail(w->why, sizeof w->why, "lb_delete", st, "CCM_OK", err);
    goto done;
  }
  st = conf_lb_get(run, &w->s.svc, &got, err, sizeof err);
  if (st != CCM_ERR_NOT_FOUND) {
    conf_call_fail(w->why, sizeof w->why, "lb_get after lb_delete", st,
                   "CCM_ERR_NOT_FOUND", err);
    goto done;
  }
  ok = true;
done:
  lb_status_clear(&ens);
  lb_status_clear(&got);
  return ok;
}

static bool worker_instance_round(struct worker *w) {
  struct conf_run *run = w->run;
  char err[ERRLEN];
  bool exists = false;
  int st;

  if (MODULE_HAS(run->mod, instance_exists)) {
    st = conf_instance_exists(run, &w->unknown.node, &exists, err,
                              sizeof err);
    if (!(st == CCM_ERR_NOT_FOUND || (st == CCM_OK && !exists))) {
      conf_call_fail(w->why, sizeof w->why, "instance_exists of unknown", st,
                     "CCM_OK/false or CCM_ERR_NOT_FOUND", err);
      return false;
    }
  }
  if (run->n_known && MODULE_HAS(run->mod, instance_metadata)) {
    struct ccm_instance_meta m = {0};
    st = conf_instance_metadata(run, &run->known[w->index % run->n_known].node,
                                &m, err, sizeof err);
    instance_meta_clear(&m);
    if (st != CCM_OK) {
      conf_call_fail(w->why, sizeof w->why, "instance_metadata of known", st,
                     "CCM_OK", err);
      return false;
    }
  }
  return true;
}

static void *worker_main(void *arg) {
  struct worker *w = arg;
  bool lb = MODULE_HAS(w->run->mod, lb_ensure) &&
            MODULE_HAS(w->run->mod, lb_get) &&
            MODULE_HAS(w->run->mod, lb_delete);

  for (unsigned i = 0; i < w->run->iterations; i++) {
    if ((lb && !worker_lb_round(w)) || !worker_instance_round(w)) {
      w->failed = true;
      break;
    }
  }
  return NULL;
}

static int check_concurrency(struct conf_run *run, char *why, size_t cap) {
  struct worker *w = NULL;
  pthread_t tids[CCM_CONF_THREADS];
  size_t started = 0;
  int res = CONF_FAIL;

  if (run->prov->thread_safety != CCM_THREAD_SAFE)
    return conf_skip(why, cap, "module is CCM_THREAD_SERIAL (the host "
                     "serialises its calls)");
  w = mem_calloc(CCM_CONF_THREADS, sizeof *w);
  if (w == NULL)
    return conf_fail(why, cap, "out of memory");
  for (size_t i = 0; i < CCM_CONF_THREADS; i++) {
    w[i].run = run;
    w[i].index = i;
    conf_node_unknown(run, &w[i].unknown);
    if (!conf_service_make(run, &w[i].s, "concurrent", why, cap))
      goto done;
  }
  for (; started < CCM_CONF_THREADS; started++) {
    if (pthread_create(&tids[started], NULL, worker_main, &w[started]) != 0) {
      conf_fail(why, cap, "pthread_create failed");
      break;
    }
  }
  for (size_t i = 0; i < started; i++)
    pthread_join(tids[i], NULL);
  if (started < CCM_CONF_THREADS)
    goto done;
  for (size_t i = 0; i < CCM_CONF_THREADS; i++) {
    if (w[i].failed) {
      conf_fail(why, cap, "thread %zu: %s", i, w[i].why);
      goto done;
    }
  }
  /* Each thread ended with a delete: nothing may be left. */
  if (MODULE_HAS(run->mod, lb_get)) {
    for (size_t i = 0; i < CCM_CONF_THREADS; i++) {
      struct ccm_lb_status st = {0};
      char err[ERRLEN];
      int s = conf_lb_get(run, &w[i].s.svc, &st, err, sizeof err);
      lb_status_clear(&st);
      if (s != CCM_ERR_NOT_FOUND) {
        conf_call_fail(why, cap, "final lb_get of a deleted service", s,
                       "CCM_ERR_NOT_FOUND", err);
        goto done;
      }
    }
  }
  conf_note(run, "%d threads x %u rounds", CCM_CONF_THREADS, run->iterations);
  res = CONF_PASS;
done:
  if (w && MODULE_HAS(run->mod, lb_delete)) {
    for (size_t i = 0; i < CCM_CONF_THREADS; i++) {
      char err[ERRLEN];
      if (w[i].s.svc.struct_size)
        conf_lb_delete(run, &w[i].s.svc, err, sizeof err);
    }
  }
  mem_free(w);
  return res;
}

/* ---- state export / import ---------------------------------------------- */

/* A second instance of the module, as the next generation of a hot-swap
 * would be: its own host handle, the same config. */
struct second {
  struct ccm_host *host;
  void *instance;
};

static int second_open(struct conf_run *run, struct second *sec, char *why,
                       size_t cap) {
  struct http_settings http = {NULL, false, 0.0, 1, CCM_CONF_CALL_TIMEOUT_MS,
                               NULL};
  struct ccm_call call;
  char err[ERRLEN];
  int st;

  sec->instance = NULL;
  sec->host = host_new(run->slot_name, run->module_cfg, &http, err,
                       sizeof err);
  if (sec->host == NULL)
    return conf_fail(why, cap, "host_new for a second instance: %s", err);
  call_init(&call, CCM_CONF_CALL_TIMEOUT_MS);
  st = run->prov->init(host_api(), sec->host, &call, &sec->instance);
  conf_track(run, "init", st, &call);
  if (st != CCM_OK) {
    host_free(sec->host);
    sec->host = NULL;
    return conf_call_fail(why, cap, "init of a second instance", st, "CCM_OK",
                          call.error);
  }
  return CONF_PASS;
}

static void second_close(struct conf_run *run, struct second *sec) {
  if (sec->host == NULL)
    return;
  run->prov->destroy(sec->instance);
  host_free(sec->host);
  sec->host = NULL;
}

static int check_state_roundtrip(struct conf_run *run, char *why, size_t cap) {
  bool lb = MODULE_HAS(run->mod, lb_ensure) && MODULE_HAS(run->mod, lb_get);
  struct conf_service s;
  struct conf_node_set set;
  struct second sec = {NULL, NULL};
  struct ccm_lb_status ens = {0}, got = {0};
  struct ccm_blob blob = {0}, again = {0};
  struct ccm_call call;
  char err[ERRLEN], f1[256], f2[256];
  int res = CONF_FAIL, st;

  if (!MODULE_HAS(run->mod, state_export) ||
      !MODULE_HAS(run->mod, state_import))
    return conf_skip(why, cap, "module does not export and import state");
  if (!conf_service_make(run, &s, "state", why, cap))
    return CONF_FAIL;
  if (lb) {
    conf_nodes_a(run, &set);
    st = conf_lb_ensure(run, &s.svc, &set.list, &ens, err, sizeof err);
    if (st != CCM_OK) {
      conf_call_fail(why, cap, "lb_ensure", st, "CCM_OK", err);
      goto done;
    }
  }
  st = conf_state_export(run, &blob, err, sizeof err);
  if (st != CCM_OK) {
    conf_call_fail(why, cap, "state_export", st, "CCM_OK", err);
    goto done;
  }
  conf_note(run, "exported %zu bytes of state", blob.len);
  if (second_open(run, &sec, why, cap) != CONF_PASS)
    goto done;
  call_init(&call, CCM_CONF_CALL_TIMEOUT_MS);
  st = run->prov->state_import(sec.instance, &call, blob.data, blob.len);
  conf_track(run, "state_import", st, &call);
  if (st != CCM_OK) {
    conf_call_fail(why, cap, "state_import of the exported blob", st,
                   "CCM_OK", call.error);
    goto done;
  }
  if (lb) {
    call_init(&call, CCM_CONF_CALL_TIMEOUT_MS);
    st = run->prov->lb_get(sec.instance, &call, &s.svc, &got);
    conf_track(run, "lb_get (imported instance)", st, &call);
    if (st != CCM_OK) {
      conf_call_fail(why, cap, "lb_get on the importing instance", st,
                     "CCM_OK", call.error);
      goto done;
    }
    conf_bounds_lb(run, "lb_get (imported instance)", &got);
    if (!conf_lb_equal(&ens, &got)) {
      conf_lb_format(&ens, f1, sizeof f1);
      conf_lb_format(&got, f2, sizeof f2);
      conf_fail(why, cap, "after import lb_get returned %s, the exporting "
                "instance had %s", f2, f1);
      goto done;
    }
  }
  call_init(&call, CCM_CONF_CALL_TIMEOUT_MS);
  st = run->prov->state_export(sec.instance, &call, &again);
  conf_track(run, "state_export (imported instance)", st, &call);
  if (st != CCM_OK) {
    conf_call_fail(why, cap, "state_export of the importing instance", st,
                   "CCM_OK", call.error);
    goto done;
  }
  if (blob.len > 0 && again.len == 0) {
    conf_fail(why, cap, "the importing instance exports empty state");
    goto done;
  }
  res = CONF_PASS;
done:
  second_close(run, &sec);
  if (lb && MODULE_HAS(run->mod, lb_delete))
    conf_lb_delete(run, &s.svc, err, sizeof err);
  lb_status_clear(&ens);
  lb_status_clear(&got);
  blob_clear(&blob);
  blob_clear(&again);
  return res;
}

/* ---- evidence of the whole run ------------------------------------------ */

static int check_status_enum(struct conf_run *run, char *why, size_t cap) {
  struct conf_evidence *ev = &run->ev;
  int res = CONF_PASS;

  pthread_mutex_lock(&ev->lock);
  conf_note(run, "%lu calls made, %lu statuses outside the enum", ev->calls,
            ev->bad_status);
  if (ev->bad_status)
    res = conf_fail(why, cap, "%lu statuses outside enum ccm_status: %s",
                    ev->bad_status, ev->status_notes);
  pthread_mutex_unlock(&ev->lock);
  return res;
}

static int check_string_bounds(struct conf_run *run, char *why, size_t cap) {
  struct conf_evidence *ev = &run->ev;
  int res = CONF_PASS;

  pthread_mutex_lock(&ev->lock);
  if (ev->bad_bounds)
    res = conf_fail(why, cap, "%lu result strings out of bounds: %s",
                    ev->bad_bounds, ev->bounds_notes);
  else if (ev->invalid)
    res = conf_fail(why, cap, "%lu calls refused valid input or hit a "
                    "builder bound: %s", ev->invalid, ev->invalid_notes);
  pthread_mutex_unlock(&ev->lock);
  return res;
}

static bool contract_supported(const struct conf_run *run, char *why,
                               size_t cap) {
  (void)run;
  (void)why;
  (void)cap;
  return true;
}

static const struct conf_check CONTRACT_CHECKS[] = {
    {"descriptor", check_descriptor},
    {"options", check_options},
    {"name-rules", check_name_rules},
    {"concurrency", check_concurrency},
    {"state-roundtrip", check_state_roundtrip},
    {"status-enum", check_status_enum},
    {"string-bounds", check_string_bounds},
    {NULL, NULL}};

const struct conf_group conf_group_contract = {"contract", contract_supported,
                                               CONTRACT_CHECKS};
