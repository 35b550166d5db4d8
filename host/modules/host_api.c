/*
 * host_api.c: the function table handed to modules, the call context, the
 * per-instance host handle and the result builders. Builders copy every
 * string, enforce the ABI bounds and leave the builder unchanged on failure.
 * It must not know about generations, controllers or the network (HTTP
 * entries forward to http.c).
 */
#include "modules/host_api.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "modules/http.h"
#include "util/log.h"
#include "util/mem.h"

#define CCM_HOST_BLOB_MAX (64u * 1024u * 1024u) /* exported state, bytes */
#define CCM_HOST_PATH_MAX 64                    /* depth of a config path */

/* ---- call context ------------------------------------------------------ */

int64_t call_now_ms(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static pthread_once_t call_seed_once = PTHREAD_ONCE_INIT;
static uint64_t call_seed;
static atomic_uint_fast64_t call_counter;

static void call_seed_init(void)
{
  struct timespec ts;

  if (getrandom(&call_seed, sizeof call_seed, GRND_NONBLOCK) !=
      (ssize_t)sizeof call_seed) {
    clock_gettime(CLOCK_REALTIME, &ts);
    call_seed = (uint64_t)ts.tv_sec * 1000000007u + (uint64_t)ts.tv_nsec;
  }
}

/* splitmix64: distinct, unpredictable-enough ids without a syscall each. */
static uint64_t call_mix(uint64_t x)
{
  x += 0x9e3779b97f4a7c15u;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
  return x ^ (x >> 31);
}

/* n hex digits of v, most significant first. */
static char *call_hex(char *p, uint64_t v, int n)
{
  static const char digits[] = "0123456789abcdef";
  int i;

  for (i = n - 1; i >= 0; i--, v >>= 4)
    p[i] = digits[v & 0xf];
  return p + n;
}

void call_init(struct ccm_call *call, uint32_t timeout_ms)
{
  uint64_t n, a, b;
  char *p;

  pthread_once(&call_seed_once, call_seed_init);
  memset(call, 0, sizeof *call);
  atomic_init(&call->cancelled, false);
  call->deadline_ms = timeout_ms ? call_now_ms() + timeout_ms : 0;
  n = atomic_fetch_add(&call_counter, 1);
  a = call_mix(call_seed ^ (2 * n));
  b = call_mix(call_seed ^ (2 * n + 1));
  /* UUID-shaped, 8-4-4-4-12; by hand, since this runs once per call. */
  p = call_hex(call->request_id, a >> 32, 8);
  *p++ = '-';
  p = call_hex(p, a >> 16, 4);
  *p++ = '-';
  p = call_hex(p, a, 4);
  *p++ = '-';
  p = call_hex(p, b >> 48, 4);
  *p++ = '-';
  p = call_hex(p, b, 12);
  *p = '\0';
}

void call_cancel(struct ccm_call *call)
{
  if (call != NULL)
    atomic_store(&call->cancelled, true);
}

static int64_t api_call_remaining_ms(const struct ccm_call *call)
{
  if (call == NULL || call->deadline_ms == 0)
    return INT64_MAX;
  return call->deadline_ms - call_now_ms();
}

static bool api_call_cancelled(const struct ccm_call *call)
{
  if (call == NULL)
    return false;
  return atomic_load(&((struct ccm_call *)call)->cancelled);
}

static const char *api_call_request_id(const struct ccm_call *call)
{
  return call ? call->request_id : "";
}

static void api_call_set_error(struct ccm_call *call, const char *fmt, ...)
    CCM_PRINTF(2, 3);
static void api_call_set_error(struct ccm_call *call, const char *fmt, ...)
{
  char buf[sizeof call->error];
  va_list ap;

  if (call == NULL || fmt == NULL)
    return;
  va_start(ap, fmt);
  /* Errors end up in Events: redact them like log lines. Formatting into
   * a copy lets a module pass call->error itself as an argument. */
  log_vformat(buf, sizeof buf, fmt, ap);
  va_end(ap);
  memcpy(call->error, buf, sizeof buf);
}

static void api_call_set_retry_after(struct ccm_call *call, uint32_t delay_ms)
{
  if (call == NULL)
    return;
  call->retry_after_ms = delay_ms;
  call->has_retry_after = true;
}

/* ---- logging ----------------------------------------------------------- */

static void api_log(struct ccm_host *host, int level, const char *fmt, ...)
    CCM_PRINTF(3, 4);
static void api_log(struct ccm_host *host, int level, const char *fmt, ...)
{
  va_list ap;

  if (fmt == NULL)
    return;
  if (level < CCM_LOG_ERROR)
    level = CCM_LOG_ERROR;
  if (level > CCM_LOG_DEBUG)
    level = CCM_LOG_DEBUG;
  va_start(ap, fmt);
  log_vmsg(level, host && host->log_prefix ? host->log_prefix : "provider",
           fmt, ap);
  va_end(ap);
}

static void api_secret_add(struct ccm_host *host, const char *secret)
{
  (void)host;
  log_secret_add(secret);
}

/* ---- configuration ------------------------------------------------------ */

static pthread_once_t cfg_empty_once = PTHREAD_ONCE_INIT;
static config_t cfg_empty;

static void cfg_empty_init(void)
{
  config_init(&cfg_empty);
}

static const struct ccm_config *api_cfg_root(struct ccm_host *host)
{
  if (host != NULL && host->config != NULL)
    return (const struct ccm_config *)(const void *)host->config;
  /* A module without a config group still gets a valid, empty group. */
  pthread_once(&cfg_empty_once, cfg_empty_init);
  return (const struct ccm_config *)(const void *)config_root_setting(
      &cfg_empty);
}

static config_setting_t *cfg_setting(const struct ccm_config *cfg)
{
  return (config_setting_t *)(void *)cfg;
}

static const char *cfg_type_name(int type)
{
  switch (type) {
  case CONFIG_TYPE_GROUP: return "group";
  case CONFIG_TYPE_INT: return "int";
  case CONFIG_TYPE_INT64: return "int64";
  case CONFIG_TYPE_FLOAT: return "float";
  case CONFIG_TYPE_STRING: return "string";
  case CONFIG_TYPE_BOOL: return "bool";
  case CONFIG_TYPE_ARRAY: return "array";
  case CONFIG_TYPE_LIST: return "list";
  default: return "none";
  }
}

/* The full path of a setting ("providers.[0].config.region"), for messages. */
static void cfg_full_path(const config_setting_t *s, char *out, size_t cap)
{
  const config_setting_t *chain[CCM_HOST_PATH_MAX];
  size_t n = 0, used = 0;

  out[0] = '\0';
  while (s != NULL && n < CCM_HOST_PATH_MAX) {
    if (config_setting_parent(s) == NULL)
      break; /* the root has no name */
    chain[n++] = s;
    s = config_setting_parent(s);
  }
  while (n > 0 && used + 1 < cap) {
    const config_setting_t *c = chain[--n];
    const char *name = config_setting_name(c);
    int r;

    if (name != NULL)
      r = snprintf(out + used, cap - used, "%s%s", used ? "." : "", name);
    else
      r = snprintf(out + used, cap - used, "%s[%d]", used ? "." : "",
                   config_setting_index(c));
    if (r < 0)
      break;
    used += (size_t)r;
    if (used >= cap)
      used = cap - 1;
  }
}

static int cfg_mismatch(const config_setting_t *s, const char *path,
                        const char *want)
{
  const char *file = config_setting_source_file(s);
  char full[512];

  cfg_full_path(s, full, sizeof full);
  log_msg(CCM_LOG_ERROR, "config", "%s:%u:%s: expected %s, found %s (key %s)",
          file ? file : "<config>", (unsigned)config_setting_source_line(s),
          full[0] ? full : path, want, cfg_type_name(config_setting_type(s)),
          path);
  return CCM_ERR_INVALID;
}

/* Parse "[i]" into *index; false unless it is exactly that. */
static bool cfg_parse_index(const char *seg, size_t len, unsigned *index)
{
  unsigned long v = 0;
  size_t i;

  if (len < 3 || seg[0] != '[' || seg[len - 1] != ']')
    return false;
  for (i = 1; i + 1 < len; i++) {
    if (seg[i] < '0' || seg[i] > '9')
      return false;
    v = v * 10 + (unsigned long)(seg[i] - '0');
    if (v > 1000000u)
      return false;
  }
  *index = (unsigned)v;
  return true;
}

/*
 * Walk a dotted path: names select group members, "[i]" selects element i
 * of a list or array. An empty path is the group itself. Returns CCM_OK,
 * CCM_ERR_NOT_FOUND, or CCM_ERR_INVALID for a malformed path or a scalar
 * where a group or list was needed.
 */
static int cfg_walk(const struct ccm_config *cfg, const char *path,
                    config_setting_t **out)
{
  config_setting_t *s = cfg_setting(cfg);
  const char *p = path;

  *out = NULL;
  /* Syntax first, so that a malformed path is INVALID wherever it breaks. */
  if (path == NULL || path[0] == '.' || strstr(path, "..") != NULL ||
      (path[0] != '\0' && path[strlen(path) - 1] == '.'))
    return CCM_ERR_INVALID;
  if (s == NULL)
    return CCM_ERR_NOT_FOUND;
  while (*p != '\0') {
    const char *dot = strchr(p, '.');
    size_t len = dot ? (size_t)(dot - p) : strlen(p);
    char name[CCM_MAX_NAME + 1];
    unsigned index;

    if (len == 0 || len > CCM_MAX_NAME)
      return CCM_ERR_INVALID;
    if (p[0] == '[') {
      if (!cfg_parse_index(p, len, &index))
        return CCM_ERR_INVALID;
      if (!config_setting_is_aggregate(s) || config_setting_is_group(s))
        return cfg_mismatch(s, path, "list");
      s = config_setting_get_elem(s, index);
    } else {
      if (!config_setting_is_group(s))
        return cfg_mismatch(s, path, "group");
      memcpy(name, p, len);
      name[len] = '\0';
      s = config_setting_get_member(s, name);
    }
    if (s == NULL)
      return CCM_ERR_NOT_FOUND;
    p += len;
    if (*p == '.')
      p++;
  }
  *out = s;
  return CCM_OK;
}

static int api_cfg_string(const struct ccm_config *cfg, const char *path,
                          const char **out)
{
  config_setting_t *s;
  int rc = cfg_walk(cfg, path, &s);

  if (rc != CCM_OK)
    return rc;
  if (config_setting_type(s) != CONFIG_TYPE_STRING)
    return cfg_mismatch(s, path, "string");
  if (out != NULL)
    *out = config_setting_get_string(s);
  return CCM_OK;
}

static int api_cfg_int(const struct ccm_config *cfg, const char *path,
                       int64_t *out)
{
  config_setting_t *s;
  int rc = cfg_walk(cfg, path, &s);

  if (rc != CCM_OK)
    return rc;
  if (config_setting_type(s) != CONFIG_TYPE_INT &&
      config_setting_type(s) != CONFIG_TYPE_INT64)
    return cfg_mismatch(s, path, "int");
  if (out != NULL)
    *out = (int64_t)config_setting_get_int64(s);
  return CCM_OK;
}

static int api_cfg_bool(const struct ccm_config *cfg, const char *path,
                        bool *out)
{
  config_setting_t *s;
  int rc = cfg_walk(cfg, path, &s);

  if (rc != CCM_OK)
    return rc;
  if (config_setting_type(s) != CONFIG_TYPE_BOOL)
    return cfg_mismatch(s, path, "bool");
  if (out != NULL)
    *out = config_setting_get_bool(s) != 0;
  return CCM_OK;
}

static int api_cfg_list_len(const struct ccm_config *cfg, const char *path,
                            size_t *out)
{
  config_setting_t *s;
  int rc = cfg_walk(cfg, path, &s);

  if (rc != CCM_OK)
    return rc;
  if (!config_setting_is_list(s) && !config_setting_is_array(s))
    return cfg_mismatch(s, path, "list");
  if (out != NULL)
    *out = (size_t)config_setting_length(s);
  return CCM_OK;
}

static int api_cfg_list_string(const struct ccm_config *cfg, const char *path,
                               size_t index, const char **out)
{
  config_setting_t *s, *e;
  int rc = cfg_walk(cfg, path, &s);

  if (rc != CCM_OK)
    return rc;
  if (!config_setting_is_list(s) && !config_setting_is_array(s))
    return cfg_mismatch(s, path, "list");
  if (index >= (size_t)config_setting_length(s))
    return CCM_ERR_NOT_FOUND;
  e = config_setting_get_elem(s, (unsigned)index);
  if (e == NULL)
    return CCM_ERR_NOT_FOUND;
  if (config_setting_type(e) != CONFIG_TYPE_STRING)
    return cfg_mismatch(e, path, "string");
  if (out != NULL)
    *out = config_setting_get_string(e);
  return CCM_OK;
}

static int api_cfg_group(const struct ccm_config *cfg, const char *path,
                         const struct ccm_config **out)
{
  config_setting_t *s;
  int rc = cfg_walk(cfg, path, &s);

  if (rc != CCM_OK)
    return rc;
  if (!config_setting_is_group(s))
    return cfg_mismatch(s, path, "group");
  if (out != NULL)
    *out = (const struct ccm_config *)(const void *)s;
  return CCM_OK;
}

/* ---- allocation ---------------------------------------------------------- */

static void *api_alloc(size_t size) { return mem_alloc(size); }
static void *api_calloc(size_t n, size_t size) { return mem_calloc(n, size); }
static void *api_realloc(void *p, size_t size) { return mem_realloc(p, size); }
static void api_free(void *p) { mem_free(p); }
static char *api_strdup(const char *s) { return mem_strdup(s); }

/* ---- result builders ------------------------------------------------------ */

/* A copy of s when it is non-empty and at most max bytes; rc says why not. */
static char *builder_copy(const char *s, size_t max, int *rc)
{
  size_t len;
  char *copy;

  if (s == NULL || s[0] == '\0') {
    *rc = CCM_ERR_INVALID;
    return NULL;
  }
  len = strnlen(s, max + 1);
  if (len > max) {
    *rc = CCM_ERR_INVALID;
    return NULL;
  }
  copy = mem_strndup(s, len);
  *rc = copy ? CCM_OK : CCM_ERR_INTERNAL;
  return copy;
}

static bool builder_is_ip(const char *s)
{
  unsigned char buf[16];

  return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static bool builder_present(const char *s)
{
  return s != NULL && s[0] != '\0';
}

static int api_lb_add_ingress(struct ccm_lb_status *st, const char *ip,
                              const char *hostname)
{
  struct lb_ingress *items;
  char *ip_copy = NULL, *host_copy = NULL;
  int rc = CCM_ERR_INVALID;

  if (st == NULL || (!builder_present(ip) && !builder_present(hostname)))
    return CCM_ERR_INVALID;
  if (builder_present(ip)) {
    if (strnlen(ip, CCM_MAX_ADDRESS + 1) > CCM_MAX_ADDRESS || !builder_is_ip(ip))
      goto fail;
    ip_copy = builder_copy(ip, CCM_MAX_ADDRESS, &rc);
    if (ip_copy == NULL)
      goto fail;
  }
  if (builder_present(hostname)) {
    host_copy = builder_copy(hostname, CCM_MAX_NAME, &rc);
    if (host_copy == NULL)
      goto fail;
  }
  items = mem_realloc(st->items, (st->n + 1) * sizeof *items);
  if (items == NULL) {
    rc = CCM_ERR_INTERNAL;
    goto fail;
  }
  st->items = items;
  items[st->n].ip = ip_copy;
  items[st->n].hostname = host_copy;
  st->n++;
  return CCM_OK;

fail:
  mem_free(ip_copy);
  mem_free(host_copy);
  return rc;
}

static int api_meta_set(struct ccm_instance_meta *m, int field,
                        const char *value)
{
  char **slot;
  size_t max = CCM_MAX_NAME;
  char *copy;
  int rc;

  if (m == NULL)
    return CCM_ERR_INVALID;
  switch (field) {
  case CCM_META_PROVIDER_ID:
    slot = &m->provider_id;
    max = CCM_MAX_ID;
    break;
  case CCM_META_INSTANCE_TYPE: slot = &m->instance_type; break;
  case CCM_META_ZONE: slot = &m->zone; break;
  case CCM_META_REGION: slot = &m->region; break;
  default: return CCM_ERR_INVALID;
  }
  copy = builder_copy(value, max, &rc);
  if (copy == NULL)
    return rc;
  mem_free(*slot);
  *slot = copy;
  return CCM_OK;
}

static int api_meta_add_address(struct ccm_instance_meta *m, uint32_t type,
                                const char *address)
{
  struct meta_address *items;
  size_t max;
  char *copy;
  int rc;

  if (m == NULL)
    return CCM_ERR_INVALID;
  switch (type) {
  case CCM_ADDR_EXTERNAL_IP:
  case CCM_ADDR_INTERNAL_IP:
    max = CCM_MAX_ADDRESS;
    if (address != NULL && strnlen(address, max + 1) <= max &&
        !builder_is_ip(address))
      return CCM_ERR_INVALID;
    break;
  case CCM_ADDR_HOSTNAME:
  case CCM_ADDR_EXTERNAL_DNS:
  case CCM_ADDR_INTERNAL_DNS:
    max = CCM_MAX_NAME;
    break;
  default:
    return CCM_ERR_INVALID;
  }
  copy = builder_copy(address, max, &rc);
  if (copy == NULL)
    return rc;
  items = mem_realloc(m->addresses, (m->n_addresses + 1) * sizeof *items);
  if (items == NULL) {
    mem_free(copy);
    return CCM_ERR_INTERNAL;
  }
  m->addresses = items;
  items[m->n_addresses].type = type;
  items[m->n_addresses].address = copy;
  m->n_addresses++;
  return CCM_OK;
}

static int api_meta_add_label(struct ccm_instance_meta *m, const char *key,
                              const char *value)
{
  struct meta_label *items;
  char *key_copy = NULL, *value_copy = NULL;
  size_t i, vlen;
  int rc;

  if (m == NULL || value == NULL)
    return CCM_ERR_INVALID;
  vlen = strnlen(value, CCM_MAX_LABEL_VALUE + 1);
  if (vlen > CCM_MAX_LABEL_VALUE)
    return CCM_ERR_INVALID;
  key_copy = builder_copy(key, CCM_MAX_LABEL_KEY, &rc);
  if (key_copy == NULL)
    return rc;
  /* Label values may be empty, so this copy is not builder_copy. */
  value_copy = mem_strndup(value, vlen);
  if (value_copy == NULL)
    goto fail;
  for (i = 0; i < m->n_labels; i++) {
    if (strcmp(m->labels[i].key, key_copy) == 0) {
      /* The last value for a key wins. */
      mem_free(m->labels[i].value);
      m->labels[i].value = value_copy;
      mem_free(key_copy);
      return CCM_OK;
    }
  }
  items = mem_realloc(m->labels, (m->n_labels + 1) * sizeof *items);
  if (items == NULL)
    goto fail;
  m->labels = items;
  items[m->n_labels].key = key_copy;
  items[m->n_labels].value = value_copy;
  m->n_labels++;
  return CCM_OK;

fail:
  mem_free(key_copy);
  mem_free(value_copy);
  return CCM_ERR_INTERNAL;
}

static int api_routes_add(struct ccm_route_list *list, const struct ccm_route *r)
{
  struct route_entry e = {0};
  struct route_entry *items;
  int rc = CCM_ERR_INVALID;

  if (list == NULL || r == NULL ||
      r->struct_size < offsetof(struct ccm_route, blackhole) + sizeof(bool))
    return CCM_ERR_INVALID;
  e.blackhole = r->blackhole;
  if (builder_present(r->name)) {
    e.name = builder_copy(r->name, CCM_MAX_NAME, &rc);
    if (e.name == NULL)
      goto fail;
  }
  /* A blackhole route's target is gone; every other route names one. */
  if (builder_present(r->target_node) || !r->blackhole) {
    e.target_node = builder_copy(r->target_node, CCM_MAX_NAME, &rc);
    if (e.target_node == NULL)
      goto fail;
  }
  e.destination_cidr = builder_copy(r->destination_cidr, CCM_MAX_ADDRESS, &rc);
  if (e.destination_cidr == NULL)
    goto fail;
  items = mem_realloc(list->items, (list->n + 1) * sizeof *items);
  if (items == NULL) {
    rc = CCM_ERR_INTERNAL;
    goto fail;
  }
  list->items = items;
  items[list->n++] = e;
  return CCM_OK;

fail:
  mem_free(e.name);
  mem_free(e.target_node);
  mem_free(e.destination_cidr);
  return rc;
}

static int api_blob_set(struct ccm_blob *blob, const void *data, size_t len)
{
  void *copy = NULL;

  if (blob == NULL || (data == NULL && len > 0) || len > CCM_HOST_BLOB_MAX)
    return CCM_ERR_INVALID;
  if (len > 0) {
    copy = mem_alloc(len);
    if (copy == NULL)
      return CCM_ERR_INTERNAL;
    memcpy(copy, data, len);
  }
  mem_free(blob->data);
  blob->data = copy;
  blob->len = len;
  return CCM_OK;
}

void lb_status_clear(struct ccm_lb_status *st)
{
  size_t i;

  if (st == NULL)
    return;
  for (i = 0; i < st->n; i++) {
    mem_free(st->items[i].ip);
    mem_free(st->items[i].hostname);
  }
  mem_free(st->items);
  st->items = NULL;
  st->n = 0;
}

void instance_meta_clear(struct ccm_instance_meta *m)
{
  size_t i;

  if (m == NULL)
    return;
  mem_free(m->provider_id);
  mem_free(m->instance_type);
  mem_free(m->zone);
  mem_free(m->region);
  for (i = 0; i < m->n_addresses; i++)
    mem_free(m->addresses[i].address);
  mem_free(m->addresses);
  for (i = 0; i < m->n_labels; i++) {
    mem_free(m->labels[i].key);
    mem_free(m->labels[i].value);
  }
  mem_free(m->labels);
  memset(m, 0, sizeof *m);
}

void route_list_clear(struct ccm_route_list *l)
{
  size_t i;

  if (l == NULL)
    return;
  for (i = 0; i < l->n; i++) {
    mem_free(l->items[i].name);
    mem_free(l->items[i].target_node);
    mem_free(l->items[i].destination_cidr);
  }
  mem_free(l->items);
  l->items = NULL;
  l->n = 0;
}

void blob_clear(struct ccm_blob *b)
{
  if (b == NULL)
    return;
  mem_free(b->data);
  b->data = NULL;
  b->len = 0;
}

/* ---- host handle ------------------------------------------------------------- */

struct ccm_host *host_new(const char *name, const config_setting_t *config,
                          const struct http_settings *http, char *err,
                          size_t errlen)
{
  struct ccm_host *host;
  size_t len;

  if (name == NULL || name[0] == '\0' ||
      strnlen(name, CCM_MAX_NAME + 1) > CCM_MAX_NAME) {
    snprintf(err, errlen, "provider name is empty or too long");
    return NULL;
  }
  host = mem_calloc(1, sizeof *host);
  if (host == NULL)
    goto oom;
  atomic_init(&host->closing, false);
  host->config = config;
  host->name = mem_strdup(name);
  len = strlen("provider:") + strlen(name) + 1;
  host->log_prefix = mem_alloc(len);
  if (host->name == NULL || host->log_prefix == NULL)
    goto oom;
  snprintf(host->log_prefix, len, "provider:%s", name);
  host->http = http_client_new(name, http, err, errlen);
  if (host->http == NULL)
    goto fail;
  return host;

oom:
  snprintf(err, errlen, "out of memory creating the host handle for %s", name);
fail:
  host_free(host);
  return NULL;
}

void host_free(struct ccm_host *host)
{
  if (host == NULL)
    return;
  http_client_free(host->http);
  mem_free(host->name);
  mem_free(host->log_prefix);
  mem_free(host);
}

/* ---- the table ------------------------------------------------------------- */

static const struct ccm_host_api host_api_table = {
    .struct_size = sizeof(struct ccm_host_api),
    .abi_minor = CCM_ABI_MINOR,
    .log = api_log,
    .secret_add = api_secret_add,
    .cfg_root = api_cfg_root,
    .cfg_string = api_cfg_string,
    .cfg_int = api_cfg_int,
    .cfg_bool = api_cfg_bool,
    .cfg_list_len = api_cfg_list_len,
    .cfg_list_string = api_cfg_list_string,
    .cfg_group = api_cfg_group,
    .alloc = api_alloc,
    .calloc = api_calloc,
    .realloc = api_realloc,
    .free = api_free,
    .strdup = api_strdup,
    .call_remaining_ms = api_call_remaining_ms,
    .call_cancelled = api_call_cancelled,
    .call_request_id = api_call_request_id,
    .call_set_error = api_call_set_error,
    .call_set_retry_after = api_call_set_retry_after,
    .http_do = http_do,
    .http_status = http_status,
    .http_body = http_body,
    .http_header = http_header,
    .http_release = http_release,
    .lb_add_ingress = api_lb_add_ingress,
    .meta_set = api_meta_set,
    .meta_add_address = api_meta_add_address,
    .meta_add_label = api_meta_add_label,
    .routes_add = api_routes_add,
    .blob_set = api_blob_set,
};

const struct ccm_host_api *host_api(void)
{
  return &host_api_table;
}
