/* Fault injection: a splitmix64 generator kept in the server, drawn six
 * times per call whatever the outcome, so a seed reproduces a sequence. */
#include <string.h>

#include "server.h"

const char *const FAULT_NAMES[NFAULTS] = {"throttle", "resuming", "5xx", "drop", "drop_after"};

static uint64_t splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

static double unit(uint64_t *state) { return (double)(splitmix64(state) >> 11) * (1.0 / 9007199254740992.0); }

void faults_draw(server *s, int may_resume, fault_draw *d) {
  double u[6];
  pthread_mutex_lock(&s->fault_mu);
  fault_settings f = s->faults;
  for (int i = 0; i < 6; i++) u[i] = unit(&s->prng);
  pthread_mutex_unlock(&s->fault_mu);
  d->latency_ms = f.latency_ms;
  d->fault = -1;
  d->drop_after = 0;
  d->use_503 = u[5] < 0.5;
  if (u[0] < f.drop_rate) d->fault = FAULT_DROP;
  else if (u[1] < f.throttle_rate) d->fault = FAULT_THROTTLE;
  else if (u[2] < f.resuming_rate && may_resume) d->fault = FAULT_RESUMING;
  else if (u[3] < f.r5xx_rate) d->fault = FAULT_5XX;
  else if (u[4] < f.drop_after_rate) d->drop_after = 1;
}

void faults_start(server *s, int may_resume, const fault_errors *e, fault_draw *d, apierr *err) {
  faults_draw(s, may_resume && e->resuming, d);
  if (d->latency_ms > 0) sleep_seconds(d->latency_ms / 1000.0);
  if (d->fault == FAULT_THROTTLE) {
    apierr_set(err, 400, e->throttle, "Rate exceeded");
  } else if (d->fault == FAULT_RESUMING) {
    apierr_set(err, 400, e->resuming,
               "The Aurora DB instance %s-instance-1 is resuming after being auto-paused. Please wait a few seconds "
               "and try again.", s->cluster_id);
  } else if (d->fault == FAULT_5XX) {
    if (d->use_503) apierr_set(err, 503, e->unavailable, "%s", e->unavailable_message);
    else apierr_set(err, 500, e->internal, "%s", e->internal_message);
  }
}

void faults_get(server *s, fault_settings *f) {
  pthread_mutex_lock(&s->fault_mu);
  *f = s->faults;
  pthread_mutex_unlock(&s->fault_mu);
}

void faults_put(server *s, const fault_settings *f, int reseed) {
  pthread_mutex_lock(&s->fault_mu);
  s->faults = *f;
  if (reseed) s->prng = f->seed;
  pthread_mutex_unlock(&s->fault_mu);
}

void faults_json(server *s, sbuf *b) {
  fault_settings f;
  faults_get(s, &f);
  sb_printf(b, "{\"seed\":%llu", (unsigned long long)f.seed);
  for (size_t i = 0; i < N_FAULT_NUMBERS; i++) {
    double d;
    memcpy(&d, (const char *)&f + FAULT_NUMBERS[i].offset, sizeof d);
    sb_printf(b, ",\"%s\":", FAULT_NUMBERS[i].name);
    sb_double(b, d);
  }
  sb_putc(b, '}');
}
