/* Request validation: the members every Data API operation shares, checked
 * and reported in the Coral-style wording AWS's validation errors use. */
#include <string.h>

#include "request.h"

static size_t utf8_chars(const char *s, size_t n) {
  size_t c = 0;
  for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
  return c;
}

/* A string member: absent/null gives *out = NULL (an error when required). */
static int get_str(json_t *req, const char *key, int required, size_t minlen, size_t maxlen,
                   const char **out, apierr *err) {
  json_t *v = json_object_get(req, key);
  *out = NULL;
  if (!v || json_is_null(v)) {
    if (required) {
      VALIDATION(err, "1 validation error detected: Value null at '%s' failed to satisfy constraint: "
                      "Member must not be null", key);
      return -1;
    }
    return 0;
  }
  if (!json_is_string(v)) {
    VALIDATION(err, "1 validation error detected: Value at '%s' failed to satisfy constraint: "
                    "Member must be a string", key);
    return -1;
  }
  size_t n = utf8_chars(json_string_value(v), json_string_length(v));
  if (n < minlen || n > maxlen) {
    if (minlen)
      VALIDATION(err, "1 validation error detected: Value at '%s' failed to satisfy constraint: "
                      "Member must have length between %zu and %zu", key, minlen, maxlen);
    else
      VALIDATION(err, "1 validation error detected: Value at '%s' failed to satisfy constraint: "
                      "Member must have length less than or equal to %zu", key, maxlen);
    return -1;
  }
  *out = json_string_value(v);
  return 0;
}

int get_bool(json_t *req, const char *key, int *out, apierr *err) {
  json_t *v = json_object_get(req, key);
  *out = 0;
  if (!v || json_is_null(v)) return 0;
  if (!json_is_boolean(v)) {
    VALIDATION(err, "1 validation error detected: Value at '%s' failed to satisfy constraint: "
                    "Member must be a boolean", key);
    return -1;
  }
  *out = json_is_true(v);
  return 0;
}

/* An enum member: index into values, or def when absent. */
int get_enum(json_t *v, const char *path, const char *const *values, int def, int *out, apierr *err) {
  *out = def;
  if (!v || json_is_null(v)) return 0;
  if (json_is_string(v)) {
    for (int i = 0; values[i]; i++)
      if (strcmp(json_string_value(v), values[i]) == 0) {
        *out = i;
        return 0;
      }
  }
  sbuf b = {0};
  for (int i = 0; values[i]; i++) sb_printf(&b, "%s%s", i ? ", " : "", values[i]);
  sb_putc(&b, '\0');
  VALIDATION(err, "1 validation error detected: Value at '%s' failed to satisfy constraint: Member must "
                  "satisfy enum value set: [%s]", path, b.p ? b.p : "");
  sb_free(&b);
  return -1;
}

/* The members every operation shares, then the schema/ARN/secret checks. */
int check_common(server *s, json_t *req, int want_sql, int want_tx, common *c, apierr *err) {
  memset(c, 0, sizeof *c);
  const char *schema;
  if (get_str(req, "resourceArn", 1, 11, 570, &c->resource_arn, err) ||
      get_str(req, "secretArn", 1, 11, 570, &c->secret_arn, err) ||
      get_str(req, "database", 0, 0, 64, &c->database, err) ||
      get_str(req, "schema", 0, 0, 64, &schema, err) ||
      get_str(req, "transactionId", want_tx == 2, 0, 192, &c->transaction_id, err) ||
      (want_sql && get_str(req, "sql", 1, 0, 65536, &c->sql, err)))
    return -1;
  if (!want_tx) c->transaction_id = NULL;
  if (schema) {
    VALIDATION(err, "The schema parameter isn't supported");
    return -1;
  }
  if (strcmp(c->resource_arn, s->cfg.cluster_arn) != 0 || !cluster_http_endpoint_enabled(s)) {
    apierr_set(err, 400, "HttpEndpointNotEnabledException", "HttpEndpoint isn't enabled for cluster %s",
               c->resource_arn);
    return -1;
  }
  if (strcmp(c->secret_arn, s->cfg.secret_arn) != 0) {
    apierr_set(err, 400, "SecretsErrorException", "Secrets Manager can't find the specified secret.");
    return -1;
  }
  if (!c->database || !*c->database) c->database = s->cfg.default_database;
  return 0;
}
