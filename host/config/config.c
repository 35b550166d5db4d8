/*
 * config.c: load host.cfg: read it with libconfig, apply the schema
 * (schema.c), then the rules that span keys: the default provider, unique
 * names and classes, path resolution and per-provider config hashes.
 * It must not load modules; a failed load leaves nothing allocated.
 */
#include "config/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/schema.h"
#include "util/hash.h"
#include "util/mem.h"

#define CCM_CONFIG_PATH_MAX 4096
#define CCM_CONFIG_MAX_DEPTH 64 /* nesting inside a provider's config */

/* ---- paths -------------------------------------------------------------- */

/* The absolute directory of the config file, so that relative module and
 * policy paths do not depend on the working directory. */
static int config_dir(const char *path, char *out, size_t cap)
{
  const char *slash = strrchr(path, '/');
  char cwd[CCM_CONFIG_PATH_MAX];
  int n;

  if (path[0] == '/') {
    size_t len = slash == path ? 1 : (size_t)(slash - path);
    if (len >= cap)
      return -1;
    memcpy(out, path, len);
    out[len] = '\0';
    return 0;
  }
  if (getcwd(cwd, sizeof cwd) == NULL)
    return -1;
  if (slash == NULL)
    n = snprintf(out, cap, "%s", cwd);
  else
    n = snprintf(out, cap, "%s/%.*s", cwd, (int)(slash - path), path);
  return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static int config_resolve(const char *dir, const char *p, char *out,
                          size_t cap)
{
  int n;

  if (p[0] == '/') {
    n = snprintf(out, cap, "%s", p);
  } else {
    while (p[0] == '.' && p[1] == '/')
      p += 2;
    n = snprintf(out, cap, "%s%s%s", dir, strcmp(dir, "/") == 0 ? "" : "/",
                 p);
  }
  return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* ---- canonical serialisation for config_hash ---------------------------- */

struct sbuf {
  char *p;
  size_t len, cap;
  bool failed; /* out of memory or nested too deeply */
};

static void sbuf_add(struct sbuf *b, const void *data, size_t n)
{
  if (b->failed)
    return;
  if (b->len + n > b->cap) {
    size_t cap = b->cap == 0 ? 1024 : b->cap;
    char *p;
    while (cap < b->len + n)
      cap *= 2;
    p = mem_realloc(b->p, cap);
    if (p == NULL) {
      b->failed = true;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, data, n);
  b->len += n;
}

static void sbuf_printf(struct sbuf *b, const char *fmt, ...) CCM_PRINTF(2, 3);
static void sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
  char tmp[64];
  va_list ap;
  int n;

  va_start(ap, fmt);
  n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof tmp) {
    b->failed = true;
    return;
  }
  sbuf_add(b, tmp, (size_t)n);
}

/* Strings are length-prefixed so no value can imitate the framing; NULL
 * differs from "". */
static void sbuf_str(struct sbuf *b, const char *tag, const char *s)
{
  if (s == NULL) {
    sbuf_printf(b, "%s-;", tag);
    return;
  }
  sbuf_printf(b, "%s%zu:", tag, strlen(s));
  sbuf_add(b, s, strlen(s));
}

/* Group members in name order (names are unique within a group, and the
 * order of keys in a group carries no meaning); list elements in order. */
static void sbuf_setting(struct sbuf *b, const config_setting_t *s, int depth)
{
  int n;

  if (depth > CCM_CONFIG_MAX_DEPTH) {
    b->failed = true;
    return;
  }
  switch (config_setting_type(s)) {
  case CONFIG_TYPE_GROUP: {
    const char *last = NULL;
    n = config_setting_length(s);
    sbuf_printf(b, "{%d;", n);
    for (int done = 0; done < n; done++) {
      const config_setting_t *next = NULL;
      for (int i = 0; i < n; i++) {
        const config_setting_t *m = config_setting_get_elem(s, (unsigned)i);
        const char *name = config_setting_name(m);
        if (last != NULL && strcmp(name, last) <= 0)
          continue;
        if (next == NULL || strcmp(name, config_setting_name(next)) < 0)
          next = m;
      }
      if (next == NULL)
        break;
      last = config_setting_name(next);
      sbuf_str(b, "k", last);
      sbuf_setting(b, next, depth + 1);
    }
    sbuf_add(b, "}", 1);
    break;
  }
  case CONFIG_TYPE_ARRAY:
  case CONFIG_TYPE_LIST:
    n = config_setting_length(s);
    sbuf_printf(b, "%c%d;",
                config_setting_type(s) == CONFIG_TYPE_ARRAY ? '[' : '(', n);
    for (int i = 0; i < n; i++)
      sbuf_setting(b, config_setting_get_elem(s, (unsigned)i), depth + 1);
    sbuf_add(b, "]", 1);
    break;
  case CONFIG_TYPE_INT:
  case CONFIG_TYPE_INT64:
    sbuf_printf(b, "i%lld;", config_setting_get_int64(s));
    break;
  case CONFIG_TYPE_FLOAT:
    sbuf_printf(b, "f%.17g;", config_setting_get_float(s));
    break;
  case CONFIG_TYPE_STRING:
    sbuf_str(b, "s", config_setting_get_string(s));
    break;
  case CONFIG_TYPE_BOOL:
    sbuf_printf(b, "b%d;", config_setting_get_bool(s) ? 1 : 0);
    break;
  default:
    sbuf_add(b, "?", 1);
    break;
  }
}

/* Over the resolved values, so spelling out a default changes nothing. */
static int provider_hash(struct provider_config *pc)
{
  struct sbuf b = {0};

  sbuf_add(&b, "ccmhost-provider-v1;", 20);
  sbuf_str(&b, "module=", pc->module_abs);
  sbuf_printf(&b, "default=%d;", pc->is_default ? 1 : 0);
  sbuf_str(&b, "class=", pc->lb_class);
  sbuf_printf(&b, "timeout=%u;", (unsigned)pc->call_timeout_ms);
  sbuf_str(&b, "ca=", pc->http.ca_file);
  sbuf_printf(&b, "insecure=%d;", pc->http.insecure_skip_verify ? 1 : 0);
  sbuf_printf(&b, "qps=%.17g;", pc->http.qps);
  sbuf_printf(&b, "burst=%d;", pc->http.burst);
  sbuf_printf(&b, "http_timeout=%u;", (unsigned)pc->http.timeout_ms);
  sbuf_str(&b, "proxy=", pc->http.proxy);
  sbuf_add(&b, "config=", 7);
  if (pc->config == NULL)
    sbuf_add(&b, "-", 1);
  else
    sbuf_setting(&b, pc->config, 0);
  if (b.failed) {
    mem_free(b.p);
    return -1;
  }
  hash_buf(b.p, b.len, pc->config_hash);
  mem_free(b.p);
  return 0;
}

/* ---- rules across keys -------------------------------------------------- */

/* The most precise setting to blame: the first of the paths that exists,
 * else the root. */
static const config_setting_t *blame(const config_t *lc, const char *a,
                                     const char *b)
{
  const config_setting_t *s = config_lookup(lc, a);

  if (s == NULL && b != NULL)
    s = config_lookup(lc, b);
  return s != NULL ? s : config_root_setting(lc);
}

static int check_leader(struct config_ctx *ctx)
{
  const struct leader_config *le = &ctx->cfg->leader;
  const config_t *lc = &ctx->cfg->lc;

  if (le->renew_deadline_s >= le->lease_duration_s)
    return config_fail(
        ctx,
        blame(lc, "leader_election.renew_deadline_s",
              "leader_election.lease_duration_s"),
        "leader_election.renew_deadline_s",
        "must be less than lease_duration_s (%u >= %u)",
        (unsigned)le->renew_deadline_s, (unsigned)le->lease_duration_s);
  if (le->retry_period_s >= le->renew_deadline_s)
    return config_fail(
        ctx,
        blame(lc, "leader_election.retry_period_s",
              "leader_election.renew_deadline_s"),
        "leader_election.retry_period_s",
        "must be less than renew_deadline_s (%u >= %u)",
        (unsigned)le->retry_period_s, (unsigned)le->renew_deadline_s);
  return 0;
}

static int load_controllers(struct config_ctx *ctx)
{
  const config_setting_t *s = config_lookup(&ctx->cfg->lc, "controllers");
  uint32_t mask = 0;

  if (s == NULL) {
    ctx->cfg->controllers =
        CCM_CTRL_SERVICE | CCM_CTRL_NODE | CCM_CTRL_NODE_LIFECYCLE;
    return 0;
  }
  for (int i = 0; i < config_setting_length(s); i++) {
    const char *v = config_setting_get_string_elem(s, (unsigned)i);
    if (strcmp(v, "*") == 0)
      mask |= CCM_CTRL_SERVICE | CCM_CTRL_NODE | CCM_CTRL_NODE_LIFECYCLE |
              CCM_CTRL_ROUTE;
    else if (strcmp(v, "service") == 0)
      mask |= CCM_CTRL_SERVICE;
    else if (strcmp(v, "node") == 0)
      mask |= CCM_CTRL_NODE;
    else if (strcmp(v, "node-lifecycle") == 0)
      mask |= CCM_CTRL_NODE_LIFECYCLE;
    else if (strcmp(v, "route") == 0)
      mask |= CCM_CTRL_ROUTE;
  }
  ctx->cfg->controllers = mask;
  return 0;
}

static int load_policies(struct config_ctx *ctx, const char *dir)
{
  struct host_config *cfg = ctx->cfg;
  const config_setting_t *s = config_lookup(&cfg->lc, "policies");
  char path[CCM_CONFIG_PATH_MAX];
  char key[64];
  int n;

  if (s == NULL)
    return 0;
  n = config_setting_length(s);
  if (n <= 0)
    return 0;
  cfg->policies = mem_calloc((size_t)n, sizeof cfg->policies[0]);
  if (cfg->policies == NULL)
    return config_fail(ctx, s, "policies", "out of memory");
  for (int i = 0; i < n; i++) {
    const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
    snprintf(key, sizeof key, "policies.[%d]", i);
    if (config_resolve(dir, config_setting_get_string(e), path,
                       sizeof path) != 0)
      return config_fail(ctx, e, key, "path too long");
    cfg->policies[i] = mem_strdup(path);
    if (cfg->policies[i] == NULL)
      return config_fail(ctx, e, key, "out of memory");
    cfg->n_policies = (size_t)i + 1;
  }
  return 0;
}

/* A relative kubeconfig is relative to this file, as module paths are, so
 * the config means the same whatever directory the host starts in. */
static int resolve_kubeconfig(struct config_ctx *ctx, const char *dir)
{
  struct host_config *cfg = ctx->cfg;
  const config_setting_t *s = config_lookup(&cfg->lc, "kubeconfig");
  char path[CCM_CONFIG_PATH_MAX];

  if (cfg->kubeconfig == NULL)
    return 0;
  if (config_resolve(dir, cfg->kubeconfig, path, sizeof path) != 0)
    return config_fail(ctx, s, "kubeconfig", "path too long");
  cfg->kubeconfig_abs = mem_strdup(path);
  if (cfg->kubeconfig_abs == NULL)
    return config_fail(ctx, s, "kubeconfig", "out of memory");
  cfg->kubeconfig = cfg->kubeconfig_abs;
  return 0;
}

static const config_setting_t *provider_setting(struct config_ctx *ctx,
                                                size_t i, const char *member)
{
  const config_setting_t *list = config_lookup(&ctx->cfg->lc, "providers");
  const config_setting_t *grp, *m;

  if (list == NULL)
    return config_root_setting(&ctx->cfg->lc);
  grp = config_setting_get_elem(list, (unsigned)i);
  if (grp == NULL)
    return list;
  if (member == NULL)
    return grp;
  m = config_setting_get_member(grp, member);
  return m != NULL ? m : grp;
}

static int check_providers(struct config_ctx *ctx, const char *dir)
{
  struct host_config *cfg = ctx->cfg;
  size_t n = cfg->n_providers;
  size_t n_default = 0, first_default = 0;
  char key[96];

  for (size_t i = 0; i < n; i++) {
    struct provider_config *pc = &cfg->providers[i];
    for (size_t j = 0; j < i; j++) {
      if (strcmp(cfg->providers[j].name, pc->name) == 0) {
        snprintf(key, sizeof key, "providers.[%zu].name", i);
        return config_fail(ctx, provider_setting(ctx, i, "name"), key,
                           "duplicate provider name \"%s\" (also "
                           "providers.[%zu])", pc->name, j);
      }
    }
  }

  /* A lone provider is the default unless it says otherwise. */
  if (n == 1 && config_setting_get_member(provider_setting(ctx, 0, NULL),
                                          "default") == NULL)
    cfg->providers[0].is_default = true;
  for (size_t i = 0; i < n; i++) {
    if (!cfg->providers[i].is_default)
      continue;
    if (n_default++ > 0) {
      snprintf(key, sizeof key, "providers.[%zu].default", i);
      return config_fail(ctx, provider_setting(ctx, i, "default"), key,
                         "two default providers (providers.[%zu] and "
                         "providers.[%zu]); exactly one may be the default",
                         first_default, i);
    }
    first_default = i;
  }
  if (n_default == 0)
    return config_fail(ctx, blame(&cfg->lc, "providers", NULL), "providers",
                       "no provider is the default; set default = true on "
                       "exactly one");

  for (size_t i = 0; i < n; i++) {
    struct provider_config *pc = &cfg->providers[i];
    snprintf(key, sizeof key, "providers.[%zu].load_balancer_class", i);
    if (pc->is_default && pc->lb_class != NULL)
      return config_fail(ctx, provider_setting(ctx, i, "load_balancer_class"),
                         key, "the default provider serves Services without "
                         "a class and must not have one");
    if (!pc->is_default && pc->lb_class == NULL)
      return config_fail(ctx, provider_setting(ctx, i, NULL), key,
                         "required for a provider that is not the default");
    for (size_t j = 0; j < i && pc->lb_class != NULL; j++) {
      const char *other = cfg->providers[j].lb_class;
      if (other != NULL && strcmp(other, pc->lb_class) == 0)
        return config_fail(
            ctx, provider_setting(ctx, i, "load_balancer_class"), key,
            "duplicate class \"%s\" (also providers.[%zu])", pc->lb_class, j);
    }
  }

  for (size_t i = 0; i < n; i++) {
    struct provider_config *pc = &cfg->providers[i];
    if (config_resolve(dir, pc->module, pc->module_abs,
                       sizeof pc->module_abs) != 0) {
      snprintf(key, sizeof key, "providers.[%zu].module", i);
      return config_fail(ctx, provider_setting(ctx, i, "module"), key,
                         "path too long");
    }
    if (provider_hash(pc) != 0) {
      snprintf(key, sizeof key, "providers.[%zu].config", i);
      return config_fail(ctx, provider_setting(ctx, i, "config"), key,
                         "nested more than %d levels deep, or out of "
                         "memory", CCM_CONFIG_MAX_DEPTH);
    }
  }
  return 0;
}

/* ---- load and free ------------------------------------------------------ */

static int read_file(struct config_ctx *ctx, const char *dir)
{
  config_t *lc = &ctx->cfg->lc;
  struct stat st;
  int fd;

  /* Check readability first: libconfig reports I/O errors without errno. */
  fd = open(ctx->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || fstat(fd, &st) != 0) {
    int e = errno;
    if (fd >= 0)
      close(fd);
    snprintf(ctx->err, ctx->errlen, "%s: cannot read: %s", ctx->path,
             strerror(e));
    return -1;
  }
  close(fd);
  if (!S_ISREG(st.st_mode)) {
    snprintf(ctx->err, ctx->errlen, "%s: cannot read: not a regular file",
             ctx->path);
    return -1;
  }
  config_set_include_dir(lc, dir);
  if (config_read_file(lc, ctx->path) == CONFIG_TRUE)
    return 0;
  if (config_error_type(lc) == CONFIG_ERR_PARSE) {
    const char *text = config_error_text(lc);
    const char *file = config_error_file(lc);
    if (text == NULL)
      text = "";
    if (strncmp(text, "syntax error", 12) == 0)
      text += 12;
    snprintf(ctx->err, ctx->errlen, "%s:%d: syntax error%s%s",
             file != NULL ? file : ctx->path, config_error_line(lc),
             text[0] != '\0' && text[0] != ':' ? ": " : "", text);
  } else {
    const char *file = config_error_file(lc);
    snprintf(ctx->err, ctx->errlen, "%s: cannot read: %s",
             file != NULL ? file : ctx->path,
             config_error_text(lc) != NULL ? config_error_text(lc)
                                           : "I/O error");
  }
  return -1;
}

int config_load(const char *path, struct host_config **out, char *err,
                size_t errlen)
{
  struct host_config *cfg = NULL;
  struct config_ctx ctx;
  char dir[CCM_CONFIG_PATH_MAX];
  char dummy[1];

  if (err == NULL || errlen == 0) {
    err = dummy;
    errlen = sizeof dummy;
  }
  err[0] = '\0';
  *out = NULL;
  if (path == NULL || path[0] == '\0') {
    snprintf(err, errlen, "config: no file given");
    return -1;
  }
  cfg = mem_calloc(1, sizeof *cfg);
  if (cfg == NULL) {
    snprintf(err, errlen, "%s: out of memory", path);
    return -1;
  }
  config_init(&cfg->lc);
  atomic_init(&cfg->refs, 1);
  ctx.path = path;
  ctx.err = err;
  ctx.errlen = errlen;
  ctx.cfg = cfg;
  if (config_dir(path, dir, sizeof dir) != 0) {
    snprintf(err, errlen, "%s: cannot resolve the directory of the file",
             path);
    goto fail;
  }
  cfg->path = mem_strdup(path);
  if (cfg->path == NULL) {
    snprintf(err, errlen, "%s: out of memory", path);
    goto fail;
  }
  if (read_file(&ctx, dir) != 0)
    goto fail;
  if (schema_apply(&ctx, config_root_setting(&cfg->lc)) != 0)
    goto fail;
  if (check_leader(&ctx) != 0 || load_controllers(&ctx) != 0 ||
      load_policies(&ctx, dir) != 0 || check_providers(&ctx, dir) != 0)
    goto fail;
  if (resolve_kubeconfig(&ctx, dir) != 0)
    goto fail;
  for (size_t i = 0; i < cfg->n_providers; i++)
    cfg->providers[i].owner = cfg;
  *out = cfg;
  return 0;
fail:
  config_free(cfg);
  return -1;
}

void config_hold(struct host_config *cfg)
{
  if (cfg != NULL)
    atomic_fetch_add(&cfg->refs, 1);
}

void config_free(struct host_config *cfg)
{
  if (cfg == NULL || atomic_fetch_sub(&cfg->refs, 1) > 1)
    return;
  for (size_t i = 0; i < cfg->n_policies; i++)
    mem_free((char *)cfg->policies[i]);
  mem_free(cfg->policies);
  mem_free(cfg->providers);
  mem_free(cfg->path);
  mem_free(cfg->kubeconfig_abs);
  config_destroy(&cfg->lc);
  mem_free(cfg);
}

const struct provider_config *config_provider_default(
    const struct host_config *cfg)
{
  for (size_t i = 0; cfg != NULL && i < cfg->n_providers; i++) {
    if (cfg->providers[i].is_default)
      return &cfg->providers[i];
  }
  return NULL;
}

const struct provider_config *config_provider_for_class(
    const struct host_config *cfg, const char *lb_class)
{
  if (lb_class == NULL)
    return config_provider_default(cfg);
  for (size_t i = 0; cfg != NULL && i < cfg->n_providers; i++) {
    const char *c = cfg->providers[i].lb_class;
    if (c != NULL && strcmp(c, lb_class) == 0)
      return &cfg->providers[i];
  }
  return NULL;
}
