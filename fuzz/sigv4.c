/*
 * libFuzzer harness: the SigV4 canonicalizer, signer and verifier
 * (bindings/sigv4_core.c) driven by a whole HTTP request.
 *
 * Input: a request in the format of the AWS SigV4 suite's .req files
 *   METHOD SP TARGET [SP HTTP/1.1] LF
 *   Name:value LF          (a line starting with a blank continues the value)
 *   ... LF LF body
 * CRLF is accepted too.  Two harness-only headers, removed before signing,
 * let the fuzzer reach the scope checks: `X-Fuzz-Scope: AK,REGION,SERVICE`
 * and `X-Fuzz-Secret: KEY`.  The date is the X-Amz-Date header's value.
 *
 * Checked on every input:
 *   - sigv4_sign either fails with a message or returns complete results;
 *   - a reused context (cached signing key) gives the same signature;
 *   - the Authorization header it produced parses back to the same parts;
 *   - verifying as alex-dataapi does (signing exactly the SignedHeaders of
 *     that Authorization) gives the same signature;
 *   - an Authorization header in the input goes through the service's
 *     verification steps (parse, date, sign with its header list, compare);
 *   - http://Host + target splits with sigv4_parse_url and the Host header
 *     derived from it fits.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sigv4_core.h"

#define MAX_HEADERS 64

#include "check.h"

typedef struct {
  char *buf;               /* owned copy of the header block, values joined */
  char method[32];
  const char *target;
  size_t target_len;
  sigv4_header h[MAX_HEADERS];
  size_t nh;
  const char *body;
  size_t body_len;
  const char *date, *authz;
  char ak[64], region[64], service[64], secret[64];
} parsed;

static void copy_field(char *dst, size_t cap, const char *s, size_t n) {
  if (n >= cap) n = cap - 1;
  memcpy(dst, s, n);
  dst[n] = '\0';
}

static int is_named(const sigv4_header *h, const char *name) {
  return h->name_len == strlen(name) && strncasecmp(h->name, name, h->name_len) == 0;
}

