/*
 * aws_query.c: the AWS Query transport of the aws module: form-encoded
 * POSTs signed with SigV4 through api->http_do, XML responses walked with
 * libxml2 by element local names, error documents mapped to ccm statuses,
 * and bounded full-jitter retries on throttling, 5xx and transport errors.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libxml/parser.h>
#include <openssl/rand.h>

#include "aws.h"

/* ---- XML ----------------------------------------------------------------- */

xmlDoc *aws_xml_parse(const char *body, size_t len) {
  if (body == NULL || len == 0 || len > (size_t)0x7fffffff)
    return NULL;
  /* NONET: no fetches; no NOENT: entities are never substituted; NOERROR
   * and NOWARNING: libxml2 must not write to stderr (modules are guests). */
  return xmlReadMemory(body, (int)len, "aws-response.xml", NULL,
                       XML_PARSE_NONET | XML_PARSE_NOERROR |
                           XML_PARSE_NOWARNING);
}

static bool name_is(const xmlNode *n, const char *name) {
  return n->type == XML_ELEMENT_NODE &&
         (name == NULL || strcmp((const char *)n->name, name) == 0);
}

xmlNode *aws_xml_child(const xmlNode *node, const char *name) {
  if (node == NULL)
    return NULL;
  for (xmlNode *c = node->children; c != NULL; c = c->next)
    if (name_is(c, name))
      return c;
  return NULL;
}

xmlNode *aws_xml_next(const xmlNode *node, const char *name) {
  if (node == NULL)
    return NULL;
  for (xmlNode *c = node->next; c != NULL; c = c->next)
    if (name_is(c, name))
      return c;
  return NULL;
}

xmlNode *aws_xml_path(const xmlNode *node, const char *path) {
  xmlNode *cur = (xmlNode *)node;
  char part[128];

  while (cur != NULL && *path != '\0') {
    size_t n = strcspn(path, "/");
    if (n == 0 || n >= sizeof(part))
      return NULL;
    memcpy(part, path, n);
    part[n] = '\0';
    cur = aws_xml_child(cur, part);
    path += n;
    if (*path == '/')
      path++;
  }
  return cur;
}

bool aws_xml_text(const xmlNode *node, char *buf, size_t len) {
  size_t used = 0;

  if (node == NULL || len == 0)
    return false;
  for (xmlNode *c = node->children; c != NULL; c = c->next) {
    size_t n;
    if ((c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE) ||
        c->content == NULL)
      continue;
    n = strlen((const char *)c->content);
    if (used + n >= len)
      return false;
    memcpy(buf + used, c->content, n);
    used += n;
  }
  buf[used] = '\0';
  return true;
}

bool aws_xml_path_text(const xmlNode *node, const char *path, char *buf,
                       size_t len) {
  return aws_xml_text(aws_xml_path(node, path), buf, len);
}

char *aws_xml_path_dup(const struct ccm_host_api *api, const xmlNode *node,
                       const char *path) {
  xmlNode *n = aws_xml_path(node, path);
  struct aws_buf b;
  char *out;

  if (n == NULL)
    return NULL;
  aws_buf_init(&b, api);
  for (xmlNode *c = n->children; c != NULL; c = c->next)
    if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) &&
        c->content != NULL)
      aws_buf_adds(&b, (const char *)c->content);
  if (b.oom) {
    aws_buf_free(&b);
    return NULL;
  }
  out = api->strdup(aws_buf_str(&b));
  aws_buf_free(&b);
  return out;
}

/* ---- errors -------------------------------------------------------------- */

bool aws_error_parse(const char *body, size_t len, struct aws_error *out) {
  xmlDoc *doc = aws_xml_parse(body, len);
  xmlNode *root, *e = NULL;
  bool ok = false;

  out->code[0] = out->message[0] = out->request_id[0] = '\0';
  if (doc == NULL)
    return false;
  root = xmlDocGetRootElement(doc);
  if (root != NULL && strcmp((const char *)root->name, "Response") == 0) {
    e = aws_xml_path(root, "Errors/Error"); /* EC2 */
    aws_xml_path_text(root, "RequestID", out->request_id,
                      sizeof(out->request_id));
  } else if (root != NULL &&
             strcmp((const char *)root->name, "ErrorResponse") == 0) {
    e = aws_xml_child(root, "Error"); /* ELB, ELBv2, STS */
    aws_xml_path_text(root, "RequestId", out->request_id,
                      sizeof(out->request_id));
  }
  if (e != NULL && aws_xml_path_text(e, "Code", out->code,
                                     sizeof(out->code)) &&
      out->code[0] != '\0') {
    if (!aws_xml_path_text(e, "Message", out->message, sizeof(out->message)))
      out->message[0] = '\0';
    ok = true;
  }
  xmlFreeDoc(doc);
  return ok;
}

