/*
 * test_aws.c: unit tests of the aws module's internals, linked from its
 * sources (modules/aws) with the real host API: SigV4 against the AWS test
 * suite vectors, XML parsing of real-shaped EC2/ELB responses, providerID
 * forms, cloud.conf and config loading, the credential chain's order, and
 * error/retry classification through the host's HTTP fault injection.
 * No network: faults answer every request before it leaves the process.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aws.h"
#include "modules/host_api.h"
#include "modules/http.h"
#include "util/log.h"

#define VEC_DIR CCM_SOURCE_DIR "/tests/aws/sigv4_vectors"
#define FILE_MAX 16384

static const char *const VECTORS[] = {
    "get-vanilla",
    "get-vanilla-empty-query-key",
    "get-vanilla-query-order-key",
    "get-vanilla-query-order-key-case",
    "get-vanilla-query-order-value",
    "get-vanilla-query-unreserved",
    "get-unreserved",
    "get-utf8",
    "get-vanilla-utf8-query",
    "get-header-key-duplicate",
    "get-header-value-order",
    "get-header-value-trim",
    "post-vanilla",
    "post-vanilla-query",
    "post-header-key-sort",
    "post-header-value-case",
    "post-x-www-form-urlencoded",
    "post-sts-header-before",
};

static void read_file(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "rb");
  size_t n;
  if (f == NULL)
    fail_msg("cannot open %s", path);
  n = fread(buf, 1, cap - 1, f);
  fclose(f);
  buf[n] = '\0';
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* ---- SigV4 ----------------------------------------------------------------- */

static void sign_vector(const char *name) {
  const struct ccm_host_api *api = host_api();
  char path[512], req[FILE_MAX], want_creq[FILE_MAX], want_sts[FILE_MAX],
      want_authz[FILE_MAX], authz[1024];
  char method[16], uri[1024], *query = NULL, *line, *body = "", *date = NULL;
  const char *headers[16];
  size_t n_headers = 0;
  char *creq = NULL, *sts = NULL;

  snprintf(path, sizeof(path), "%s/%s.req", VEC_DIR, name);
  read_file(path, req, sizeof(req));
  snprintf(path, sizeof(path), "%s/%s.creq", VEC_DIR, name);
  read_file(path, want_creq, sizeof(want_creq));
  snprintf(path, sizeof(path), "%s/%s.sts", VEC_DIR, name);
  read_file(path, want_sts, sizeof(want_sts));
  snprintf(path, sizeof(path), "%s/%s.authz", VEC_DIR, name);
  read_file(path, want_authz, sizeof(want_authz));

  /* "METHOD URI HTTP/1.1", header lines, blank line, body. */
  line = req;
  char *eol = strchr(line, '\n');
  assert_non_null(eol);
  *eol = '\0';
  char *sp1 = strchr(line, ' '), *sp2 = strrchr(line, ' ');
  assert_true(sp1 != NULL && sp2 != NULL && sp2 > sp1);
  snprintf(method, sizeof(method), "%.*s", (int)(sp1 - line), line);
  snprintf(uri, sizeof(uri), "%.*s", (int)(sp2 - sp1 - 1), sp1 + 1);
  query = strchr(uri, '?');
  if (query != NULL)
    *query++ = '\0';
  line = eol + 1;
  while (*line != '\0') {
    eol = strchr(line, '\n');
    if (eol != NULL)
      *eol = '\0';
    if (*line == '\0') { /* blank line: the body follows */
      body = eol != NULL ? eol + 1 : "";
      break;
    }
    assert_true(n_headers < 16);
    headers[n_headers++] = line;
    if (strncasecmp(line, "X-Amz-Date:", 11) == 0)
      date = line + 11;
    if (eol == NULL)
      break;
    line = eol + 1;
  }
  assert_non_null(date);
  struct aws_sign_input in = {
      .method = method, .path = uri, .query = query, .headers = headers,
      .n_headers = n_headers, .payload = body, .payload_len = strlen(body),
      .amz_date = date, .region = "us-east-1", .service = "service",
      .access_key = "AKIDEXAMPLE",
      .secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"};
  assert_int_equal(aws_sigv4_sign(api, &in, authz, sizeof(authz), &creq,
                                  &sts),
                   CCM_OK);
  if (strcmp(creq, want_creq) != 0)
    fail_msg("%s: canonical request\n--- got\n%s\n--- want\n%s", name, creq,
             want_creq);
  if (strcmp(sts, want_sts) != 0)
    fail_msg("%s: string to sign\n--- got\n%s\n--- want\n%s", name, sts,
             want_sts);
  if (strcmp(authz, want_authz) != 0)
    fail_msg("%s: authorization\n--- got\n%s\n--- want\n%s", name, authz,
             want_authz);
  api->free(creq);
  api->free(sts);
}

static void test_sigv4_vectors(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(VECTORS) / sizeof(VECTORS[0]); i++)
    sign_vector(VECTORS[i]);
}