/* 0, or -1 when the input is not a request at all. */
static int parse(const uint8_t *data, size_t size, parsed *p) {
  memset(p, 0, sizeof *p);
  strcpy(p->ak, "AKIDEXAMPLE");
  strcpy(p->region, "us-east-1");
  strcpy(p->service, "service");
  strcpy(p->secret, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
  p->buf = malloc(size + 1);
  if (!p->buf) return -1;
  memcpy(p->buf, data, size);
  p->buf[size] = '\0';
  char *s = p->buf, *end = p->buf + size;

  /* request line */
  char *eol = memchr(s, '\n', (size_t)(end - s));
  char *le = eol ? eol : end;
  if (le > s && le[-1] == '\r') le--;
  char *sp = memchr(s, ' ', (size_t)(le - s));
  if (!sp) return -1;
  copy_field(p->method, sizeof p->method, s, (size_t)(sp - s));
  char *t = sp + 1, *te = le;
  for (char *q = le; q - t >= 9; q--) { /* the last " HTTP/" ends the target */
    if (memcmp(q - 9, " HTTP/1.1", 9) == 0) {
      te = q - 9;
      break;
    }
  }
  p->target = t;
  p->target_len = (size_t)(te - t);
  s = eol ? eol + 1 : end;

  /* headers, values with continuation lines joined by '\n' in place */
  while (s < end) {
    eol = memchr(s, '\n', (size_t)(end - s));
    le = eol ? eol : end;
    char *next = eol ? eol + 1 : end;
    if (le > s && le[-1] == '\r') le--;
    if (le == s) { /* blank line: the body follows */
      s = next;
      break;
    }
    if ((*s == ' ' || *s == '\t') && p->nh > 0) {
      sigv4_header *h = &p->h[p->nh - 1];
      /* the value and this line are contiguous in buf: widen the value */
      h->value_len = (size_t)(le - h->value);
      s = next;
      continue;
    }
    char *colon = memchr(s, ':', (size_t)(le - s));
    if (colon && p->nh < MAX_HEADERS) {
      sigv4_header *h = &p->h[p->nh++];
      h->name = s;
      h->name_len = (size_t)(colon - s);
      h->value = colon + 1;
      h->value_len = (size_t)(le - colon - 1);
    }
    s = next;
  }
  p->body = s;
  p->body_len = (size_t)(end - s);

  /* harness-only headers out; X-Amz-Date and Authorization noted */
  size_t k = 0;
  for (size_t i = 0; i < p->nh; i++) {
    sigv4_header *h = &p->h[i];
    if (is_named(h, "x-fuzz-scope")) {
      const char *v = h->value, *ve = h->value + h->value_len;
      const char *c1 = memchr(v, ',', h->value_len);
      const char *c2 = c1 ? memchr(c1 + 1, ',', (size_t)(ve - c1 - 1)) : NULL;
      if (c1 && c2) {
        copy_field(p->ak, sizeof p->ak, v, (size_t)(c1 - v));
        copy_field(p->region, sizeof p->region, c1 + 1, (size_t)(c2 - c1 - 1));
        copy_field(p->service, sizeof p->service, c2 + 1, (size_t)(ve - c2 - 1));
      }
      continue;
    }
    if (is_named(h, "x-fuzz-secret")) {
      copy_field(p->secret, sizeof p->secret, h->value, h->value_len);
      continue;
    }
    p->h[k++] = *h;
  }
  p->nh = k;
  /* values are not NUL-terminated in buf: value_dup() copies those used as C strings */
  for (size_t i = 0; i < p->nh; i++) {
    sigv4_header *h = &p->h[i];
    if (is_named(h, "x-amz-date") && !p->date) p->date = h->value;
    if (is_named(h, "authorization") && !p->authz) p->authz = h->value;
  }
  return 0;
}

/* A NUL-terminated copy of a header value (values are not terminated in buf),
 * without leading and trailing blanks, as an HTTP server hands it over. */
static char *value_dup(const parsed *p, const char *v) {
  for (size_t i = 0; i < p->nh; i++) {
    if (p->h[i].value == v) {
      size_t n = p->h[i].value_len;
      while (n && (*v == ' ' || *v == '\t')) v++, n--;
      while (n && (v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
      char *c = malloc(n + 1);
      if (!c) return NULL;
      memcpy(c, v, n);
      c[n] = '\0';
      return c;
    }
  }
  return NULL;
}

static int is_lower_hex64(const char *s) {
  if (strlen(s) != 64) return 0;
  for (const char *q = s; *q; q++)
    if (!((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f'))) return 0;
  return 1;
}

static void fill_request(const parsed *p, sigv4_request *r, const char *date) {
  memset(r, 0, sizeof *r);
  const char *q = memchr(p->target, '?', p->target_len);
  r->method = p->method;
  r->path = p->target;
  r->path_len = q ? (size_t)(q - p->target) : p->target_len;
  r->query = q ? q + 1 : NULL;
  r->query_len = q ? p->target_len - r->path_len - 1 : 0;
  r->headers = p->h;
  r->n_headers = p->nh;
  r->body = p->body_len ? p->body : NULL;
  r->body_len = p->body_len;
  r->access_key = p->ak;
  r->secret_key = p->secret;
  r->region = p->region;
  r->service = p->service;
  r->amz_date = date;
}

/* The service's checks (local/http.c authenticate), minus the clock. */
static void verify_like_service(const parsed *p, sigv4_ctx *ctx) {
  char *authz = value_dup(p, p->authz), *date = value_dup(p, p->date);
  char err[256];
  sigv4_authorization a;
  if (!authz) goto out;
  if (sigv4_parse_authorization(authz, &a, err, sizeof err) != 0) {
    CHECK(err[0] != '\0');
    CHECK(a.buf == NULL);
    goto out;
  }
  CHECK(a.access_key && a.date && a.region && a.service && a.signed_headers && is_lower_hex64(a.signature));
  CHECK(strlen(a.date) == 8);
  if (date && sigv4_parse_amz_date(date) >= 0 && strncmp(a.date, date, 8) == 0) {
    sigv4_request r;
    fill_request(p, &r, date);
    r.signed_header_list = a.signed_headers;
    sigv4_view v;
    if (sigv4_sign_ctx(ctx, &r, &v, err, sizeof err) == 0) {
      int match = sigv4_signature_equal(v.signature, a.signature);
#ifdef FUZZ_DEBUG /* -DFUZZ_DEBUG: say whether a seed's signature verifies */
      fprintf(stderr, "verify: %s\n", match ? "match" : "mismatch");
#endif
      (void)match;
    } else {
      CHECK(err[0] != '\0');
    }
  }
  sigv4_authorization_free(&a);
  CHECK(a.buf == NULL);
out:
  free(authz);
  free(date);
}

static void check_url(const parsed *p) {
  const char *host = NULL;
  size_t host_len = 0;
  for (size_t i = 0; i < p->nh; i++)
    if (is_named(&p->h[i], "host")) {
      host = p->h[i].value;
      host_len = p->h[i].value_len;
      break;
    }
  if (!host) return;
  size_t n = 8 + host_len + p->target_len;
  char *url = malloc(n + 1);
  if (!url) return;
  memcpy(url, "https://", 8);
  memcpy(url + 8, host, host_len);
  memcpy(url + 8 + host_len, p->target, p->target_len);
  url[n] = '\0';
  sigv4_url u;
  char err[128];
  if (sigv4_parse_url(url, n, &u, err, sizeof err) == 0) {
    CHECK(u.https == 1 && u.host_len > 0 && u.host >= url && u.host + u.host_len <= url + n);
    CHECK(u.path >= url && u.path + u.path_len <= url + n);
    CHECK(!u.query || (u.query >= url && u.query + u.query_len <= url + n));
    CHECK(u.port == -1 || (u.port >= 1 && u.port <= 65535));
    char hh[300];
    size_t hl = sigv4_host_header(&u, hh, sizeof hh);
    CHECK(hl == 0 ? u.host_len + 7 > sizeof hh : hl < sizeof hh && strlen(hh) == hl);
  } else {
    CHECK(err[0] != '\0');
  }
  free(url);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  parsed p;
  if (parse(data, size, &p) != 0) {
    free(p.buf);
    return 0;
  }
  char *date = p.date ? value_dup(&p, p.date) : NULL;
  sigv4_request r;
  fill_request(&p, &r, date ? date : "20150830T123600Z");
  char err[256] = "";
  sigv4_result res;
  sigv4_ctx *ctx = sigv4_ctx_new();
  CHECK(ctx != NULL);
  int rc = sigv4_sign(&r, &res, err, sizeof err);
  if (rc != 0) {
    CHECK(err[0] != '\0');
    CHECK(res.canonical_request == NULL && res.authorization == NULL);
  } else {
    CHECK(res.canonical_request && res.string_to_sign && res.signed_headers && res.authorization &&
          res.credential_scope);
    CHECK(is_lower_hex64(res.signature) && is_lower_hex64(res.payload_hash));
    CHECK(strncmp(res.canonical_request, r.method, strlen(r.method)) == 0);

    /* reused context, twice (the second time with the cached key); the
     * canonical request may hold NUL bytes from header values, so the
     * owning result's copy is compared up to its first NUL only */
    for (int round = 0; round < 2; round++) {
      sigv4_view v;
      CHECK(sigv4_sign_ctx(ctx, &r, &v, err, sizeof err) == 0);
      CHECK(strcmp(v.signature, res.signature) == 0);
      size_t cl = strlen(res.canonical_request);
      CHECK(cl <= v.canonical_request_len && memcmp(v.canonical_request, res.canonical_request, cl) == 0);
      CHECK(v.canonical_request[v.canonical_request_len] == '\0');
    }

    /* the Authorization header parses back */
    sigv4_authorization a;
    CHECK(sigv4_parse_authorization(res.authorization, &a, err, sizeof err) == 0);
    CHECK(strcmp(a.access_key, r.access_key) == 0);
    CHECK(strncmp(a.date, r.amz_date, 8) == 0);
    CHECK(strcmp(a.region, r.region) == 0 && strcmp(a.service, r.service) == 0);
    CHECK(strcmp(a.signed_headers, res.signed_headers) == 0);
    CHECK(strcmp(a.signature, res.signature) == 0);
    CHECK(sigv4_signature_equal(a.signature, res.signature));

    /* the verifier's way: exactly the listed headers */
    sigv4_request vr = r;
    vr.signed_header_list = a.signed_headers;
    sigv4_view v;
    CHECK(sigv4_sign_ctx(ctx, &vr, &v, err, sizeof err) == 0);
    CHECK(strcmp(v.signature, res.signature) == 0);
    sigv4_authorization_free(&a);

    /* a different secret must not verify */
    sigv4_request wr = r;
    wr.secret_key = "not-the-secret";
    if (strcmp(r.secret_key, wr.secret_key) != 0) {
      CHECK(sigv4_sign_ctx(ctx, &wr, &v, err, sizeof err) == 0);
      CHECK(!sigv4_signature_equal(v.signature, res.signature));
    }
    sigv4_result_free(&res);
  }
  if (p.authz) verify_like_service(&p, ctx);
  check_url(&p);
  sigv4_ctx_free(ctx);
  free(date);
  free(p.buf);
  return 0;
}
