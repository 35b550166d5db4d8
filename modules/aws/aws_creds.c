/*
 * aws_creds.c: the aws module's credential chain (environment, shared
 * files with profiles, web identity through STS, the IMDSv2 instance role)
 * with optional STS AssumeRole on top, and the IMDSv2 client. Every secret
 * is registered with api->secret_add; no secret ever goes into a message.
 * Network calls are made without holding the instance mutex.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <ini.h>

#include "aws.h"

#define AWS_TOKEN_FILE_MAX (64 * 1024)

const char *aws_cred_source_name(int source) {
  switch (source) {
  case AWS_SRC_ENV:
    return "environment";
  case AWS_SRC_PROFILE:
    return "shared credentials/config file";
  case AWS_SRC_WEB_IDENTITY:
    return "web identity";
  case AWS_SRC_IMDS:
    return "IMDS instance role";
  case AWS_SRC_ASSUME_ROLE:
    return "assumed role (role_arn)";
  default:
    return "no source";
  }
}

void aws_creds_clear(const struct ccm_host_api *api, struct aws_creds *c) {
  api->free(c->access_key);
  api->free(c->secret_key);
  api->free(c->token);
  memset(c, 0, sizeof(*c));
}

static char *dup_or_null(const struct ccm_host_api *api, const char *s,
                         bool *oom) {
  char *d;
  if (s == NULL)
    return NULL;
  d = api->strdup(s);
  if (d == NULL)
    *oom = true;
  return d;
}

int aws_creds_copy(const struct ccm_host_api *api, const struct aws_creds *src,
                   struct aws_creds *dst) {
  bool oom = false;
  memset(dst, 0, sizeof(*dst));
  dst->access_key = dup_or_null(api, src->access_key, &oom);
  dst->secret_key = dup_or_null(api, src->secret_key, &oom);
  dst->token = dup_or_null(api, src->token, &oom);
  dst->expires = src->expires;
  dst->source = src->source;
  if (oom) {
    aws_creds_clear(api, dst);
    return CCM_ERR_INTERNAL;
  }
  return CCM_OK;
}

static int creds_set(const struct ccm_host_api *api, struct aws_creds *out,
                     const char *ak, const char *sk, const char *tok,
                     int64_t expires, int source) {
  struct aws_creds in = {(char *)ak, (char *)sk,
                         (char *)(tok != NULL && tok[0] ? tok : NULL),
                         expires, source};
  return aws_creds_copy(api, &in, out);
}

/* ---- environment --------------------------------------------------------- */

static const char *env(const char *name) {
  const char *v = getenv(name);
  return v != NULL && v[0] != '\0' ? v : NULL;
}