/* A wrong secret must change the signature (the check can fail). */
static void test_sigv4_secret_matters(void **state) {
  const char *h[] = {"Host:example.amazonaws.com",
                     "X-Amz-Date:20150830T123600Z"};
  char a1[512], a2[512];
  struct aws_sign_input in = {
      .method = "GET", .path = "/", .headers = h, .n_headers = 2,
      .amz_date = "20150830T123600Z", .region = "us-east-1",
      .service = "service", .access_key = "AKIDEXAMPLE",
      .secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"};
  (void)state;
  assert_int_equal(aws_sigv4_sign(host_api(), &in, a1, sizeof(a1), NULL,
                                  NULL), CCM_OK);
  in.secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEz";
  assert_int_equal(aws_sigv4_sign(host_api(), &in, a2, sizeof(a2), NULL,
                                  NULL), CCM_OK);
  assert_string_not_equal(a1, a2);
  in.amz_date = "2015";
  assert_int_equal(aws_sigv4_sign(host_api(), &in, a2, sizeof(a2), NULL,
                                  NULL), CCM_ERR_INVALID);
}

static void test_url_host(void **state) {
  char h[128];
  (void)state;
  assert_true(aws_url_host("http://127.0.0.1:4566", h, sizeof(h)));
  assert_string_equal(h, "127.0.0.1:4566");
  assert_true(aws_url_host("https://ec2.us-east-1.amazonaws.com/", h,
                           sizeof(h)));
  assert_string_equal(h, "ec2.us-east-1.amazonaws.com");
  assert_true(aws_url_host("https://x.example:443/a", h, sizeof(h)));
  assert_string_equal(h, "x.example");
  assert_false(aws_url_host("ftp://x", h, sizeof(h)));
  assert_false(aws_url_host("http://", h, sizeof(h)));
}

/* ---- XML ------------------------------------------------------------------- */

static const char DESCRIBE[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<DescribeInstancesResponse "
    "xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\n"
    "  <requestId>8f7724cf-496f-496e-8fe3-example</requestId>\n"
    "  <reservationSet><item>\n"
    "    <reservationId>r-1234567890abcdef0</reservationId>\n"
    "    <instancesSet><item>\n"
    "      <instanceId>i-0598c7d356eba48d7</instanceId>\n"
    "      <imageId>ami-0abcdef1234567890</imageId>\n"
    "      <instanceState><code>16</code><name>running</name>"
    "</instanceState>\n"
    "      <privateDnsName>ip-10-0-0-157.ec2.internal</privateDnsName>\n"
    "      <dnsName>ec2-54-0-0-1.compute-1.amazonaws.com</dnsName>\n"
    "      <instanceType>t3.large</instanceType>\n"
    "      <placement><availabilityZone>us-east-1a</availabilityZone>"
    "<tenancy>default</tenancy></placement>\n"
    "      <subnetId>subnet-0a</subnetId><vpcId>vpc-1</vpcId>\n"
    "      <privateIpAddress>10.0.0.157</privateIpAddress>\n"
    "      <ipAddress>54.0.0.1</ipAddress>\n"
    "      <groupSet><item><groupId>sg-1</groupId><groupName>n</groupName>"
    "</item><item><groupId>sg-2</groupId></item></groupSet>\n"
    "      <tagSet><item><key>kubernetes.io/cluster/c1</key>"
    "<value>owned</value></item><item><key>Name</key><value/></item>"
    "</tagSet>\n"
    "      <networkInterfaceSet>\n"
    "        <item><networkInterfaceId>eni-b</networkInterfaceId>"
    "<status>in-use</status><attachment><deviceIndex>1</deviceIndex>"
    "</attachment><privateIpAddressesSet><item><privateIpAddress>10.0.1.5"
    "</privateIpAddress><primary>true</primary></item>"
    "</privateIpAddressesSet><ipv6AddressesSet><item><ipv6Address>"
    "2600:1f18::b</ipv6Address></item></ipv6AddressesSet></item>\n"
    "        <item><networkInterfaceId>eni-a</networkInterfaceId>"
    "<status>in-use</status><attachment><deviceIndex>0</deviceIndex>"
    "</attachment><privateIpAddressesSet><item><privateIpAddress>"
    "10.0.0.157</privateIpAddress></item><item><privateIpAddress>"
    "10.0.0.158</privateIpAddress></item></privateIpAddressesSet>"
    "<ipv6AddressesSet><item><ipv6Address>2600:1f18::a</ipv6Address>"
    "</item><item><ipv6Address>2600:1f18::a2</ipv6Address></item>"
    "</ipv6AddressesSet></item>\n"
    "        <item><networkInterfaceId>eni-c</networkInterfaceId>"
    "<status>available</status><attachment><deviceIndex>2</deviceIndex>"
    "</attachment><privateIpAddressesSet><item><privateIpAddress>10.9.9.9"
    "</privateIpAddress></item></privateIpAddressesSet></item>\n"
    "      </networkInterfaceSet>\n"
    "    </item></instancesSet>\n"
    "  </item></reservationSet>\n"
    "  <nextToken>tok-2</nextToken>\n"
    "</DescribeInstancesResponse>\n";

static void test_describe_instances_parse(void **state) {
  const struct ccm_host_api *api = host_api();
  const uint32_t fam4[] = {CCM_IPV4}, fam46[] = {CCM_IPV4, CCM_IPV6};
  struct aws_instances l = {0};
  char *next = NULL;
  xmlDoc *doc;
  (void)state;

  doc = aws_xml_parse(DESCRIBE, strlen(DESCRIBE));
  assert_non_null(doc);
  assert_int_equal(aws_instances_parse(api, doc, fam4, 1, &l, &next), CCM_OK);
  assert_int_equal(l.n, 1);
  assert_string_equal(next, "tok-2");
  api->free(next);
  const struct aws_instance *in = &l.items[0];
  assert_string_equal(in->id, "i-0598c7d356eba48d7");
  assert_string_equal(in->state, "running");
  assert_string_equal(in->type, "t3.large");
  assert_string_equal(in->az, "us-east-1a");
  assert_int_equal(in->n_groups, 2);
  assert_string_equal(in->groups[1], "sg-2");
  assert_string_equal(aws_instance_tag(in, "Name"), "");
  assert_true(aws_instance_in_cluster(in, "c1"));
  assert_false(aws_instance_in_cluster(in, "c2"));
  /* ENIs by deviceIndex (eni-a first), the available ENI skipped, then the
   * public IP, then the DNS names. */
  const struct {
    uint32_t type;
    const char *addr;
  } want[] = {{CCM_ADDR_INTERNAL_IP, "10.0.0.157"},
              {CCM_ADDR_INTERNAL_IP, "10.0.0.158"},
              {CCM_ADDR_INTERNAL_IP, "10.0.1.5"},
              {CCM_ADDR_EXTERNAL_IP, "54.0.0.1"},
              {CCM_ADDR_INTERNAL_DNS, "ip-10-0-0-157.ec2.internal"},
              {CCM_ADDR_HOSTNAME, "ip-10-0-0-157.ec2.internal"},
              {CCM_ADDR_EXTERNAL_DNS, "ec2-54-0-0-1.compute-1.amazonaws.com"}};
  assert_int_equal(in->n_addrs, sizeof(want) / sizeof(want[0]));
  for (size_t i = 0; i < in->n_addrs; i++) {
    assert_int_equal(in->addrs[i].type, want[i].type);
    assert_string_equal(in->addrs[i].address, want[i].addr);
  }
  aws_instances_clear(api, &l);

  /* Dual stack: the first IPv6 of each in-use ENI after the IPv4 block. */
  assert_int_equal(aws_instances_parse(api, doc, fam46, 2, &l, NULL), CCM_OK);
  assert_int_equal(l.items[0].n_addrs, 9);
  assert_string_equal(l.items[0].addrs[4].address, "2600:1f18::a");
  assert_string_equal(l.items[0].addrs[5].address, "2600:1f18::b");
  aws_instances_clear(api, &l);
  xmlFreeDoc(doc);

  /* Not a DescribeInstances answer. */
  doc = aws_xml_parse("<Other/>", 8);
  assert_int_equal(aws_instances_parse(api, doc, fam4, 1, &l, NULL),
                   CCM_ERR_INTERNAL);
  xmlFreeDoc(doc);
  assert_null(aws_xml_parse("<a><b></a>", 10));
  assert_null(aws_xml_parse("", 0));
}

/* Entities are never expanded (no XXE), and no file is read. */
static void test_xml_no_entities(void **state) {
  const char *x = "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY e SYSTEM "
                  "\"file:///etc/passwd\">]><r><v>&e;</v></r>";
  char buf[256];
  xmlDoc *doc = aws_xml_parse(x, strlen(x));
  (void)state;
  if (doc == NULL)
    return; /* refusing the document is fine too */
  if (aws_xml_path_text(xmlDocGetRootElement(doc), "v", buf, sizeof(buf)))
    assert_null(strstr(buf, "root:"));
  xmlFreeDoc(doc);
}

static void test_error_documents(void **state) {
  const char *ec2 =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error>"
      "<Code>InvalidInstanceID.NotFound</Code><Message>The instance ID "
      "'i-1' does not exist</Message></Error></Errors><RequestID>ab-1"
      "</RequestID></Response>";
  const char *elb =
      "<ErrorResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/"
      "2012-06-01/\"><Error><Type>Sender</Type><Code>Throttling</Code>"
      "<Message>Rate exceeded</Message></Error><RequestId>r-2</RequestId>"
      "</ErrorResponse>";
  struct aws_error e;
  (void)state;

  assert_true(aws_error_parse(ec2, strlen(ec2), &e));
  assert_string_equal(e.code, "InvalidInstanceID.NotFound");
  assert_string_equal(e.request_id, "ab-1");
  assert_non_null(strstr(e.message, "does not exist"));
  assert_true(aws_error_parse(elb, strlen(elb), &e));
  assert_string_equal(e.code, "Throttling");
  assert_string_equal(e.message, "Rate exceeded");
  assert_string_equal(e.request_id, "r-2");
  assert_false(aws_error_parse("<html>502</html>", 16, &e));
  assert_false(aws_error_parse("not xml", 7, &e));
}

static void test_error_classify(void **state) {
  (void)state;
  assert_int_equal(aws_error_classify(200, NULL), AWS_ERRC_OK);
  assert_int_equal(aws_error_classify(503, "RequestLimitExceeded"),
                   AWS_ERRC_THROTTLE);
  assert_int_equal(aws_error_classify(400, "Throttling"), AWS_ERRC_THROTTLE);
  assert_int_equal(aws_error_classify(400, "ThrottlingException"),
                   AWS_ERRC_THROTTLE);
  assert_int_equal(aws_error_classify(503, "Unavailable"),
                   AWS_ERRC_TRANSIENT);
  assert_int_equal(aws_error_classify(500, "HTTP500"), AWS_ERRC_TRANSIENT);
  assert_int_equal(aws_error_classify(502, ""), AWS_ERRC_TRANSIENT);
  assert_int_equal(aws_error_classify(0, "transport"), AWS_ERRC_TRANSIENT);
  assert_int_equal(aws_error_classify(400, "InvalidInstanceID.NotFound"),
                   AWS_ERRC_NOT_FOUND);
  assert_int_equal(aws_error_classify(400, "LoadBalancerNotFound"),
                   AWS_ERRC_NOT_FOUND);
  assert_int_equal(aws_error_classify(400, "InvalidRoute.NotFound"),
                   AWS_ERRC_NOT_FOUND);
  assert_int_equal(aws_error_classify(401, "AuthFailure"), AWS_ERRC_AUTH);
  assert_int_equal(aws_error_classify(403, "SignatureDoesNotMatch"),
                   AWS_ERRC_AUTH);
  assert_int_equal(aws_error_classify(403, "HTTP403"), AWS_ERRC_AUTH);
  assert_int_equal(aws_error_classify(400, "ValidationError"),
                   AWS_ERRC_INVALID);
  assert_int_equal(aws_error_classify(400, "DependencyViolation"),
                   AWS_ERRC_OTHER);
  assert_int_equal(aws_error_class_status(AWS_ERRC_THROTTLE),
                   CCM_ERR_THROTTLED);
  assert_int_equal(aws_error_class_status(AWS_ERRC_TRANSIENT),
                   CCM_ERR_RETRY);
  assert_int_equal(aws_error_class_status(AWS_ERRC_NOT_FOUND),
                   CCM_ERR_NOT_FOUND);
  assert_int_equal(aws_error_class_status(AWS_ERRC_AUTH), CCM_ERR_AUTH);
  assert_int_equal(aws_error_class_status(AWS_ERRC_OTHER), CCM_ERR_INTERNAL);
  /* Full jitter: never above the exponential ceiling or the cap. */
  assert_true(aws_backoff_ms(0, 0xffffffffu) <= AWS_RETRY_BASE_MS);
  assert_true(aws_backoff_ms(2, 0xffffffffu) <= 4 * AWS_RETRY_BASE_MS);
  assert_true(aws_backoff_ms(30, 0xffffffffu) <= AWS_RETRY_CAP_MS);
  assert_int_equal(aws_backoff_ms(3, 0), 0);
}

/* ---- providerID ---------------------------------------------------------- */

static void test_provider_id(void **state) {
  char az[64], id[64];
  int kind = 0;
  (void)state;
  assert_int_equal(aws_provider_id_parse("aws:///us-east-1a/i-0123", &kind,
                                         az, sizeof(az), id, sizeof(id)),
                   CCM_OK);
  assert_string_equal(az, "us-east-1a");
  assert_string_equal(id, "i-0123");
  assert_int_equal(kind, AWS_PID_INSTANCE);
  assert_int_equal(aws_provider_id_parse("aws:////i-0abc", &kind, az,
                                         sizeof(az), id, sizeof(id)),
                   CCM_OK);
  assert_string_equal(az, "");
  assert_string_equal(id, "i-0abc");
  assert_int_equal(aws_provider_id_parse("i-0bare", &kind, az, sizeof(az),
                                         id, sizeof(id)),
                   CCM_OK);
  assert_string_equal(id, "i-0bare");
  assert_int_equal(aws_provider_id_parse("aws:///us-east-1b/fargate-10.0.0.1",
                                         &kind, az, sizeof(az), id,
                                         sizeof(id)),
                   CCM_OK);
  assert_int_equal(kind, AWS_PID_FARGATE);
  assert_string_equal(id, "fargate-10.0.0.1");
  const char *bad[] = {"gce://p/z/n", "aws:///us-east-1a/", "aws:///i-1",
                       "aws:///a/b/i-1", "aws:///zone/x-1", "node-1", "",
                       "aws:///zone/i-1 2"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    if (aws_provider_id_parse(bad[i], &kind, az, sizeof(az), id,
                              sizeof(id)) != CCM_ERR_INVALID)
      fail_msg("accepted providerID \"%s\"", bad[i]);
}

/* ---- cloud.conf and config ---------------------------------------------- */

static char tmpdir[64];

static void make_tmpdir(void) {
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/ccm-test-aws-XXXXXX");
  assert_non_null(mkdtemp(tmpdir));
}

static void rm_tree(const char *dir) {
  char path[512];
  DIR *d = opendir(dir);
  struct stat st;
  if (d == NULL)
    return;
  for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
    if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
      rm_tree(path);
    else
      unlink(path);
  }
  closedir(d);
  rmdir(dir);
}

static const char GOOD_CONF[] =
    "; upstream cloud.conf\n"
    "[Global]\n"
    "Zone = us-east-1a\n"
    "Region = us-west-2\n"
    "KubernetesClusterID = prod\n"
    "RouteTableID = rtb-123\n"
    "DisableSecurityGroupIngress = true\n"
    "NodeIPFamilies = ipv6\n"
    "NodeIPFamilies = ipv4\n"
    "SomethingNew = tolerated\n"
    "\n"
    "[ServiceOverride \"1\"]\n"
    "Service = EC2\n"
    "Region = us-west-2\n"
    "URL = http://127.0.0.1:4566\n"
    "SigningRegion = us-west-2\n"
    "SigningName = ec2\n"
    "\n"
    "[ServiceOverride \"2\"]\n"
    "Service = \"Elastic Load Balancing\"\n"
    "Region = us-west-2\n"
    "URL = http://127.0.0.1:4567\n"
    "SigningRegion = us-west-2\n"
    "[ServiceOverride \"3\"]\n"
    "Service = ec2imds\n"
    "Region = us-west-2\n"
    "URL = http://127.0.0.1:4568\n"
    "SigningRegion = us-west-2\n"
    "[ServiceOverride \"4\"]\n"
    "Service = EC2\n"
    "Region = eu-west-1\n"
    "URL = http://127.0.0.1:9999\n"
    "SigningRegion = eu-west-1\n";

static void test_cloudconf_good(void **state) {
  const struct ccm_host_api *api = host_api();
  struct aws_cloudconf cc;
  char path[256], err[AWS_ERR];
  (void)state;

  make_tmpdir();
  snprintf(path, sizeof(path), "%s/cloud.conf", tmpdir);
  write_file(path, GOOD_CONF);
  if (aws_cloudconf_parse(api, path, &cc, err, sizeof(err)) != CCM_OK)
    fail_msg("%s", err);
  assert_string_equal(cc.region, "us-west-2");
  assert_string_equal(cc.cluster_id, "prod");
  assert_string_equal(cc.route_table_id, "rtb-123");
  assert_true(cc.disable_sg_ingress);
  assert_int_equal(cc.n_families, 2);
  assert_int_equal(cc.families[0], CCM_IPV6);
  assert_int_equal(cc.n_overrides, 4);
  assert_string_equal(cc.overrides[1].service, "Elastic Load Balancing");
  assert_string_equal(cc.overrides[1].key, "2");
  aws_cloudconf_clear(api, &cc);
  rm_tree(tmpdir);
}

/* Each bad file gives one line naming the file, the line or section, and
 * the key. */
static void test_cloudconf_bad(void **state) {
  const struct ccm_host_api *api = host_api();
  const struct {
    const char *text;
    const char *want; /* must appear in the message */
  } cases[] = {
      {"[Global]\nRegion = x\nNodeIPFamilies = ipv5\n",
       ":3: [Global] NodeIPFamilies: \"ipv5\""},
      {"[Global]\nDisableSecurityGroupIngress = maybe\n",
       ":2: [Global] DisableSecurityGroupIngress"},
      {"[Global]\nthis line has no equals\n", ":2: syntax error"},
      {"[ServiceOverride \"1\"]\nService = EC2\nRegion = r\n"
       "URL = http://127.0.0.1:1\n",
       "[ServiceOverride \"1\"]: SigningRegion is required"},
      {"[ServiceOverride \"1\"]\nRegion = r\nURL = http://h\n"
       "SigningRegion = r\n",
       "[ServiceOverride \"1\"]: Service is required"},
      {"[ServiceOverride \"a\"]\nService = EC2\nRegion = r\n"
       "URL = http://h\nSigningRegion = r\n"
       "[ServiceOverride \"b\"]\nService = EC2\nRegion = r\n"
       "URL = http://h2\nSigningRegion = r\n",
       "duplicate override for EC2 in r"},
      {"[ServiceOverride \"1\"]\nService = S3\nRegion = r\nURL = http://h\n"
       "SigningRegion = r\n",
       "Service \"S3\""},
      {"[ServiceOverride \"1\"]\nService = EC2\nRegion = r\nURL = h\n"
       "SigningRegion = r\n",
       "URL \"h\" is not an http(s) URL"},
      {"[ServiceOverride]\nService = EC2\n", "want [ServiceOverride \"N\"]"},
  };
  char path[256], err[AWS_ERR];
  struct aws_cloudconf cc;
  (void)state;

  make_tmpdir();
  snprintf(path, sizeof(path), "%s/cloud.conf", tmpdir);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    write_file(path, cases[i].text);
    err[0] = '\0';
    assert_int_equal(aws_cloudconf_parse(api, path, &cc, err, sizeof(err)),
                     CCM_ERR_INVALID);
    if (strstr(err, cases[i].want) == NULL || strstr(err, path) == NULL ||
        strchr(err, '\n') != NULL)
      fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, err,
               cases[i].want);
  }
  assert_int_equal(aws_cloudconf_parse(api, "/nonexistent/cloud.conf", &cc,
                                       err, sizeof(err)),
                   CCM_ERR_INVALID);
  rm_tree(tmpdir);
}

