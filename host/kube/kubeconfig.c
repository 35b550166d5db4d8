/*
 * kubeconfig.c: kubeconfig (libyaml document API), in-cluster and --master
 * resolution into a struct kube_conn. It only reads local files; every
 * token and key it reads is registered with log_secret_add at once.
 */
#include "kube/kubeconfig.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <yaml.h>

#include "util/log.h"
#include "util/mem.h"

#define CCM_KUBECONFIG_FILE_MAX (4u << 20)

/* ---- small helpers ---------------------------------------------------- */

static void kc_err(char *err, size_t errlen, const char *fmt, ...)
    CCM_PRINTF(3, 4);

static void kc_err(char *err, size_t errlen, const char *fmt, ...)
{
  va_list ap;

  if (err == NULL || errlen == 0)
    return;
  va_start(ap, fmt);
  log_vformat(err, errlen, fmt, ap);
  va_end(ap);
}

/* Read a whole small file into a NUL-terminated mem_* buffer. */
static char *kc_read_file(const char *path, size_t *len, char *err,
                          size_t errlen)
{
  FILE *f = NULL;
  char *buf = NULL;
  size_t cap = 4096, n = 0, got;

  f = fopen(path, "rb");
  if (f == NULL) {
    kc_err(err, errlen, "%s: %s", path, strerror(errno));
    goto fail;
  }
  buf = mem_alloc(cap);
  if (buf == NULL)
    goto oom;
  for (;;) {
    if (n + 1 >= cap) {
      char *nb;

      if (cap >= CCM_KUBECONFIG_FILE_MAX) {
        kc_err(err, errlen, "%s: file too large", path);
        goto fail;
      }
      nb = mem_realloc(buf, cap * 2);
      if (nb == NULL)
        goto oom;
      buf = nb;
      cap *= 2;
    }
    got = fread(buf + n, 1, cap - n - 1, f);
    n += got;
    if (got == 0)
      break;
  }
  if (ferror(f)) {
    kc_err(err, errlen, "%s: read error", path);
    goto fail;
  }
  fclose(f);
  buf[n] = '\0';
  if (len != NULL)
    *len = n;
  return buf;
oom:
  kc_err(err, errlen, "%s: out of memory", path);
fail:
  if (f != NULL)
    fclose(f);
  mem_free(buf);
  return NULL;
}

char *kubeconfig_base64_decode(const char *in, size_t *outlen)
{
  char *clean = NULL, *out = NULL;
  size_t n = 0, i, pad = 0;
  int got;

  clean = mem_alloc(strlen(in) + 1);
  if (clean == NULL)
    goto fail;
  for (i = 0; in[i] != '\0'; i++) {
    if (!isspace((unsigned char)in[i]))
      clean[n++] = in[i];
  }
  clean[n] = '\0';
  if (n % 4 != 0)
    goto fail;
  /* EVP_DecodeBlock reads '=' anywhere as zero bits: padding may only be
   * the last one or two characters. */
  for (i = 0; i < n; i++) {
    if (clean[i] == '=' && i + 2 < n)
      goto fail;
  }
  if (n >= 2 && clean[n - 2] == '=' && clean[n - 1] != '=')
    goto fail;
  out = mem_alloc(n / 4 * 3 + 1);
  if (out == NULL)
    goto fail;
  if (n > 0) {
    got = EVP_DecodeBlock((unsigned char *)out, (unsigned char *)clean,
                          (int)n);
    if (got < 0)
      goto fail;
    if (clean[n - 1] == '=')
      pad++;
    if (n > 1 && clean[n - 2] == '=')
      pad++;
    n = (size_t)got - pad;
  }
  out[n] = '\0';
  if (outlen != NULL)
    *outlen = n;
  mem_free(clean);
  return out;
fail:
  mem_free(clean);
  mem_free(out);
  return NULL;
}

/* A token goes into an HTTP header: a control character (CR, LF, ...)
 * would split it into other headers. */
static bool kc_token_ok(const char *tok)
{
  const unsigned char *p;

  for (p = (const unsigned char *)tok; *p != '\0'; p++) {
    if (*p < 0x20 || *p == 0x7f)
      return false;
  }
  return true;
}

/* A server URL may carry credentials ("https://user:pass@host"); the URL
 * is logged, so register them before anything prints it. */
