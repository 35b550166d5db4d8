/*
 * aws_config.c: the aws module's configuration: its libconfig group, an
 * optional upstream cloud.conf (gcfg INI read with libinih: [Global] and
 * [ServiceOverride "N"]), and the per-service endpoints. It validates at
 * init with one error line naming the file:line or key; no network here.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "aws.h"

static const char *const svc_labels[AWS_SVC_COUNT] = {
    "EC2", "Elastic Load Balancing", "Elastic Load Balancing v2", "sts",
    "ec2imds"};
static const char *const svc_signing[AWS_SVC_COUNT] = {
    "ec2", "elasticloadbalancing", "elasticloadbalancing", "sts", "ec2imds"};
static const char *const svc_keys[AWS_SVC_COUNT] = {"ec2", "elb", "elbv2",
                                                    "sts", "imds"};

const char *aws_service_label(enum aws_service svc) {
  return svc < AWS_SVC_COUNT ? svc_labels[svc] : "?";
}

const char *aws_service_signing_name(enum aws_service svc) {
  return svc < AWS_SVC_COUNT ? svc_signing[svc] : "?";
}

/* ---- cloud.conf ---------------------------------------------------------- */

struct cc_ctx {
  const struct ccm_host_api *api;
  struct aws_cloudconf *cc;
  char err[AWS_ERR]; /* first semantic error (the line comes from inih) */
  bool oom;
};

/* gcfg values may be quoted: strip one pair of quotes, unescape \" \\. */
static char *cc_value(const struct ccm_host_api *api, const char *v) {
  size_t n = strlen(v);
  char *out;
  size_t j = 0;

  if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
    v++;
    n -= 2;
  }
  out = api->alloc(n + 1);
  if (out == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    if (v[i] == '\\' && i + 1 < n && (v[i + 1] == '"' || v[i + 1] == '\\'))
      i++;
    out[j++] = v[i];
  }
  out[j] = '\0';
  return out;
}

static bool cc_set(struct cc_ctx *c, char **slot, const char *value) {
  char *v = cc_value(c->api, value);
  if (v == NULL) {
    c->oom = true;
    return false;
  }
  c->api->free(*slot);
  *slot = v;
  return true;
}

static bool parse_bool(const char *v, bool *out) {
  static const char *const t[] = {"true", "yes", "on", "1"};
  static const char *const f[] = {"false", "no", "off", "0"};
  for (size_t i = 0; i < 4; i++) {
    if (strcasecmp(v, t[i]) == 0) {
      *out = true;
      return true;
    }
    if (strcasecmp(v, f[i]) == 0) {
      *out = false;
      return true;
    }
  }
  return false;
}

/* Append a family ("ipv4"/"ipv6"); false with a reason when invalid. */
static bool add_family(uint32_t *fam, size_t *n, const char *v, char *why,
                       size_t len) {
  uint32_t f;
  if (strcasecmp(v, "ipv4") == 0) {
    f = CCM_IPV4;
  } else if (strcasecmp(v, "ipv6") == 0) {
    f = CCM_IPV6;
  } else {
    snprintf(why, len, "\"%s\" is not ipv4 or ipv6", v);
    return false;
  }
  for (size_t i = 0; i < *n; i++) {
    if (fam[i] == f) {
      snprintf(why, len, "\"%s\" is listed twice", v);
      return false;
    }
  }
  if (*n >= 2) {
    snprintf(why, len, "at most two families");
    return false;
  }
  fam[(*n)++] = f;
  return true;
}

static int cc_global(struct cc_ctx *c, const char *name, const char *value) {
  struct aws_cloudconf *cc = c->cc;
  char why[160];
  struct {
    const char *key;
    char **slot;
  } strs[] = {
      {"Region", &cc->region},
      {"RouteTableID", &cc->route_table_id},
      {"KubernetesClusterID", &cc->cluster_id},
      {"KubernetesClusterTag", &cc->cluster_tag},
      {"VPC", &cc->vpc},
      {"SubnetID", &cc->subnet_id},
      {"RoleARN", &cc->role_arn},
      {"ElbSecurityGroup", &cc->elb_security_group},
  };
  for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
    if (strcasecmp(name, strs[i].key) == 0)
      return cc_set(c, strs[i].slot, value) ? 1 : 0;
  if (strcasecmp(name, "DisableSecurityGroupIngress") == 0) {
    char *v = cc_value(c->api, value);
    bool ok = v != NULL && parse_bool(v, &cc->disable_sg_ingress);
    if (v == NULL)
      c->oom = true;
    else if (!ok && c->err[0] == '\0')
      snprintf(c->err, sizeof(c->err),
               "[Global] DisableSecurityGroupIngress: \"%s\" is not a "
               "boolean", v);
    c->api->free(v);
    return ok ? 1 : 0;
  }
  if (strcasecmp(name, "NodeIPFamilies") == 0) {
    char *v = cc_value(c->api, value);
    bool ok = v != NULL &&
              add_family(cc->families, &cc->n_families, v, why, sizeof(why));
    if (v == NULL)
      c->oom = true;
    else if (!ok && c->err[0] == '\0')
      snprintf(c->err, sizeof(c->err), "[Global] NodeIPFamilies: %s", why);
    c->api->free(v);
    return ok ? 1 : 0;
  }
  return 1; /* gcfg tolerates unknown keys (Zone, NLBSecurityGroupMode) */
}

