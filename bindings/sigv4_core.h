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

/* ---- Additions (kept compatible with everything above) ------------------ */

/* Notes on the functions above (behaviour, not new contract):
 * - sigv4_sign validates its inputs and fails with a message naming the field
 *   (never its value): method must be an HTTP token; access_key, region and
 *   service non-empty without '/', ',', ';', '=' or blanks; amz_date as
 *   sigv4_parse_amz_date accepts; header names HTTP tokens.
 * - With signed_header_list, every listed name must be among the headers
 *   (case-insensitive), else -1 "signed header 'x' is not among the headers";
 *   the unsigned-by-default rule does not apply then.  Without it, these are
 *   never signed: user-agent, expect, x-amzn-trace-id, authorization and the
 *   hop-by-hop headers (connection, keep-alive, proxy-authenticate,
 *   proxy-authorization, proxy-connection, te, trailer, transfer-encoding,
 *   upgrade).
 * - session_token is not used by sigv4_sign (the header carries it).
 * - sigv4_parse_amz_date accepts calendar-valid dates of years 1970..9999
 *   (seconds 00..59), so a valid date never returns -1.
 * - sigv4_parse_authorization accepts blanks after the commas, components in
 *   any order, each exactly once; a 64-digit lower-case hex Signature; a
 *   Credential of 5 '/'-separated parts ending in aws4_request with an 8-digit
 *   date; SignedHeaders of non-empty lower-case tokens separated by ';'.
 * - sigv4_sha256_hex and sigv4_hmac_sha256 allocate nothing and cannot fail
 *   (hmac returns -1 only for a NULL pointer with a non-zero length). */

/* Reusable signing context: owns scratch buffers and a one-entry cache of the
 * derived signing key for (secret, date, region, service).  Not for sharing
 * between threads; the Lua binding keeps one in a userdata, a server can keep
 * one per worker thread.  sigv4_sign() above uses a temporary one. */
typedef struct sigv4_ctx sigv4_ctx;
sigv4_ctx *sigv4_ctx_new(void);                 /* NULL when out of memory */
void sigv4_ctx_free(sigv4_ctx *ctx);           /* wipes the cached key; NULL ok */
/* How many times ctx derived a signing key rather than reusing its cached one
 * (a signer's statistics; 0 for NULL). */
unsigned long sigv4_ctx_key_derivations(const sigv4_ctx *ctx);

/* Like sigv4_result, but the strings (NUL-terminated, with their lengths) live
 * in ctx and stay valid until the next call on ctx or sigv4_ctx_free. */
typedef struct {
  const char *canonical_request; size_t canonical_request_len;
  const char *string_to_sign;    size_t string_to_sign_len;
  const char *signed_headers;    size_t signed_headers_len;
  const char *authorization;     size_t authorization_len;
  const char *credential_scope;  size_t credential_scope_len;
  char signature[65];
  char payload_hash[65];
} sigv4_view;
int sigv4_sign_ctx(sigv4_ctx *ctx, const sigv4_request *req, sigv4_view *out,
                   char *err, size_t errlen);
/* Splits an absolute http(s) URL.  host excludes the port (IPv6 literals keep
 * their brackets); port is -1 when absent; query is NULL when there is no '?';
 * the fragment is dropped.  Pointers are into url.  0, or -1 with err. */
typedef struct {
  int https;
  const char *host;  size_t host_len;
  long port;
  const char *path;  size_t path_len;   /* "" when the URL has no path */
  const char *query; size_t query_len;
} sigv4_url;
int sigv4_parse_url(const char *url, size_t len, sigv4_url *out, char *err, size_t errlen);
/* The Host header botocore derives from u: lower-cased host, ":port" only when
 * the port is not the scheme's default.  Returns the length written (plus a
 * NUL), or 0 when cap is too small. */
size_t sigv4_host_header(const sigv4_url *u, char *out, size_t cap);
/* Whether the n bytes at s make a credential scope part (access key, region,
 * service) as sigv4_sign accepts it: non-empty, printable ASCII, no blanks and
 * no '/', ',', ';' or '=', so that the Authorization header parses back. */
int sigv4_scope_part_ok(const char *s, size_t n);

#endif
