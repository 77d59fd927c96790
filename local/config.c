#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "dotenv.h"
#include "util.h"

#ifndef ALEX_VERSION
#define ALEX_VERSION "dev"
#endif

enum { T_STR, T_SECONDS, T_BYTES, T_COUNT, T_FAULT };
enum { F_SECRET = 1 };

typedef struct {
  const char *name;
  int type;
  size_t off;
  int flags;
  const char *help;
} setting_def;

#define OFF(m) offsetof(settings, m)
static const setting_def DEFS[] = {
    {"listen", T_STR, OFF(listen), 0, "HOST:PORT to listen on, loopback only (127.0.0.1:8089)"},
    {"pg_host", T_STR, OFF(pg_host), 0, "PostgreSQL host or socket folder (libpq default)"},
    {"pg_port", T_STR, OFF(pg_port), 0, "PostgreSQL port (libpq default)"},
    {"pg_user", T_STR, OFF(pg_user), 0, "PostgreSQL role (libpq default)"},
    {"pg_password", T_STR, OFF(pg_password), F_SECRET, "PostgreSQL password (file/env only)"},
    {"default_database", T_STR, OFF(default_database), 0, "database when a request names none (alex)"},
    {"cluster_arn", T_STR, OFF(cluster_arn), 0, "the one accepted resourceArn (required)"},
    {"secret_arn", T_STR, OFF(secret_arn), 0, "the one accepted secretArn (required)"},
    {"region", T_STR, OFF(region), 0, "SigV4 region (us-east-1)"},
    {"access_key", T_STR, OFF(access_key), 0, "accepted access key id (required)"},
    {"secret_key", T_STR, OFF(secret_key), F_SECRET, "its secret key (file/env only; required)"},
    {"session_token", T_STR, OFF(session_token), F_SECRET, "required session token (file/env only)"},
    {"admin_token", T_STR, OFF(admin_token), F_SECRET,
     "X-Alex-Admin-Token the admin API's POSTs need (file/env only; none: POSTs refused)"},
    {"tx_idle_timeout", T_SECONDS, OFF(tx_idle_timeout), 0, "seconds (180)"},
    {"tx_max_lifetime", T_SECONDS, OFF(tx_max_lifetime), 0, "seconds (86400)"},
    {"statement_timeout", T_SECONDS, OFF(statement_timeout), 0, "seconds (45)"},
    {"max_response_bytes", T_BYTES, OFF(max_response_bytes), 0, "result size limit (1048576)"},
    {"max_request_bytes", T_BYTES, OFF(max_request_bytes), 0, "request size limit (4194304)"},
    {"row_size_limit", T_BYTES, OFF(row_size_limit), 0, "per-row size limit, 0 = off (0)"},
    {"pool_size", T_COUNT, OFF(pool_size), 0, "idle autocommit sessions kept per database (4)"},
    {"pidfile", T_STR, OFF(pidfile), 0, "write the pid here; removed at exit"},
    {"log_file", T_STR, OFF(log_file), 0, "append the log here (stderr)"},
    {"log_level", T_STR, OFF(log_level), 0, "error|warn|info|debug (info)"},
    {"cluster_state_file", T_STR, OFF(cluster_state_file), 0, "keep the cluster's RDS settings here (memory only)"},
    {"engine_version", T_STR, OFF(engine_version), 0, "Aurora version the RDS API reports (PostgreSQL's)"},
    {"fault_seed", T_FAULT, 0, 0, "fault generator seed (0)"},
    {"fault_latency_ms", T_FAULT, 0, 0, "added latency per call (0)"},
    {"fault_throttle_rate", T_FAULT, 0, 0, "ThrottlingException rate 0..1 (0)"},
    {"fault_resuming_rate", T_FAULT, 0, 0, "DatabaseResumingException rate (0)"},
    {"fault_5xx_rate", T_FAULT, 0, 0, "500/503 rate (0)"},
    {"fault_drop_rate", T_FAULT, 0, 0, "close without answering, before executing (0)"},
    {"fault_drop_after_rate", T_FAULT, 0, 0, "execute, then close without answering (0)"},
};
#define NDEFS (sizeof DEFS / sizeof DEFS[0])