/* A host handle over a libconfig group built from text. */
struct cfg_fix {
  config_t cfg;
  struct ccm_host *host;
};

static void cfg_up(struct cfg_fix *f, const char *text) {
  char err[256];
  struct http_settings http = {0};
  config_setting_t *g;

  config_init(&f->cfg);
  if (config_read_string(&f->cfg, text) != CONFIG_TRUE)
    fail_msg("config: %s line %d", config_error_text(&f->cfg),
             config_error_line(&f->cfg));
  g = config_lookup(&f->cfg, "aws");
  assert_non_null(g);
  http.burst = 100;
  http.timeout_ms = 2000;
  f->host = host_new("aws", g, &http, err, sizeof(err));
  if (f->host == NULL)
    fail_msg("host_new: %s", err);
}

static void cfg_down(struct cfg_fix *f) {
  host_free(f->host);
  config_destroy(&f->cfg);
}

static void test_config_merge(void **state) {
  const struct ccm_host_api *api = host_api();
  struct cfg_fix f;
  struct aws_config c;
  char text[1024], path[256], err[AWS_ERR];
  (void)state;

  make_tmpdir();
  snprintf(path, sizeof(path), "%s/cloud.conf", tmpdir);
  write_file(path, GOOD_CONF);
  /* The libconfig group wins (cluster_id, EC2 endpoint); cloud.conf fills
   * the rest (region, route table, ELB override, IMDS override). */
  snprintf(text, sizeof(text),
           "aws = { cluster_id = \"mine\"; cloud_config = \"%s\";\n"
           "  endpoints = { ec2 = \"http://127.0.0.1:1111\"; }; };\n", path);
  cfg_up(&f, text);
  if (aws_config_load(api, f.host, &c, err, sizeof(err)) != CCM_OK)
    fail_msg("%s", err);
  assert_int_equal(aws_config_resolve(api, &c, err, sizeof(err)), CCM_OK);
  assert_string_equal(c.region, "us-west-2");
  assert_string_equal(c.cluster_id, "mine");
  assert_string_equal(c.route_table_id, "rtb-123");
  assert_string_equal(c.ep[AWS_SVC_EC2].url, "http://127.0.0.1:1111");
  assert_string_equal(c.ep[AWS_SVC_ELB].url, "http://127.0.0.1:4567");
  assert_string_equal(c.ep[AWS_SVC_ELB].signing_region, "us-west-2");
  assert_string_equal(c.ep[AWS_SVC_IMDS].url, "http://127.0.0.1:4568");
  assert_string_equal(c.ep[AWS_SVC_ELBV2].url,
                      "https://elasticloadbalancing.us-west-2.amazonaws.com");
  assert_string_equal(c.ep[AWS_SVC_STS].url,
                      "https://sts.us-west-2.amazonaws.com");
  assert_int_equal(c.n_families, 2);
  assert_int_equal(c.describe_batch, AWS_DESCRIBE_BATCH);
  aws_config_clear(api, &c);
  cfg_down(&f);

  /* describe_batch_size: 1 (one DescribeInstances per node) and 500. */
  cfg_up(&f, "aws = { describe_batch_size = 1; };");
  if (aws_config_load(api, f.host, &c, err, sizeof(err)) != CCM_OK)
    fail_msg("%s", err);
  assert_int_equal(c.describe_batch, 1);
  aws_config_clear(api, &c);
  cfg_down(&f);
  cfg_up(&f, "aws = { describe_batch_size = 500; };");
  if (aws_config_load(api, f.host, &c, err, sizeof(err)) != CCM_OK)
    fail_msg("%s", err);
  assert_int_equal(c.describe_batch, 500);
  aws_config_clear(api, &c);
  cfg_down(&f);

  /* Bad libconfig values name the key. */
  const struct {
    const char *text, *want;
  } bad[] = {
      {"aws = { region = 5; };", "config region: must be a string"},
      {"aws = { node_ip_families = [ \"ipv7\" ]; };",
       "config node_ip_families[0]: \"ipv7\""},
      {"aws = { endpoints = { elbv2 = \"localhost:1\"; }; };",
       "config endpoints.elbv2: \"localhost:1\" is not an http(s) URL"},
      {"aws = { cloud_config = \"/nonexistent.conf\"; };",
       "cloud.conf /nonexistent.conf: cannot open"},
      {"aws = { describe_batch_size = 0; };",
       "config describe_batch_size: must be an integer 1..500"},
      {"aws = { describe_batch_size = 501; };",
       "config describe_batch_size: must be an integer 1..500"},
      {"aws = { describe_batch_size = \"10\"; };",
       "config describe_batch_size: must be an integer 1..500"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    cfg_up(&f, bad[i].text);
    err[0] = '\0';
    assert_int_not_equal(aws_config_load(api, f.host, &c, err, sizeof(err)),
                         CCM_OK);
    if (strstr(err, bad[i].want) == NULL)
      fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, bad[i].want);
    aws_config_clear(api, &c);
    cfg_down(&f);
  }
  rm_tree(tmpdir);
}

