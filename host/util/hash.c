/*
 * hash.c: SHA-256 as lowercase hex over OpenSSL libcrypto's EVP interface.
 * It only hashes; it must not open, close or seek files it is handed
 * (hash_fd reads with pread from offset 0).
 */
#include "util/hash.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <unistd.h>

void hash_hex(const unsigned char *md, size_t len, char *out)
{
  static const char digits[] = "0123456789abcdef";
  size_t i;

  for (i = 0; i < len; i++) {
    out[2 * i] = digits[md[i] >> 4];
    out[2 * i + 1] = digits[md[i] & 0x0f];
  }
  out[2 * i] = '\0';
}

/* OpenSSL 3 looks SHA-256 up in its provider store on every implicit
 * use, which costs more than hashing a few hundred bytes (the service
 * controller hashes once per reconcile): fetch it once. */
static EVP_MD *hash_sha256;
static pthread_once_t hash_once = PTHREAD_ONCE_INIT;

static void hash_fetch(void)
{
  hash_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *hash_md(void)
{
  pthread_once(&hash_once, hash_fetch);
  return hash_sha256 != NULL ? hash_sha256 : EVP_sha256();
}

void hash_buf(const void *data, size_t len, char out[CCM_HASH_HEX])
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;

  if (EVP_Digest(data, len, md, &md_len, hash_md(), NULL) != 1) {
    out[0] = '\0';
    return;
  }
  hash_hex(md, md_len, out);
}

int hash_fd(int fd, char out[CCM_HASH_HEX])
{
  unsigned char buf[16384];
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  off_t off = 0;
  EVP_MD_CTX *ctx;

  out[0] = '\0';
  ctx = EVP_MD_CTX_new();
  if (ctx == NULL)
    return -1;
  if (EVP_DigestInit_ex(ctx, hash_md(), NULL) != 1)
    goto fail;
  for (;;) {
    ssize_t n = pread(fd, buf, sizeof buf, off);

    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      goto fail;
    if (n == 0)
      break;
    if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1)
      goto fail;
    off += n;
  }
  if (EVP_DigestFinal_ex(ctx, md, &md_len) != 1)
    goto fail;
  EVP_MD_CTX_free(ctx);
  hash_hex(md, md_len, out);
  return 0;

fail:
  EVP_MD_CTX_free(ctx);
  return -1;
}
