/*
 * lab_state.c: the lab provider's durable state (load balancers and routes):
 * records, JSON (de)serialisation and the atomically written state file.
 * It takes no locks (callers hold lab.mu) and never starts empty on a file
 * it cannot read or parse: that would hand out addresses twice.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "lab.h"

/* ---- records ---------------------------------------------------------- */

void lab_lb_free(const struct ccm_host_api *api, struct lab_lb *lb) {
  if (lb == NULL)
    return;
  api->free(lb->name);
  api->free(lb->service);
  api->free(lb->uid);
  for (size_t i = 0; i < lb->n_nodes; i++)
    api->free(lb->nodes[i]);
  api->free(lb->nodes);
  for (size_t i = 0; i < lb->n_ports; i++)
    api->free(lb->ports[i].name);
  api->free(lb->ports);
  api->free(lb);
}

struct lab_lb *lab_lb_clone(const struct ccm_host_api *api,
                            const struct lab_lb *lb) {
  struct lab_lb *c = api->calloc(1, sizeof(*c));
  if (c == NULL)
    return NULL;
  c->name = api->strdup(lb->name);
  c->service = api->strdup(lb->service);
  c->uid = api->strdup(lb->uid);
  if (c->name == NULL || c->service == NULL || c->uid == NULL)
    goto fail;
  memcpy(c->ips, lb->ips, sizeof(c->ips));
  c->n_ips = lb->n_ips;
  if (lb->n_nodes > 0) {
    c->nodes = api->calloc(lb->n_nodes, sizeof(*c->nodes));
    if (c->nodes == NULL)
      goto fail;
    for (; c->n_nodes < lb->n_nodes; c->n_nodes++) {
      c->nodes[c->n_nodes] = api->strdup(lb->nodes[c->n_nodes]);
      if (c->nodes[c->n_nodes] == NULL)
        goto fail;
    }
  }
  if (lb->n_ports > 0) {
    c->ports = api->calloc(lb->n_ports, sizeof(*c->ports));
    if (c->ports == NULL)
      goto fail;
    for (; c->n_ports < lb->n_ports; c->n_ports++) {
      c->ports[c->n_ports] = lb->ports[c->n_ports];
      c->ports[c->n_ports].name = api->strdup(lb->ports[c->n_ports].name);
      if (c->ports[c->n_ports].name == NULL)
        goto fail;
    }
  }
  return c;
fail:
  lab_lb_free(api, c);
  return NULL;
}

static bool str_eq(const char *a, const char *b) {
  return strcmp(a != NULL ? a : "", b != NULL ? b : "") == 0;
}

bool lab_lb_equal(const struct lab_lb *a, const struct lab_lb *b) {
  if (!str_eq(a->name, b->name) || !str_eq(a->service, b->service) ||
      !str_eq(a->uid, b->uid) || a->n_ips != b->n_ips ||
      a->n_nodes != b->n_nodes || a->n_ports != b->n_ports)
    return false;
  for (size_t i = 0; i < a->n_ips; i++)
    if (!lab_addr_equal(&a->ips[i], &b->ips[i]))
      return false;
  for (size_t i = 0; i < a->n_nodes; i++)
    if (!str_eq(a->nodes[i], b->nodes[i]))
      return false;
  for (size_t i = 0; i < a->n_ports; i++) {
    const struct lab_port *p = &a->ports[i], *q = &b->ports[i];
    if (!str_eq(p->name, q->name) || p->protocol != q->protocol ||
        p->port != q->port || p->node_port != q->node_port)
      return false;
  }
  return true;
}

void lab_route_free(const struct ccm_host_api *api, struct lab_route *r) {
  if (r == NULL)
    return;
  api->free(r->cluster);
  api->free(r->name);
  api->free(r->target_node);
  api->free(r->cidr);
  api->free(r);
}

