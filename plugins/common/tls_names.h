/*
 * tls_names.h - the configtls vocabulary in OpenSSL's terms, without OpenSSL:
 * protocol versions ("1.0".."1.3") and cipher_suites (the Go crypto/tls names
 * the collector takes, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, mapped to
 * OpenSSL's ECDHE-RSA-AES128-GCM-SHA256). Shared by the TLS clients (curl_uv.c)
 * and the otlp receiver's TLS server (its TLS module compiles this file too).
 * Any thread.
 */
#ifndef SY_COMMON_TLS_NAMES_H
#define SY_COMMON_TLS_NAMES_H

#include <stddef.h>

#include <switchyard/plugin.h>

/* The rank of a configtls version string, in protocol order ("1.0" is 1 ..
 * "1.3" is 4); 0 when unset (NULL or ""), -1 when unknown. */
int syc_tls_version_rank(const char *v);

/*
 * Turns cipher_suites into an OpenSSL cipher list ("A:B", for
 * SSL_CTX_set_cipher_list / CURLOPT_SSL_CIPHER_LIST) in out[0, out_len).
 * Accepts the names Go's tls.CipherSuites() lists, as configtls does: the TLS
 * 1.2 suites are mapped; the TLS 1.3 ones (TLS_AES_128_GCM_SHA256, ...) are
 * accepted and leave out nothing, as in Go, where TLS 1.3 suites are not
 * configurable. An empty result (no list, or only TLS 1.3 names) means the
 * library's defaults. Returns 0, or SY_EINVAL with the collector's sentence
 * ("invalid TLS cipher suite: \"X\"") in err, naming `key`.
 */
int syc_tls_cipher_list(const sy_cfg_strlist_t *suites, const char *key, char *out, size_t out_len,
                        char *err, size_t err_len);

#endif