/* ---- credentials ------------------------------------------------------------ */

static void env_clean(void) {
  const char *vars[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                        "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY",
                        "AWS_SECRET_KEY", "AWS_PROFILE",
                        "AWS_DEFAULT_PROFILE", "AWS_SHARED_CREDENTIALS_FILE",
                        "AWS_CONFIG_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
                        "AWS_ROLE_ARN", "AWS_EC2_METADATA_SERVICE_ENDPOINT"};
  for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
    unsetenv(vars[i]);
  setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
}

static void test_creds_chain_order(void **state) {
  const struct ccm_host_api *api = host_api();
  struct aws_creds c;
  char path[256], dir[256], err[AWS_ERR];
  (void)state;

  make_tmpdir();
  env_clean();
  setenv("HOME", tmpdir, 1);
  snprintf(dir, sizeof(dir), "%s/.aws", tmpdir);
  assert_int_equal(mkdir(dir, 0700), 0);

  /* Nothing anywhere. */
  assert_int_equal(aws_creds_from_env(api, &c, err, sizeof(err)),
                   CCM_ERR_NOT_FOUND);
  assert_int_equal(aws_creds_from_profile(api, &c, err, sizeof(err)),
                   CCM_ERR_NOT_FOUND);

  /* ~/.aws/config [default] only. */
  snprintf(path, sizeof(path), "%s/config", dir);
  write_file(path, "[default]\nregion = us-east-1\naws_access_key_id = "
                   "AKIDCONFIG\naws_secret_access_key = sconfig\n"
                   "[profile dev]\naws_access_key_id = AKIDDEVCFG\n"
                   "aws_secret_access_key = sdevcfg\n"
                   "aws_session_token = tdev\n");
  assert_int_equal(aws_creds_from_profile(api, &c, err, sizeof(err)), CCM_OK);
  assert_string_equal(c.access_key, "AKIDCONFIG");
  assert_int_equal(c.source, AWS_SRC_PROFILE);
  aws_creds_clear(api, &c);

  /* ~/.aws/credentials wins over config. */
  snprintf(path, sizeof(path), "%s/credentials", dir);
  write_file(path, "[default]\naws_access_key_id = AKIDCREDS\n"
                   "aws_secret_access_key = screds\n");
  assert_int_equal(aws_creds_from_profile(api, &c, err, sizeof(err)), CCM_OK);
  assert_string_equal(c.access_key, "AKIDCREDS");
  assert_null(c.token);
  aws_creds_clear(api, &c);

  /* AWS_PROFILE=dev: not in credentials, "[profile dev]" in config. */
  setenv("AWS_PROFILE", "dev", 1);
  assert_int_equal(aws_creds_from_profile(api, &c, err, sizeof(err)), CCM_OK);
  assert_string_equal(c.access_key, "AKIDDEVCFG");
  assert_string_equal(c.token, "tdev");
  aws_creds_clear(api, &c);
  unsetenv("AWS_PROFILE");

  /* AWS_SHARED_CREDENTIALS_FILE moves the credentials file. */
  snprintf(path, sizeof(path), "%s/other", tmpdir);
  write_file(path, "[default]\naws_access_key_id = AKIDOTHER\n"
                   "aws_secret_access_key = sother\n");
  setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
  assert_int_equal(aws_creds_from_profile(api, &c, err, sizeof(err)), CCM_OK);
  assert_string_equal(c.access_key, "AKIDOTHER");
  aws_creds_clear(api, &c);

  /* A half profile is an error naming the file, never a secret. */
  write_file(path, "[default]\naws_secret_access_key = onlysecret\n");
  assert_int_equal(aws_creds_from_profile(api, &c, err, sizeof(err)),
                   CCM_ERR_AUTH);
  assert_non_null(strstr(err, path));
  assert_null(strstr(err, "onlysecret"));
  unsetenv("AWS_SHARED_CREDENTIALS_FILE");

  /* The environment comes first; a half-set environment is an error. */
  setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
  assert_int_equal(aws_creds_from_env(api, &c, err, sizeof(err)),
                   CCM_ERR_AUTH);
  assert_non_null(strstr(err, "AWS_SECRET_ACCESS_KEY"));
  setenv("AWS_SECRET_ACCESS_KEY", "senv", 1);
  setenv("AWS_SESSION_TOKEN", "tenv", 1);
  assert_int_equal(aws_creds_from_env(api, &c, err, sizeof(err)), CCM_OK);
  assert_string_equal(c.access_key, "AKIDENV");
  assert_string_equal(c.token, "tenv");
  assert_int_equal(c.source, AWS_SRC_ENV);
  aws_creds_clear(api, &c);
  env_clean();
  rm_tree(tmpdir);
}