static void kc_register_userinfo(const char *url)
{
  const char *p = strstr(url, "://"), *end, *at, *colon;
  char *ui;

  if (p == NULL)
    return;
  p += 3;
  end = p + strcspn(p, "/?#");
  at = NULL;
  for (colon = p; colon < end; colon++) {
    if (*colon == '@')
      at = colon;
  }
  if (at == NULL)
    return;
  ui = mem_strndup(p, (size_t)(at - p));
  if (ui == NULL) {
    /* Fail closed: the log withholds text it cannot redact. */
    log_secret_add(url);
    return;
  }
  log_secret_add(ui);
  colon = strchr(ui, ':');
  if (colon != NULL)
    log_secret_add(colon + 1);
  memset(ui, 0, strlen(ui));
  mem_free(ui);
}

char *kubeconfig_read_token(const char *path, char *err, size_t errlen)
{
  char *buf, *s, *e;
  size_t len;

  buf = kc_read_file(path, &len, err, errlen);
  if (buf == NULL)
    return NULL;
  s = buf;
  while (*s != '\0' && isspace((unsigned char)*s))
    s++;
  e = buf + len;
  while (e > s && isspace((unsigned char)e[-1]))
    e--;
  *e = '\0';
  if (s != buf)
    memmove(buf, s, (size_t)(e - s) + 1);
  if (buf[0] == '\0') {
    kc_err(err, errlen, "%s: token file is empty", path);
    mem_free(buf);
    return NULL;
  }
  log_secret_add(buf);
  if (!kc_token_ok(buf)) {
    kc_err(err, errlen, "%s: token contains a control character", path);
    mem_free(buf);
    return NULL;
  }
  return buf;
}

void kube_conn_clear(struct kube_conn *c)
{
  if (c == NULL)
    return;
  mem_free(c->server);
  mem_free(c->ca_file);
  mem_free(c->ca_data);
  mem_free(c->cert_file);
  mem_free(c->cert_data);
  mem_free(c->key_file);
  mem_free(c->key_data);
  mem_free(c->token);
  mem_free(c->token_file);
  mem_free(c->ns);
  mem_free(c->source);
  memset(c, 0, sizeof *c);
}

/* ---- YAML document walking -------------------------------------------- */

static yaml_node_t *kc_map_get(yaml_document_t *doc, yaml_node_t *map,
                               const char *key)
{
  yaml_node_pair_t *p;

  if (map == NULL || map->type != YAML_MAPPING_NODE)
    return NULL;
  for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
       p++) {
    yaml_node_t *k = yaml_document_get_node(doc, p->key);

    if (k != NULL && k->type == YAML_SCALAR_NODE &&
        strcmp((const char *)k->data.scalar.value, key) == 0)
      return yaml_document_get_node(doc, p->value);
  }
  return NULL;
}

/* A scalar value, or NULL when absent, null or not a scalar. */
static const char *kc_scalar(yaml_document_t *doc, yaml_node_t *map,
                             const char *key)
{
  yaml_node_t *n = kc_map_get(doc, map, key);
  const char *v;

  if (n == NULL || n->type != YAML_SCALAR_NODE)
    return NULL;
  v = (const char *)n->data.scalar.value;
  if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
      (strcmp(v, "null") == 0 || strcmp(v, "~") == 0 || v[0] == '\0'))
    return NULL;
  return v;
}

/* In list `section`, the entry with name == name; returns its `inner` map. */
static yaml_node_t *kc_named(yaml_document_t *doc, yaml_node_t *root,
                             const char *section, const char *inner,
                             const char *name)
{
  yaml_node_t *list = kc_map_get(doc, root, section);
  yaml_node_item_t *it;

  if (list == NULL || list->type != YAML_SEQUENCE_NODE)
    return NULL;
  for (it = list->data.sequence.items.start;
       it < list->data.sequence.items.top; it++) {
    yaml_node_t *e = yaml_document_get_node(doc, *it);
    const char *n = kc_scalar(doc, e, "name");

    if (n != NULL && strcmp(n, name) == 0) {
      yaml_node_t *m = kc_map_get(doc, e, inner);

      return m != NULL ? m : e; /* an empty entry still exists */
    }
  }
  return NULL;
}

