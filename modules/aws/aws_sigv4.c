/*
 * aws_sigv4.c: AWS Signature Version 4 (AWS4-HMAC-SHA256) on OpenSSL's
 * HMAC and SHA-256: canonical request, string to sign, signing key and the
 * Authorization value. It never logs and never keeps a secret.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "aws.h"

#define SIG_MAX_HEADERS 32
#define SIG_MAX_QUERY 64

static void hex_encode(const unsigned char *in, size_t n, char *out) {
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hex[in[i] >> 4];
    out[2 * i + 1] = hex[in[i] & 15];
  }
  out[2 * n] = '\0';
}

void aws_sha256_hex(const void *data, size_t len, char out[65]) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(data != NULL ? data : (const void *)"", len, md);
  hex_encode(md, sizeof(md), out);
}

void aws_amz_date(int64_t unix_s, char out[17]) {
  time_t t = (time_t)unix_s;
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

bool aws_url_host(const char *url, char *out, size_t len) {
  const char *p, *end;
  size_t n;
  bool https;

  if (strncmp(url, "https://", 8) == 0) {
    https = true;
    p = url + 8;
  } else if (strncmp(url, "http://", 7) == 0) {
    https = false;
    p = url + 7;
  } else {
    return false;
  }
  end = p + strcspn(p, "/?#");
  n = (size_t)(end - p);
  if (n == 0 || n >= len || memchr(p, '@', n) != NULL)
    return false;
  memcpy(out, p, n);
  out[n] = '\0';
  /* curl sends Host without the scheme's default port. */
  if (https && n > 4 && strcmp(out + n - 4, ":443") == 0)
    out[n - 4] = '\0';
  else if (!https && n > 3 && strcmp(out + n - 3, ":80") == 0)
    out[n - 3] = '\0';
  return true;
}

/* ---- canonical pieces ---------------------------------------------------- */

struct sig_pair {
  char *name;
  struct aws_buf value;
};

static int pair_cmp(const void *a, const void *b) {
  const struct sig_pair *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  return c != 0 ? c : strcmp(aws_buf_str((struct aws_buf *)&x->value),
                             aws_buf_str((struct aws_buf *)&y->value));
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Decode %XX (and '+' stays '+') of s[0..n) into out, then URI-encode. */
static void add_reencoded(struct aws_buf *out, const char *s, size_t n) {
  struct aws_buf raw;
  aws_buf_init(&raw, out->api);
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 &&
        hexval(s[i + 2]) >= 0) {
      char c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
      aws_buf_add(&raw, &c, 1);
      i += 2;
    } else {
      aws_buf_add(&raw, &s[i], 1);
    }
  }
  if (raw.oom)
    out->oom = true;
  aws_buf_add_uri(out, aws_buf_str(&raw), raw.len, false);
  aws_buf_free(&raw);
}

static void pairs_free(struct sig_pair *p, size_t n,
                       const struct ccm_host_api *api) {
  for (size_t i = 0; i < n; i++) {
    api->free(p[i].name);
    aws_buf_free(&p[i].value);
  }
}

static int canonical_query(const struct ccm_host_api *api, const char *q,
                           struct aws_buf *out) {
  struct sig_pair pairs[SIG_MAX_QUERY];
  size_t n = 0;
  int rc = CCM_OK;

  while (q != NULL && *q != '\0') {
    size_t len = strcspn(q, "&");
    const char *eq = memchr(q, '=', len);
    size_t klen = eq != NULL ? (size_t)(eq - q) : len;
    struct aws_buf k;

    if (len > 0) {
      if (n == SIG_MAX_QUERY) {
        rc = CCM_ERR_INVALID;
        goto out;
      }
      aws_buf_init(&k, api);
      add_reencoded(&k, q, klen);
      aws_buf_init(&pairs[n].value, api);
      if (eq != NULL)
        add_reencoded(&pairs[n].value, eq + 1, len - klen - 1);
      pairs[n].name = api->strdup(aws_buf_str(&k));
      if (k.oom || pairs[n].value.oom || pairs[n].name == NULL)
        rc = CCM_ERR_INTERNAL;
      aws_buf_free(&k);
      n++;
      if (rc != CCM_OK)
        goto out;
    }
    q += len;
    if (*q == '&')
      q++;
  }
  qsort(pairs, n, sizeof(pairs[0]), pair_cmp);
  for (size_t i = 0; i < n; i++) {
    if (i > 0)
      aws_buf_add(out, "&", 1);
    aws_buf_adds(out, pairs[i].name);
    aws_buf_add(out, "=", 1);
    aws_buf_adds(out, aws_buf_str(&pairs[i].value));
  }
out:
  pairs_free(pairs, n, api);
  return rc;
}

/* Trimmed value with runs of spaces collapsed to one. */
static void add_trimmed(struct aws_buf *out, const char *v) {
  bool space = false, started = false;
  for (; *v != '\0'; v++) {
    if (*v == ' ' || *v == '\t') {
      space = started;
      continue;
    }
    if (space)
      aws_buf_add(out, " ", 1);
    space = false;
    started = true;
    aws_buf_add(out, v, 1);
  }
}

/* Fill pairs from "Name:value" lines: lowercase names, duplicates joined
 * with ',' in order, sorted by name. */