/* The override for section key, created on first sight. */
static struct aws_override *cc_override(struct cc_ctx *c, const char *key) {
  struct aws_cloudconf *cc = c->cc;
  struct aws_override *o;
  for (size_t i = 0; i < cc->n_overrides; i++)
    if (strcmp(cc->overrides[i].key, key) == 0)
      return &cc->overrides[i];
  o = c->api->realloc(cc->overrides, (cc->n_overrides + 1) * sizeof(*o));
  if (o == NULL)
    return NULL;
  cc->overrides = o;
  o = &cc->overrides[cc->n_overrides];
  memset(o, 0, sizeof(*o));
  o->key = c->api->strdup(key);
  if (o->key == NULL)
    return NULL;
  cc->n_overrides++;
  return o;
}

static int cc_handler(void *user, const char *section, const char *name,
                      const char *value) {
  struct cc_ctx *c = user;
  const char *sub;
  struct aws_override *o;

  if (c->oom)
    return 0;
  if (strcasecmp(section, "Global") == 0)
    return cc_global(c, name, value);
  if (strncasecmp(section, "ServiceOverride", 15) != 0)
    return 1; /* another section: tolerated like unknown keys */
  sub = section + 15;
  while (*sub == ' ' || *sub == '\t')
    sub++;
  size_t n = strlen(sub);
  if (n < 3 || sub[0] != '"' || sub[n - 1] != '"') {
    if (c->err[0] == '\0')
      snprintf(c->err, sizeof(c->err),
               "[%s]: want [ServiceOverride \"N\"]", section);
    return 0;
  }
  char key[64];
  if (n - 2 >= sizeof(key)) {
    if (c->err[0] == '\0')
      snprintf(c->err, sizeof(c->err), "[%s]: name too long", section);
    return 0;
  }
  memcpy(key, sub + 1, n - 2);
  key[n - 2] = '\0';
  o = cc_override(c, key);
  if (o == NULL) {
    c->oom = true;
    return 0;
  }
  struct {
    const char *k;
    char **slot;
  } keys[] = {{"Service", &o->service},
              {"Region", &o->region},
              {"URL", &o->url},
              {"SigningRegion", &o->signing_region},
              {"SigningName", &o->signing_name},
              {"SigningMethod", &o->signing_method}};
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
    if (strcasecmp(name, keys[i].k) == 0)
      return cc_set(c, keys[i].slot, value) ? 1 : 0;
  return 1;
}

static bool blank(const char *s) {
  if (s == NULL)
    return true;
  while (*s != '\0' && isspace((unsigned char)*s))
    s++;
  return *s == '\0';
}

static int svc_from_label(const char *s) {
  for (int i = 0; i < AWS_SVC_COUNT; i++)
    if (strcmp(s, svc_labels[i]) == 0)
      return i;
  if (strcasecmp(s, "sts") == 0)
    return AWS_SVC_STS;
  return -1;
}

/* Upstream rules: Service, Region, URL and SigningRegion required; a
 * Service+Region pair unique; a known service; SigningMethod v4 or empty. */