/* ---- the provider through init, with HTTP faults ------------------------- */

struct prov_fix {
  struct cfg_fix cfg;
  const struct ccm_provider *p;
  void *inst;
  struct ccm_call call;
};

static int prov_up(struct prov_fix *f, const char *text) {
  struct ccm_entry e = {0};
  e.struct_size = sizeof(e);
  e.host_abi_major = CCM_ABI_MAJOR;
  e.host_abi_minor = CCM_ABI_MINOR;
  assert_int_equal(ccm_provider_entry(&e), CCM_OK);
  f->p = e.provider;
  cfg_up(&f->cfg, text);
  call_init(&f->call, 30000);
  f->inst = NULL;
  return f->p->init(host_api(), f->cfg.host, &f->call, &f->inst);
}

static void prov_down(struct prov_fix *f) {
  if (f->inst != NULL)
    f->p->destroy(f->inst);
  cfg_down(&f->cfg);
}

static const char PROV_CFG[] =
    "aws = { region = \"us-east-1\"; cluster_id = \"c1\";\n"
    "  endpoints = { ec2 = \"http://127.0.0.1:9/\"; sts = "
    "\"http://127.0.0.1:9/\"; imds = \"http://127.0.0.1:9\"; }; };\n";

static void test_init_errors(void **state) {
  struct prov_fix f;
  (void)state;
  env_clean();
  assert_int_equal(prov_up(&f, "aws = { cloud_config = \"/nonexistent\"; };"),
                   CCM_ERR_INVALID);
  assert_non_null(strstr(f.call.error, "/nonexistent"));
  prov_down(&f);
  /* No region anywhere and IMDS disabled. */
  assert_int_equal(prov_up(&f, "aws = { cluster_id = \"c\"; };"),
                   CCM_ERR_INVALID);
  assert_non_null(strstr(f.call.error, "no region"));
  prov_down(&f);
  assert_int_equal(prov_up(&f, PROV_CFG), CCM_OK);
  prov_down(&f);
}

