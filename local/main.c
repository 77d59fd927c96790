/* alex-dataapi: a local RDS Data API (rds-data) service on PostgreSQL, with
 * the RDS control plane's calls for its one cluster.
 * Settings, the listening address, signals, pidfile; see local/README.md. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <microhttpd.h>

#include "server.h"

static int sockaddr_is_loopback(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
    return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
  }
  return 0;
}

/* "HOST:PORT" or "[V6]:PORT" to a loopback socket address. */
static int parse_listen(const char *listen, struct sockaddr_storage *out, char *err, size_t errlen) {
  char host[256];
  const char *port;
  if (listen[0] == '[') {
    const char *close = strchr(listen, ']');
    if (!close || close[1] != ':' || (size_t)(close - listen - 1) >= sizeof host) goto bad;
    memcpy(host, listen + 1, (size_t)(close - listen - 1));
    host[close - listen - 1] = '\0';
    port = close + 2;
  } else {
    const char *colon = strrchr(listen, ':');
    if (!colon || (size_t)(colon - listen) >= sizeof host) goto bad;
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    port = colon + 1;
  }
  char *end;
  long p = strtol(port, &end, 10);
  if (!*port || *end || p < 0 || p > 65535 || !*host) goto bad;
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  int rc = getaddrinfo(host, port, &hints, &res);
  if (rc != 0) {
    snprintf(err, errlen, "listen %s: %s", listen, gai_strerror(rc));
    return -1;
  }
  int found = 0;
  for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
    if (sockaddr_is_loopback(ai->ai_addr) && ai->ai_addrlen <= sizeof *out) {
      memset(out, 0, sizeof *out);
      memcpy(out, ai->ai_addr, ai->ai_addrlen);
      found = 1;
      break;
    }
  }
  freeaddrinfo(res);
  if (!found) {
    snprintf(err, errlen, "listen %s: refusing a non-loopback address (this service is for one machine)", listen);
    return -1;
  }
  return 0;
bad:
  snprintf(err, errlen, "listen must be HOST:PORT (e.g. 127.0.0.1:8089), got '%s'", listen);
  return -1;
}

static int write_pidfile(const char *path) {
  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return -1;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  char buf[32];
  int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
  int ok = write(fd, buf, (size_t)n) == n;
  ok = close(fd) == 0 && ok;
  if (!ok || rename(tmp, path) != 0) {
    unlink(tmp);
    return -1;
  }
  return 0;
}

static void cluster_id(const char *arn, char *out, size_t n) {
  const char *p = strstr(arn, ":cluster:");
  p = p ? p + 9 : strrchr(arn, ':');
  if (p && *p == ':') p++;
  snprintf(out, n, "%s", p && *p ? p : arn);
}

int main(int argc, char **argv) {
  server *s = calloc(1, sizeof *s);
  if (!s) {
    fprintf(stderr, "alex-dataapi: out of memory\n");
    return 1;
  }
  char err[512];
  int rc = settings_load(&s->cfg, argc, argv, err, sizeof err);
  if (rc != 0) {
    if (rc < 0) fprintf(stderr, "alex-dataapi: %s\n", err);
    settings_free(&s->cfg);
    free(s);
    return rc < 0 ? 2 : 0;
  }
#ifdef __GLIBC__
  mallopt(M_ARENA_MAX, 2); /* a thread per connection must not mean an arena per thread */
#endif
  pthread_mutex_init(&s->log.mu, NULL);
  s->log.level = log_level_parse(s->cfg.log_level);
  s->log.f = stderr;
  if (s->cfg.log_file) {
    int fd = open(s->cfg.log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "a") : NULL;
    if (!f) {
      fprintf(stderr, "alex-dataapi: cannot open log file %s: %s\n", s->cfg.log_file, strerror(errno));
      if (fd >= 0) close(fd);
      settings_free(&s->cfg);
      free(s);
      return 1;
    }
    s->log.f = f;
    s->log.owned = 1;
  }
  int status = 1;
  struct sockaddr_storage addr;
  if (parse_listen(s->cfg.listen, &addr, err, sizeof err) != 0) {
    LOGE(&s->log, "%s", err);
    if (s->log.f != stderr) fprintf(stderr, "alex-dataapi: %s\n", err);
    goto out_log;
  }
  cluster_id(s->cfg.cluster_arn, s->cluster_id, sizeof s->cluster_id);
  server_locks_init(s);
  s->faults = s->cfg.faults;
  s->prng = s->faults.seed;
  if (cluster_init(s, err, sizeof err) != 0) {
    LOGE(&s->log, "%s", err);
    if (s->log.f != stderr) fprintf(stderr, "alex-dataapi: %s\n", err);
    goto out_mutex;
  }

  /* Signals are taken by sigwait in this thread; every other thread inherits the mask. */
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);
  signal(SIGPIPE, SIG_IGN);

  if (db_init(s) != 0) {
    LOGE(&s->log, "cannot start the transaction reaper thread");
    goto out_db;
  }
  {
    apierr e = {0};
    dbconn *c = db_acquire(s, s->cfg.default_database, &e);
    if (c) db_release(s, c);
    else LOGW(&s->log, "PostgreSQL is not reachable yet (%s); calls will fail until it is", e.message ? e.message : "");
    apierr_clear(&e);
  }
  struct MHD_Daemon *d = http_start(s, (const struct sockaddr *)&addr, err, sizeof err);
  if (!d) {
    LOGE(&s->log, "%s", err);
    if (s->log.f != stderr) fprintf(stderr, "alex-dataapi: %s\n", err);
    goto out_db;
  }
  const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  if (s->cfg.pidfile && write_pidfile(s->cfg.pidfile) != 0)
    LOGW(&s->log, "cannot write pidfile %s: %s", s->cfg.pidfile, strerror(errno));
  LOGI(&s->log, "alex-dataapi %s listening on %s (port %u), PostgreSQL %s:%s, database %s, region %s", ALEX_VERSION,
       s->cfg.listen, di ? di->port : 0, s->cfg.pg_host ? s->cfg.pg_host : "(default)",
       s->cfg.pg_port ? s->cfg.pg_port : "(default)", s->cfg.default_database, s->cfg.region);

  int sig = 0;
  while (sigwait(&stop, &sig) != 0) {
  }
  LOGI(&s->log, "signal %d: stopping", sig);
  MHD_quiesce_daemon(d);
  pthread_mutex_lock(&s->pool_mu);
  s->stopping = 1; /* no new sessions; idle ones are closed when handed back */
  pthread_mutex_unlock(&s->pool_mu);
  db_cancel_active(s);
  /* let the calls whose statements were just cancelled answer before connections close */
  for (int i = 0; i < 500; i++) {
    pthread_mutex_lock(&s->stats_mu);
    int busy = s->inflight;
    pthread_mutex_unlock(&s->stats_mu);
    if (!busy) break;
    sleep_seconds(0.01);
  }
  LOGD(&s->log, "calls answered; closing connections");
  MHD_stop_daemon(d);
  LOGD(&s->log, "HTTP stopped; closing sessions");
  status = 0;
out_db:
  db_shutdown(s);
  if (s->cfg.pidfile && status == 0) unlink(s->cfg.pidfile);
  LOGI(&s->log, "stopped");
out_mutex:
  server_locks_destroy(s);
out_log:
  if (s->log.owned) fclose(s->log.f);
  pthread_mutex_destroy(&s->log.mu);
  settings_free(&s->cfg);
  free(s);
  return status;
}
