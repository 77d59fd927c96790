/* The RDS Query API (version 2014-10-31) for the local cluster: requests
 * signed for service "rds", parameters form-encoded in the body (or the query
 * string), answers as XML in the RDS namespace and errors in AWS's
 * <ErrorResponse> shape.  DescribeDBClusters, ModifyDBCluster (the Serverless
 * v2 scaling configuration) and Enable/DisableHttpEndpoint. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth.h"
#include "http.h"

const char *const RDS_ACTION_NAMES[RDS_NACTIONS] = {"DescribeDBClusters", "ModifyDBCluster", "EnableHttpEndpoint",
                                                    "DisableHttpEndpoint"};

#define API_VERSION "2014-10-31"
#define NS "http://rds.amazonaws.com/doc/" API_VERSION "/"
#define SCALING "ServerlessV2ScalingConfiguration."

static const fault_errors FAULT_ERRORS = {
    .throttle = "Throttling",
    .unavailable = "ServiceUnavailable",
    .unavailable_message = "The service is unavailable. Please try again later.",
    .internal = "InternalFailure",
    .internal_message = "An internal error has occurred. Please try again later.",
};

/* ---- parameters ---- */

typedef struct {
  char *name, *value;
} param;

typedef struct {
  param *p;
  size_t n, cap;
} params;

static void params_free(params *ps) {
  for (size_t i = 0; i < ps->n; i++) {
    free(ps->p[i].name);
    free(ps->p[i].value);
  }
  free(ps->p);
  memset(ps, 0, sizeof *ps);
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = tolower(c);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Form decoding of n bytes ('+' is a space); NULL with *bad set for a broken
 * %-escape, or with *bad clear when out of memory. */
static char *form_decode(const char *s, size_t n, int *bad) {
  *bad = 0;
  char *out = malloc(n + 1);
  if (!out) return NULL;
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '+') {
      out[o++] = ' ';
    } else if (s[i] == '%') {
      int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
      int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        free(out);
        *bad = 1;
        return NULL;
      }
      out[o++] = (char)(hi << 4 | lo);
      i += 2;
    } else {
      out[o++] = s[i];
    }
  }
  out[o] = '\0';
  return out;
}

/* Adds the pairs of a form-encoded text ("a=1&b=2"); a later repeat of a
 * name wins.  0, or -1 with err set. */
static int params_add_form(params *ps, const char *s, size_t n, apierr *err) {
  for (size_t i = 0; i < n;) {
    size_t end = i;
    while (end < n && s[end] != '&') end++;
    if (end > i) {
      const char *eq = memchr(s + i, '=', end - i);
      size_t klen = eq ? (size_t)(eq - (s + i)) : end - i;
      int bad_key = 0, bad_value = 0;
      char *k = form_decode(s + i, klen, &bad_key);
      char *v = eq ? form_decode(eq + 1, (size_t)(s + end - eq - 1), &bad_value) : form_decode("", 0, &bad_value);
      if (k && v && ps->n == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 16;
        param *np = realloc(ps->p, cap * sizeof *np);
        if (np) {
          ps->p = np;
          ps->cap = cap;
        }
      }
      if (!k || !v || ps->n == ps->cap) {
        free(k);
        free(v);
        if (bad_key || bad_value)
          apierr_set(err, 404, "MalformedQueryString", "The query string contains a broken %%-escape.");
        else
          apierr_set(err, 500, "InternalFailure", "out of memory");
        return -1;
      }
      ps->p[ps->n++] = (param){k, v};
    }
    i = end + 1;
  }
  return 0;
}

/* The parameters the actions take, none of them secret: ModifyDBCluster takes
 * the first N_MODIFY_PARAMS, the other actions some of these and the rest. */
static const char *const KNOWN_PARAMS[] = {
    "Action", "Version", "DBClusterIdentifier", "ApplyImmediately", SCALING "MinCapacity", SCALING "MaxCapacity",
    SCALING "SecondsUntilAutoPause", "ResourceArn", "MaxRecords"};
#define N_MODIFY_PARAMS 7
#define N_KNOWN_PARAMS (sizeof KNOWN_PARAMS / sizeof KNOWN_PARAMS[0])