static bool code_in(const char *code, const char *const *list) {
  for (; *list != NULL; list++)
    if (strcmp(code, *list) == 0)
      return true;
  return false;
}

int aws_error_classify(long http_status, const char *code) {
  static const char *const throttle[] = {
      "Throttling", "ThrottlingException", "ThrottledException",
      "RequestThrottledException", "TooManyRequestsException",
      "ProvisionedThroughputExceededException",
      "TransactionInProgressException", "RequestLimitExceeded",
      "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled",
      "SlowDown", "PriorRequestNotComplete", "EC2ThrottledException", NULL};
  static const char *const transient[] = {
      "RequestTimeout", "RequestTimeoutException", "InternalError",
      "InternalFailure", "ServiceUnavailable", "Unavailable", NULL};
  static const char *const auth[] = {
      "AuthFailure", "InvalidClientTokenId", "SignatureDoesNotMatch",
      "IncompleteSignature", "MissingAuthenticationToken", "ExpiredToken",
      "ExpiredTokenException", "RequestExpired", "UnrecognizedClientException",
      "InvalidAccessKeyId", "AccessDenied", "AccessDeniedException",
      "UnauthorizedOperation", "InvalidIdentityToken", "IDPRejectedClaim",
      NULL};
  static const char *const invalid[] = {
      "ValidationError", "InvalidParameterValue", "InvalidParameter",
      "MissingParameter", "InvalidParameterCombination",
      "InvalidConfigurationRequest", "UnsupportedOperation",
      "InvalidInstanceID.Malformed", NULL};
  size_t n;

  if (http_status >= 200 && http_status < 300)
    return AWS_ERRC_OK;
  if (code != NULL && code[0] != '\0') {
    n = strlen(code);
    if (code_in(code, throttle))
      return AWS_ERRC_THROTTLE;
    if (code_in(code, transient))
      return AWS_ERRC_TRANSIENT;
    if (code_in(code, auth))
      return AWS_ERRC_AUTH;
    if (n >= 8 && strcmp(code + n - 8, "NotFound") == 0)
      return AWS_ERRC_NOT_FOUND;
    if (code_in(code, invalid))
      return AWS_ERRC_INVALID;
  }
  if (http_status == 0 || http_status == 500 || http_status == 502 ||
      http_status == 503 || http_status == 504)
    return AWS_ERRC_TRANSIENT;
  if (http_status == 429)
    return AWS_ERRC_THROTTLE;
  if (http_status == 401 || http_status == 403)
    return AWS_ERRC_AUTH;
  return AWS_ERRC_OTHER;
}

int aws_error_class_status(int err_class) {
  switch (err_class) {
  case AWS_ERRC_OK:
    return CCM_OK;
  case AWS_ERRC_THROTTLE:
    return CCM_ERR_THROTTLED;
  case AWS_ERRC_TRANSIENT:
    return CCM_ERR_RETRY;
  case AWS_ERRC_NOT_FOUND:
    return CCM_ERR_NOT_FOUND;
  case AWS_ERRC_AUTH:
    return CCM_ERR_AUTH;
  case AWS_ERRC_INVALID:
    return CCM_ERR_INVALID;
  default:
    return CCM_ERR_INTERNAL;
  }
}

uint32_t aws_backoff_ms(unsigned attempt, uint32_t rnd) {
  uint64_t ceil = AWS_RETRY_BASE_MS;
  for (unsigned i = 0; i < attempt && ceil < AWS_RETRY_CAP_MS; i++)
    ceil *= 2;
  if (ceil > AWS_RETRY_CAP_MS)
    ceil = AWS_RETRY_CAP_MS;
  return (uint32_t)(rnd % (ceil + 1));
}

/* Sleep ms in short steps; false when the call was cancelled. */
static bool nap(struct aws *aws, struct ccm_call *call, uint32_t ms) {
  while (ms > 0) {
    uint32_t step = ms > 100 ? 100 : ms;
    struct timespec ts = {0, (long)step * 1000000L};
    if (aws->api->call_cancelled(call))
      return false;
    nanosleep(&ts, NULL);
    ms -= step;
  }
  return !aws->api->call_cancelled(call);
}

