/* BatchExecuteStatement: every parameter set checked first, then BEGIN, one
 * Parse, N Bind/Execute and COMMIT through one libpq pipeline, so the batch
 * is all-or-nothing and costs about one round trip. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "params.h"
#include "request.h"

/* Reads every result that is ready; sets *synced when the pipeline's sync came back. */
static int drain_ready(PGconn *pg, int *in_cmd, int *synced, apierr *dberr) {
  while (!PQisBusy(pg)) {
    PGresult *r = PQgetResult(pg);
    if (!r) {
      if (*in_cmd) {
        *in_cmd = 0;
        continue;
      }
      return 0; /* nothing queued right now */
    }
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_PIPELINE_SYNC) {
      PQclear(r);
      *synced = 1;
      return 0;
    }
    *in_cmd = 1;
    if (st == PGRES_FATAL_ERROR && !dberr->status) db_error_from_result(r, dberr);
    PQclear(r);
  }
  return 0;
}

static int run_batch(server *s, dbconn *c, int in_tx, const sql_scan *scan, json_t *sets, size_t nsets,
                     apierr *err) {
  PGconn *pg = c->pg;
  binds b;
  if (binds_init(&b, scan->nnames) != 0) {
    apierr_set(err, 500, "InternalServerErrorException", "out of memory");
    return -1;
  }
  Oid *prepared = calloc(scan->nnames ? scan->nnames : 1, sizeof *prepared);
  if (!prepared || PQenterPipelineMode(pg) != 1 || PQsetnonblocking(pg, 1) != 0) {
    free(prepared);
    binds_free(&b);
    if (PQpipelineStatus(pg) != PQ_PIPELINE_OFF) PQexitPipelineMode(pg);
    apierr_set(err, 500, "InternalServerErrorException", "cannot start a pipeline");
    return -1;
  }
  double deadline = mono_now() + s->cfg.statement_timeout;
  apierr dberr = {0}, local = {0};
  int have_prepared = 0, sync_sent = 0, synced = 0, in_cmd = 0, timed_out = 0, lost = 0, congested = 0;
  size_t next = 0;
  if (!in_tx && !PQsendQueryParams(pg, "BEGIN", 0, NULL, NULL, NULL, NULL, 0)) lost = 1;
  while (!synced && !lost) {
    /* queue work while the socket takes it */
    while (!congested && !sync_sent && !lost) {
      if (next < nsets && !local.status) {
        if (bind_set(json_array_get(sets, next), "parameterSets", next + 1, scan, &b, &local) != 0) continue;
        if (!have_prepared || (scan->nnames && memcmp(prepared, b.types, scan->nnames * sizeof *prepared) != 0)) {
          if (!PQsendPrepare(pg, "", scan->sql, (int)b.n, b.types)) {
            lost = 1;
            break;
          }
          if (scan->nnames) memcpy(prepared, b.types, scan->nnames * sizeof *prepared);
          have_prepared = 1;
        }
        if (!PQsendQueryPrepared(pg, "", (int)b.n, b.values, b.lengths, b.formats, 0)) {
          lost = 1;
          break;
        }
        next++;
      } else {
        if (!in_tx && !PQsendQueryParams(pg, local.status ? "ROLLBACK" : "COMMIT", 0, NULL, NULL, NULL, NULL, 0)) {
          lost = 1;
          break;
        }
        if (!PQpipelineSync(pg)) {
          lost = 1;
          break;
        }
        sync_sent = 1;
      }
      /* hand the server work in batches: one send per row would cost a wake-up per row */
      if (sync_sent || next % 128 == 0) {
        int f = PQflush(pg);
        if (f < 0) lost = 1;
        congested = f == 1;
        if (!PQconsumeInput(pg)) lost = 1;
        drain_ready(pg, &in_cmd, &synced, &dberr);
      }
    }
    if (lost || synced) break;
    /* wait for the server */
    double left = deadline - mono_now();
    if (left <= 0) {
      if (timed_out) {
        lost = 1;
        break;
      }
      timed_out = 1;
      db_request_cancel(c);
      deadline = mono_now() + 30;
      continue;
    }
    struct pollfd pfd = {PQsocket(pg), (short)(POLLIN | (congested ? POLLOUT : 0)), 0};
    int ms = left > 1 ? 1000 : (int)(left * 1000) + 1;
    int r = poll(&pfd, 1, ms);
    if (r < 0 && errno != EINTR) {
      lost = 1;
      break;
    }
    if (r > 0) {
      if (pfd.revents & (POLLOUT | POLLERR | POLLHUP)) {
        int f = PQflush(pg);
        if (f < 0) lost = 1;
        congested = f == 1;
      }
      if (!PQconsumeInput(pg)) lost = 1;
      drain_ready(pg, &in_cmd, &synced, &dberr);
    }
  }
  if (!lost) {
    PQexitPipelineMode(pg);
    PQsetnonblocking(pg, 0);
  } else {
    c->cancelled = 1; /* the session's state is unknown: never reuse it */
  }
  int rc = -1;
  if (timed_out) db_statement_timeout(err, c);
  else if (local.status) *err = local, memset(&local, 0, sizeof local);
  else if (dberr.status) *err = dberr, memset(&dberr, 0, sizeof dberr);
  else if (lost) db_error_from_conn(c, err);
  else rc = 0;
  apierr_clear(&local);
  apierr_clear(&dberr);
  free(prepared);
  binds_free(&b);
  return rc;
}