/* Whether name is among the first n of KNOWN_PARAMS. */
static int known_param(const char *name, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(name, KNOWN_PARAMS[i]) == 0) return 1;
  return 0;
}

static const char *param_get(const params *ps, const char *name) {
  for (size_t i = ps->n; i-- > 0;)
    if (strcmp(ps->p[i].name, name) == 0) return ps->p[i].value;
  return NULL;
}

/* The parameters of the query string and, for a form body, of the body. */
static int collect_params(struct MHD_Connection *conn, const char *method, req_ctx *rq, params *ps, apierr *err) {
  const char *q = strchr(rq->uri, '?');
  if (q && params_add_form(ps, q + 1, strlen(q + 1), err) != 0) return -1;
  if (strcmp(method, "POST") != 0) return 0;
  const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
  if (ct && strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0) return 0;
  return params_add_form(ps, rq->body.p ? rq->body.p : "", rq->body.len, err);
}

/* ---- XML ---- */

/* Text content: XML-escaped, and client text as printable ASCII so that the
 * answer stays well-formed whatever was sent. */
static void xml_text(sbuf *b, const char *s) {
  for (; *s; s++) {
    switch (*s) {
    case '&': sb_puts(b, "&amp;"); break;
    case '<': sb_puts(b, "&lt;"); break;
    case '>': sb_puts(b, "&gt;"); break;
    case '"': sb_puts(b, "&quot;"); break;
    case '\'': sb_puts(b, "&apos;"); break;
    default: sb_putc(b, *s >= 0x20 && *s < 0x7f ? *s : '?'); break;
    }
  }
}

static void xml_elem(sbuf *b, int indent, const char *name, const char *text) {
  sb_printf(b, "%*s<%s>", indent, "", name);
  xml_text(b, text);
  sb_printf(b, "</%s>\n", name);
}

/* Capacities as RDS writes them, Java doubles: 0.0, 0.5, 2.0. */
static void xml_acu(sbuf *b, int indent, const char *name, double v) {
  sb_printf(b, "%*s<%s>%.1f</%s>\n", indent, "", name, v, name);
}

static void response_open(sbuf *b, const char *action) {
  sb_printf(b, "<%sResponse xmlns=\"" NS "\">\n  <%sResult>\n", action, action);
}

static void response_close(sbuf *b, const char *action, const char *rid) {
  sb_printf(b, "  </%sResult>\n  <ResponseMetadata>\n    <RequestId>%s</RequestId>\n  </ResponseMetadata>\n"
               "</%sResponse>\n", action, rid, action);
}

static char *error_xml(const apierr *e, const char *rid, size_t *len) {
  sbuf b = {0};
  sb_puts(&b, "<ErrorResponse xmlns=\"" NS "\">\n  <Error>\n");
  xml_elem(&b, 4, "Type", e->status >= 500 ? "Receiver" : "Sender");
  xml_elem(&b, 4, "Code", e->type);
  xml_elem(&b, 4, "Message", e->message ? e->message : "");
  sb_printf(&b, "  </Error>\n  <RequestId>%s</RequestId>\n</ErrorResponse>\n", rid);
  return sb_detach(&b, len);
}

