/*
 * AWS Signature Version 4 (generic, non-S3 mode) in plain C.  See sigv4_core.h.
 *
 * Canonical request = METHOD \n path \n query \n headers \n signed-headers \n
 * hex(sha256(body)), where
 *   path:    normalized (no "." / ".." segments, no empty segments, trailing '/'
 *            kept) and percent-encoded once: A-Za-z0-9-._~ and '/' stay,
 *            every other byte becomes %XX (upper-case hex);
 *   query:   each '&'-separated pair split at its first '=', %XX-decoded,
 *            re-encoded like the path (with '/' encoded too), sorted by encoded
 *            key then encoded value (byte order); '+' is taken literally;
 *   headers: names lower-cased, values trimmed with inner whitespace runs
 *            (including obsolete line folding) collapsed to one space, repeated
 *            names joined with ',' in request order, sorted by name.
 * All state lives in a sigv4_ctx; there is no global mutable state.
 */
/* SHA-256 goes through OpenSSL's low-level SHA256_* functions (deprecated in
 * 3.0, still shipped): unlike EVP they neither dispatch through a provider nor
 * allocate per digest, and an HMAC key's padded states are plain structs that
 * can be cached and copied.  Measured: the whole signature takes about half the
 * time it takes through EVP. */
#define OPENSSL_API_COMPAT 10101
#include "sigv4_core.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small utilities ---------------------------------------------------- */

typedef struct {
  char *p;
  size_t len, cap;
} sbuf;