void lab_state_clear(const struct ccm_host_api *api, struct lab_state *st) {
  for (size_t i = 0; i < st->n_lbs; i++)
    lab_lb_free(api, st->lbs[i]);
  api->free(st->lbs);
  for (size_t i = 0; i < st->n_routes; i++)
    lab_route_free(api, st->routes[i]);
  api->free(st->routes);
  memset(st, 0, sizeof(*st));
}

long lab_state_find_lb(const struct lab_state *st, const char *name) {
  for (size_t i = 0; i < st->n_lbs; i++)
    if (strcmp(st->lbs[i]->name, name) == 0)
      return (long)i;
  return -1;
}

long lab_state_find_route(const struct lab_state *st, const char *cluster,
                          const char *name) {
  for (size_t i = 0; i < st->n_routes; i++)
    if (strcmp(st->routes[i]->cluster, cluster) == 0 &&
        strcmp(st->routes[i]->name, name) == 0)
      return (long)i;
  return -1;
}

const struct lab_lb *lab_state_holder(const struct lab_state *st,
                                      const struct lab_addr *a) {
  for (size_t i = 0; i < st->n_lbs; i++)
    for (size_t j = 0; j < st->lbs[i]->n_ips; j++)
      if (lab_addr_equal(&st->lbs[i]->ips[j], a))
        return st->lbs[i];
  return NULL;
}

/* Grow a pointer array by one slot; the arrays are exact-sized. */
static int grow(const struct ccm_host_api *api, void ***arr, size_t n) {
  void **p = api->realloc(*arr, (n + 1) * sizeof(*p));
  if (p == NULL)
    return CCM_ERR_INTERNAL;
  *arr = p;
  return CCM_OK;
}

static int insert_at(const struct ccm_host_api *api, void ***arr, size_t *n,
                     size_t index, void *item) {
  if (grow(api, arr, *n) != CCM_OK)
    return CCM_ERR_INTERNAL;
  if (index > *n)
    index = *n;
  memmove(&(*arr)[index + 1], &(*arr)[index], (*n - index) * sizeof(void *));
  (*arr)[index] = item;
  (*n)++;
  return CCM_OK;
}

static void *take_at(void **arr, size_t *n, size_t index) {
  void *item = arr[index];
  memmove(&arr[index], &arr[index + 1], (*n - index - 1) * sizeof(void *));
  (*n)--;
  return item;
}

int lab_state_put_lb(const struct ccm_host_api *api, struct lab_state *st,
                     long index, struct lab_lb *lb, struct lab_lb **old) {
  *old = NULL;
  if (index >= 0) {
    *old = st->lbs[index];
    st->lbs[index] = lb;
    return CCM_OK;
  }
  return insert_at(api, (void ***)&st->lbs, &st->n_lbs, st->n_lbs, lb);
}

struct lab_lb *lab_state_take_lb(struct lab_state *st, size_t index) {
  return take_at((void **)st->lbs, &st->n_lbs, index);
}

int lab_state_insert_lb(const struct ccm_host_api *api, struct lab_state *st,
                        size_t index, struct lab_lb *lb) {
  return insert_at(api, (void ***)&st->lbs, &st->n_lbs, index, lb);
}

int lab_state_put_route(const struct ccm_host_api *api, struct lab_state *st,
                        long index, struct lab_route *r,
                        struct lab_route **old) {
  *old = NULL;
  if (index >= 0) {
    *old = st->routes[index];
    st->routes[index] = r;
    return CCM_OK;
  }
  return insert_at(api, (void ***)&st->routes, &st->n_routes, st->n_routes,
                   r);
}

struct lab_route *lab_state_take_route(struct lab_state *st, size_t index) {
  return take_at((void **)st->routes, &st->n_routes, index);
}

int lab_state_insert_route(const struct ccm_host_api *api,
                           struct lab_state *st, size_t index,
                           struct lab_route *r) {
  return insert_at(api, (void ***)&st->routes, &st->n_routes, index, r);
}

/* ---- JSON out --------------------------------------------------------- */