static void test_query_faults(void **state) {
  struct prov_fix f;
  struct ccm_node node = {sizeof(node), "i-0abc", "u", NULL, NULL, 0, NULL,
                          0};
  bool exists = true;
  struct http_fault fault = {0};
  (void)state;

  env_clean();
  setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
         1);
  assert_int_equal(prov_up(&f, PROV_CFG), CCM_OK);

  /* EC2 throttling on every attempt: throttled, with a retry delay. */
  fault.url_part = "127.0.0.1:9";
  fault.status = 503;
  fault.body = "<Response><Errors><Error><Code>RequestLimitExceeded</Code>"
               "<Message>Request limit exceeded.</Message></Error></Errors>"
               "<RequestID>x</RequestID></Response>";
  fault.count = -1;
  assert_int_equal(http_fault_add(f.cfg.host->http, &fault), 0);
  assert_int_equal(f.p->instance_exists(f.inst, &f.call, &node, &exists),
                   CCM_ERR_THROTTLED);
  assert_non_null(strstr(f.call.error, "RequestLimitExceeded"));
  assert_true(f.call.has_retry_after);
  http_faults_clear(f.cfg.host->http);

  /* Not found is an answer: exists = false. */
  call_init(&f.call, 30000);
  fault.status = 400;
  fault.body = "<Response><Errors><Error><Code>InvalidInstanceID.NotFound"
               "</Code><Message>gone</Message></Error></Errors></Response>";
  assert_int_equal(http_fault_add(f.cfg.host->http, &fault), 0);
  exists = true;
  assert_int_equal(f.p->instance_exists(f.inst, &f.call, &node, &exists),
                   CCM_OK);
  assert_false(exists);
  http_faults_clear(f.cfg.host->http);

  /* Refused credentials: auth, naming the source, never the secret. */
  call_init(&f.call, 30000);
  fault.status = 401;
  fault.body = "<Response><Errors><Error><Code>AuthFailure</Code>"
               "<Message>AWS was not able to validate</Message></Error>"
               "</Errors></Response>";
  assert_int_equal(http_fault_add(f.cfg.host->http, &fault), 0);
  assert_int_equal(f.p->instance_exists(f.inst, &f.call, &node, &exists),
                   CCM_ERR_AUTH);
  assert_non_null(strstr(f.call.error, "credentials from environment "
                                       "refused: AuthFailure"));
  assert_null(strstr(f.call.error, "EXAMPLEKEY"));
  http_faults_clear(f.cfg.host->http);

  /* ELB-style throttling once, then a 5xx once, then success. */
  call_init(&f.call, 30000);
  fault.status = 400;
  fault.count = 1;
  fault.body = "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling"
               "</Code><Message>Rate exceeded</Message></Error>"
               "</ErrorResponse>";
  assert_int_equal(http_fault_add(f.cfg.host->http, &fault), 0);
  struct http_fault f5 = fault;
  f5.status = 500;
  f5.body = "";
  assert_int_equal(http_fault_add(f.cfg.host->http, &f5), 0);
  struct http_fault ok = fault;
  ok.status = 200;
  ok.body = "<DescribeInstancesResponse><reservationSet><item><instancesSet>"
            "<item><instanceId>i-0abc</instanceId><instanceState><name>"
            "stopped</name></instanceState><placement><availabilityZone>"
            "us-east-1c</availabilityZone></placement></item></instancesSet>"
            "</item></reservationSet></DescribeInstancesResponse>";
  assert_int_equal(http_fault_add(f.cfg.host->http, &ok), 0);
  bool down = false;
  assert_int_equal(f.p->instance_shutdown(f.inst, &f.call, &node, &down),
                   CCM_OK);
  assert_true(down);
  http_faults_clear(f.cfg.host->http);

  /* A transport failure every time: retry, with a delay. */
  call_init(&f.call, 30000);
  fault.status = 0;
  fault.count = -1;
  assert_int_equal(http_fault_add(f.cfg.host->http, &fault), 0);
  assert_int_equal(f.p->instance_exists(f.inst, &f.call, &node, &exists),
                   CCM_ERR_RETRY);
  assert_true(f.call.has_retry_after);
  http_faults_clear(f.cfg.host->http);
  prov_down(&f);
  env_clean();
}