static int sbuf_reserve(sbuf *b, size_t extra) {
  if (extra > SIZE_MAX - b->len - 1) return -1;
  size_t need = b->len + extra + 1; /* room for a final NUL */
  if (need <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  char *p = realloc(b->p, cap);
  if (!p) return -1;
  b->p = p;
  b->cap = cap;
  return 0;
}

/* Callers reserve first; these never grow the buffer. */
static inline void sb_put(sbuf *b, const void *s, size_t n) {
  memcpy(b->p + b->len, s, n);
  b->len += n;
}
static inline void sb_putc(sbuf *b, char c) { b->p[b->len++] = c; }
static inline void sb_term(sbuf *b) { b->p[b->len] = '\0'; }

static void sbuf_free(sbuf *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

static void seterr(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || !errlen) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

static const char HEXU[] = "0123456789ABCDEF";

/* "000102...ff": the two hex digits of every byte value. */
static const char HEX2[513] =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
    "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
    "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
    "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
    "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
    "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

static void to_hex(const unsigned char *in, size_t n, char *out) {
  for (size_t i = 0; i < n; i++) memcpy(out + 2 * i, HEX2 + 2 * in[i], 2);
  out[2 * n] = '\0';
}

/* Character classes as 256-bit maps (generated from the RFC sets). */
static const uint64_t UNRESERVED[4] = {0x03ff600000000000ULL, 0x47fffffe87fffffeULL, 0, 0};
/* RFC 7230 tchar: ALPHA DIGIT ! # $ % & ' * + - . ^ _ ` | ~ */
static const uint64_t TCHAR[4] = {0x03ff6cfa00000000ULL, 0x57ffffffc7fffffeULL, 0, 0};
static inline int in_set(const uint64_t set[4], unsigned char c) { return (set[c >> 6] >> (c & 63)) & 1; }
static inline int is_unreserved(unsigned char c) { return in_set(UNRESERVED, c); }
static inline int is_tchar(unsigned char c) { return in_set(TCHAR, c); }

static int hexval(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static inline unsigned char lower(unsigned char c) {
  return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static inline int is_ws(unsigned char c) {
  return c <= ' ' && (c == ' ' || c == '\t' || c == '\r' || c == '\n');
}

/* Appends the %XX encoding of one byte (or the byte itself when unreserved). */
static inline void enc_byte(sbuf *b, unsigned char c) {
  if (is_unreserved(c)) {
    b->p[b->len++] = (char)c;
  } else {
    b->p[b->len++] = '%';
    b->p[b->len++] = HEXU[c >> 4];
    b->p[b->len++] = HEXU[c & 15];
  }
}

/* ---- hashing ------------------------------------------------------------ */

static void sha256(const void *a, size_t al, unsigned char out[32]) {
  SHA256_CTX c;
  SHA256_Init(&c);
  SHA256_Update(&c, a, al);
  SHA256_Final(out, &c);
}

/* An HMAC-SHA256 key as the two hash states after absorbing K^ipad, K^opad. */
typedef struct {
  SHA256_CTX in, out;
} hmac_key;

static void hmac_prep(hmac_key *hk, const void *key, size_t key_len) {
  unsigned char k[64] = {0}, pad[64];
  if (key_len > 64)
    sha256(key, key_len, k);
  else if (key_len)
    memcpy(k, key, key_len);
  for (int i = 0; i < 64; i++) pad[i] = k[i] ^ 0x36;
  SHA256_Init(&hk->in);
  SHA256_Update(&hk->in, pad, 64);
  for (int i = 0; i < 64; i++) pad[i] = k[i] ^ 0x5c;
  SHA256_Init(&hk->out);
  SHA256_Update(&hk->out, pad, 64);
  OPENSSL_cleanse(k, sizeof k);
  OPENSSL_cleanse(pad, sizeof pad);
}

static void hmac_run(const hmac_key *hk, const void *msg, size_t msg_len, unsigned char out[32]) {
  SHA256_CTX c = hk->in;
  unsigned char inner[32];
  SHA256_Update(&c, msg, msg_len);
  SHA256_Final(inner, &c);
  c = hk->out;
  SHA256_Update(&c, inner, 32);
  SHA256_Final(out, &c);
}

static void hmac(const void *key, size_t key_len, const void *msg, size_t msg_len,
                 unsigned char out[32]) {
  hmac_key hk;
  hmac_prep(&hk, key, key_len);
  hmac_run(&hk, msg, msg_len, out);
  OPENSSL_cleanse(&hk, sizeof hk);
}

void sigv4_sha256_hex(const void *data, size_t len, char out[65]) {
  unsigned char md[32];
  sha256(len ? data : "", len, md);
  to_hex(md, 32, out);
}

int sigv4_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                      unsigned char out[32]) {
  if ((!key && key_len) || (!msg && msg_len)) return -1;
  hmac(key_len ? key : "", key_len, msg_len ? msg : "", msg_len, out);
  return 0;
}

/* ---- context ------------------------------------------------------------ */

typedef struct {
  const char *name; /* lower-cased, in ctx->names */
  size_t name_len;
  const char *value;
  size_t value_len;
  size_t index;     /* request order, for a stable sort */
  int sign;
} hent;

typedef struct {
  const char *k, *v;
  size_t kl, vl;
} qpair;

struct sigv4_ctx {
  sbuf creq, sts, auth, scope, sh, names, qbuf;
  hent *ents;
  size_t ents_cap;
  qpair *qp;
  size_t qp_cap;
  /* one-entry signing-key cache */
  int key_valid;
  unsigned long key_derivations; /* how often the key was derived (not cached) */
  hmac_key ksign;
  sbuf key_id; /* secret \0 date \0 region \0 service, wiped on replacement/free */
};

sigv4_ctx *sigv4_ctx_new(void) { return calloc(1, sizeof(sigv4_ctx)); }

unsigned long sigv4_ctx_key_derivations(const sigv4_ctx *c) { return c ? c->key_derivations : 0; }

static void wipe_key(sigv4_ctx *c) {
  if (c->key_id.p) OPENSSL_cleanse(c->key_id.p, c->key_id.cap);
  c->key_id.len = 0;
  OPENSSL_cleanse(&c->ksign, sizeof c->ksign);
  c->key_valid = 0;
}

void sigv4_ctx_free(sigv4_ctx *c) {
  if (!c) return;
  wipe_key(c);
  sbuf *bufs[] = {&c->creq, &c->sts, &c->auth, &c->scope, &c->sh, &c->names, &c->qbuf, &c->key_id};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) sbuf_free(bufs[i]);
  free(c->ents);
  free(c->qp);
  free(c);
}

/* ---- dates -------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static long long days_from_civil(long long y, unsigned m, unsigned d) {
  y -= m <= 2;
  long long era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (long long)doe - 719468;
}

static void civil_from_days(long long z, long long *y, unsigned *m, unsigned *d) {
  z += 719468;
  long long era = (z >= 0 ? z : z - 146096) / 146097;
  unsigned doe = (unsigned)(z - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (long long)yoe + era * 400 + (*m <= 2);
}

void sigv4_format_amz_date(long long t, char out[17]) {
  long long days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
  long long secs = t - days * 86400;
  long long y;
  unsigned m, d;
  civil_from_days(days, &y, &m, &d);
  if (y < 0) y = 0;
  if (y > 9999) y = 9999;
  unsigned f[6] = {(unsigned)y, m, d, (unsigned)(secs / 3600), (unsigned)(secs / 60 % 60),
                   (unsigned)(secs % 60)};
  static const int width[6] = {4, 2, 2, 2, 2, 2};
  char *p = out;
  for (int i = 0; i < 6; i++) {
    for (int k = width[i] - 1; k >= 0; k--) {
      p[k] = (char)('0' + f[i] % 10);
      f[i] /= 10;
    }
    p += width[i];
    if (i == 2) *p++ = 'T';
  }
  *p++ = 'Z';
  *p = '\0';
}

static int digits(const char *s, int n, int *v) {
  int x = 0;
  for (int i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    x = x * 10 + (s[i] - '0');
  }
  *v = x;
  return 0;
}

/* Years 1970..9999 only, so that every valid date maps to t >= 0. */
long long sigv4_parse_amz_date(const char *s) {
  static const unsigned char mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int y, mo, d, h, mi, se;
  if (!s || strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z') return -1;
  if (digits(s, 4, &y) || digits(s + 4, 2, &mo) || digits(s + 6, 2, &d) || digits(s + 9, 2, &h) ||
      digits(s + 11, 2, &mi) || digits(s + 13, 2, &se))
    return -1;
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || se > 59) return -1;
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (d > mdays[mo - 1] + (mo == 2 && leap)) return -1;
  return days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se;
}

/* ---- URL ---------------------------------------------------------------- */

int sigv4_parse_url(const char *url, size_t len, sigv4_url *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  out->port = -1;
  if (!url) {
    seterr(err, errlen, "url: missing");
    return -1;
  }
  size_t i = 0;
  if (len >= 8 && (lower(url[0]) == 'h' && lower(url[1]) == 't' && lower(url[2]) == 't' &&
                   lower(url[3]) == 'p' && lower(url[4]) == 's' && memcmp(url + 5, "://", 3) == 0)) {
    out->https = 1;
    i = 8;
  } else if (len >= 7 && lower(url[0]) == 'h' && lower(url[1]) == 't' && lower(url[2]) == 't' &&
             lower(url[3]) == 'p' && memcmp(url + 4, "://", 3) == 0) {
    i = 7;
  } else {
    seterr(err, errlen, "url: not an absolute http:// or https:// URL");
    return -1;
  }
  size_t a = i;
  while (i < len && url[i] != '/' && url[i] != '?' && url[i] != '#') i++;
  const char *auth = url + a;
  size_t alen = i - a;
  if (memchr(auth, '@', alen)) {
    seterr(err, errlen, "url: user information is not supported");
    return -1;
  }
  size_t hlen = alen;
  const char *colon = NULL;
  if (alen && auth[0] == '[') {
    const char *rb = memchr(auth, ']', alen);
    if (!rb) goto bad_host;
    hlen = (size_t)(rb - auth) + 1;
    for (size_t k = 1; k + 1 < hlen; k++) {
      unsigned char c = (unsigned char)auth[k];
      if (!(hexval(c) >= 0 || c == ':' || c == '.')) goto bad_host;
    }
    if (hlen < 3) goto bad_host;
    if (hlen < alen) {
      if (auth[hlen] != ':') goto bad_host;
      colon = auth + hlen;
    }
  } else {
    for (size_t k = 0; k < alen; k++) {
      if (auth[k] == ':') {
        colon = auth + k;
        hlen = k;
        break;
      }
    }
    for (size_t k = 0; k < hlen; k++)
      if (!is_unreserved((unsigned char)auth[k])) goto bad_host;
  }
  if (hlen == 0) goto bad_host;
  out->host = auth;
  out->host_len = hlen;
  if (colon) {
    const char *p = colon + 1, *e = auth + alen;
    long port = 0;
    if (p == e || e - p > 5) goto bad_port;
    for (; p < e; p++) {
      if (*p < '0' || *p > '9') goto bad_port;
      port = port * 10 + (*p - '0');
    }
    if (port < 1 || port > 65535) goto bad_port;
    out->port = port;
  }
  size_t ps = i;
  while (i < len && url[i] != '?' && url[i] != '#') i++;
  out->path = url + ps;
  out->path_len = i - ps;
  if (i < len && url[i] == '?') {
    size_t qs = ++i;
    while (i < len && url[i] != '#') i++;
    out->query = url + qs;
    out->query_len = i - qs;
  }
  return 0;
bad_host:
  seterr(err, errlen, "url: missing or invalid host");
  return -1;
bad_port:
  seterr(err, errlen, "url: invalid port");
  return -1;
}

size_t sigv4_host_header(const sigv4_url *u, char *out, size_t cap) {
  char port[8] = "";
  size_t pl = 0;
  if (u->port >= 0 && u->port != (u->https ? 443 : 80))
    pl = (size_t)snprintf(port, sizeof port, ":%ld", u->port);
  if (u->host_len + pl + 1 > cap) return 0;
  for (size_t i = 0; i < u->host_len; i++) out[i] = (char)lower((unsigned char)u->host[i]);
  memcpy(out + u->host_len, port, pl + 1);
  return u->host_len + pl;
}

/* ---- canonical request pieces ------------------------------------------ */

/* Normalized, encoded path.  '.' segments vanish, '..' drops the previous
 * segment, empty segments (from '//') vanish, and a trailing '/' stays. */
static int put_path(sbuf *b, const char *path, size_t len) {
  if (len > SIZE_MAX / 4 || sbuf_reserve(b, 3 * len + 2) != 0) return -1;
  size_t root = b->len;
  sb_putc(b, '/');
  size_t i = 0;
  while (i < len) {
    size_t s = i;
    while (i < len && path[i] != '/') i++;
    size_t n = i - s;
    if (i < len) i++; /* skip the '/' */
    if (n == 0 || (n == 1 && path[s] == '.')) continue;
    if (n == 2 && path[s] == '.' && path[s + 1] == '.') {
      /* drop the last segment: output is "/seg1/seg2/" here */
      if (b->len > root + 1) {
        size_t j = b->len - 1; /* the trailing '/' */
        while (j > root && b->p[j - 1] != '/') j--;
        b->len = j;
      }
      continue;
    }
    for (size_t k = s; k < s + n; k++) enc_byte(b, (unsigned char)path[k]);
    sb_putc(b, '/');
  }
  int trailing = len > 0 && path[len - 1] == '/';
  if (b->len > root + 1 && !trailing) b->len--;
  return 0;
}

/* Decodes %XX (valid ones only; a stray '%' stays literal) and re-encodes. */
static void recode(sbuf *b, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    int hi, lo;
    if (c == '%' && i + 2 < n && (hi = hexval((unsigned char)s[i + 1])) >= 0 &&
        (lo = hexval((unsigned char)s[i + 2])) >= 0) {
      c = (unsigned char)(hi * 16 + lo);
      i += 2;
    }
    enc_byte(b, c);
  }
}

static int cmp_bytes(const char *a, size_t al, const char *b, size_t bl) {
  int r = memcmp(a, b, al < bl ? al : bl);
  if (r) return r;
  return al < bl ? -1 : al > bl;
}

static int qpair_cmp(const void *x, const void *y) {
  const qpair *a = x, *b = y;
  int r = cmp_bytes(a->k, a->kl, b->k, b->kl);
  return r ? r : cmp_bytes(a->v, a->vl, b->v, b->vl);
}

static int put_query(sigv4_ctx *c, sbuf *b, const char *q, size_t len) {
  if (!q || !len) return 0;
  size_t npairs = 1;
  for (size_t i = 0; i < len; i++) npairs += q[i] == '&';
  if (npairs > c->qp_cap) {
    qpair *p = realloc(c->qp, npairs * sizeof *p);
    if (!p) return -1;
    c->qp = p;
    c->qp_cap = npairs;
  }
  sbuf *qb = &c->qbuf;
  qb->len = 0;
  if (len > SIZE_MAX / 4 || sbuf_reserve(qb, 3 * len) != 0) return -1; /* never grows below */
  size_t n = 0, i = 0;
  while (i <= len) {
    size_t s = i;
    while (i < len && q[i] != '&') i++;
    if (i > s) {
      const char *eq = memchr(q + s, '=', i - s);
      size_t kend = eq ? (size_t)(eq - q) : i;
      qpair *p = &c->qp[n++];
      size_t ko = qb->len;
      recode(qb, q + s, kend - s);
      p->k = qb->p + ko;
      p->kl = qb->len - ko;
      size_t vo = qb->len;
      if (eq) recode(qb, eq + 1, i - kend - 1);
      p->v = qb->p + vo;
      p->vl = qb->len - vo;
    }
    i++;
  }
  qsort(c->qp, n, sizeof *c->qp, qpair_cmp);
  size_t total = 0;
  for (size_t k = 0; k < n; k++) total += c->qp[k].kl + c->qp[k].vl + 2;
  if (sbuf_reserve(b, total) != 0) return -1;
  for (size_t k = 0; k < n; k++) {
    if (k) sb_putc(b, '&');
    sb_put(b, c->qp[k].k, c->qp[k].kl);
    sb_putc(b, '=');
    sb_put(b, c->qp[k].v, c->qp[k].vl);
  }
  return 0;
}

static int hent_cmp(const void *x, const void *y) {
  const hent *a = x, *b = y;
  int r = cmp_bytes(a->name, a->name_len, b->name, b->name_len);
  if (r) return r;
  return a->index < b->index ? -1 : a->index > b->index;
}

/* Headers botocore never signs: its blacklist plus hop-by-hop headers, and the
 * Authorization header itself. */
static int unsigned_by_default(const char *n, size_t l) {
#define NAME(s) {s, sizeof s - 1}
  static const struct {
    const char *s;
    size_t l;
  } names[] = {NAME("user-agent"),         NAME("expect"),           NAME("x-amzn-trace-id"),
               NAME("transfer-encoding"),  NAME("connection"),       NAME("keep-alive"),
               NAME("proxy-authenticate"), NAME("proxy-authorization"), NAME("proxy-connection"),
               NAME("te"),                 NAME("trailer"),          NAME("upgrade"),
               NAME("authorization")};
#undef NAME
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (names[i].l == l && memcmp(names[i].s, n, l) == 0) return 1;
  return 0;
}

/* Does the ';'-separated list contain name? */
static int list_has(const char *list, const char *n, size_t l) {
  const char *p = list;
  for (;;) {
    const char *e = strchr(p, ';');
    size_t il = e ? (size_t)(e - p) : strlen(p);
    if (il == l && memcmp(p, n, l) == 0) return 1;
    if (!e) return 0;
    p = e + 1;
  }
}

/* Appends a header value trimmed, with whitespace runs collapsed (copying the
 * runs between blanks whole). */
static void put_value(sbuf *b, const char *v, size_t n) {
  size_t i = 0;
  while (i < n && is_ws((unsigned char)v[i])) i++;
  while (n > i && is_ws((unsigned char)v[n - 1])) n--;
  char *o = b->p + b->len;
  while (i < n) {
    size_t s = i;
    while (i < n && !is_ws((unsigned char)v[i])) i++;
    memcpy(o, v + s, i - s);
    o += i - s;
    if (i < n) {
      *o++ = ' ';
      while (i < n && is_ws((unsigned char)v[i])) i++;
    }
  }
  b->len = (size_t)(o - b->p);
}

static int put_headers(sigv4_ctx *c, const sigv4_request *r, char *err, size_t errlen) {
  size_t n = r->n_headers, total_names = 0, total = 0;
  if (n > c->ents_cap) {
    hent *e = realloc(c->ents, n * sizeof *e);
    if (!e) goto oom;
    c->ents = e;
    c->ents_cap = n;
  }
  for (size_t i = 0; i < n; i++) {
    const sigv4_header *h = &r->headers[i];
    if (!h->name || h->name_len == 0 || (!h->value && h->value_len)) {
      seterr(err, errlen, "header %zu: missing name or value", i + 1);
      return -1;
    }
    for (size_t k = 0; k < h->name_len; k++) {
      if (!is_tchar((unsigned char)h->name[k])) {
        seterr(err, errlen, "header %zu: invalid name", i + 1);
        return -1;
      }
    }
    total_names += h->name_len;
  }
  sbuf *nb = &c->names;
  nb->len = 0;
  if (sbuf_reserve(nb, total_names) != 0) goto oom;
  for (size_t i = 0; i < n; i++) {
    const sigv4_header *h = &r->headers[i];
    hent *e = &c->ents[i];
    e->name = nb->p + nb->len;
    e->name_len = h->name_len;
    for (size_t k = 0; k < h->name_len; k++) sb_putc(nb, (char)lower((unsigned char)h->name[k]));
    e->value = h->value ? h->value : "";
    e->value_len = h->value_len;
    e->index = i;
    e->sign = r->signed_header_list ? list_has(r->signed_header_list, e->name, e->name_len)
                                    : !unsigned_by_default(e->name, e->name_len);
    if (e->sign) total += 2 * h->name_len + h->value_len + 3;
  }
  if (n > 16) {
    qsort(c->ents, n, sizeof *c->ents, hent_cmp);
  } else { /* insertion sort: a handful of headers is the usual case */
    for (size_t i = 1; i < n; i++) {
      hent t = c->ents[i];
      size_t j = i;
      for (; j > 0 && hent_cmp(&c->ents[j - 1], &t) > 0; j--) c->ents[j] = c->ents[j - 1];
      c->ents[j] = t;
    }
  }

  if (r->signed_header_list) {
    /* every listed name must be present */
    const char *p = r->signed_header_list;
    for (;;) {
      const char *e = strchr(p, ';');
      size_t il = e ? (size_t)(e - p) : strlen(p);
      int found = 0;
      for (size_t i = 0; i < n && !found; i++)
        found = c->ents[i].name_len == il && memcmp(c->ents[i].name, p, il) == 0;
      if (!found) {
        if (il == 0)
          seterr(err, errlen, "signed header list: empty name");
        else
          seterr(err, errlen, "signed header '%.*s' is not among the headers",
                 (int)(il > 64 ? 64 : il), p);
        return -1;
      }
      if (!e) break;
      p = e + 1;
    }
  }

  sbuf *b = &c->creq, *sh = &c->sh;
  sh->len = 0;
  if (sbuf_reserve(b, total + 1) != 0 || sbuf_reserve(sh, total + 1) != 0) goto oom;
  for (size_t i = 0; i < n;) {
    hent *e = &c->ents[i];
    size_t j = i + 1;
    while (j < n && c->ents[j].name_len == e->name_len &&
           memcmp(c->ents[j].name, e->name, e->name_len) == 0)
      j++;
    if (e->sign) {
      if (sh->len) sb_putc(sh, ';');
      sb_put(sh, e->name, e->name_len);
      sb_put(b, e->name, e->name_len);
      sb_putc(b, ':');
      for (size_t k = i; k < j; k++) {
        if (k > i) sb_putc(b, ',');
        put_value(b, c->ents[k].value, c->ents[k].value_len);
      }
      sb_putc(b, '\n');
    }
    i = j;
  }
  sb_term(sh);
  if (sh->len == 0) {
    seterr(err, errlen, "no header to sign");
    return -1;
  }
  return 0;
oom:
  seterr(err, errlen, "out of memory");
  return -1;
}

int sigv4_scope_part_ok(const char *s, size_t n) {
  if (n == 0) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch <= 0x20 || ch >= 0x7f || ch == '/' || ch == ',' || ch == '=' || ch == ';') return 0;
  }
  return 1;
}