static void seterr(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

static const setting_def *find_def(const char *name, size_t len) {
  for (size_t i = 0; i < NDEFS; i++) {
    const char *d = DEFS[i].name;
    if (strlen(d) != len) continue;
    size_t k = 0;
    for (; k < len; k++) {
      char c = (char)tolower((unsigned char)name[k]);
      if (c == '-') c = '_';
      if (c != d[k]) break;
    }
    if (k == len) return &DEFS[i];
  }
  return NULL;
}

static int parse_double(const char *v, double *out) {
  if (!v || !*v) return -1;
  char *end;
  errno = 0;
  double d = strtod(v, &end);
  while (*end == ' ' || *end == '\t') end++;
  if (errno || *end || !isfinite(d)) return -1;
  *out = d;
  return 0;
}

static int parse_ll(const char *v, long long *out) {
  if (!v || !*v) return -1;
  char *end;
  errno = 0;
  long long n = strtoll(v, &end, 10);
  while (*end == ' ' || *end == '\t') end++;
  if (errno || *end) return -1;
  *out = n;
  return 0;
}

const fault_number FAULT_NUMBERS[N_FAULT_NUMBERS] = {
    {"latency_ms", offsetof(fault_settings, latency_ms), 600000},
    {"throttle_rate", offsetof(fault_settings, throttle_rate), 1},
    {"resuming_rate", offsetof(fault_settings, resuming_rate), 1},
    {"5xx_rate", offsetof(fault_settings, r5xx_rate), 1},
    {"drop_rate", offsetof(fault_settings, drop_rate), 1},
    {"drop_after_rate", offsetof(fault_settings, drop_after_rate), 1},
};

int fault_set(fault_settings *f, const char *name, const char *value, char *err, size_t errlen) {
  double d;
  if (strcmp(name, "seed") == 0) {
    if (!value || !*value || value[0] == '-') goto bad;
    char *end;
    errno = 0;
    unsigned long long s = strtoull(value, &end, 10);
    if (errno || *end) goto bad;
    f->seed = (uint64_t)s;
    return 0;
  }
  const fault_number *num = NULL;
  for (size_t i = 0; i < N_FAULT_NUMBERS && !num; i++)
    if (strcmp(name, FAULT_NUMBERS[i].name) == 0) num = &FAULT_NUMBERS[i];
  if (!num) {
    seterr(err, errlen, "unknown fault setting '%s'", name);
    return -2;
  }
  if (parse_double(value, &d) != 0 || d < 0 || d > num->max) goto bad;
  memcpy((char *)f + num->offset, &d, sizeof d);
  return 0;
bad:
  seterr(err, errlen, "fault setting '%s': invalid value (rates are 0..1, latency_ms 0..600000, seed an "
                      "unsigned integer)", name);
  return -1;
}

static int apply(settings *s, const setting_def *d, const char *value, const char *source, char *err,
                 size_t errlen) {
  switch (d->type) {
  case T_STR: {
    char *old, *copy = NULL;
    if (value && *value) {
      copy = strdup(value);
      if (!copy) {
        seterr(err, errlen, "out of memory");
        return -1;
      }
    }
    memcpy(&old, (char *)s + d->off, sizeof old);
    if (old) {
      OPENSSL_cleanse(old, strlen(old));
      free(old);
    }
    memcpy((char *)s + d->off, &copy, sizeof copy);
    return 0;
  }
  case T_SECONDS: {
    double v;
    if (parse_double(value, &v) != 0 || v < 0 || v > 1e9) {
      seterr(err, errlen, "%s: %s must be a number of seconds >= 0", source, d->name);
      return -1;
    }
    memcpy((char *)s + d->off, &v, sizeof v);
    return 0;
  }
  case T_BYTES:
  case T_COUNT: {
    long long v;
    if (parse_ll(value, &v) != 0 || v < (d->type == T_COUNT ? 1 : 0) || v > (1LL << 40)) {
      seterr(err, errlen, "%s: %s must be a whole number%s", source, d->name,
             d->type == T_COUNT ? " >= 1" : " >= 0");
      return -1;
    }
    memcpy((char *)s + d->off, &v, sizeof v);
    return 0;
  }
  case T_FAULT: {
    char msg[200];
    if (fault_set(&s->faults, d->name + 6, value, msg, sizeof msg) != 0) {
      seterr(err, errlen, "%s: %s", source, msg);
      return -1;
    }
    return 0;
  }
  }
  return -1;
}

typedef struct {
  settings *s;
  const char *path;
  char *err;
  size_t errlen;
} file_ctx;

static int file_cb(void *ud, const char *key, const char *value) {
  file_ctx *fc = ud;
  const char *name = key;
  if (strncasecmp(name, "ALEX_DATAAPI_", 13) == 0) name += 13;
  const setting_def *d = find_def(name, strlen(name));
  if (!d) {
    seterr(fc->err, fc->errlen, "%s: unknown setting '%s'", fc->path, key);
    return 1;
  }
  char src[300];
  snprintf(src, sizeof src, "%s", fc->path);
  return apply(fc->s, d, value, src, fc->err, fc->errlen) == 0 ? 0 : 1;
}

static int load_file(settings *s, const char *path, char *err, size_t errlen) {
  char *buf;
  size_t got;
  int rd = read_small_file(path, &buf, &got);
  if (rd == -1) seterr(err, errlen, "cannot open config %s: %s", path, strerror(errno));
  else if (rd == -2) seterr(err, errlen, "config %s: unreadable or larger than 1 MiB", path);
  else if (rd != 0) seterr(err, errlen, "out of memory");
  if (rd != 0) return -1;
  file_ctx fc = {s, path, err, errlen};
  int line = 0;
  char msg[200];
  int rc = dotenv_parse(buf, got, file_cb, &fc, &line, msg, sizeof msg);
  OPENSSL_cleanse(buf, got);
  free(buf);
  if (rc == -1) {
    seterr(err, errlen, "config %s:%d: %s", path, line, msg);
    return -1;
  }
  return rc == 0 ? 0 : -1;
}

void settings_usage(void) {
  printf("usage: alex-dataapi [--config FILE] [--<name> VALUE | --<name>=VALUE ...]\n"
         "A local RDS Data API (rds-data) service on PostgreSQL.\n\n"
         "Settings (precedence: --config file < ALEX_DATAAPI_<NAME> environment < --<name>):\n");
  for (size_t i = 0; i < NDEFS; i++) printf("  %-22s %s\n", DEFS[i].name, DEFS[i].help);
  printf("\nSecrets (pg_password, secret_key, session_token, admin_token) are refused on the command line.\n"
         "The RDS Query API (DescribeDBClusters, ModifyDBCluster, Enable/DisableHttpEndpoint) on POST /.\n"
         "Admin API on loopback: GET /_alex/health, /_alex/stats, /_alex/faults, /_alex/cluster; with the\n"
         "X-Alex-Admin-Token header: POST /_alex/stats/reset, /_alex/faults, /_alex/cluster.\n"
         "SIGTERM/SIGINT stop it gracefully.\n");
}

static int set_default(settings *s, const char *name, const char *value) {
  char err[200];
  return apply(s, find_def(name, strlen(name)), value, "default", err, sizeof err);
}

int settings_load(settings *s, int argc, char **argv, char *err, size_t errlen) {
  memset(s, 0, sizeof *s);
  s->tx_idle_timeout = 180;
  s->tx_max_lifetime = 86400;
  s->statement_timeout = 45;
  s->max_response_bytes = 1048576;
  s->max_request_bytes = 4194304;
  s->row_size_limit = 0;
  s->pool_size = 4;
  if (set_default(s, "listen", "127.0.0.1:8089") || set_default(s, "default_database", "alex") ||
      set_default(s, "region", "us-east-1") || set_default(s, "log_level", "info")) {
    seterr(err, errlen, "out of memory");
    return -1;
  }

  /* pass 1: --help, --version, --config */
  const char *config = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      settings_usage();
      return 1;
    }
    if (strcmp(a, "--version") == 0) {
      printf("alex-dataapi %s\n", ALEX_VERSION);
      return 1;
    }
    if (strcmp(a, "--config") == 0) {
      if (i + 1 >= argc) {
        seterr(err, errlen, "--config needs a FILE");
        return -1;
      }
      config = argv[++i];
    } else if (strncmp(a, "--config=", 9) == 0) {
      config = a + 9;
    }
  }
  if (config && load_file(s, config, err, errlen) != 0) return -1;

  /* environment */
  for (size_t i = 0; i < NDEFS; i++) {
    char var[64] = "ALEX_DATAAPI_";
    size_t k = strlen(var);
    for (const char *p = DEFS[i].name; *p && k < sizeof var - 1; p++) var[k++] = (char)toupper((unsigned char)*p);
    var[k] = '\0';
    const char *v = getenv(var);
    if (v && apply(s, &DEFS[i], v, var, err, errlen) != 0) return -1;
  }

  /* command line */
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--config") == 0) {
      i++;
      continue;
    }
    if (strncmp(a, "--config=", 9) == 0) continue;
    if (strncmp(a, "--", 2) != 0) {
      seterr(err, errlen, "unexpected argument '%s' (see --help)", a);
      return -1;
    }
    const char *name = a + 2, *eq = strchr(name, '=');
    size_t nl = eq ? (size_t)(eq - name) : strlen(name);
    const setting_def *d = find_def(name, nl);
    if (!d) {
      seterr(err, errlen, "unknown option '--%.*s' (see --help)", (int)(nl > 60 ? 60 : nl), name);
      return -1;
    }
    if (d->flags & F_SECRET) {
      char var[64] = "ALEX_DATAAPI_";
      size_t k = strlen(var);
      for (const char *p = d->name; *p && k < sizeof var - 1; p++) var[k++] = (char)toupper((unsigned char)*p);
      var[k] = '\0';
      seterr(err, errlen, "%s is not accepted on the command line (it would show in ps); use --config FILE or %s",
             d->name, var);
      return -1;
    }
    const char *value;
    if (eq) {
      value = eq + 1;
    } else {
      if (i + 1 >= argc) {
        seterr(err, errlen, "--%s needs a value", d->name);
        return -1;
      }
      value = argv[++i];
    }
    char src[80];
    snprintf(src, sizeof src, "--%s", d->name);
    if (apply(s, d, value, src, err, errlen) != 0) return -1;
  }

  /* required and sane */
  if (!s->access_key || !s->secret_key) {
    seterr(err, errlen, "access_key and secret_key are required (authentication is always on)");
    return -1;
  }
  if (!s->cluster_arn || !s->secret_arn) {
    seterr(err, errlen, "cluster_arn and secret_arn are required");
    return -1;
  }
  if (!s->listen || !s->default_database || !s->region) {
    seterr(err, errlen, "listen, default_database and region must not be empty");
    return -1;
  }
  if (log_level_parse(s->log_level) < 0) {
    seterr(err, errlen, "log_level must be error, warn, info or debug");
    return -1;
  }
  if (s->max_request_bytes < 1024 || s->max_response_bytes < 1) {
    seterr(err, errlen, "max_request_bytes must be >= 1024 and max_response_bytes >= 1");
    return -1;
  }
  if (s->engine_version) {
    const char *p = s->engine_version;
    size_t major = strspn(p, "0123456789"), minor = p[major] == '.' ? strspn(p + major + 1, "0123456789") : 0;
    if (major < 1 || major > 3 || minor < 1 || minor > 3 || p[major + 1 + minor] != '\0') {
      seterr(err, errlen, "engine_version must be MAJOR.MINOR like 15.10, got '%.40s'", p);
      return -1;
    }
  }
  if (s->statement_timeout <= 0 || s->tx_idle_timeout <= 0 || s->tx_max_lifetime <= 0) {
    seterr(err, errlen, "statement_timeout, tx_idle_timeout and tx_max_lifetime must be > 0");
    return -1;
  }
  return 0;
}

void settings_free(settings *s) {
  for (size_t i = 0; i < NDEFS; i++) {
    if (DEFS[i].type != T_STR) continue;
    char *v, *none = NULL;
    memcpy(&v, (char *)s + DEFS[i].off, sizeof v);
    if (v) {
      OPENSSL_cleanse(v, strlen(v));
      free(v);
      memcpy((char *)s + DEFS[i].off, &none, sizeof none);
    }
  }
}