/* Paths in a kubeconfig are relative to the file's directory. */
static char *kc_path(const char *kcpath, const char *p)
{
  const char *slash;
  size_t dlen, plen;
  char *out;

  if (p[0] == '/')
    return mem_strdup(p);
  slash = strrchr(kcpath, '/');
  if (slash == NULL)
    return mem_strdup(p);
  dlen = (size_t)(slash - kcpath);
  plen = strlen(p);
  out = mem_alloc(dlen + 1 + plen + 1);
  if (out == NULL)
    return NULL;
  memcpy(out, kcpath, dlen);
  out[dlen] = '/';
  memcpy(out + dlen + 1, p, plen + 1);
  return out;
}

static bool kc_true(const char *v)
{
  return v != NULL && (strcmp(v, "true") == 0 || strcmp(v, "True") == 0 ||
                       strcmp(v, "TRUE") == 0);
}

static char *kc_strip_slash(char *s)
{
  size_t n;

  if (s == NULL)
    return NULL;
  n = strlen(s);
  while (n > 0 && s[n - 1] == '/')
    s[--n] = '\0';
  return s;
}

/* Decode one *-data field into out/len; registers it when secret. */
static int kc_data(const char *path, const char *field, const char *b64,
                   bool secret, char **out, size_t *len, char *err,
                   size_t errlen)
{
  if (secret)
    log_secret_add(b64);
  *out = kubeconfig_base64_decode(b64, len);
  if (*out == NULL) {
    kc_err(err, errlen, "%s: %s is not valid base64", path, field);
    return -1;
  }
  if (secret)
    log_secret_add(*out);
  return 0;
}

/* A user that authenticates only through something we do not implement
 * would otherwise reach the server anonymously and get a puzzling 401 or
 * 403: name the entry instead. */
static int kc_unsupported_auth(yaml_document_t *doc, yaml_node_t *user,
                               const char *path, const char *uname,
                               const struct kube_conn *out, char *err,
                               size_t errlen)
{
  static const char *const unsupported[] = {"exec", "auth-provider",
                                            "username", "password"};

  if (out->token != NULL || out->token_file != NULL ||
      out->cert_data != NULL || out->cert_file != NULL)
    return 0;
  for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++) {
    if (kc_map_get(doc, user, unsupported[i]) != NULL) {
      kc_err(err, errlen,
             "%s: user \"%s\" authenticates with \"%s\", which ccm-host "
             "does not support; use token, tokenFile or a client "
             "certificate", path, uname, unsupported[i]);
      return -1;
    }
  }
  return 0;
}

static int kc_resolve_doc(const char *path, yaml_document_t *doc,
                          const char *context, unsigned flags,
                          struct kube_conn *out, char *err, size_t errlen)
{
  yaml_node_t *root = yaml_document_get_root_node(doc);
  yaml_node_t *ctx, *cluster, *user = NULL;
  const char *ctxname, *cname, *uname, *v;

  if (root == NULL || root->type != YAML_MAPPING_NODE) {
    kc_err(err, errlen, "%s: not a kubeconfig (expected a mapping)", path);
    return -1;
  }
  ctxname = context != NULL ? context : kc_scalar(doc, root,
                                                  "current-context");
  if (ctxname == NULL) {
    kc_err(err, errlen, "%s: no current-context set and no --context given",
           path);
    return -1;
  }
  ctx = kc_named(doc, root, "contexts", "context", ctxname);
  if (ctx == NULL) {
    kc_err(err, errlen, "%s: context \"%s\" not found", path, ctxname);
    return -1;
  }
  cname = kc_scalar(doc, ctx, "cluster");
  if (cname == NULL) {
    kc_err(err, errlen, "%s: context \"%s\" names no cluster", path,
           ctxname);
    return -1;
  }
  cluster = kc_named(doc, root, "clusters", "cluster", cname);
  if (cluster == NULL) {
    kc_err(err, errlen, "%s: cluster \"%s\" (context \"%s\") not found", path,
           cname, ctxname);
    return -1;
  }
  uname = kc_scalar(doc, ctx, "user");
  if (uname != NULL) {
    user = kc_named(doc, root, "users", "user", uname);
    if (user == NULL) {
      kc_err(err, errlen, "%s: user \"%s\" (context \"%s\") not found", path,
             uname, ctxname);
      return -1;
    }
  }