static int bad_scope_part(const char *s) { return !s || !sigv4_scope_part_ok(s, strlen(s)); }

static int signing_key(sigv4_ctx *c, const sigv4_request *r) {
  size_t sl = strlen(r->secret_key), rl = strlen(r->region), vl = strlen(r->service);
  size_t idlen = sl + 1 + 8 + 1 + rl + 1 + vl;
  sbuf *id = &c->key_id;
  /* the inputs hold no NUL, so matching separators pin every length */
  if (c->key_valid && id->len == idlen && id->p[sl] == '\0' && id->p[sl + 10 + rl] == '\0' &&
      memcmp(id->p, r->secret_key, sl) == 0 && memcmp(id->p + sl + 1, r->amz_date, 8) == 0 &&
      memcmp(id->p + sl + 10, r->region, rl) == 0 &&
      memcmp(id->p + sl + 11 + rl, r->service, vl) == 0)
    return 0;
  wipe_key(c);
  /* idlen >= sl + 4, so id can first hold the initial key "AWS4" + secret */
  unsigned char k[32];
  int rc = -1;
  if (sbuf_reserve(id, idlen) != 0) goto done;
  memcpy(id->p, "AWS4", 4);
  memcpy(id->p + 4, r->secret_key, sl);
  hmac(id->p, sl + 4, r->amz_date, 8, k);
  hmac(k, 32, r->region, rl, k);
  hmac(k, 32, r->service, vl, k);
  hmac(k, 32, "aws4_request", 12, k);
  hmac_prep(&c->ksign, k, 32);
  id->len = 0;
  sb_put(id, r->secret_key, sl);
  sb_putc(id, '\0');
  sb_put(id, r->amz_date, 8);
  sb_putc(id, '\0');
  sb_put(id, r->region, rl);
  sb_putc(id, '\0');
  sb_put(id, r->service, vl);
  c->key_valid = 1;
  c->key_derivations++;
  rc = 0;
done:
  OPENSSL_cleanse(k, sizeof k);
  if (rc) wipe_key(c);
  return rc;
}