/* One <DBCluster> element. */
static void put_cluster(server *s, sbuf *b, int in, const cluster_state *c, const char *version) {
  char buf[160];
  int major = atoi(version);
  sb_printf(b, "%*s<DBCluster>\n", in, "");
  in += 2;
  xml_elem(b, in, "AllocatedStorage", "1");
  sb_printf(b, "%*s<AvailabilityZones/>\n", in, "");
  xml_elem(b, in, "BackupRetentionPeriod", "1");
  xml_elem(b, in, "DatabaseName", s->cfg.default_database);
  xml_elem(b, in, "DBClusterIdentifier", s->cluster_id);
  snprintf(buf, sizeof buf, "default.aurora-postgresql%d", major);
  xml_elem(b, in, "DBClusterParameterGroup", buf);
  xml_elem(b, in, "Status", c->status);
  xml_elem(b, in, "Endpoint", s->cfg.pg_host ? s->cfg.pg_host : "localhost");
  xml_elem(b, in, "ReaderEndpoint", s->cfg.pg_host ? s->cfg.pg_host : "localhost");
  xml_elem(b, in, "MultiAZ", "false");
  xml_elem(b, in, "Engine", "aurora-postgresql");
  xml_elem(b, in, "EngineVersion", version);
  xml_elem(b, in, "Port", s->cfg.pg_port ? s->cfg.pg_port : "5432");
  xml_elem(b, in, "MasterUsername", s->cfg.pg_user ? s->cfg.pg_user : "postgres");
  sb_printf(b, "%*s<DBClusterMembers>\n%*s<DBClusterMember>\n", in, "", in + 2, "");
  snprintf(buf, sizeof buf, "%s-instance-1", s->cluster_id);
  xml_elem(b, in + 4, "DBInstanceIdentifier", buf);
  xml_elem(b, in + 4, "IsClusterWriter", "true");
  xml_elem(b, in + 4, "DBClusterParameterGroupStatus", "in-sync");
  xml_elem(b, in + 4, "PromotionTier", "1");
  sb_printf(b, "%*s</DBClusterMember>\n%*s</DBClusterMembers>\n", in + 2, "", in, "");
  /* the local PostgreSQL's files are not encrypted */
  xml_elem(b, in, "StorageEncrypted", "false");
  xml_elem(b, in, "DBClusterArn", s->cfg.cluster_arn);
  xml_elem(b, in, "IAMDatabaseAuthenticationEnabled", "false");
  time_t created = (time_t)c->created;
  struct tm tm;
  gmtime_r(&created, &tm);
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
  xml_elem(b, in, "ClusterCreateTime", buf);
  xml_elem(b, in, "EngineMode", "provisioned");
  xml_elem(b, in, "DeletionProtection", "false");
  xml_elem(b, in, "HttpEndpointEnabled", c->http_endpoint_enabled ? "true" : "false");
  xml_elem(b, in, "CopyTagsToSnapshot", "false");
  xml_elem(b, in, "CrossAccountClone", "false");
  sb_printf(b, "%*s<ServerlessV2ScalingConfiguration>\n", in, "");
  xml_acu(b, in + 2, "MinCapacity", c->min_capacity);
  xml_acu(b, in + 2, "MaxCapacity", c->max_capacity);
  if (c->min_capacity == 0) sb_printf(b, "%*s<SecondsUntilAutoPause>%d</SecondsUntilAutoPause>\n", in + 2, "",
                                      c->seconds_until_auto_pause);
  sb_printf(b, "%*s</ServerlessV2ScalingConfiguration>\n", in, "");
  xml_elem(b, in, "NetworkType", "IPV4");
  sb_printf(b, "%*s</DBCluster>\n", in - 2, "");
}

/* ---- the actions ---- */

/* RDS's identifier rule: a letter first, then letters, digits and single
 * hyphens, no hyphen at the end, at most 63 characters. */
static int valid_identifier(const char *id) {
  size_t n = strlen(id);
  if (n < 1 || n > 63 || !isalpha((unsigned char)id[0]) || id[n - 1] == '-') return 0;
  for (size_t i = 0; i < n; i++) {
    if (!isalnum((unsigned char)id[i]) && id[i] != '-') return 0;
    if (id[i] == '-' && id[i + 1] == '-') return 0;
  }
  return 1;
}

/* Whether id (an identifier, any case, or the cluster ARN) names the local
 * cluster; -1 with err for a malformed identifier or another cluster. */
static int find_cluster(server *s, const char *id, apierr *err) {
  if (strncmp(id, "arn:", 4) == 0) {
    if (strcmp(id, s->cfg.cluster_arn) == 0) return 0;
  } else if (!valid_identifier(id)) {
    apierr_set(err, 400, "InvalidParameterValue",
               "The parameter DBClusterIdentifier is not a valid identifier. Identifiers must begin with a letter; "
               "must contain only ASCII letters, digits, and hyphens; and must not end with a hyphen or contain two "
               "consecutive hyphens.");
    return -1;
  } else if (strcasecmp(id, s->cluster_id) == 0) {
    return 0;
  }
  apierr_set(err, 404, "DBClusterNotFoundFault", "DBCluster %.200s not found.", id);
  return -1;
}