int aws_creds_from_env(const struct ccm_host_api *api, struct aws_creds *out,
                       char *err, size_t errlen) {
  const char *ak = env("AWS_ACCESS_KEY_ID"), *sk = env("AWS_SECRET_ACCESS_KEY");

  if (ak == NULL)
    ak = env("AWS_ACCESS_KEY");
  if (sk == NULL)
    sk = env("AWS_SECRET_KEY");
  if (ak == NULL && sk == NULL)
    return CCM_ERR_NOT_FOUND;
  if (ak == NULL || sk == NULL) {
    snprintf(err, errlen, "environment: %s is set but %s is not",
             ak ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
             ak ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
    return CCM_ERR_AUTH;
  }
  if (creds_set(api, out, ak, sk, env("AWS_SESSION_TOKEN"), 0,
                AWS_SRC_ENV) != CCM_OK) {
    snprintf(err, errlen, "environment: out of memory");
    return CCM_ERR_INTERNAL;
  }
  return CCM_OK;
}

/* ---- shared files -------------------------------------------------------- */

struct prof_ctx {
  const struct ccm_host_api *api;
  const char *want; /* section name wanted */
  const char *want2; /* another accepted name, or NULL */
  char *ak, *sk, *tok;
  bool oom;
};

static int prof_handler(void *user, const char *section, const char *name,
                        const char *value) {
  struct prof_ctx *c = user;
  char **slot = NULL;

  if (strcmp(section, c->want) != 0 &&
      (c->want2 == NULL || strcmp(section, c->want2) != 0))
    return 1;
  if (strcasecmp(name, "aws_access_key_id") == 0)
    slot = &c->ak;
  else if (strcasecmp(name, "aws_secret_access_key") == 0)
    slot = &c->sk;
  else if (strcasecmp(name, "aws_session_token") == 0)
    slot = &c->tok;
  if (slot == NULL)
    return 1;
  c->api->free(*slot);
  *slot = c->api->strdup(value);
  if (*slot == NULL)
    c->oom = true;
  return 1;
}

/* Read one file; CCM_ERR_NOT_FOUND when the file or the keys are absent. */
static int prof_file(const struct ccm_host_api *api, const char *path,
                     const char *want, const char *want2, const char *profile,
                     struct aws_creds *out, char *err, size_t errlen) {
  struct prof_ctx c = {api, want, want2, NULL, NULL, NULL, false};
  FILE *f = fopen(path, "r");
  int line, rc = CCM_ERR_NOT_FOUND;

  if (f == NULL)
    return CCM_ERR_NOT_FOUND;
  line = ini_parse_file(f, prof_handler, &c);
  fclose(f);
  if (c.oom) {
    snprintf(err, errlen, "%s: out of memory", path);
    rc = CCM_ERR_INTERNAL;
  } else if (line != 0) {
    snprintf(err, errlen, "%s:%d: syntax error", path, line);
    rc = CCM_ERR_AUTH;
  } else if (c.ak != NULL && c.sk != NULL) {
    rc = creds_set(api, out, c.ak, c.sk, c.tok, 0, AWS_SRC_PROFILE);
    if (rc != CCM_OK)
      snprintf(err, errlen, "%s: out of memory", path);
  } else if (c.ak != NULL || c.sk != NULL) {
    snprintf(err, errlen, "%s: profile %s has %s but not %s", path, profile,
             c.ak ? "aws_access_key_id" : "aws_secret_access_key",
             c.ak ? "aws_secret_access_key" : "aws_access_key_id");
    rc = CCM_ERR_AUTH;
  }
  if (c.sk != NULL)
    memset(c.sk, 0, strlen(c.sk));
  api->free(c.ak);
  api->free(c.sk);
  api->free(c.tok);
  return rc;
}

int aws_creds_from_profile(const struct ccm_host_api *api,
                           struct aws_creds *out, char *err, size_t errlen) {
  const char *profile = env("AWS_PROFILE"), *home = env("HOME");
  const char *cred_file = env("AWS_SHARED_CREDENTIALS_FILE");
  const char *conf_file = env("AWS_CONFIG_FILE");
  char path[1024], section[300];
  int rc;

  if (profile == NULL)
    profile = env("AWS_DEFAULT_PROFILE");
  if (profile == NULL)
    profile = "default";
  if (cred_file == NULL && home != NULL) {
    snprintf(path, sizeof(path), "%s/.aws/credentials", home);
    cred_file = path;
  }
  if (cred_file != NULL) {
    rc = prof_file(api, cred_file, profile, NULL, profile, out, err, errlen);
    if (rc != CCM_ERR_NOT_FOUND)
      return rc;
  }
  if (conf_file == NULL && home != NULL) {
    snprintf(path, sizeof(path), "%s/.aws/config", home);
    conf_file = path;
  }
  if (conf_file == NULL)
    return CCM_ERR_NOT_FOUND;
  snprintf(section, sizeof(section), "profile %s", profile);
  return prof_file(api, conf_file, section,
                   strcmp(profile, "default") == 0 ? "default" : NULL,
                   profile, out, err, errlen);
}

/* ---- STS ----------------------------------------------------------------- */

static int64_t parse_time(const char *s) {
  struct tm tm;
  int y, mo, d, h, mi, sec;
  memset(&tm, 0, sizeof(tm));
  if (s == NULL || sscanf(s, "%d-%d-%dT%d:%d:%d", &y, &mo, &d, &h, &mi,
                          &sec) != 6)
    return 0;
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  return (int64_t)timegm(&tm);
}

/* <XResponse><XResult><Credentials>... of AssumeRole*. */
static int sts_creds(struct aws *aws, struct ccm_call *call, xmlDoc *doc,
                     const char *result, int source, struct aws_creds *out) {
  xmlNode *c = aws_xml_path(xmlDocGetRootElement(doc), result);
  char *ak, *sk, *tok, *exp;
  int rc = CCM_ERR_INTERNAL;

  c = aws_xml_child(c, "Credentials");
  ak = aws_xml_path_dup(aws->api, c, "AccessKeyId");
  sk = aws_xml_path_dup(aws->api, c, "SecretAccessKey");
  tok = aws_xml_path_dup(aws->api, c, "SessionToken");
  exp = aws_xml_path_dup(aws->api, c, "Expiration");
  if (ak != NULL && sk != NULL && ak[0] && sk[0])
    rc = creds_set(aws->api, out, ak, sk, tok, parse_time(exp), source);
  else
    aws->api->call_set_error(call, "STS %s: no Credentials in the answer",
                             result);
  aws->api->free(ak);
  aws->api->free(sk);
  aws->api->free(tok);
  aws->api->free(exp);
  return rc;
}

static int web_identity(struct aws *aws, struct ccm_call *call,
                        const char *token_file, const char *role,
                        struct aws_creds *out) {
  const struct ccm_host_api *api = aws->api;
  const char *session = env("AWS_ROLE_SESSION_NAME");
  struct aws_params p;
  xmlDoc *doc = NULL;
  char *token = NULL;
  size_t n = 0;
  FILE *f;
  int rc;

  f = fopen(token_file, "r");
  if (f == NULL) {
    api->call_set_error(call, "web identity: cannot read "
                        "AWS_WEB_IDENTITY_TOKEN_FILE %s", token_file);
    return CCM_ERR_AUTH;
  }
  token = api->alloc(AWS_TOKEN_FILE_MAX + 1);
  if (token != NULL)
    n = fread(token, 1, AWS_TOKEN_FILE_MAX, f);
  fclose(f);
  if (token == NULL)
    return CCM_ERR_INTERNAL;
  while (n > 0 && (token[n - 1] == '\n' || token[n - 1] == '\r' ||
                   token[n - 1] == ' '))
    n--;
  token[n] = '\0';
  if (n == 0) {
    api->free(token);
    api->call_set_error(call, "web identity: token file %s is empty",
                        token_file);
    return CCM_ERR_AUTH;
  }
  api->secret_add(aws->host, token);
  aws_params_init(&p, api);
  aws_params_add(&p, "RoleArn", role);
  aws_params_add(&p, "RoleSessionName", session ? session : "ccm-aws");
  aws_params_add(&p, "WebIdentityToken", token);
  rc = aws_query_with(aws, call, AWS_SVC_STS, "AssumeRoleWithWebIdentity", &p,
                      NULL, &doc, NULL);
  aws_params_clear(&p);
  memset(token, 0, n);
  api->free(token);
  if (rc != CCM_OK)
    return rc;
  rc = sts_creds(aws, call, doc, "AssumeRoleWithWebIdentityResult",
                 AWS_SRC_WEB_IDENTITY, out);
  xmlFreeDoc(doc);
  return rc;
}

static int assume_role(struct aws *aws, struct ccm_call *call,
                       const struct aws_creds *base, struct aws_creds *out) {
  struct aws_params p;
  xmlDoc *doc = NULL;
  int rc;

  aws_params_init(&p, aws->api);
  aws_params_add(&p, "RoleArn", aws->cfg.role_arn);
  aws_params_add(&p, "RoleSessionName", "ccm-aws");
  rc = aws_query_with(aws, call, AWS_SVC_STS, "AssumeRole", &p, base, &doc,
                      NULL);
  aws_params_clear(&p);
  if (rc != CCM_OK)
    return rc;
  rc = sts_creds(aws, call, doc, "AssumeRoleResult", AWS_SRC_ASSUME_ROLE,
                 out);
  xmlFreeDoc(doc);
  return rc;
}

/* ---- IMDSv2 -------------------------------------------------------------- */

bool aws_imds_disabled(const struct aws *aws) {
  const char *v = env("AWS_EC2_METADATA_DISABLED");
  (void)aws;
  return v != NULL && strcasecmp(v, "true") == 0;
}

static int imds_request(struct aws *aws, struct ccm_call *call,
                        const char *method, const char *path,
                        const char *header, long *status, char **body) {
  const struct ccm_host_api *api = aws->api;
  const char *headers[2] = {header, NULL};
  struct ccm_http_response *resp = NULL;
  char url[1024];
  const char *text;
  size_t len = 0;
  int rc;

  snprintf(url, sizeof(url), "%s%s", aws->cfg.ep[AWS_SVC_IMDS].url, path);
  struct ccm_http_request req = {
      .struct_size = sizeof(req), .method = method, .url = url,
      .headers = headers, .body = NULL, .body_len = 0,
      .timeout_ms = AWS_IMDS_TIMEOUT_MS, .body_is_secret = true};
  rc = api->http_do(aws->host, call, &req, &resp);
  if (rc != CCM_OK)
    return rc;
  *status = api->http_status(resp);
  text = api->http_body(resp, &len);
  *body = api->alloc(len + 1);
  if (*body == NULL) {
    api->http_release(resp);
    return CCM_ERR_INTERNAL;
  }
  if (len > 0)
    memcpy(*body, text, len);
  (*body)[len] = '\0';
  api->http_release(resp);
  return CCM_OK;
}

/* A session token, cached until shortly before its TTL ends. */
static int imds_token(struct aws *aws, struct ccm_call *call, bool fresh,
                      char **out) {
  const struct ccm_host_api *api = aws->api;
  char hdr[80];
  long status = 0;
  char *body = NULL;
  int rc;

  pthread_mutex_lock(&aws->mu);
  if (!fresh && aws->imds_token != NULL &&
      aws->imds_token_expires > aws_now() + 60) {
    *out = api->strdup(aws->imds_token);
    pthread_mutex_unlock(&aws->mu);
    return *out != NULL ? CCM_OK : CCM_ERR_INTERNAL;
  }
  pthread_mutex_unlock(&aws->mu);
  snprintf(hdr, sizeof(hdr), "X-aws-ec2-metadata-token-ttl-seconds: %d",
           AWS_IMDS_TOKEN_TTL);
  rc = imds_request(aws, call, "PUT", "/latest/api/token", hdr, &status,
                    &body);
  if (rc != CCM_OK)
    return rc;
  if (status != 200 || body[0] == '\0') {
    api->call_set_error(call, "IMDS token: HTTP %ld", status);
    api->free(body);
    return status >= 500 ? CCM_ERR_RETRY : CCM_ERR_AUTH;
  }
  api->secret_add(aws->host, body);
  pthread_mutex_lock(&aws->mu);
  api->free(aws->imds_token);
  aws->imds_token = api->strdup(body);
  aws->imds_token_expires = aws_now() + AWS_IMDS_TOKEN_TTL;
  pthread_mutex_unlock(&aws->mu);
  *out = body;
  return CCM_OK;
}

int aws_imds_get(struct aws *aws, struct ccm_call *call, const char *path,
                 char **out) {
  const struct ccm_host_api *api = aws->api;
  char hdr[1200];
  long status = 0;
  int rc;

  *out = NULL;
  if (aws_imds_disabled(aws)) {
    api->call_set_error(call, "IMDS is disabled (AWS_EC2_METADATA_DISABLED)");
    return CCM_ERR_NOT_FOUND;
  }
  for (int tries = 0; tries < 2; tries++) {
    char *tok = NULL, *body = NULL;
    rc = imds_token(aws, call, tries > 0, &tok);
    if (rc != CCM_OK)
      return rc;
    snprintf(hdr, sizeof(hdr), "X-aws-ec2-metadata-token: %s", tok);
    api->free(tok);
    rc = imds_request(aws, call, "GET", path, hdr, &status, &body);
    memset(hdr, 0, sizeof(hdr));
    if (rc != CCM_OK)
      return rc;
    if (status == 200) {
      *out = body;
      return CCM_OK;
    }
    api->free(body);
    if (status != 401)
      break; /* 401: the token expired under us; get a new one once */
  }
  api->call_set_error(call, "IMDS GET %s: HTTP %ld", path, status);
  return status == 404 ? CCM_ERR_NOT_FOUND
                       : status >= 500 ? CCM_ERR_RETRY : CCM_ERR_AUTH;
}

static int imds_role_creds(struct aws *aws, struct ccm_call *call,
                           struct aws_creds *out) {
  const char *base = "/latest/meta-data/iam/security-credentials/";
  char path[512], *list = NULL, *doc = NULL;
  cJSON *j = NULL;
  int rc;

  rc = aws_imds_get(aws, call, base, &list);
  if (rc != CCM_OK)
    return rc;
  list[strcspn(list, "\r\n")] = '\0';
  if (list[0] == '\0' || strchr(list, '/') != NULL) {
    aws->api->call_set_error(call, "IMDS: the instance has no IAM role");
    aws->api->free(list);
    return CCM_ERR_AUTH;
  }
  snprintf(path, sizeof(path), "%s%s", base, list);
  aws->api->free(list);
  rc = aws_imds_get(aws, call, path, &doc);
  if (rc != CCM_OK)
    return rc;
  j = cJSON_Parse(doc);
  memset(doc, 0, strlen(doc));
  aws->api->free(doc);
  const char *ak = cJSON_GetStringValue(cJSON_GetObjectItem(j, "AccessKeyId"));
  const char *sk =
      cJSON_GetStringValue(cJSON_GetObjectItem(j, "SecretAccessKey"));
  const char *tok = cJSON_GetStringValue(cJSON_GetObjectItem(j, "Token"));
  const char *exp = cJSON_GetStringValue(cJSON_GetObjectItem(j, "Expiration"));
  const char *code = cJSON_GetStringValue(cJSON_GetObjectItem(j, "Code"));
  if (ak == NULL || sk == NULL || (code != NULL && strcmp(code, "Success"))) {
    aws->api->call_set_error(call, "IMDS role credentials: %s",
                             code ? code : "malformed document");
    rc = CCM_ERR_AUTH;
  } else {
    rc = creds_set(aws->api, out, ak, sk, tok, parse_time(exp), AWS_SRC_IMDS);
  }
  cJSON_Delete(j);
  return rc;
}

/* ---- the chain ----------------------------------------------------------- */

static int chain_resolve(struct aws *aws, struct ccm_call *call,
                         struct aws_creds *out) {
  char err[AWS_ERR];
  const char *wi_file = env("AWS_WEB_IDENTITY_TOKEN_FILE");
  const char *wi_role = env("AWS_ROLE_ARN");
  int rc;

  err[0] = '\0';
  rc = aws_creds_from_env(aws->api, out, err, sizeof(err));
  if (rc == CCM_ERR_NOT_FOUND)
    rc = aws_creds_from_profile(aws->api, out, err, sizeof(err));
  if (rc != CCM_ERR_NOT_FOUND) {
    if (rc != CCM_OK)
      aws->api->call_set_error(call, "credentials: %s", err);
    return rc;
  }
  if (wi_file != NULL && wi_role != NULL)
    return web_identity(aws, call, wi_file, wi_role, out);
  if (aws_imds_disabled(aws)) {
    aws->api->call_set_error(call, "no AWS credentials: none in the "
                             "environment, the shared files or web identity,"
                             " and IMDS is disabled");
    return CCM_ERR_AUTH;
  }
  rc = imds_role_creds(aws, call, out);
  if (rc == CCM_ERR_NOT_FOUND)
    rc = CCM_ERR_AUTH;
  return rc;
}

static bool fresh_enough(const struct aws_creds *c) {
  return c->access_key != NULL &&
         (c->expires == 0 || c->expires > aws_now() + AWS_CREDS_REFRESH_S);
}

static void register_secrets(struct aws *aws, const struct aws_creds *c) {
  aws->api->secret_add(aws->host, c->secret_key);
  if (c->token != NULL)
    aws->api->secret_add(aws->host, c->token);
}

/* Cached creds in slot, or fetch through get() without the lock held. */
static int cached(struct aws *aws, struct ccm_call *call,
                  struct aws_creds *slot, const struct aws_creds *base,
                  struct aws_creds *out) {
  struct aws_creds fresh;
  int rc;

  pthread_mutex_lock(&aws->mu);
  if (fresh_enough(slot)) {
    rc = aws_creds_copy(aws->api, slot, out);
    pthread_mutex_unlock(&aws->mu);
    return rc;
  }
  pthread_mutex_unlock(&aws->mu);
  memset(&fresh, 0, sizeof(fresh));
  rc = base != NULL ? assume_role(aws, call, base, &fresh)
                    : chain_resolve(aws, call, &fresh);
  if (rc != CCM_OK)
    return rc;
  register_secrets(aws, &fresh);
  pthread_mutex_lock(&aws->mu);
  aws_creds_clear(aws->api, slot);
  rc = aws_creds_copy(aws->api, &fresh, slot);
  pthread_mutex_unlock(&aws->mu);
  *out = fresh;
  return CCM_OK;
}

int aws_creds_get(struct aws *aws, struct ccm_call *call,
                  struct aws_creds *out) {
  struct aws_creds base;
  int rc;

  memset(out, 0, sizeof(*out));
  rc = cached(aws, call, &aws->base, NULL, &base);
  if (rc != CCM_OK || aws->cfg.role_arn == NULL) {
    if (rc == CCM_OK)
      *out = base;
    return rc;
  }
  rc = cached(aws, call, &aws->role, &base, out);
  aws_creds_clear(aws->api, &base);
  return rc;
}

void aws_creds_invalidate(struct aws *aws) {
  pthread_mutex_lock(&aws->mu);
  aws_creds_clear(aws->api, &aws->base);
  aws_creds_clear(aws->api, &aws->role);
  pthread_mutex_unlock(&aws->mu);
}
