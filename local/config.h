#ifndef ALEX_DATAAPI_CONFIG_H
#define ALEX_DATAAPI_CONFIG_H
/* Settings: defaults < --config FILE (dotenv) < ALEX_DATAAPI_<NAME> < --<name>. */
#include <stddef.h>
#include <stdint.h>

typedef struct {
  double latency_ms;
  double throttle_rate, resuming_rate, r5xx_rate, drop_rate, drop_after_rate;
  uint64_t seed;
} fault_settings;

typedef struct {
  char *listen;
  char *pg_host, *pg_port, *pg_user, *pg_password;
  char *default_database;
  char *cluster_arn, *secret_arn, *region;
  char *access_key, *secret_key, *session_token;
  char *admin_token; /* needed by the admin API's changing calls; none: they are refused */
  double tx_idle_timeout, tx_max_lifetime, statement_timeout;
  long long max_response_bytes, max_request_bytes, row_size_limit;
  long long pool_size;
  char *pidfile, *log_file, *log_level;
  char *cluster_state_file; /* the RDS API's changes to the cluster are kept here; none: in memory only */
  char *engine_version;     /* the Aurora version reported; none: PostgreSQL's own */
  fault_settings faults;
} settings;

/* Fills s from defaults, the config file, the environment and argv.  Returns
 * 0; 1 when --help/--version was handled (exit 0); -1 with a message in err. */
int settings_load(settings *s, int argc, char **argv, char *err, size_t errlen);
void settings_free(settings *s);
void settings_usage(void);

/* The fault settings that are numbers (doubles), by their admin-API names, in
 * the order the admin API shows them: where each is in a fault_settings, and
 * the largest value it takes. */
#define N_FAULT_NUMBERS 6
typedef struct {
  const char *name;
  size_t offset;
  double max;
} fault_number;
extern const fault_number FAULT_NUMBERS[N_FAULT_NUMBERS];

/* Sets one fault by its admin-API name ("latency_ms", "5xx_rate", "seed", ...)
 * from its text.  Returns 0, -1 for a bad value, -2 for an unknown name. */
int fault_set(fault_settings *f, const char *name, const char *value, char *err, size_t errlen);

#endif
