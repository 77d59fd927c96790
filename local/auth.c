/* SigV4 verification: the signature is recomputed with the same core alexlua
 * signs with, over the request exactly as it arrived. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"

const auth_dialect AUTH_DATA_API = {
    "rds-data", "MissingAuthenticationTokenException", "Missing Authentication Token",
    "IncompleteSignatureException", 403, "UnrecognizedClientException", "InvalidSignatureException",
    "InternalServerErrorException",
};

/* The Query API's common errors: IncompleteSignature is a 400 there, as AWS
 * documents it and as Query services (SES) were seen to answer. */
const auth_dialect AUTH_RDS_QUERY = {
    "rds", "MissingAuthenticationToken", "Request is missing Authentication Token",
    "IncompleteSignature", 400, "InvalidClientTokenId", "SignatureDoesNotMatch", "InternalFailure",
};

typedef struct {
  sigv4_header *h;
  size_t n, cap;
  int oom;
} header_vec;

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                      const char *value, size_t value_size) {
  (void)kind;
  header_vec *v = cls;
  if (v->n == v->cap) {
    size_t nc = v->cap ? v->cap * 2 : 16;
    sigv4_header *p = realloc(v->h, nc * sizeof *p);
    if (!p) {
      v->oom = 1;
      return MHD_NO;
    }
    v->h = p;
    v->cap = nc;
  }
  v->h[v->n++] = (sigv4_header){key, key_size, value ? value : "", value ? value_size : 0};
  return MHD_YES;
}

static const char SIG_MISMATCH[] =
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access "
    "Key and signing method. Consult the service documentation for details.";

static int list_has(const char *list, const char *name) {
  size_t n = strlen(name);
  for (const char *p = list; p && *p;) {
    const char *e = strchr(p, ';');
    size_t l = e ? (size_t)(e - p) : strlen(p);
    if (l == n && memcmp(p, name, n) == 0) return 1;
    p = e ? e + 1 : NULL;
  }
  return 0;
}

/* Client text echoed in an error, as printable ASCII: the error body is JSON
 * or XML, and raw bytes from a header could make it invalid for a strict client. */
static const char *printable(char *dst, size_t size, const char *src) {
  size_t i = 0;
  for (; src[i] && i + 1 < size; i++) dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
  dst[i] = '\0';
  return dst;
}

int auth_verify(server *s, sigv4_ctx **ctx, struct MHD_Connection *conn, const char *uri, const char *method,
                const char *body, size_t body_len, const auth_dialect *d, apierr *err) {
  const settings *cfg = &s->cfg;
  const char *authz = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
  if (!authz) {
    apierr_set(err, 403, d->missing, "%s", d->missing_message);
    return -1;
  }
  sigv4_authorization a;
  char msg[256];
  if (sigv4_parse_authorization(authz, &a, msg, sizeof msg) != 0) {
    apierr_set(err, d->incomplete_status, d->incomplete,
               "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters of the "
               "AWS4-HMAC-SHA256 scheme (%s).", msg);
    return -1;
  }
  int rc = -1;
  header_vec hv = {0};
  const char *amz_date = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Amz-Date");
  char shown[41];
  const char *token = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Amz-Security-Token");
  long long t;
  if (!amz_date) {
    apierr_set(err, d->incomplete_status, d->incomplete,
               "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.");
    goto out;
  }
  if ((t = sigv4_parse_amz_date(amz_date)) < 0) {
    apierr_set(err, d->incomplete_status, d->incomplete,
               "Date must be in ISO-8601 'basic format'. Got '%s'.", printable(shown, sizeof shown, amz_date));
    goto out;
  }
  if (!ct_equal(a.access_key, strlen(a.access_key), cfg->access_key, strlen(cfg->access_key))) {
    apierr_set(err, 403, d->unrecognized, "The security token included in the request is invalid.");
    goto out;
  }
  int token_ok = cfg->session_token == NULL ? token == NULL
                 : token != NULL && ct_equal(token, strlen(token), cfg->session_token, strlen(cfg->session_token));
  if (!token_ok) {
    apierr_set(err, 403, d->unrecognized, "The security token included in the request is invalid.");
    goto out;
  }
  if (strncmp(a.date, amz_date, 8) != 0) {
    apierr_set(err, 403, d->invalid,
               "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
               "'%s' != '%.8s', from 'X-Amz-Date'.", printable(shown, sizeof shown, a.date), amz_date);
    goto out;
  }
  if (strcmp(a.region, cfg->region) != 0) {
    apierr_set(err, 403, d->invalid, "Credential should be scoped to a valid region, not '%s'.",
               printable(shown, sizeof shown, a.region));
    goto out;
  }
  if (strcmp(a.service, d->service) != 0) {
    apierr_set(err, 403, d->invalid, "Credential should be scoped to correct service: '%s'.", d->service);
    goto out;
  }
  if (!list_has(a.signed_headers, "host")) {
    apierr_set(err, 403, d->invalid, "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
    goto out;
  }
  long long now = (long long)time(NULL);
  if (t < now - 300 || t > now + 300) {
    char d1[17], d2[17];
    sigv4_format_amz_date(t < now ? now - 300 : now + 300, d1);
    sigv4_format_amz_date(now, d2);
    if (t < now)
      apierr_set(err, 403, d->invalid, "Signature expired: %s is now earlier than %s (%s - 5 min.)", amz_date, d1,
                 d2);
    else
      apierr_set(err, 403, d->invalid, "Signature not yet current: %s is still later than %s (%s + 5 min.)",
                 amz_date, d1, d2);
    goto out;
  }
  MHD_get_connection_values_n(conn, MHD_HEADER_KIND, collect_header, &hv);
  if (hv.oom) {
    apierr_set(err, 500, d->internal, "out of memory");
    goto out;
  }
  const char *q = strchr(uri, '?');
  sigv4_request sr;
  memset(&sr, 0, sizeof sr);
  sr.method = method;
  sr.path = uri;
  sr.path_len = q ? (size_t)(q - uri) : strlen(uri);
  sr.query = q ? q + 1 : NULL;
  sr.query_len = q ? strlen(q + 1) : 0;
  sr.headers = hv.h;
  sr.n_headers = hv.n;
  sr.body = body;
  sr.body_len = body_len;
  sr.access_key = cfg->access_key;
  sr.secret_key = cfg->secret_key;
  sr.session_token = cfg->session_token;
  sr.region = cfg->region;
  sr.service = d->service;
  sr.amz_date = amz_date;
  sr.signed_header_list = a.signed_headers;
  sigv4_view view;
  if (!*ctx) *ctx = sigv4_ctx_new();
  if (!*ctx) {
    apierr_set(err, 500, d->internal, "out of memory");
    goto out;
  }
  if (sigv4_sign_ctx(*ctx, &sr, &view, msg, sizeof msg) != 0 || !sigv4_signature_equal(view.signature, a.signature)) {
    apierr_set(err, 403, d->invalid, "%s", SIG_MISMATCH);
    goto out;
  }
  rc = 0;
out:
  free(hv.h);
  sigv4_authorization_free(&a);
  return rc;
}