static void test_descriptor(void **state) {
  struct ccm_entry e = {0};
  (void)state;
  e.struct_size = sizeof(e);
  assert_int_equal(ccm_provider_entry(&e), CCM_OK);
  assert_string_equal(e.provider->name, "aws");
  assert_int_equal(e.provider->thread_safety, CCM_THREAD_SAFE);
  size_t n = 0;
  while (e.provider->options[n] != NULL)
    n++;
  assert_int_equal(n, 28);
  assert_int_equal(e.provider->lb_name_rules->max_length, 32);
  assert_null(strchr(e.provider->lb_name_rules->allowed_first, '-'));
  assert_null(strchr(e.provider->lb_name_rules->allowed_last, '-'));
  assert_non_null(strchr(e.provider->lb_name_rules->allowed, '-'));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sigv4_vectors),
      cmocka_unit_test(test_sigv4_secret_matters),
      cmocka_unit_test(test_url_host),
      cmocka_unit_test(test_describe_instances_parse),
      cmocka_unit_test(test_xml_no_entities),
      cmocka_unit_test(test_error_documents),
      cmocka_unit_test(test_error_classify),
      cmocka_unit_test(test_provider_id),
      cmocka_unit_test(test_cloudconf_good),
      cmocka_unit_test(test_cloudconf_bad),
      cmocka_unit_test(test_config_merge),
      cmocka_unit_test(test_creds_chain_order),
      cmocka_unit_test(test_init_errors),
      cmocka_unit_test(test_query_faults),
      cmocka_unit_test(test_descriptor),
  };
  int rc;
  if (http_global_init() != 0)
    return 1;
  log_set_level(CCM_LOG_ERROR);
  rc = cmocka_run_group_tests(tests, NULL, NULL);
  http_global_cleanup();
  return rc;
}