static int required(const params *ps, const char *name, const char **out, apierr *err) {
  *out = param_get(ps, name);
  if (*out && **out) return 0;
  apierr_set(err, 400, "MissingParameter", "The request must contain the parameter %s.", name);
  return -1;
}

static int engine_version(server *s, char version[16], apierr *err) {
  apierr dberr = {0};
  if (cluster_engine_version(s, version, &dberr) == 0) return 0;
  apierr_set(err, 500, "InternalFailure", "The engine version could not be read from PostgreSQL: %s",
             dberr.message ? dberr.message : "unreachable");
  apierr_clear(&dberr);
  return -1;
}

static int describe(server *s, const params *ps, sbuf *out, const char *rid, apierr *err) {
  for (size_t i = 0; i < ps->n; i++) {
    if (strncmp(ps->p[i].name, "Filters.", 8) == 0) {
      apierr_set(err, 400, "InvalidParameterValue",
                 "The local RDS API does not take Filters; name the cluster with DBClusterIdentifier.");
      return -1;
    }
  }
  const char *max = param_get(ps, "MaxRecords");
  if (max) {
    char *end;
    long n = strtol(max, &end, 10);
    if (!*max || *end || n < 20 || n > 100) {
      apierr_set(err, 400, "InvalidParameterValue", "Invalid value %.40s for MaxRecords. Must be between 20 and 100",
                 max);
      return -1;
    }
  }
  const char *id = param_get(ps, "DBClusterIdentifier");
  if (id && *id && find_cluster(s, id, err) != 0) return -1;
  char version[16];
  if (engine_version(s, version, err) != 0) return -1;
  cluster_state c;
  cluster_get(s, 1, &c);
  response_open(out, "DescribeDBClusters");
  sb_puts(out, "    <DBClusters>\n");
  put_cluster(s, out, 6, &c, version);
  sb_puts(out, "    </DBClusters>\n");
  response_close(out, "DescribeDBClusters", rid);
  return 0;
}

/* Whether Aurora PostgreSQL `version` can scale to 0 ACUs: 13.15, 14.12,
 * 15.7, 16.3 and later minors, every 17 and later. */
static int supports_auto_pause(const char *version) {
  int major = 0, minor = 0;
  if (sscanf(version, "%d.%d", &major, &minor) != 2) return 0;
  static const int since[][2] = {{13, 15}, {14, 12}, {15, 7}, {16, 3}};
  if (major >= 17) return 1;
  for (size_t i = 0; i < sizeof since / sizeof since[0]; i++)
    if (since[i][0] == major) return minor >= since[i][1];
  return 0;
}

/* A capacity parameter: lo..256 ACUs in steps of 0.5. */
static int acu_param(const params *ps, const char *name, double lo, double *out, int *given, apierr *err) {
  const char *v = param_get(ps, name);
  *given = v != NULL;
  if (!v) return 0;
  if (cluster_parse_acu(v, lo, out) == 0) return 0;
  apierr_set(err, 400, "InvalidParameterValue",
             "Invalid value '%.40s' for %s: capacities are %g to 256 ACUs in steps of 0.5.", v, name, lo);
  return -1;
}