int op_batch(server *s, json_t *req, sbuf *out, apierr *err) {
  common cm;
  if (check_common(s, req, 1, 1, &cm, err) != 0) return -1;
  json_t *sets = json_object_get(req, "parameterSets");
  if (sets && json_is_null(sets)) sets = NULL;
  if (sets && !json_is_array(sets)) {
    VALIDATION(err, "1 validation error detected: Value at 'parameterSets' failed to satisfy constraint: "
                    "Member must be a list");
    return -1;
  }
  size_t nsets = sets ? json_array_size(sets) : 0;
  for (size_t i = 0; i < nsets; i++) {
    json_t *set = json_array_get(sets, i);
    if (!json_is_array(set)) {
      VALIDATION(err, "1 validation error detected: Value at 'parameterSets.%zu' failed to satisfy constraint: "
                      "Member must be a list", i + 1);
      return -1;
    }
  }
  sql_scan scan;
  if (sql_scan_run(cm.sql, strlen(cm.sql), &scan) != 0) {
    apierr_set(err, 500, "InternalServerErrorException", "out of memory");
    return -1;
  }
  int rc = -1;
  binds b = {0};
  if (scan.multi) {
    VALIDATION(err, "Multistatements aren't supported.");
    goto done;
  }
  /* every set is checked before anything runs */
  if (binds_init(&b, scan.nnames) != 0) {
    apierr_set(err, 500, "InternalServerErrorException", "out of memory");
    goto done;
  }
  for (size_t i = 0; i < nsets; i++) {
    if (bind_set(json_array_get(sets, i), "parameterSets", i + 1, &scan, &b, err) != 0) goto done;
  }
  binds_free(&b);

  txn *t = NULL;
  dbconn *c = NULL;
  if (cm.transaction_id) {
    t = tx_acquire(s, cm.transaction_id, err);
    if (!t) goto done;
    c = t->c;
  } else if (nsets > 0) {
    c = db_acquire(s, cm.database, err);
    if (!c) goto done;
  }
  if (nsets > 0) {
    db_active(s, c, 1);
    rc = run_batch(s, c, t != NULL, &scan, sets, nsets, err);
    db_active(s, c, 0);
  } else {
    rc = 0;
  }
  if (t) tx_release(s, t);
  else if (c) db_release(s, c);
  if (rc == 0) {
    sb_puts(out, "{\"updateResults\":[");
    for (size_t i = 0; i < nsets; i++) sb_puts(out, i ? ",{\"generatedFields\":[]}" : "{\"generatedFields\":[]}");
    sb_puts(out, "]}");
    if (out->oom) {
      apierr_set(err, 500, "InternalServerErrorException", "out of memory");
      rc = -1;
    }
  }
done:
  binds_free(&b);
  sql_scan_free(&scan);
  return rc;
}