/* ---- the request --------------------------------------------------------- */

static const char *url_path(const char *url) {
  const char *p = strstr(url, "://");
  p = p != NULL ? p + 3 : url;
  p += strcspn(p, "/?#");
  return *p == '/' ? p : "/";
}

/* One signed POST; *resp on CCM_OK. */
static int query_once(struct aws *aws, struct ccm_call *call,
                      enum aws_service svc, const struct aws_buf *body,
                      const struct aws_creds *creds,
                      struct ccm_http_response **resp) {
  const struct aws_endpoint *ep = &aws->cfg.ep[svc];
  const char *region = ep->signing_region ? ep->signing_region
                                          : aws->cfg.region;
  const char *signing = ep->signing_name ? ep->signing_name
                                         : aws_service_signing_name(svc);
  char host[256], date[17], path[512], authz[512];
  char h_host[300], h_date[40], h_authz[540];
  const char *sign_headers[3];
  const char *headers[6];
  struct aws_buf tok;
  size_t nh = 0, ns = 0;
  int rc;

  if (!aws_url_host(ep->url, host, sizeof(host))) {
    aws->api->call_set_error(call, "%s endpoint %s is not a URL",
                             aws_service_label(svc), ep->url);
    return CCM_ERR_INVALID;
  }
  snprintf(path, sizeof(path), "%.*s", (int)strcspn(url_path(ep->url), "?#"),
           url_path(ep->url));
  aws_amz_date(aws_now(), date);
  snprintf(h_host, sizeof(h_host), "Host:%s", host);
  snprintf(h_date, sizeof(h_date), "X-Amz-Date: %s", date);
  aws_buf_init(&tok, aws->api);
  headers[nh++] = "Content-Type: application/x-www-form-urlencoded; "
                  "charset=utf-8";
  headers[nh++] = h_date;
  sign_headers[ns++] = h_host;
  sign_headers[ns++] = h_date;
  if (creds != NULL && creds->token != NULL) {
    aws_buf_addf(&tok, "X-Amz-Security-Token: %s", creds->token);
    if (tok.oom) {
      rc = CCM_ERR_INTERNAL;
      goto out;
    }
    headers[nh++] = tok.data;
    sign_headers[ns++] = tok.data;
  }
  if (creds != NULL) {
    struct aws_sign_input in = {
        .method = "POST", .path = path, .query = NULL,
        .headers = sign_headers, .n_headers = ns,
        .payload = body->data, .payload_len = body->len,
        .amz_date = date, .region = region, .service = signing,
        .access_key = creds->access_key, .secret_key = creds->secret_key};
    rc = aws_sigv4_sign(aws->api, &in, authz, sizeof(authz), NULL, NULL);
    if (rc != CCM_OK) {
      aws->api->call_set_error(call, "%s: signing failed",
                               aws_service_label(svc));
      goto out;
    }
    snprintf(h_authz, sizeof(h_authz), "Authorization: %s", authz);
    headers[nh++] = h_authz;
  }
  headers[nh] = NULL;
  struct ccm_http_request req = {
      .struct_size = sizeof(req), .method = "POST", .url = ep->url,
      .headers = headers, .body = body->data, .body_len = body->len,
      .timeout_ms = 0, .body_is_secret = creds == NULL /* web identity */};
  rc = aws->api->http_do(aws->host, call, &req, resp);
out:
  aws_buf_free(&tok);
  return rc;
}