int sigv4_sign_ctx(sigv4_ctx *c, const sigv4_request *r, sigv4_view *out, char *err,
                   size_t errlen) {
  memset(out, 0, sizeof *out);
  if (!c || !r) {
    seterr(err, errlen, "no context or request");
    return -1;
  }
  if (!r->method || !*r->method) {
    seterr(err, errlen, "method: missing");
    return -1;
  }
  for (const char *m = r->method; *m; m++) {
    if (!is_tchar((unsigned char)*m)) {
      seterr(err, errlen, "method: invalid");
      return -1;
    }
  }
  if (bad_scope_part(r->access_key)) {
    seterr(err, errlen, "access_key: missing or invalid");
    return -1;
  }
  if (!r->secret_key || !*r->secret_key) {
    seterr(err, errlen, "secret_key: missing");
    return -1;
  }
  if (bad_scope_part(r->region)) {
    seterr(err, errlen, "region: missing or invalid");
    return -1;
  }
  if (bad_scope_part(r->service)) {
    seterr(err, errlen, "service: missing or invalid");
    return -1;
  }
  if (sigv4_parse_amz_date(r->amz_date) < 0) {
    seterr(err, errlen, "amz_date: missing or malformed (want YYYYMMDDTHHMMSSZ)");
    return -1;
  }
  if ((!r->path && r->path_len) || (!r->query && r->query_len) || (!r->body && r->body_len) ||
      (!r->headers && r->n_headers)) {
    seterr(err, errlen, "NULL pointer with a non-zero length");
    return -1;
  }
  if (r->signed_header_list && !*r->signed_header_list) {
    seterr(err, errlen, "signed header list: empty");
    return -1;
  }

  unsigned char md[32];
  /* payload hash */
  sha256(r->body_len ? r->body : "", r->body_len, md);
  to_hex(md, 32, out->payload_hash);

  /* canonical request */
  sbuf *b = &c->creq;
  size_t ml = strlen(r->method);
  b->len = 0;
  if (sbuf_reserve(b, ml + 1) != 0) goto oom;
  sb_put(b, r->method, ml);
  sb_putc(b, '\n');
  if (put_path(b, r->path, r->path_len) != 0 || sbuf_reserve(b, 1) != 0) goto oom;
  sb_putc(b, '\n');
  if (put_query(c, b, r->query, r->query_len) != 0 || sbuf_reserve(b, 1) != 0) goto oom;
  sb_putc(b, '\n');
  if (put_headers(c, r, err, errlen) != 0) return -1;
  if (sbuf_reserve(b, c->sh.len + 2 + 64) != 0) goto oom;
  sb_putc(b, '\n');
  sb_put(b, c->sh.p, c->sh.len);
  sb_putc(b, '\n');
  sb_put(b, out->payload_hash, 64);
  sb_term(b);

  /* credential scope and string to sign */
  sbuf *sc = &c->scope;
  size_t rl = strlen(r->region), vl = strlen(r->service);
  sc->len = 0;
  if (sbuf_reserve(sc, 8 + rl + vl + 15) != 0) goto oom;
  sb_put(sc, r->amz_date, 8);
  sb_putc(sc, '/');
  sb_put(sc, r->region, rl);
  sb_putc(sc, '/');
  sb_put(sc, r->service, vl);
  sb_put(sc, "/aws4_request", 13);
  sb_term(sc);

  sha256(b->p, b->len, md);
  sbuf *st = &c->sts;
  st->len = 0;
  if (sbuf_reserve(st, 17 + 17 + sc->len + 1 + 64) != 0) goto oom;
  sb_put(st, "AWS4-HMAC-SHA256\n", 17);
  sb_put(st, r->amz_date, 16);
  sb_putc(st, '\n');
  sb_put(st, sc->p, sc->len);
  sb_putc(st, '\n');
  to_hex(md, 32, st->p + st->len);
  st->len += 64;
  sb_term(st);

  if (signing_key(c, r) != 0) goto oom;
  hmac_run(&c->ksign, st->p, st->len, md);
  to_hex(md, 32, out->signature);

  sbuf *a = &c->auth;
  size_t al = strlen(r->access_key);
  a->len = 0;
  if (sbuf_reserve(a, 28 + al + 1 + sc->len + 16 + c->sh.len + 12 + 64) != 0) goto oom;
  sb_put(a, "AWS4-HMAC-SHA256 Credential=", 28);
  sb_put(a, r->access_key, al);
  sb_putc(a, '/');
  sb_put(a, sc->p, sc->len);
  sb_put(a, ", SignedHeaders=", 16);
  sb_put(a, c->sh.p, c->sh.len);
  sb_put(a, ", Signature=", 12);
  sb_put(a, out->signature, 64);
  sb_term(a);

  out->canonical_request = b->p;
  out->canonical_request_len = b->len;
  out->string_to_sign = st->p;
  out->string_to_sign_len = st->len;
  out->signed_headers = c->sh.p;
  out->signed_headers_len = c->sh.len;
  out->authorization = a->p;
  out->authorization_len = a->len;
  out->credential_scope = sc->p;
  out->credential_scope_len = sc->len;
  return 0;
oom:
  seterr(err, errlen, "out of memory");
  return -1;
}