  v = kc_scalar(doc, cluster, "server");
  if (v == NULL) {
    kc_err(err, errlen, "%s: cluster \"%s\" has no server", path, cname);
    return -1;
  }
  kc_register_userinfo(v);
  out->server = kc_strip_slash(mem_strdup(v));
  if (out->server == NULL)
    goto oom;
  /* A quoted "" or a lone "/" is no server either. */
  if (out->server[0] == '\0') {
    kc_err(err, errlen, "%s: cluster \"%s\" has an empty server", path,
           cname);
    return -1;
  }
  out->insecure = kc_true(kc_scalar(doc, cluster, "insecure-skip-tls-verify"));
  v = kc_scalar(doc, cluster, "certificate-authority-data");
  if (v != NULL) {
    if (kc_data(path, "certificate-authority-data", v, false, &out->ca_data,
                &out->ca_len, err, errlen) != 0)
      return -1;
  } else {
    v = kc_scalar(doc, cluster, "certificate-authority");
    if (v != NULL) {
      out->ca_file = kc_path(path, v);
      if (out->ca_file == NULL)
        goto oom;
    }
  }
  v = kc_scalar(doc, ctx, "namespace");
  if (v != NULL) {
    out->ns = mem_strdup(v);
    if (out->ns == NULL)
      goto oom;
  }

  if (user != NULL) {
    v = kc_scalar(doc, user, "client-certificate-data");
    if (v != NULL) {
      if (kc_data(path, "client-certificate-data", v, false, &out->cert_data,
                  &out->cert_len, err, errlen) != 0)
        return -1;
    } else {
      v = kc_scalar(doc, user, "client-certificate");
      if (v != NULL) {
        out->cert_file = kc_path(path, v);
        if (out->cert_file == NULL)
          goto oom;
      }
    }
    v = kc_scalar(doc, user, "client-key-data");
    if (v != NULL) {
      if (kc_data(path, "client-key-data", v, true, &out->key_data,
                  &out->key_len, err, errlen) != 0)
        return -1;
    } else {
      v = kc_scalar(doc, user, "client-key");
      if (v != NULL) {
        out->key_file = kc_path(path, v);
        if (out->key_file == NULL)
          goto oom;
      }
    }
    if ((out->cert_data != NULL || out->cert_file != NULL) !=
        (out->key_data != NULL || out->key_file != NULL)) {
      kc_err(err, errlen,
             "%s: user \"%s\" has a client certificate without a key or a "
             "key without a certificate", path, uname);
      return -1;
    }
    v = kc_scalar(doc, user, "token");
    if (v != NULL) {
      log_secret_add(v);
      if (!kc_token_ok(v)) {
        kc_err(err, errlen, "%s: user \"%s\": token contains a control "
               "character", path, uname);
        return -1;
      }
      out->token = mem_strdup(v);
      if (out->token == NULL)
        goto oom;
    } else {
      v = kc_scalar(doc, user, "tokenFile");
      if (v != NULL) {
        out->token_file = kc_path(path, v);
        if (out->token_file == NULL)
          goto oom;
        if ((flags & CCM_KUBECONFIG_NO_FILES) == 0) {
          out->token = kubeconfig_read_token(out->token_file, err, errlen);
          if (out->token == NULL)
            return -1;
        }
      }
    }
    if (kc_unsupported_auth(doc, user, path, uname, out, err, errlen) != 0)
      return -1;
  }
  return 0;
oom:
  kc_err(err, errlen, "%s: out of memory", path);
  return -1;
}

int kubeconfig_parse(const char *text, size_t len, const char *path,
                     const char *context, unsigned flags,
                     struct kube_conn *out, char *err, size_t errlen)
{
  yaml_parser_t parser;
  yaml_document_t doc;
  bool have_parser = false, have_doc = false;
  int rc = -1;

