/* The drain thread: a statement whose call timed out with
 * continueAfterTimeout runs on in the background, keeping its session (and
 * its transaction busy) until it ends; a stopping service cancels it. */
#include <stdlib.h>

#include "drain.h"

typedef struct {
  server *s;
  dbconn *c;
  txn *t;
} drain_job;

static void *drain_main(void *arg) {
  drain_job *j = arg;
  server *s = j->s;
  PGconn *pg = j->c->pg;
  int cancelled = 0;
  for (;;) {
    int w = db_wait_ready(pg, mono_now() + 0.5);
    if (w == 1) {
      if (!cancelled && db_stopping(s)) {
        db_request_cancel(j->c);
        cancelled = 1;
      }
      continue;
    }
    if (w < 0) break;
    PGresult *r = PQgetResult(pg);
    if (!r) break;
    PQclear(r);
  }
  LOGD(&s->log, "a statement that outlived its call (continueAfterTimeout) finished");
  db_active(s, j->c, 0);
  if (j->t) tx_release(s, j->t);
  else db_release(s, j->c);
  pthread_mutex_lock(&s->tx_mu);
  s->drainers--;
  pthread_cond_broadcast(&s->tx_cv);
  pthread_mutex_unlock(&s->tx_mu);
  free(j);
  return NULL;
}

int detach_statement(server *s, dbconn *c, txn *t) {
  drain_job *j = malloc(sizeof *j);
  if (!j) return -1;
  j->s = s;
  j->c = c;
  j->t = t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_mutex_lock(&s->tx_mu);
  s->drainers++;
  pthread_mutex_unlock(&s->tx_mu);
  pthread_t th;
  int rc = pthread_create(&th, &attr, drain_main, j);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    pthread_mutex_lock(&s->tx_mu);
    s->drainers--;
    pthread_mutex_unlock(&s->tx_mu);
    free(j);
    return -1;
  }
  return 0;
}