static const char *proto_name(uint32_t p) {
  switch (p) {
  case CCM_PROTO_UDP:
    return "UDP";
  case CCM_PROTO_SCTP:
    return "SCTP";
  default:
    return "TCP";
  }
}

static cJSON *lb_to_json(const struct lab_lb *lb) {
  char ip[LAB_ADDR_TEXT];
  cJSON *o = cJSON_CreateObject();
  if (o == NULL)
    return NULL;
  cJSON *ips = cJSON_CreateArray(), *nodes = cJSON_CreateArray(),
        *ports = cJSON_CreateArray();
  if (ips == NULL || nodes == NULL || ports == NULL) {
    cJSON_Delete(ips);
    cJSON_Delete(nodes);
    cJSON_Delete(ports);
    goto fail;
  }
  if (cJSON_AddStringToObject(o, "name", lb->name) == NULL ||
      cJSON_AddStringToObject(o, "service", lb->service) == NULL ||
      cJSON_AddStringToObject(o, "uid", lb->uid) == NULL) {
    cJSON_Delete(ips);
    cJSON_Delete(nodes);
    cJSON_Delete(ports);
    goto fail;
  }
  cJSON_AddItemToObject(o, "ips", ips);
  cJSON_AddItemToObject(o, "nodes", nodes);
  cJSON_AddItemToObject(o, "ports", ports);
  for (size_t i = 0; i < lb->n_ips; i++) {
    lab_addr_format(&lb->ips[i], ip);
    cJSON *s = cJSON_CreateString(ip);
    if (s == NULL)
      goto fail;
    cJSON_AddItemToArray(ips, s);
  }
  for (size_t i = 0; i < lb->n_nodes; i++) {
    cJSON *s = cJSON_CreateString(lb->nodes[i]);
    if (s == NULL)
      goto fail;
    cJSON_AddItemToArray(nodes, s);
  }
  for (size_t i = 0; i < lb->n_ports; i++) {
    const struct lab_port *p = &lb->ports[i];
    cJSON *po = cJSON_CreateObject();
    if (po == NULL)
      goto fail;
    cJSON_AddItemToArray(ports, po);
    if (cJSON_AddStringToObject(po, "name", p->name) == NULL ||
        cJSON_AddStringToObject(po, "protocol", proto_name(p->protocol)) ==
            NULL ||
        cJSON_AddNumberToObject(po, "port", p->port) == NULL ||
        cJSON_AddNumberToObject(po, "node_port", p->node_port) == NULL)
      goto fail;
  }
  return o;
fail:
  cJSON_Delete(o);
  return NULL;
}