static int cc_validate(const struct aws_cloudconf *cc, const char *path,
                       char *err, size_t errlen) {
  for (size_t i = 0; i < cc->n_overrides; i++) {
    const struct aws_override *o = &cc->overrides[i];
    const char *missing = blank(o->service)          ? "Service"
                          : blank(o->region)         ? "Region"
                          : blank(o->url)            ? "URL"
                          : blank(o->signing_region) ? "SigningRegion"
                                                     : NULL;
    char host[256];
    if (missing != NULL) {
      snprintf(err, errlen, "cloud.conf %s: [ServiceOverride \"%s\"]: %s is "
               "required", path, o->key, missing);
      return CCM_ERR_INVALID;
    }
    if (svc_from_label(o->service) < 0 && strcmp(o->service, "KMS") != 0) {
      snprintf(err, errlen, "cloud.conf %s: [ServiceOverride \"%s\"]: "
               "Service \"%s\" is not EC2, Elastic Load Balancing, Elastic "
               "Load Balancing v2, sts, ec2imds or KMS", path, o->key,
               o->service);
      return CCM_ERR_INVALID;
    }
    if (!aws_url_host(o->url, host, sizeof(host))) {
      snprintf(err, errlen, "cloud.conf %s: [ServiceOverride \"%s\"]: URL "
               "\"%s\" is not an http(s) URL", path, o->key, o->url);
      return CCM_ERR_INVALID;
    }
    if (!blank(o->signing_method) && strcasecmp(o->signing_method, "v4") &&
        strcasecmp(o->signing_method, "sigv4")) {
      snprintf(err, errlen, "cloud.conf %s: [ServiceOverride \"%s\"]: "
               "SigningMethod \"%s\" is not supported (v4 only)", path,
               o->key, o->signing_method);
      return CCM_ERR_INVALID;
    }
    for (size_t j = 0; j < i; j++) {
      const struct aws_override *p = &cc->overrides[j];
      if (strcmp(p->service, o->service) == 0 &&
          strcmp(p->region, o->region) == 0) {
        snprintf(err, errlen, "cloud.conf %s: [ServiceOverride \"%s\"]: "
                 "duplicate override for %s in %s (also in \"%s\")", path,
                 o->key, o->service, o->region, p->key);
        return CCM_ERR_INVALID;
      }
    }
  }
  return CCM_OK;
}

void aws_cloudconf_clear(const struct ccm_host_api *api,
                         struct aws_cloudconf *cc) {
  char **strs[] = {&cc->region,    &cc->route_table_id, &cc->cluster_id,
                   &cc->cluster_tag, &cc->vpc,          &cc->subnet_id,
                   &cc->role_arn,  &cc->elb_security_group};
  for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
    api->free(*strs[i]);
  for (size_t i = 0; i < cc->n_overrides; i++) {
    struct aws_override *o = &cc->overrides[i];
    api->free(o->key);
    api->free(o->service);
    api->free(o->region);
    api->free(o->url);
    api->free(o->signing_region);
    api->free(o->signing_name);
    api->free(o->signing_method);
  }
  api->free(cc->overrides);
  memset(cc, 0, sizeof(*cc));
}

int aws_cloudconf_parse(const struct ccm_host_api *api, const char *path,
                        struct aws_cloudconf *out, char *err, size_t errlen) {
  struct cc_ctx c;
  FILE *f;
  int line, rc;

  memset(out, 0, sizeof(*out));
  memset(&c, 0, sizeof(c));
  c.api = api;
  c.cc = out;
  f = fopen(path, "r");
  if (f == NULL) {
    snprintf(err, errlen, "cloud.conf %s: cannot open", path);
    return CCM_ERR_INVALID;
  }
  line = ini_parse_file(f, cc_handler, &c);
  fclose(f);
  if (c.oom) {
    snprintf(err, errlen, "cloud.conf %s: out of memory", path);
    rc = CCM_ERR_INTERNAL;
    goto fail;
  }
  if (line != 0) {
    snprintf(err, errlen, "cloud.conf %s:%d: %s", path, line,
             c.err[0] ? c.err : "syntax error");
    rc = CCM_ERR_INVALID;
    goto fail;
  }
  rc = cc_validate(out, path, err, errlen);
  if (rc != CCM_OK)
    goto fail;
  return CCM_OK;
fail:
  aws_cloudconf_clear(api, out);
  return rc;
}

/* ---- the libconfig group ------------------------------------------------- */

static int cfg_dup(const struct ccm_host_api *api,
                   const struct ccm_config *cfg, const char *path,
                   char **out, char *err, size_t errlen) {
  const char *s = NULL;
  int rc = api->cfg_string(cfg, path, &s);
  *out = NULL;
  if (rc == CCM_ERR_NOT_FOUND)
    return CCM_OK;
  if (rc != CCM_OK || s == NULL) {
    snprintf(err, errlen, "config %s: must be a string", path);
    return CCM_ERR_INVALID;
  }
  if (s[0] == '\0')
    return CCM_OK; /* empty means unset, as in cloud.conf */
  *out = api->strdup(s);
  if (*out == NULL) {
    snprintf(err, errlen, "config %s: out of memory", path);
    return CCM_ERR_INTERNAL;
  }
  return CCM_OK;
}