/* ---- the owning API ----------------------------------------------------- */

static char *dup_n(const char *s, size_t n) {
  char *p = malloc(n + 1);
  if (p) {
    memcpy(p, s, n);
    p[n] = '\0';
  }
  return p;
}

int sigv4_sign(const sigv4_request *req, sigv4_result *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  sigv4_ctx *c = sigv4_ctx_new();
  if (!c) {
    seterr(err, errlen, "out of memory");
    return -1;
  }
  sigv4_view v;
  int rc = sigv4_sign_ctx(c, req, &v, err, errlen);
  if (rc == 0) {
    out->canonical_request = dup_n(v.canonical_request, v.canonical_request_len);
    out->string_to_sign = dup_n(v.string_to_sign, v.string_to_sign_len);
    out->signed_headers = dup_n(v.signed_headers, v.signed_headers_len);
    out->authorization = dup_n(v.authorization, v.authorization_len);
    out->credential_scope = dup_n(v.credential_scope, v.credential_scope_len);
    memcpy(out->signature, v.signature, sizeof out->signature);
    memcpy(out->payload_hash, v.payload_hash, sizeof out->payload_hash);
    if (!out->canonical_request || !out->string_to_sign || !out->signed_headers ||
        !out->authorization || !out->credential_scope) {
      sigv4_result_free(out);
      seterr(err, errlen, "out of memory");
      rc = -1;
    }
  }
  sigv4_ctx_free(c);
  return rc;
}