static cJSON *route_to_json(const struct lab_route *r) {
  cJSON *o = cJSON_CreateObject();
  if (o == NULL)
    return NULL;
  if (cJSON_AddStringToObject(o, "cluster", r->cluster) == NULL ||
      cJSON_AddStringToObject(o, "name", r->name) == NULL ||
      cJSON_AddStringToObject(o, "target_node", r->target_node) == NULL ||
      cJSON_AddStringToObject(o, "destination_cidr", r->cidr) == NULL) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

char *lab_state_to_json(const struct lab_state *st) {
  char *text = NULL;
  cJSON *root = cJSON_CreateObject();
  if (root == NULL)
    return NULL;
  cJSON *lbs = cJSON_AddArrayToObject(root, "load_balancers");
  if (cJSON_AddNumberToObject(root, "version", LAB_STATE_VERSION) == NULL ||
      lbs == NULL)
    goto fail;
  cJSON *routes = cJSON_AddArrayToObject(root, "routes");
  if (routes == NULL)
    goto fail;
  for (size_t i = 0; i < st->n_lbs; i++) {
    cJSON *o = lb_to_json(st->lbs[i]);
    if (o == NULL)
      goto fail;
    cJSON_AddItemToArray(lbs, o);
  }
  for (size_t i = 0; i < st->n_routes; i++) {
    cJSON *o = route_to_json(st->routes[i]);
    if (o == NULL)
      goto fail;
    cJSON_AddItemToArray(routes, o);
  }
  text = cJSON_Print(root);
fail:
  cJSON_Delete(root);
  return text;
}

/* ---- JSON in ---------------------------------------------------------- */

/* One parse: where we are, for messages that name the element. */
struct parse_ctx {
  const struct ccm_host_api *api;
  const char *source;
  char *err;
  size_t errlen;
};

static int parse_fail(struct parse_ctx *px, const char *where,
                      const char *what) {
  snprintf(px->err, px->errlen, "state %s: %s: %s", px->source, where, what);
  return CCM_ERR_INVALID;
}

/* A required string member copied with api->strdup. */
static int get_str(struct parse_ctx *px, const cJSON *o, const char *key,
                   const char *where, bool allow_empty, char **out) {
  char loc[160];
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  snprintf(loc, sizeof(loc), "%s.%s", where, key);
  if (!cJSON_IsString(v) || v->valuestring == NULL)
    return parse_fail(px, loc, "missing or not a string");
  if (!allow_empty && v->valuestring[0] == '\0')
    return parse_fail(px, loc, "is empty");
  *out = px->api->strdup(v->valuestring);
  if (*out == NULL)
    return parse_fail(px, loc, "out of memory");
  return CCM_OK;
}

static int parse_proto(const char *s, uint32_t *out) {
  if (strcmp(s, "TCP") == 0)
    *out = CCM_PROTO_TCP;
  else if (strcmp(s, "UDP") == 0)
    *out = CCM_PROTO_UDP;
  else if (strcmp(s, "SCTP") == 0)
    *out = CCM_PROTO_SCTP;
  else
    return CCM_ERR_INVALID;
  return CCM_OK;
}

static int parse_port_number(const cJSON *v, uint16_t *out) {
  if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 65535 ||
      v->valuedouble != (double)(int)v->valuedouble)
    return CCM_ERR_INVALID;
  *out = (uint16_t)v->valueint;
  return CCM_OK;
}

static int parse_ports(struct parse_ctx *px, const cJSON *arr,
                       const char *where, struct lab_lb *lb) {
  char loc[160];
  int n = cJSON_GetArraySize(arr);
  if (n == 0)
    return CCM_OK;
  lb->ports = px->api->calloc((size_t)n, sizeof(*lb->ports));
  if (lb->ports == NULL)
    return parse_fail(px, where, "out of memory");
  const cJSON *p;
  cJSON_ArrayForEach(p, arr) {
    struct lab_port *port = &lb->ports[lb->n_ports];
    const cJSON *proto = cJSON_GetObjectItemCaseSensitive(p, "protocol");
    snprintf(loc, sizeof(loc), "%s.ports[%zu]", where, lb->n_ports);
    if (!cJSON_IsObject(p))
      return parse_fail(px, loc, "not an object");
    int rc = get_str(px, p, "name", loc, true, &port->name);
    if (rc != CCM_OK)
      return rc;
    lb->n_ports++;
    if (!cJSON_IsString(proto) || parse_proto(proto->valuestring,
                                              &port->protocol) != CCM_OK)
      return parse_fail(px, loc, "protocol must be TCP, UDP or SCTP");
    if (parse_port_number(cJSON_GetObjectItemCaseSensitive(p, "port"),
                          &port->port) != CCM_OK ||
        parse_port_number(cJSON_GetObjectItemCaseSensitive(p, "node_port"),
                          &port->node_port) != CCM_OK)
      return parse_fail(px, loc, "port and node_port must be 0..65535");
  }
  return CCM_OK;
}

