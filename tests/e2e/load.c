/*
 * load.c: load-test helpers shared by the e2e tests that create hundreds of
 * Services (see load.h). Test code only: no cmocka assertions here, and
 * nothing that only one test needs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "controllers/service.h"
#include "controllers/service_logic.h"
#include "kube/writes.h"
#include "load.h"

double e2e_load_scale(double dflt)
{
  const char *s = getenv("CCM_E2E_SCALE");
  char *end;
  double v;

  if (s == NULL || *s == '\0')
    return dflt;
  v = strtod(s, &end);
  if (end == s || *end != '\0' || v <= 0 || v > 100)
    return dflt;
  return v;
}

double e2e_load_now_s(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct host_config *e2e_load_big_pool(struct e2e *e, const char *tag,
                                      const char *module, bool swap)
{
  struct host_config *cfg = NULL;
  char path[400], err[1024];
  FILE *f;

  snprintf(path, sizeof(path), "%s/host-%s.cfg", e->dir, tag);
  f = fopen(path, "w");
  if (f == NULL)
    return NULL;
  fprintf(f,
          "cluster_name = \"e2e\";\n"
          "kubeconfig = \"%s\";\n"
          "state_dir = \"%s/state\";\n"
          "drain_timeout_ms = 5000;\n"
          "leader_election = { enabled = false; };\n"
          "providers = ( { name = \"%s\"; module = \"%s\";\n"
          "  call_timeout_ms = 10000;\n"
          "  config = { state_file = \"%s\";\n"
          "    ipv4_pools = [\"10.200.0.0/16\"]; }; } );\n",
          e->kd.kubeconfig, e->dir, e->provider, module, e->state_file);
  if (fclose(f) != 0)
    return NULL;
  if (config_load(path, &cfg, err, sizeof(err)) != 0) {
    fprintf(stderr, "config_load %s: %s\n", path, err);
    return NULL;
  }
  if (swap && registry_swap(e->reg, &cfg->providers[0], err,
                            sizeof(err)) != 0) {
    fprintf(stderr, "registry_swap: %s\n", err);
    config_free(cfg);
    return NULL;
  }
  return cfg;
}

void e2e_load_svc_name(char *buf, size_t cap, const char *prefix, int i)
{
  snprintf(buf, cap, "%s-%04d", prefix, i);
}

int e2e_load_create_svc(struct e2e *e, const char *ns, const char *name,
                        int tries, uint32_t pause_ms)
{
  int t, rc = -1;

  for (t = 0; t < tries; t++) {
    rc = e2e_create_service_lb(e, ns, name, 80, NULL);
    if (rc == KUBE_OK)
      break;
    e2e_sleep_ms(pause_ms);
  }
  return rc;
}

const char *e2e_load_ann_name(const cJSON *obj)
{
  const cJSON *a = e2e_json_at(obj, "metadata.annotations");
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(a,
                                                    CCM_SVC_NAME_ANNOTATION);

  return cJSON_IsString(v) ? v->valuestring : NULL;
}

const cJSON *e2e_load_find_item(const cJSON *items, const char *name)
{
  const cJSON *it;

  cJSON_ArrayForEach(it, items) {
    const char *n = e2e_json_str(it, "metadata.name");

    if (n != NULL && strcmp(n, name) == 0)
      return it;
  }
  return NULL;
}

bool e2e_load_svc_ready(const cJSON *svc)
{
  return svc != NULL && kube_has_finalizer(svc, CCM_SVC_FINALIZER) &&
         e2e_load_ann_name(svc) != NULL &&
         e2e_json_str(svc, "status.loadBalancer.ingress.0.ip") != NULL;
}

bool e2e_load_lab_matches(struct e2e *e, const cJSON *items, int kept,
                          char *why, size_t cap)
{
  cJSON *lab = e2e_lab_state(e), *ips = NULL;
  const cJSON *lbs = cJSON_GetObjectItemCaseSensitive(lab, "load_balancers");
  const cJSON *lb;
  int n_lbs = 0;
  bool ok = false;

  why[0] = '\0';
  if (!cJSON_IsArray(lbs)) {
    snprintf(why, cap, "no lab state in %s", e->state_file);
    goto done;
  }
  ips = cJSON_CreateObject();
  cJSON_ArrayForEach(lb, lbs) {
    const char *lname = e2e_json_str(lb, "name");
    const char *owner = e2e_json_str(lb, "service");
    const char *slash = owner ? strchr(owner, '/') : NULL;
    const cJSON *s, *ip;

    n_lbs++;
    if (lname == NULL || slash == NULL) {
      snprintf(why, cap, "lab record without name/service");
      goto done;
    }
    s = e2e_load_find_item(items, slash + 1);
    if (s == NULL || e2e_load_ann_name(s) == NULL ||
        strcmp(e2e_load_ann_name(s), lname) != 0) {
      snprintf(why, cap, "lab holds %s for %s, which %s", lname, owner,
               s == NULL ? "does not exist" :
               "records another load-balancer name");
      goto done;
    }
    cJSON_ArrayForEach(ip, cJSON_GetObjectItemCaseSensitive(lb, "ips")) {
      if (!cJSON_IsString(ip))
        continue;
      if (cJSON_GetObjectItemCaseSensitive(ips, ip->valuestring) != NULL) {
        snprintf(why, cap, "address %s is held twice", ip->valuestring);
        goto done;
      }
      cJSON_AddTrueToObject(ips, ip->valuestring);
    }
  }
  if (n_lbs != kept) {
    snprintf(why, cap, "lab holds %d load balancers for %d Services", n_lbs,
             kept);
    goto done;
  }
  ok = true;
done:
  cJSON_Delete(ips);
  cJSON_Delete(lab);
  return ok;
}

/* Split a Prometheus text (in place) into lines for fn; frees buf. */
static void e2e_load_each_line(char *buf, e2e_load_line_fn *fn, void *ud)
{
  char *line, *nl;

  for (line = buf; line != NULL && *line != '\0'; line = nl) {
    nl = strchr(line, '\n');
    if (nl != NULL)
      *nl++ = '\0';
    fn(line, ud);
  }
  free(buf);
}

