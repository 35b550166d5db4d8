/*
 * hash.h: SHA-256 content hashes (OpenSSL libcrypto) as lowercase hex.
 * Used to detect changed module files and config on reload.
 */
#ifndef CCM_HASH_H
#define CCM_HASH_H

#include <stddef.h>

#define CCM_HASH_HEX 65 /* 64 hex digits + NUL */

void hash_buf(const void *data, size_t len, char out[CCM_HASH_HEX]);
/* len bytes as 2 * len lowercase hex digits and a NUL (out holds
 * 2 * len + 1 bytes). */
void hash_hex(const unsigned char *md, size_t len, char *out);
/* Hash an open file descriptor's content from offset 0; -1 on read error. */
int hash_fd(int fd, char out[CCM_HASH_HEX]);

#endif