int aws_query_with(struct aws *aws, struct ccm_call *call,
                   enum aws_service svc, const char *action,
                   const struct aws_params *params,
                   const struct aws_creds *creds, xmlDoc **doc,
                   struct aws_error *err) {
  static const char *const versions[AWS_SVC_COUNT] = {
      AWS_EC2_VERSION, AWS_ELB_VERSION, AWS_ELBV2_VERSION, AWS_STS_VERSION,
      ""};
  const struct ccm_host_api *api = aws->api;
  struct aws_error local;
  struct aws_buf body;
  int rc = CCM_ERR_INTERNAL, cls = AWS_ERRC_OTHER;
  unsigned attempt;

  if (err == NULL)
    err = &local;
  memset(err, 0, sizeof(*err));
  *doc = NULL;
  aws_buf_init(&body, api);
  aws_buf_addf(&body, "Action=%s&Version=%s", action, versions[svc]);
  if (params != NULL && params->n > 0) {
    aws_buf_add(&body, "&", 1);
    aws_params_encode(params, &body);
  }
  if (body.oom || (params != NULL && params->oom)) {
    api->call_set_error(call, "%s %s: out of memory", aws_service_label(svc),
                        action);
    rc = CCM_ERR_INTERNAL;
    goto out;
  }
  for (attempt = 0; attempt < AWS_RETRY_ATTEMPTS; attempt++) {
    struct ccm_http_response *resp = NULL;
    uint32_t rnd = 0, wait;

    if (attempt > 0) {
      RAND_bytes((unsigned char *)&rnd, sizeof(rnd));
      wait = aws_backoff_ms(attempt - 1, rnd);
      /* Keep time for the request itself; stop retrying otherwise. */
      if (api->call_remaining_ms(call) < (int64_t)wait + 1000 ||
          !nap(aws, call, wait))
        break;
    }
    rc = query_once(aws, call, svc, &body, creds, &resp);
    if (rc == CCM_ERR_RETRY) { /* transport: timeout, refused, reset */
      err->http_status = 0;
      snprintf(err->code, sizeof(err->code), "transport");
      cls = AWS_ERRC_TRANSIENT;
      continue;
    }
    if (rc != CCM_OK)
      goto out; /* bad URL, TLS verification: retrying will not help */
    err->http_status = api->http_status(resp);
    size_t len = 0;
    const char *text = api->http_body(resp, &len);
    if (err->http_status >= 200 && err->http_status < 300) {
      *doc = aws_xml_parse(text, len);
      api->http_release(resp);
      if (*doc == NULL || xmlDocGetRootElement(*doc) == NULL) {
        if (*doc != NULL)
          xmlFreeDoc(*doc);
        *doc = NULL;
        api->call_set_error(call, "%s %s: HTTP %ld with a body that is not "
                            "XML", aws_service_label(svc), action,
                            err->http_status);
        rc = CCM_ERR_INTERNAL;
        goto out;
      }
      rc = CCM_OK;
      goto out;
    }
    if (!aws_error_parse(text, len, err))
      snprintf(err->code, sizeof(err->code), "HTTP%ld", err->http_status);
    api->http_release(resp);
    cls = aws_error_classify(err->http_status, err->code);
    if (cls != AWS_ERRC_THROTTLE && cls != AWS_ERRC_TRANSIENT)
      break;
  }
  rc = aws_error_class_status(cls);
  if (cls == AWS_ERRC_AUTH) {
    api->call_set_error(call, "%s %s: credentials from %s refused: %s",
                        aws_service_label(svc), action,
                        aws_cred_source_name(creds ? creds->source
                                                   : AWS_SRC_WEB_IDENTITY),
                        err->code);
  } else if (cls == AWS_ERRC_THROTTLE || cls == AWS_ERRC_TRANSIENT) {
    api->call_set_error(call, "%s %s: %s%s%s (gave up after %u attempts)",
                        aws_service_label(svc), action, err->code,
                        err->message[0] ? ": " : "", err->message, attempt);
    api->call_set_retry_after(call, AWS_RETRY_AFTER_MS);
  } else {
    api->call_set_error(call, "%s %s: %s%s%s", aws_service_label(svc), action,
                        err->code, err->message[0] ? ": " : "",
                        err->message);
  }
out:
  aws_buf_free(&body);
  return rc;
}

int aws_query(struct aws *aws, struct ccm_call *call, enum aws_service svc,
              const char *action, const struct aws_params *params,
              xmlDoc **doc, struct aws_error *err) {
  struct aws_creds creds;
  struct aws_error local;
  int rc;

  if (err == NULL)
    err = &local;
  for (int round = 0; round < 2; round++) {
    bool temporary;
    rc = aws_creds_get(aws, call, &creds);
    if (rc != CCM_OK)
      return rc;
    rc = aws_query_with(aws, call, svc, action, params, &creds, doc, err);
    temporary = creds.expires != 0;
    aws_creds_clear(aws->api, &creds);
    if (rc != CCM_ERR_AUTH)
      break;
    /* Expired or revoked under us: read the chain again next time, and
     * now once more when the refused credentials were temporary ones. */
    aws_creds_invalidate(aws);
    if (!temporary)
      break;
  }
  return rc;
}
