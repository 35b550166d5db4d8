/*
 * bench_loopback.c: the CPU floor of talking to the API server at all.
 * A responder thread answers HTTP/1.1 on 127.0.0.1 with a Service-sized
 * reply; the client measures its own thread CPU per exchange, first with
 * bare write()/read() and then with libcurl on a reused connection, as the
 * Kubernetes client does. No ccm-host code runs, so the figures are what
 * any client pays on this machine before it does any work of its own.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "util/thread.h"

#define EXCHANGES 20000
#define WARMUP 500
#define REPLY_BODY 1800 /* a Service as the API server returns it */
#define PATCH_BODY 300  /* a finalizer or status merge patch */
#define REQUESTS_PER_RECONCILE 4
#define EVENTS_PER_RECONCILE 2

static int64_t wall_ns(void)
{
  struct timespec t;

  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int write_all(int fd, const char *p, size_t n)
{
  while (n > 0) {
    ssize_t w = write(fd, p, n);

    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Length of the first complete request in buf, or 0 if it is not all in. */
static size_t request_length(const char *buf, size_t len)
{
  const char *end = memmem(buf, len, "\r\n\r\n", 4);
  const char *cl;
  size_t head, body = 0;

  if (end == NULL)
    return 0;
  head = (size_t)(end - buf) + 4;
  for (cl = buf; cl < end; cl++) {
    if ((cl == buf || cl[-1] == '\n') &&
        strncasecmp(cl, "content-length:", 15) == 0) {
      body = strtoul(cl + 15, NULL, 10);
      break;
    }
  }
  return len >= head + body ? head + body : 0;
}

struct responder {
  int listen_fd;
  char reply[REPLY_BODY + 256];
  size_t reply_len;
};

static void serve(struct responder *r, int fd)
{
  static char buf[64 * 1024];
  size_t len = 0, n;
  ssize_t got;

  for (;;) {
    for (n = request_length(buf, len); n > 0; n = request_length(buf, len)) {
      if (write_all(fd, r->reply, r->reply_len) != 0)
        return;
      memmove(buf, buf + n, len - n);
      len -= n;
    }
    if (len == sizeof buf)
      return;
    got = read(fd, buf + len, sizeof buf - len);
    if (got <= 0)
      return;
    len += (size_t)got;
  }
}

static void *respond(void *arg)
{
  struct responder *r = arg;
  int one = 1;

  for (;;) {
    int fd = accept(r->listen_fd, NULL, NULL);

    if (fd < 0)
      return NULL;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    serve(r, fd);
    close(fd);
  }
}

struct figures {
  double cpu_us;
  double wall_us;
};

/* The exchange by hand: one write() of the request, read() until the whole
 * reply is in. send_us gets the write's share of the CPU. */
static int raw_exchanges(const struct sockaddr_in *addr, size_t reply_len,
                         struct figures *all, double *send_us)
{
  char req[PATCH_BODY + 512], reply[8192];
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1, i, n;
  uint64_t cpu_send = 0, cpu0 = 0;
  int64_t wall0 = 0;

  if (fd < 0 || connect(fd, (const struct sockaddr *)addr, sizeof *addr))
    return -1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  n = snprintf(req, sizeof req,
               "PATCH /api/v1/namespaces/bench/services/s HTTP/1.1\r\n"
               "Host: 127.0.0.1\r\nAccept: application/json\r\n"
               "Content-Type: application/merge-patch+json\r\n"
               "Content-Length: %d\r\n\r\n%*s",
               PATCH_BODY, PATCH_BODY, "{}");
  for (i = 0; i < WARMUP + EXCHANGES; i++) {
    size_t got = 0;
    uint64_t c;

    if (i == WARMUP) {
      cpu0 = thread_cpu_ns();
      wall0 = wall_ns();
      cpu_send = 0;
    }
    c = thread_cpu_ns();
    if (write_all(fd, req, (size_t)n) != 0)
      return -1;
    cpu_send += thread_cpu_ns() - c;
    while (got < reply_len) {
      ssize_t r = read(fd, reply, sizeof reply);

      if (r <= 0)
        return -1;
      got += (size_t)r;
    }
  }
  all->cpu_us = (double)(thread_cpu_ns() - cpu0) / 1e3 / EXCHANGES;
  all->wall_us = (double)(wall_ns() - wall0) / 1e3 / EXCHANGES;
  *send_us = (double)cpu_send / 1e3 / EXCHANGES;
  close(fd);
  return 0;
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
  (void)p;
  (void)ud;
  return size * n;
}

/* The same exchange through one reused easy handle, set up per request the
 * way host/kube/client.c does it (headers, method, body). */
static int curl_exchanges(const struct sockaddr_in *addr,
                          struct figures *all)
{
  char url[128], body[PATCH_BODY + 1];
  CURL *h = curl_easy_init();
  uint64_t cpu0 = 0;
  int64_t wall0 = 0;
  int i;

  if (h == NULL)
    return -1;
  memset(body, ' ', PATCH_BODY);
  body[0] = '{';
  body[PATCH_BODY - 1] = '}';
  body[PATCH_BODY] = '\0';
  snprintf(url, sizeof url,
           "http://127.0.0.1:%u/api/v1/namespaces/bench/services/s",
           (unsigned)ntohs(addr->sin_port));
  for (i = 0; i < WARMUP + EXCHANGES; i++) {
    struct curl_slist *hl = NULL;
    CURLcode cc;

    if (i == WARMUP) {
      cpu0 = thread_cpu_ns();
      wall0 = wall_ns();
    }
    hl = curl_slist_append(hl, "Accept: application/json");
    hl = curl_slist_append(hl,
                           "Content-Type: application/merge-patch+json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PATCH");
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)PATCH_BODY);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    cc = curl_easy_perform(h);
    curl_slist_free_all(hl);
    if (cc != CURLE_OK) {
      fprintf(stderr, "bench_loopback: curl: %s\n", curl_easy_strerror(cc));
      curl_easy_cleanup(h);
      return -1;
    }
  }
  all->cpu_us = (double)(thread_cpu_ns() - cpu0) / 1e3 / EXCHANGES;
  all->wall_us = (double)(wall_ns() - wall0) / 1e3 / EXCHANGES;
  curl_easy_cleanup(h);
  return 0;
}

int main(void)
{
  static struct responder r;
  struct sockaddr_in addr = {.sin_family = AF_INET};
  socklen_t alen = sizeof addr;
  struct figures raw, lib;
  double send_us, floor_us;
  pthread_t t;
  int n;

  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  r.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
  if (r.listen_fd < 0 ||
      bind(r.listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
      listen(r.listen_fd, 4) != 0 ||
      getsockname(r.listen_fd, (struct sockaddr *)&addr, &alen) != 0) {
    perror("bench_loopback: listen on 127.0.0.1");
    return 1;
  }
  n = snprintf(r.reply, sizeof r.reply,
               "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
               "Content-Length: %d\r\n\r\n", REPLY_BODY);
  memset(r.reply + n, ' ', REPLY_BODY);
  r.reply[n] = '{';
  r.reply[n + REPLY_BODY - 1] = '}';
  r.reply_len = (size_t)n + REPLY_BODY;
  if (pthread_create(&t, NULL, respond, &r) != 0)
    return 1;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if (raw_exchanges(&addr, r.reply_len, &raw, &send_us) != 0 ||
      curl_exchanges(&addr, &lib) != 0) {
    fprintf(stderr, "bench_loopback: an exchange failed\n");
    return 1;
  }
  /* A watch event costs its reader at least the receiving half. */
  floor_us = REQUESTS_PER_RECONCILE * lib.cpu_us +
             EVENTS_PER_RECONCILE * (raw.cpu_us - send_us);
  printf("\n## Loopback floor (%d exchanges, %d B patch, %d B reply, "
         "client thread CPU)\n\n",
         EXCHANGES, PATCH_BODY, REPLY_BODY);
  printf("| exchange | CPU us | wall us |\n|---|---:|---:|\n");
  printf("| write() + read(), by hand | %.1f | %.1f |\n", raw.cpu_us,
         raw.wall_us);
  printf("| ... of which the write() | %.1f | |\n", send_us);
  printf("| ... of which waiting for and reading the reply | %.1f | |\n",
         raw.cpu_us - send_us);
  printf("| libcurl, reused connection | %.1f | %.1f |\n", lib.cpu_us,
         lib.wall_us);
  printf("\nFloor per Service reconcile, with no ccm-host code at all: "
         "%d requests x %.1f + %d watch events x %.1f = %.0f us\n",
         REQUESTS_PER_RECONCILE, lib.cpu_us, EVENTS_PER_RECONCILE,
         raw.cpu_us - send_us, floor_us);
  shutdown(r.listen_fd, SHUT_RDWR);
  curl_global_cleanup();
  return 0;
}