void e2e_load_metrics_lines(struct e2e *e, e2e_load_line_fn *fn, void *ud)
{
  char *buf = NULL;
  size_t len = 0, i;
  FILE *m;

  for (i = 0; i < e->n_ctrls; i++) {
    if (e->ctrls[i].ops == &service_controller_ops)
      break;
  }
  if (i == e->n_ctrls || e->ctrls[i].state == NULL)
    return;
  m = open_memstream(&buf, &len);
  if (m == NULL)
    return;
  service_controller_ops.metrics(e->ctrls[i].state, m);
  fclose(m);
  e2e_load_each_line(buf, fn, ud);
}

void e2e_load_registry_lines(struct e2e *e, e2e_load_line_fn *fn, void *ud)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);

  if (m == NULL)
    return;
  registry_metrics_write(e->reg, m);
  fclose(m);
  e2e_load_each_line(buf, fn, ud);
}

static void e2e_load_print_line(const char *line, void *ud)
{
  const char *tag = ud;

  if (strncmp(line, "ccm_reconcile_total", 19) == 0 ||
      strncmp(line, "ccm_workqueue_retries_total", 27) == 0 ||
      strncmp(line, "ccm_workqueue_adds_total", 24) == 0)
    fprintf(stderr, "%s: %s\n", tag, line);
}

void e2e_load_print_metrics(struct e2e *e, const char *tag)
{
  e2e_load_metrics_lines(e, e2e_load_print_line, (void *)tag);
}

static void e2e_load_sum_reconciles(const char *line, void *ud)
{
  long long *n = ud;
  const char *sp;

  if (strncmp(line, "ccm_reconcile_total{", 20) != 0)
    return;
  sp = strrchr(line, ' ');
  if (sp != NULL)
    *n += strtoll(sp + 1, NULL, 10);
}

long long e2e_load_reconciles(struct e2e *e)
{
  long long n = 0;

  e2e_load_metrics_lines(e, e2e_load_sum_reconciles, &n);
  return n;
}

static bool e2e_load_progressed(struct e2e *e, void *ud)
{
  const long long *want = ud;

  return e2e_load_reconciles(e) >= *want;
}

void e2e_load_pace(struct e2e *e, long long want, uint32_t max_ms)
{
  (void)e2e_wait(e, e2e_load_progressed, &want, max_ms);
}