static int modify(server *s, const params *ps, sbuf *out, const char *rid, apierr *err) {
  const char *id, *v;
  char version[16];
  if (required(ps, "DBClusterIdentifier", &id, err) != 0 || find_cluster(s, id, err) != 0) return -1;
  for (size_t i = 0; i < ps->n; i++) {
    const char *n = ps->p[i].name;
    if (!known_param(n, N_MODIFY_PARAMS)) {
      apierr_set(err, 400, "InvalidParameterCombination",
                 "The local cluster cannot change %.80s; ModifyDBCluster changes its " SCALING "* here.", n);
      return -1;
    }
  }
  v = param_get(ps, "ApplyImmediately");
  if (v && strcasecmp(v, "true") != 0 && strcasecmp(v, "false") != 0) {
    apierr_set(err, 400, "InvalidParameterValue", "Invalid value '%.40s' for ApplyImmediately: true or false.", v);
    return -1;
  }
  if (engine_version(s, version, err) != 0) return -1;
  cluster_state c;
  cluster_get(s, 0, &c);
  double min = c.min_capacity, max = c.max_capacity;
  int secs = c.seconds_until_auto_pause, has_min, has_max;
  if (acu_param(ps, SCALING "MinCapacity", 0, &min, &has_min, err) != 0 ||
      acu_param(ps, SCALING "MaxCapacity", 1, &max, &has_max, err) != 0)
    return -1;
  v = param_get(ps, SCALING "SecondsUntilAutoPause");
  if (v && cluster_parse_pause_seconds(v, &secs) != 0) {
    apierr_set(err, 400, "InvalidParameterValue",
               "Invalid value '%.40s' for " SCALING "SecondsUntilAutoPause: a whole number of seconds from 300 to "
               "86400.", v);
    return -1;
  }
  if (min > max) {
    apierr_set(err, 400, "InvalidParameterCombination",
               "The minimum capacity %g ACUs is above the maximum capacity %g ACUs.", min, max);
    return -1;
  }
  if (v && min > 0) {
    apierr_set(err, 400, "InvalidParameterCombination",
               "SecondsUntilAutoPause applies only with a minimum capacity of 0 ACUs (auto-pause).");
    return -1;
  }
  if (min == 0 && !supports_auto_pause(version)) {
    apierr_set(err, 400, "InvalidParameterCombination",
               "Aurora PostgreSQL %s can't scale to a minimum capacity of 0 ACUs: that needs 13.15, 14.12, 15.7, "
               "16.3 or a later minor version.", version);
    return -1;
  }
  if (strcmp(c.status, "available") != 0) {
    apierr_set(err, 400, "InvalidDBClusterStateFault",
               "DBCluster %s is not in a valid state to be modified (its status is %s).", s->cluster_id, c.status);
    return -1;
  }
  if (cluster_put_scaling(s, min, max, secs, err) != 0) return -1;
  if (has_min || has_max || v)
    LOGI(&s->log, "cluster: scaling set to %g-%g ACUs%s", min, max, min == 0 ? " with auto-pause" : "");
  cluster_get(s, 0, &c);
  response_open(out, "ModifyDBCluster");
  put_cluster(s, out, 4, &c, version);
  response_close(out, "ModifyDBCluster", rid);
  return 0;
}

static int http_endpoint(server *s, const params *ps, int on, sbuf *out, const char *rid, apierr *err) {
  const char *arn;
  if (required(ps, "ResourceArn", &arn, err) != 0) return -1;
  if (strcmp(arn, s->cfg.cluster_arn) != 0) {
    apierr_set(err, 404, "ResourceNotFoundFault", "The resource %.200s was not found.", arn);
    return -1;
  }
  if (cluster_put_http_endpoint(s, on, err) != 0) return -1;
  LOGI(&s->log, "cluster: Data API %s", on ? "enabled" : "disabled");
  const char *action = RDS_ACTION_NAMES[on ? RDS_ENABLE_HTTP : RDS_DISABLE_HTTP];
  response_open(out, action);
  xml_elem(out, 4, "ResourceArn", arn);
  xml_elem(out, 4, "HttpEndpointEnabled", on ? "true" : "false");
  response_close(out, action, rid);
  return 0;
}

/* ---- the front ---- */

/* The action the parameters name; -1 with err for a missing or unknown one. */
static int find_action(const char *method, const params *ps, apierr *err) {
  const char *action = param_get(ps, "Action"), *version = param_get(ps, "Version");
  if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0) {
    apierr_set(err, 400, "InvalidAction", "The RDS API takes GET and POST requests, not %.20s.", method);
    return -1;
  }
  if (!action || !*action) {
    apierr_set(err, 400, "MissingAction", "The request must contain the parameter Action.");
    return -1;
  }
  if (!version || !*version) {
    apierr_set(err, 400, "MissingParameter", "The request must contain the parameter Version.");
    return -1;
  }
  for (int i = 0; i < RDS_NACTIONS && strcmp(version, API_VERSION) == 0; i++)
    if (strcmp(action, RDS_ACTION_NAMES[i]) == 0) return i;
  apierr_set(err, 400, "InvalidAction", "Could not find operation %.80s for version %.40s", action, version);
  return -1;
}