/* Take cc's string when the libconfig one is unset. */
static int merge(const struct ccm_host_api *api, char **slot,
                 const char *from_cc) {
  if (*slot != NULL || from_cc == NULL || from_cc[0] == '\0')
    return CCM_OK;
  *slot = api->strdup(from_cc);
  return *slot != NULL ? CCM_OK : CCM_ERR_INTERNAL;
}

int aws_config_load(const struct ccm_host_api *api, struct ccm_host *host,
                    struct aws_config *out, char *err, size_t errlen) {
  const struct ccm_config *root = api->cfg_root(host);
  struct {
    const char *key;
    char **slot;
  } strs[] = {{"region", &out->region},
              {"cluster_id", &out->cluster_id},
              {"role_arn", &out->role_arn},
              {"route_table_id", &out->route_table_id},
              {"vpc", &out->vpc},
              {"subnet_id", &out->subnet_id},
              {"elb_security_group", &out->elb_security_group},
              {"cloud_config", &out->cloud_config}};
  size_t n = 0;
  int64_t i64 = 0;
  bool b;
  int rc;

  memset(out, 0, sizeof(*out));
  for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
    rc = cfg_dup(api, root, strs[i].key, strs[i].slot, err, errlen);
    if (rc != CCM_OK)
      return rc;
  }
  rc = api->cfg_bool(root, "disable_security_group_ingress", &b);
  if (rc == CCM_OK) {
    out->disable_sg_ingress = b;
  } else if (rc != CCM_ERR_NOT_FOUND) {
    snprintf(err, errlen, "config disable_security_group_ingress: must be a "
             "boolean");
    return CCM_ERR_INVALID;
  }
  /* describe_batch_size = 1 asks EC2 once per node (the bench's
   * "without batching"); larger batches save calls at scale. */
  out->describe_batch = AWS_DESCRIBE_BATCH;
  rc = api->cfg_int(root, "describe_batch_size", &i64);
  if (rc == CCM_OK && i64 >= 1 && i64 <= AWS_DESCRIBE_BATCH) {
    out->describe_batch = (size_t)i64;
  } else if (rc != CCM_ERR_NOT_FOUND) {
    snprintf(err, errlen, "config describe_batch_size: must be an integer "
             "1..%d", AWS_DESCRIBE_BATCH);
    return CCM_ERR_INVALID;
  }
  rc = api->cfg_list_len(root, "node_ip_families", &n);
  if (rc != CCM_OK && rc != CCM_ERR_NOT_FOUND) {
    snprintf(err, errlen, "config node_ip_families: must be a list of "
             "\"ipv4\"/\"ipv6\"");
    return CCM_ERR_INVALID;
  }
  for (size_t i = 0; rc == CCM_OK && i < n; i++) {
    const char *s = NULL;
    char why[160];
    if (api->cfg_list_string(root, "node_ip_families", i, &s) != CCM_OK ||
        s == NULL) {
      snprintf(err, errlen, "config node_ip_families[%zu]: must be a string",
               i);
      return CCM_ERR_INVALID;
    }
    if (!add_family(out->families, &out->n_families, s, why, sizeof(why))) {
      snprintf(err, errlen, "config node_ip_families[%zu]: %s", i, why);
      return CCM_ERR_INVALID;
    }
  }
  for (int s = 0; s < AWS_SVC_COUNT; s++) {
    char path[32], host_part[256];
    snprintf(path, sizeof(path), "endpoints.%s", svc_keys[s]);
    rc = cfg_dup(api, root, path, &out->ep[s].url, err, errlen);
    if (rc != CCM_OK)
      return rc;
    if (out->ep[s].url != NULL &&
        !aws_url_host(out->ep[s].url, host_part, sizeof(host_part))) {
      snprintf(err, errlen, "config %s: \"%s\" is not an http(s) URL", path,
               out->ep[s].url);
      return CCM_ERR_INVALID;
    }
  }
  if (out->cloud_config != NULL) {
    rc = aws_cloudconf_parse(api, out->cloud_config, &out->cc, err, errlen);
    if (rc != CCM_OK)
      return rc;
  }
  rc = CCM_OK;
  if (rc == CCM_OK) rc = merge(api, &out->region, out->cc.region);
  if (rc == CCM_OK) rc = merge(api, &out->cluster_id, out->cc.cluster_id);
  if (rc == CCM_OK) rc = merge(api, &out->cluster_id, out->cc.cluster_tag);
  if (rc == CCM_OK) rc = merge(api, &out->role_arn, out->cc.role_arn);
  if (rc == CCM_OK)
    rc = merge(api, &out->route_table_id, out->cc.route_table_id);
  if (rc == CCM_OK) rc = merge(api, &out->vpc, out->cc.vpc);
  if (rc == CCM_OK) rc = merge(api, &out->subnet_id, out->cc.subnet_id);
  if (rc == CCM_OK)
    rc = merge(api, &out->elb_security_group, out->cc.elb_security_group);
  if (rc != CCM_OK) {
    snprintf(err, errlen, "config: out of memory");
    return rc;
  }
  if (out->cc.disable_sg_ingress)
    out->disable_sg_ingress = true;
  if (out->n_families == 0 && out->cc.n_families > 0) {
    memcpy(out->families, out->cc.families, sizeof(out->families));
    out->n_families = out->cc.n_families;
  }
  if (out->n_families == 0) {
    out->families[0] = CCM_IPV4;
    out->n_families = 1;
  }
  /* IMDS is needed before the region is known (it tells the region). */
  if (out->ep[AWS_SVC_IMDS].url == NULL) {
    const char *env = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    for (size_t i = 0; i < out->cc.n_overrides; i++) {
      const struct aws_override *o = &out->cc.overrides[i];
      if (strcmp(o->service, "ec2imds") == 0 &&
          (out->region == NULL || strcmp(o->region, out->region) == 0)) {
        out->ep[AWS_SVC_IMDS].url = api->strdup(o->url);
        break;
      }
    }
    if (out->ep[AWS_SVC_IMDS].url == NULL && env != NULL && env[0] != '\0')
      out->ep[AWS_SVC_IMDS].url = api->strdup(env);
    if (out->ep[AWS_SVC_IMDS].url == NULL)
      out->ep[AWS_SVC_IMDS].url = api->strdup(AWS_IMDS_DEFAULT);
    if (out->ep[AWS_SVC_IMDS].url == NULL) {
      snprintf(err, errlen, "config: out of memory");
      return CCM_ERR_INTERNAL;
    }
  }
  return CCM_OK;
}