static int parse_lb(struct parse_ctx *px, const cJSON *o, size_t index,
                    struct lab_state *st) {
  char where[64], loc[160];
  int rc;
  snprintf(where, sizeof(where), "load_balancers[%zu]", index);
  if (!cJSON_IsObject(o))
    return parse_fail(px, where, "not an object");
  struct lab_lb *lb = px->api->calloc(1, sizeof(*lb));
  if (lb == NULL)
    return parse_fail(px, where, "out of memory");
  rc = insert_at(px->api, (void ***)&st->lbs, &st->n_lbs, st->n_lbs, lb);
  if (rc != CCM_OK) {
    px->api->free(lb);
    return parse_fail(px, where, "out of memory");
  }
  /* From here lb belongs to st, which the caller clears on failure. */
  rc = get_str(px, o, "name", where, false, &lb->name);
  if (rc == CCM_OK)
    rc = get_str(px, o, "service", where, true, &lb->service);
  if (rc == CCM_OK)
    rc = get_str(px, o, "uid", where, true, &lb->uid);
  if (rc != CCM_OK)
    return rc;
  if (lab_state_find_lb(st, lb->name) != (long)st->n_lbs - 1)
    return parse_fail(px, where, "duplicate load balancer name");

  const cJSON *ips = cJSON_GetObjectItemCaseSensitive(o, "ips");
  if (!cJSON_IsArray(ips) || cJSON_GetArraySize(ips) > LAB_MAX_FAMILIES)
    return parse_fail(px, where, "ips must be an array of at most 2");
  const cJSON *v;
  cJSON_ArrayForEach(v, ips) {
    struct lab_addr a;
    snprintf(loc, sizeof(loc), "%s.ips[%zu]", where, lb->n_ips);
    if (!cJSON_IsString(v) || !lab_addr_parse(v->valuestring, &a))
      return parse_fail(px, loc, "not an IP address");
    for (size_t j = 0; j < lb->n_ips; j++)
      if (lb->ips[j].family == a.family)
        return parse_fail(px, loc, "two addresses of one family");
    const struct lab_lb *holder = lab_state_holder(st, &a);
    if (holder != NULL) {
      char what[CCM_MAX_NAME + 64];
      snprintf(what, sizeof(what), "address also held by load balancer %s",
               holder->name);
      return parse_fail(px, loc, what);
    }
    lb->ips[lb->n_ips++] = a;
  }

  const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(o, "nodes");
  if (!cJSON_IsArray(nodes))
    return parse_fail(px, where, "nodes must be an array");
  int nn = cJSON_GetArraySize(nodes);
  if (nn > 0) {
    lb->nodes = px->api->calloc((size_t)nn, sizeof(*lb->nodes));
    if (lb->nodes == NULL)
      return parse_fail(px, where, "out of memory");
  }
  cJSON_ArrayForEach(v, nodes) {
    snprintf(loc, sizeof(loc), "%s.nodes[%zu]", where, lb->n_nodes);
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
      return parse_fail(px, loc, "not a node name");
    lb->nodes[lb->n_nodes] = px->api->strdup(v->valuestring);
    if (lb->nodes[lb->n_nodes] == NULL)
      return parse_fail(px, loc, "out of memory");
    lb->n_nodes++;
  }

  const cJSON *ports = cJSON_GetObjectItemCaseSensitive(o, "ports");
  if (!cJSON_IsArray(ports))
    return parse_fail(px, where, "ports must be an array");
  return parse_ports(px, ports, where, lb);
}

static int parse_route(struct parse_ctx *px, const cJSON *o, size_t index,
                       struct lab_state *st) {
  char where[64];
  int rc;
  snprintf(where, sizeof(where), "routes[%zu]", index);
  if (!cJSON_IsObject(o))
    return parse_fail(px, where, "not an object");
  struct lab_route *r = px->api->calloc(1, sizeof(*r));
  if (r == NULL)
    return parse_fail(px, where, "out of memory");
  rc = insert_at(px->api, (void ***)&st->routes, &st->n_routes, st->n_routes,
                 r);
  if (rc != CCM_OK) {
    px->api->free(r);
    return parse_fail(px, where, "out of memory");
  }
  rc = get_str(px, o, "cluster", where, true, &r->cluster);
  if (rc == CCM_OK)
    rc = get_str(px, o, "name", where, false, &r->name);
  if (rc == CCM_OK)
    rc = get_str(px, o, "target_node", where, false, &r->target_node);
  if (rc == CCM_OK)
    rc = get_str(px, o, "destination_cidr", where, false, &r->cidr);
  if (rc != CCM_OK)
    return rc;
  if (!lab_cidr_valid(r->cidr))
    return parse_fail(px, where, "destination_cidr is not a CIDR");
  if (lab_state_find_route(st, r->cluster, r->name) != (long)st->n_routes - 1)
    return parse_fail(px, where, "duplicate route name");
  return CCM_OK;
}