void sigv4_result_free(sigv4_result *res) {
  if (!res) return;
  free(res->canonical_request);
  free(res->string_to_sign);
  free(res->signed_headers);
  free(res->authorization);
  free(res->credential_scope);
  res->canonical_request = res->string_to_sign = res->signed_headers = NULL;
  res->authorization = res->credential_scope = NULL;
}

/* ---- verifying ---------------------------------------------------------- */

int sigv4_signature_equal(const char *a, const char *b) {
  if (!a || !b) return 0;
  size_t al = strlen(a), bl = strlen(b);
  if (al != bl || al == 0) return 0;
  return CRYPTO_memcmp(a, b, al) == 0;
}

static int parse_fail(sigv4_authorization *out, char *err, size_t errlen, const char *msg) {
  sigv4_authorization_free(out);
  seterr(err, errlen, "Authorization: %s", msg);
  return -1;
}

int sigv4_parse_authorization(const char *value, sigv4_authorization *out, char *err,
                              size_t errlen) {
  memset(out, 0, sizeof *out);
  if (!value) return parse_fail(out, err, errlen, "missing");
  static const char alg[] = "AWS4-HMAC-SHA256";
  size_t n = strlen(value);
  if (n < sizeof alg || memcmp(value, alg, sizeof alg - 1) != 0 ||
      (value[sizeof alg - 1] != ' ' && value[sizeof alg - 1] != '\t'))
    return parse_fail(out, err, errlen, "not AWS4-HMAC-SHA256");
  out->buf = dup_n(value, n);
  if (!out->buf) return parse_fail(out, err, errlen, "out of memory");
  char *p = out->buf + sizeof alg - 1;
  char *cred = NULL, *sh = NULL, *sig = NULL;
  for (;;) {
    while (*p == ' ' || *p == '\t') p++;
    if (!*p) break;
    char *end = strchr(p, ',');
    if (end) *end = '\0';
    /* trim the component's trailing blanks */
    char *t = p + strlen(p);
    while (t > p && (t[-1] == ' ' || t[-1] == '\t')) *--t = '\0';
    char *eq = strchr(p, '=');
    if (!eq) return parse_fail(out, err, errlen, "component without '='");
    *eq = '\0';
    char **slot = strcmp(p, "Credential") == 0      ? &cred
                  : strcmp(p, "SignedHeaders") == 0 ? &sh
                  : strcmp(p, "Signature") == 0     ? &sig
                                                    : NULL;
    if (!slot) return parse_fail(out, err, errlen, "unknown component");
    if (*slot) return parse_fail(out, err, errlen, "repeated component");
    *slot = eq + 1;
    if (!end) break;
    p = end + 1;
  }
  if (!cred) return parse_fail(out, err, errlen, "no Credential");
  if (!sh) return parse_fail(out, err, errlen, "no SignedHeaders");
  if (!sig) return parse_fail(out, err, errlen, "no Signature");

  /* Credential=AK/DATE/REGION/SERVICE/aws4_request */
  char *parts[5];
  int np = 0;
  for (char *q = cred;; q++) {
    if (np == 5) return parse_fail(out, err, errlen, "malformed Credential");
    parts[np++] = q;
    q = strchr(q, '/');
    if (!q) break;
    *q = '\0';
  }
  if (np != 5 || !*parts[0] || !*parts[2] || !*parts[3] || strcmp(parts[4], "aws4_request") != 0)
    return parse_fail(out, err, errlen, "malformed Credential");
  for (int i = 0; i < 4; i++)
    for (const char *q = parts[i]; *q; q++)
      if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f || *q == ';' || *q == '=')
        return parse_fail(out, err, errlen, "malformed Credential");
  if (strlen(parts[1]) != 8) return parse_fail(out, err, errlen, "malformed Credential date");
  for (int i = 0; i < 8; i++)
    if (parts[1][i] < '0' || parts[1][i] > '9')
      return parse_fail(out, err, errlen, "malformed Credential date");

  /* SignedHeaders=a;b;c: lower-case tokens, no empty names */
  if (!*sh) return parse_fail(out, err, errlen, "empty SignedHeaders");
  for (const char *q = sh; *q; q++) {
    if (*q == ';') {
      if (q == sh || q[1] == ';' || q[1] == '\0')
        return parse_fail(out, err, errlen, "malformed SignedHeaders");
    } else if (!is_tchar((unsigned char)*q) || (*q >= 'A' && *q <= 'Z')) {
      return parse_fail(out, err, errlen, "malformed SignedHeaders");
    }
  }
  if (strlen(sig) != 64) return parse_fail(out, err, errlen, "malformed Signature");
  for (const char *q = sig; *q; q++)
    if (!((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f')))
      return parse_fail(out, err, errlen, "malformed Signature");

  out->access_key = parts[0];
  out->date = parts[1];
  out->region = parts[2];
  out->service = parts[3];
  out->signed_headers = sh;
  out->signature = sig;
  return 0;
}

void sigv4_authorization_free(sigv4_authorization *auth) {
  if (!auth) return;
  free(auth->buf);
  memset(auth, 0, sizeof *auth);
}
