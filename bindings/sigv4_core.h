#ifndef ALEX_SIGV4_CORE_H
#define ALEX_SIGV4_CORE_H
/*
 * AWS Signature Version 4, generic (non-S3) mode, as a plain C API with no Lua
 * types, so that the local Data API service can link the same code to verify
 * what alexlua signs.  OpenSSL libcrypto does the hashing.  No global state.
 *
 * Strings are (pointer, length) pairs where bytes may be arbitrary; every
 * returned string is NUL-terminated and owned by the result (sigv4_result_free).
 */
#include <stddef.h>

typedef struct {
  const char *name;
  size_t name_len;
  const char *value;
  size_t value_len;
} sigv4_header;

typedef struct {
  const char *method;            /* "POST" */
  const char *path;              /* as written, undecoded; encoded once and normalized */
  size_t path_len;
  const char *query;             /* without '?', may be NULL */
  size_t query_len;
  const sigv4_header *headers;   /* in request order; repeated names allowed */
  size_t n_headers;
  const char *body;              /* may be NULL when body_len is 0 */
  size_t body_len;
  const char *access_key;
  const char *secret_key;
  const char *session_token;     /* NULL: none */
  const char *region;
  const char *service;
  const char *amz_date;          /* "YYYYMMDDTHHMMSSZ" */
  /* Which headers to sign.  NULL: every header except the unsigned ones
   * (user-agent, expect, x-amzn-trace-id, and hop-by-hop headers), as botocore
   * does.  Non-NULL: exactly the names in this ';'-separated lower-case list,
   * as a verifier takes them from the Authorization header. */
  const char *signed_header_list;
} sigv4_request;

typedef struct {
  char *canonical_request;
  char *string_to_sign;
  char *signed_headers;          /* "content-type;host;x-amz-date" */
  char *authorization;           /* the whole Authorization header value */
  char *credential_scope;        /* "20150830/us-east-1/service/aws4_request" */
  char signature[65];            /* lower-case hex */
  char payload_hash[65];
} sigv4_result;

/* Signs req.  The caller has put Host and X-Amz-Date (and X-Amz-Security-Token
 * when session_token is set and it should be signed) among the headers; this
 * function adds nothing.  Returns 0, or -1 with a message in err. */
int sigv4_sign(const sigv4_request *req, sigv4_result *out, char *err, size_t errlen);
void sigv4_result_free(sigv4_result *res);

/* Parsed "AWS4-HMAC-SHA256 Credential=AK/DATE/REGION/SERVICE/aws4_request,
 * SignedHeaders=a;b, Signature=hex".  Pointers are into a copy owned by the struct. */
typedef struct {
  char *buf;
  const char *access_key, *date, *region, *service, *signed_headers, *signature;
} sigv4_authorization;
int sigv4_parse_authorization(const char *value, sigv4_authorization *out, char *err, size_t errlen);
void sigv4_authorization_free(sigv4_authorization *auth);

/* Constant-time comparison of two NUL-terminated hex signatures. */
int sigv4_signature_equal(const char *a, const char *b);

/* Helpers exposed for Lua and the service. */
void sigv4_sha256_hex(const void *data, size_t len, char out[65]);
int sigv4_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                      unsigned char out[32]);
/* "YYYYMMDDTHHMMSSZ" for the time t (UTC). */
void sigv4_format_amz_date(long long t, char out[17]);
/* Seconds since the epoch for an amz date, or -1 when malformed. */
long long sigv4_parse_amz_date(const char *s);

#endif