/* 1-based line and column of pos in text, for parse errors. */
static void text_position(const char *text, size_t len, const char *pos,
                          size_t *line, size_t *col) {
  *line = 1;
  *col = 1;
  if (pos == NULL || pos < text || pos > text + len)
    return;
  for (const char *p = text; p < pos; p++) {
    if (*p == '\n') {
      (*line)++;
      *col = 1;
    } else {
      (*col)++;
    }
  }
}

int lab_state_from_json(const struct ccm_host_api *api, const char *text,
                        size_t len, const char *source, struct lab_state *out,
                        char *err, size_t errlen) {
  struct parse_ctx px = {api, source, err, errlen};
  const char *end = NULL;
  int rc = CCM_ERR_INVALID;
  cJSON *root = NULL;

  memset(out, 0, sizeof(*out));
  if (len == 0) {
    snprintf(err, errlen, "state %s: is empty", source);
    return CCM_ERR_INVALID;
  }
  root = cJSON_ParseWithLengthOpts(text, len, &end, false);
  if (root == NULL) {
    size_t line, col;
    text_position(text, len, end, &line, &col);
    snprintf(err, errlen, "state %s: JSON parse error at line %zu, column %zu",
             source, line, col);
    return CCM_ERR_INVALID;
  }
  if (!cJSON_IsObject(root)) {
    rc = parse_fail(&px, "top level", "not a JSON object");
    goto fail;
  }
  const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
  if (!cJSON_IsNumber(ver) || ver->valuedouble != LAB_STATE_VERSION) {
    char what[80];
    snprintf(what, sizeof(what), "unsupported (this module reads version %d)",
             LAB_STATE_VERSION);
    rc = parse_fail(&px, "version", what);
    goto fail;
  }
  const cJSON *lbs = cJSON_GetObjectItemCaseSensitive(root, "load_balancers");
  const cJSON *routes = cJSON_GetObjectItemCaseSensitive(root, "routes");
  if (!cJSON_IsArray(lbs) || !cJSON_IsArray(routes)) {
    rc = parse_fail(&px, "top level",
                    "load_balancers and routes must be arrays");
    goto fail;
  }
  size_t i = 0;
  const cJSON *o;
  cJSON_ArrayForEach(o, lbs) {
    rc = parse_lb(&px, o, i++, out);
    if (rc != CCM_OK)
      goto fail;
  }
  i = 0;
  cJSON_ArrayForEach(o, routes) {
    rc = parse_route(&px, o, i++, out);
    if (rc != CCM_OK)
      goto fail;
  }
  cJSON_Delete(root);
  return CCM_OK;
fail:
  cJSON_Delete(root);
  lab_state_clear(api, out);
  return rc;
}

/* ---- the file --------------------------------------------------------- */