/* For the debug log: the parameters, with the values of those known to hold
 * nothing secret (a client may send anything, a password included). */
static void log_call(server *s, const params *ps, const char *outcome, double ms) {
  if (s->log.level < LOG_DEBUG) return;
  sbuf b = {0};
  for (size_t i = 0; i < ps->n; i++) {
    const char *n = ps->p[i].name;
    int shown = known_param(n, N_KNOWN_PARAMS) || strncmp(n, SCALING, strlen(SCALING)) == 0;
    sb_putc(&b, ' ');
    xml_text(&b, n);
    if (shown) {
      sb_putc(&b, '=');
      xml_text(&b, ps->p[i].value);
    }
  }
  char *text = sb_detach(&b, NULL); /* NULL when out of memory */
  LOGD(&s->log, "rds:%s -> %s (%.1f ms)", text ? text : "", outcome, ms);
  free(text);
}

static enum MHD_Result answer_error(struct MHD_Connection *conn, const apierr *e, const char *rid, size_t *len) {
  size_t n = 0;
  char *body = error_xml(e, rid, &n);
  if (len) *len = n;
  if (!body) return MHD_NO;
  return http_respond(conn, e->status, body, n, "text/xml", rid, NULL);
}

enum MHD_Result rds_request(server *s, conn_ctx *cc, struct MHD_Connection *conn, const char *method, req_ctx *rq) {
  char rid[37];
  http_request_id(rid);
  double t0 = mono_now();
  apierr err = {0};
  params ps = {0};
  enum MHD_Result mr;
  int action = -1;
  if (auth_verify(s, &cc->sig, conn, rq->uri, method, rq->body.p, rq->body.len, &AUTH_RDS_QUERY, &err) != 0 ||
      collect_params(conn, method, rq, &ps, &err) != 0 || (action = find_action(method, &ps, &err)) < 0) {
    /* refused at the door: not counted */
    LOGD(&s->log, "rds: %s / -> %d %s", method, err.status, err.type);
    mr = answer_error(conn, &err, rid, NULL);
    apierr_clear(&err);
    params_free(&ps);
    return mr;
  }
  fault_draw fd;
  faults_start(s, 0, &FAULT_ERRORS, &fd, &err);
  if (fd.fault == FAULT_DROP) {
    stats_count(s, FAULT_DROP, OP_NONE, action, rq->body.len, 0);
    log_call(s, &ps, "fault: dropped the connection", 0);
    params_free(&ps);
    return MHD_NO;
  }
  sbuf out = {0};
  int rc = -1;
  if (!err.status) {
    switch (action) {
    case RDS_DESCRIBE: rc = describe(s, &ps, &out, rid, &err); break;
    case RDS_MODIFY: rc = modify(s, &ps, &out, rid, &err); break;
    default: rc = http_endpoint(s, &ps, action == RDS_ENABLE_HTTP, &out, rid, &err); break;
    }
    if (rc == 0 && out.oom) {
      apierr_set(&err, 500, "InternalFailure", "out of memory");
      rc = -1;
    }
  }
  double ms = (mono_now() - t0) * 1000;
  size_t len = 0;
  if (fd.drop_after) {
    stats_count(s, FAULT_DROP_AFTER, OP_NONE, action, rq->body.len, 0);
    log_call(s, &ps, "ran, fault: dropped the connection without answering", ms);
    mr = MHD_NO;
    sb_free(&out);
  } else if (rc == 0) {
    len = out.len;
    char *body = sb_detach(&out, NULL);
    mr = body ? http_respond(conn, 200, body, len, "text/xml", rid, NULL) : MHD_NO;
    stats_count(s, -1, OP_NONE, action, rq->body.len, len);
    log_call(s, &ps, "200", ms);
  } else {
    sb_free(&out);
    mr = answer_error(conn, &err, rid, &len);
    stats_count(s, fd.fault == FAULT_THROTTLE || fd.fault == FAULT_5XX ? fd.fault : -1, OP_NONE, action,
                rq->body.len, len);
    char outcome[160];
    snprintf(outcome, sizeof outcome, "%d %s", err.status, err.type);
    log_call(s, &ps, outcome, ms);
  }
  apierr_clear(&err);
  params_free(&ps);
  return mr;
}