  memset(out, 0, sizeof *out);
  if (!yaml_parser_initialize(&parser)) {
    kc_err(err, errlen, "%s: cannot initialise the YAML parser", path);
    goto fail;
  }
  have_parser = true;
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  if (!yaml_parser_load(&parser, &doc)) {
    kc_err(err, errlen, "%s:%lu:%lu: YAML error: %s%s%s", path,
           (unsigned long)parser.problem_mark.line + 1,
           (unsigned long)parser.problem_mark.column + 1,
           parser.problem != NULL ? parser.problem : "malformed",
           parser.context != NULL ? " " : "",
           parser.context != NULL ? parser.context : "");
    goto fail;
  }
  have_doc = true;
  if (kc_resolve_doc(path, &doc, context, flags, out, err, errlen) != 0)
    goto fail;
  out->source = mem_strdup(path);
  if (out->source == NULL) {
    kc_err(err, errlen, "%s: out of memory", path);
    goto fail;
  }
  rc = 0;
fail:
  if (have_doc)
    yaml_document_delete(&doc);
  if (have_parser)
    yaml_parser_delete(&parser);
  if (rc != 0)
    kube_conn_clear(out);
  return rc;
}

int kubeconfig_load(const char *path, const char *context,
                    struct kube_conn *out, char *err, size_t errlen)
{
  char *text;
  size_t len = 0;
  int rc;

  memset(out, 0, sizeof *out);
  text = kc_read_file(path, &len, err, errlen);
  if (text == NULL)
    return -1;
  rc = kubeconfig_parse(text, len, path, context, 0, out, err, errlen);
  mem_free(text);
  return rc;
}

static char *kc_join(const char *dir, const char *name)
{
  size_t a = strlen(dir), b = strlen(name);
  char *out = mem_alloc(a + 1 + b + 1);

  if (out == NULL)
    return NULL;
  memcpy(out, dir, a);
  out[a] = '/';
  memcpy(out + a + 1, name, b + 1);
  return out;
}

int kubeconfig_in_cluster(struct kube_conn *out, char *err, size_t errlen)
{
  const char *host = getenv("KUBERNETES_SERVICE_HOST");
  const char *port = getenv("KUBERNETES_SERVICE_PORT");
  const char *dir = getenv("CCM_SERVICEACCOUNT_DIR");
  struct stat st;
  char url[512];

  memset(out, 0, sizeof *out);
  if (host == NULL || host[0] == '\0' || port == NULL || port[0] == '\0') {
    kc_err(err, errlen, "in-cluster: KUBERNETES_SERVICE_HOST and "
           "KUBERNETES_SERVICE_PORT must be set (or give --kubeconfig or "
           "--master)");
    return -1;
  }
  if (dir == NULL || dir[0] == '\0')
    dir = CCM_KUBECONFIG_SA_DIR;
  if (strchr(host, ':') != NULL)
    snprintf(url, sizeof url, "https://[%s]:%s", host, port);
  else
    snprintf(url, sizeof url, "https://%s:%s", host, port);
  out->server = mem_strdup(url);
  out->token_file = kc_join(dir, "token");
  out->ca_file = kc_join(dir, "ca.crt");
  out->source = mem_strdup("in-cluster");
  if (out->server == NULL || out->token_file == NULL || out->ca_file == NULL ||
      out->source == NULL) {
    kc_err(err, errlen, "in-cluster: out of memory");
    goto fail;
  }
  out->token = kubeconfig_read_token(out->token_file, err, errlen);
  if (out->token == NULL)
    goto fail;
  if (stat(out->ca_file, &st) != 0) {
    kc_err(err, errlen, "in-cluster: %s: %s", out->ca_file, strerror(errno));
    goto fail;
  }
  return 0;
fail:
  kube_conn_clear(out);
  return -1;
}

int kubeconfig_resolve(const char *kubeconfig, const char *context,
                       const char *master, struct kube_conn *out,
                       char *err, size_t errlen)
{
  char *s;

  if (kubeconfig != NULL && kubeconfig[0] != '\0') {
    if (kubeconfig_load(kubeconfig, context, out, err, errlen) != 0)
      return -1;
  } else if (master == NULL || master[0] == '\0') {
    return kubeconfig_in_cluster(out, err, errlen);
  } else {
    memset(out, 0, sizeof *out);
    out->source = mem_strdup("--master");
    if (out->source == NULL)
      goto oom;
  }
  if (master != NULL && master[0] != '\0') {
    kc_register_userinfo(master);
    s = kc_strip_slash(mem_strdup(master));
    if (s == NULL)
      goto oom;
    mem_free(out->server);
    out->server = s;
  }
  return 0;
oom:
  kc_err(err, errlen, "out of memory");
  kube_conn_clear(out);
  return -1;
}