int lab_state_read_file(const struct ccm_host_api *api, const char *path,
                        struct lab_state *out, bool *missing, char *err,
                        size_t errlen) {
  char source[4200];
  char *buf = NULL;
  int rc = CCM_ERR_INTERNAL;
  struct stat stt;
  size_t len = 0;

  memset(out, 0, sizeof(*out));
  *missing = false;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      *missing = true;
      return CCM_OK;
    }
    snprintf(err, errlen, "state file %s: cannot open: %s", path,
             strerror(errno));
    return CCM_ERR_INTERNAL;
  }
  if (fstat(fd, &stt) != 0 || !S_ISREG(stt.st_mode)) {
    snprintf(err, errlen, "state file %s: not a regular file", path);
    rc = CCM_ERR_INVALID;
    goto fail;
  }
  if ((uint64_t)stt.st_size > LAB_STATE_MAX_BYTES) {
    snprintf(err, errlen, "state file %s: larger than %u bytes", path,
             LAB_STATE_MAX_BYTES);
    rc = CCM_ERR_INVALID;
    goto fail;
  }
  buf = api->alloc((size_t)stt.st_size + 1);
  if (buf == NULL) {
    snprintf(err, errlen, "state file %s: out of memory", path);
    goto fail;
  }
  while (len < (size_t)stt.st_size) {
    ssize_t n = read(fd, buf + len, (size_t)stt.st_size - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      snprintf(err, errlen, "state file %s: read: %s", path, strerror(errno));
      goto fail;
    }
    if (n == 0)
      break;
    len += (size_t)n;
  }
  buf[len] = '\0';
  snprintf(source, sizeof(source), "file %s", path);
  rc = lab_state_from_json(api, buf, len, source, out, err, errlen);
fail:
  api->free(buf);
  close(fd);
  return rc;
}

static int write_all(int fd, const char *p, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

int lab_state_write_file(const struct lab_state *st, const char *path,
                         char *err, size_t errlen) {
  char dir[4096], tmp[4200];
  int fd = -1, dfd = -1;
  bool tmp_made = false;
  char *text = lab_state_to_json(st);

  if (text == NULL) {
    snprintf(err, errlen, "state file %s: out of memory", path);
    return CCM_ERR_INTERNAL;
  }
  const char *slash = strrchr(path, '/');
  const char *base = slash != NULL ? slash + 1 : path;
  if (slash == NULL)
    snprintf(dir, sizeof(dir), ".");
  else if (slash == path)
    snprintf(dir, sizeof(dir), "/");
  else
    snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
  if (snprintf(tmp, sizeof(tmp), "%s/.%s.tmp.XXXXXX", dir, base) >=
      (int)sizeof(tmp)) {
    snprintf(err, errlen, "state file %s: path too long", path);
    goto fail;
  }
  fd = mkstemp(tmp);
  if (fd < 0) {
    snprintf(err, errlen, "state file %s: cannot create temp file in %s: %s",
             path, dir, strerror(errno));
    goto fail;
  }
  tmp_made = true;
  size_t len = strlen(text);
  if (write_all(fd, text, len) != 0 || write_all(fd, "\n", 1) != 0) {
    snprintf(err, errlen, "state file %s: write %s: %s", path, tmp,
             strerror(errno));
    goto fail;
  }
  if (fsync(fd) != 0) {
    snprintf(err, errlen, "state file %s: fsync %s: %s", path, tmp,
             strerror(errno));
    goto fail;
  }
  if (close(fd) != 0) {
    fd = -1;
    snprintf(err, errlen, "state file %s: close %s: %s", path, tmp,
             strerror(errno));
    goto fail;
  }
  fd = -1;
  if (rename(tmp, path) != 0) {
    snprintf(err, errlen, "state file %s: rename from %s: %s", path, tmp,
             strerror(errno));
    goto fail;
  }
  tmp_made = false;
  /* The rename is durable only once the directory entry is on disk. */
  dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || fsync(dfd) != 0) {
    snprintf(err, errlen, "state file %s: fsync directory %s: %s", path, dir,
             strerror(errno));
    goto fail;
  }
  close(dfd);
  cJSON_free(text);
  return CCM_OK;
fail:
  if (fd >= 0)
    close(fd);
  if (dfd >= 0)
    close(dfd);
  if (tmp_made)
    unlink(tmp);
  cJSON_free(text);
  return CCM_ERR_INTERNAL;
}