static int canonical_headers(const struct ccm_host_api *api,
                             const char *const *headers, size_t n_headers,
                             struct sig_pair *pairs, size_t *n_pairs) {
  size_t n = 0;
  for (size_t i = 0; i < n_headers; i++) {
    const char *colon = strchr(headers[i], ':');
    char name[128];
    size_t nlen, j;

    if (colon == NULL)
      return CCM_ERR_INVALID;
    nlen = (size_t)(colon - headers[i]);
    while (nlen > 0 && headers[i][nlen - 1] == ' ')
      nlen--;
    if (nlen == 0 || nlen >= sizeof(name))
      return CCM_ERR_INVALID;
    for (j = 0; j < nlen; j++)
      name[j] = (char)tolower((unsigned char)headers[i][j]);
    name[nlen] = '\0';
    for (j = 0; j < n; j++)
      if (strcmp(pairs[j].name, name) == 0)
        break;
    if (j == n) {
      if (n == SIG_MAX_HEADERS)
        return CCM_ERR_INVALID;
      pairs[n].name = api->strdup(name);
      aws_buf_init(&pairs[n].value, api);
      if (pairs[n].name == NULL)
        return CCM_ERR_INTERNAL;
      n++;
      *n_pairs = n;
    } else {
      aws_buf_add(&pairs[j].value, ",", 1);
    }
    add_trimmed(&pairs[j].value, colon + 1);
    if (pairs[j].value.oom)
      return CCM_ERR_INTERNAL;
  }
  qsort(pairs, n, sizeof(pairs[0]), pair_cmp);
  return CCM_OK;
}

static void hmac(const void *key, size_t klen, const char *msg,
                 unsigned char out[32]) {
  unsigned int len = 32;
  HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg),
       out, &len);
}

int aws_sigv4_sign(const struct ccm_host_api *api,
                   const struct aws_sign_input *in, char *authz,
                   size_t authz_len, char **creq_out, char **sts_out) {
  struct sig_pair hdrs[SIG_MAX_HEADERS];
  size_t n_hdrs = 0;
  struct aws_buf creq, sts, signed_names, key_text;
  char date[9], payload_hash[65], creq_hash[65], sig_hex[65];
  unsigned char k1[32], k2[32], k3[32], k4[32], sig[32];
  const char *path = in->path != NULL && in->path[0] ? in->path : "/";
  int rc, n;

  if (in->amz_date == NULL || strlen(in->amz_date) != 16)
    return CCM_ERR_INVALID;
  memcpy(date, in->amz_date, 8);
  date[8] = '\0';
  aws_buf_init(&creq, api);
  aws_buf_init(&sts, api);
  aws_buf_init(&signed_names, api);
  aws_buf_init(&key_text, api);

  rc = canonical_headers(api, in->headers, in->n_headers, hdrs, &n_hdrs);
  if (rc != CCM_OK)
    goto out;
  aws_buf_adds(&creq, in->method);
  aws_buf_add(&creq, "\n", 1);
  aws_buf_add_uri(&creq, path, strlen(path), true);
  aws_buf_add(&creq, "\n", 1);
  rc = canonical_query(api, in->query, &creq);
  if (rc != CCM_OK)
    goto out;
  aws_buf_add(&creq, "\n", 1);
  for (size_t i = 0; i < n_hdrs; i++) {
    aws_buf_addf(&creq, "%s:%s\n", hdrs[i].name,
                 aws_buf_str(&hdrs[i].value));
    if (i > 0)
      aws_buf_add(&signed_names, ";", 1);
    aws_buf_adds(&signed_names, hdrs[i].name);
  }
  aws_buf_add(&creq, "\n", 1);
  aws_buf_adds(&creq, aws_buf_str(&signed_names));
  aws_buf_add(&creq, "\n", 1);
  aws_sha256_hex(in->payload, in->payload_len, payload_hash);
  aws_buf_adds(&creq, payload_hash);
  if (creq.oom || signed_names.oom) {
    rc = CCM_ERR_INTERNAL;
    goto out;
  }

  aws_sha256_hex(creq.data, creq.len, creq_hash);
  aws_buf_addf(&sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s",
               in->amz_date, date, in->region, in->service, creq_hash);
  aws_buf_addf(&key_text, "AWS4%s", in->secret_key);
  if (sts.oom || key_text.oom) {
    rc = CCM_ERR_INTERNAL;
    goto out;
  }
  hmac(key_text.data, key_text.len, date, k1);
  hmac(k1, 32, in->region, k2);
  hmac(k2, 32, in->service, k3);
  hmac(k3, 32, "aws4_request", k4);
  hmac(k4, 32, aws_buf_str(&sts), sig);
  hex_encode(sig, 32, sig_hex);

  n = snprintf(authz, authz_len,
               "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, "
               "SignedHeaders=%s, Signature=%s",
               in->access_key, date, in->region, in->service,
               aws_buf_str(&signed_names), sig_hex);
  if (n < 0 || (size_t)n >= authz_len) {
    rc = CCM_ERR_INVALID;
    goto out;
  }
  if (creq_out != NULL) {
    *creq_out = creq.data;
    creq.data = NULL;
  }
  if (sts_out != NULL) {
    *sts_out = sts.data;
    sts.data = NULL;
  }
  rc = CCM_OK;
out:
  OPENSSL_cleanse(k1, sizeof(k1));
  OPENSSL_cleanse(k4, sizeof(k4));
  if (key_text.data != NULL)
    OPENSSL_cleanse(key_text.data, key_text.len);
  pairs_free(hdrs, n_hdrs, api);
  aws_buf_free(&creq);
  aws_buf_free(&sts);
  aws_buf_free(&signed_names);
  aws_buf_free(&key_text);
  return rc;
}