int aws_config_resolve(const struct ccm_host_api *api, struct aws_config *cfg,
                       char *err, size_t errlen) {
  const char *suffix;

  if (cfg->region == NULL) {
    snprintf(err, errlen, "no region: set region in the config, Region in "
             "cloud.conf, or run where IMDS answers");
    return CCM_ERR_INVALID;
  }
  suffix = strncmp(cfg->region, "cn-", 3) == 0 ? "amazonaws.com.cn"
                                               : "amazonaws.com";
  for (int s = 0; s < AWS_SVC_COUNT; s++) {
    struct aws_endpoint *ep = &cfg->ep[s];
    char url[512];
    if (s == AWS_SVC_IMDS)
      continue;
    for (size_t i = 0; ep->url == NULL && i < cfg->cc.n_overrides; i++) {
      const struct aws_override *o = &cfg->cc.overrides[i];
      if (svc_from_label(o->service) != s ||
          strcmp(o->region, cfg->region) != 0)
        continue;
      ep->url = api->strdup(o->url);
      ep->signing_region = api->strdup(o->signing_region);
      if (!blank(o->signing_name))
        ep->signing_name = api->strdup(o->signing_name);
      if (ep->url == NULL || ep->signing_region == NULL)
        goto nomem;
    }
    if (ep->url != NULL)
      continue;
    switch (s) {
    case AWS_SVC_EC2:
      snprintf(url, sizeof(url), "https://ec2.%s.%s", cfg->region, suffix);
      break;
    case AWS_SVC_STS:
      snprintf(url, sizeof(url), "https://sts.%s.%s", cfg->region, suffix);
      break;
    default:
      snprintf(url, sizeof(url), "https://elasticloadbalancing.%s.%s",
               cfg->region, suffix);
      break;
    }
    ep->url = api->strdup(url);
    if (ep->url == NULL)
      goto nomem;
  }
  return CCM_OK;
nomem:
  snprintf(err, errlen, "config: out of memory");
  return CCM_ERR_INTERNAL;
}

void aws_config_clear(const struct ccm_host_api *api, struct aws_config *cfg) {
  char **strs[] = {&cfg->region,   &cfg->cluster_id,        &cfg->role_arn,
                   &cfg->route_table_id, &cfg->vpc,         &cfg->subnet_id,
                   &cfg->elb_security_group, &cfg->cloud_config};
  for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
    api->free(*strs[i]);
  for (int s = 0; s < AWS_SVC_COUNT; s++) {
    api->free(cfg->ep[s].url);
    api->free(cfg->ep[s].signing_region);
    api->free(cfg->ep[s].signing_name);
  }
  aws_cloudconf_clear(api, &cfg->cc);
  memset(cfg, 0, sizeof(*cfg));
}
