/* ExecuteStatement: one statement run in single-row mode under the call's
 * time limit, its rows encoded as they arrive. */
#include <stdlib.h>
#include <string.h>

#include "columns.h"
#include "drain.h"
#include "encode.h"
#include "params.h"
#include "request.h"

static long long affected_rows(const PGresult *r) {
  const char *tag = PQcmdStatus((PGresult *)r);
  if (!tag || strncmp(tag, "SELECT", 6) == 0 || strncmp(tag, "FETCH", 5) == 0 || strncmp(tag, "MOVE", 4) == 0)
    return 0;
  const char *n = PQcmdTuples((PGresult *)r);
  return n && *n ? atoll(n) : 0;
}

/* Runs one statement on c.  *detached is set when a background thread took c over. */
static int run_statement(server *s, dbconn *c, txn *t, const char *db, const sql_scan *scan, const binds *b,
                         result_opts o, int continue_after, sbuf *out, apierr *err, int *detached) {
  PGconn *pg = c->pg;
  double deadline = mono_now() + s->cfg.statement_timeout;
  *detached = 0;
  if (!PQsendQueryParams(pg, scan->sql, (int)b->n, b->types, b->values, b->lengths, b->formats, 0)) {
    db_error_from_conn(c, err);
    return -1;
  }
  PQsetSingleRowMode(pg);
  encoder e;
  memset(&e, 0, sizeof e);
  e.s = s;
  e.db = db;
  e.o = o;
  e.out = out;
  apierr dberr = {0};
  int timed_out = 0, lost = 0, tuples = 0;
  long long affected = 0;
  for (;;) {
    int w = db_wait_ready(pg, deadline);
    if (w == 1) {
      if (timed_out) { /* even the cancel did not stop it */
        lost = 1;
        c->cancelled = 1;
        break;
      }
      timed_out = 1;
      if (continue_after && detach_statement(s, c, t) == 0) {
        *detached = 1;
        enc_free(&e);
        apierr_clear(&dberr);
        db_statement_timeout(err, c);
        return -1;
      }
      db_request_cancel(c);
      deadline = mono_now() + 30;
      continue;
    }
    if (w < 0) {
      lost = 1;
      break;
    }
    PGresult *r = PQgetResult(pg);
    if (!r) break;
    switch (PQresultStatus(r)) {
    case PGRES_SINGLE_TUPLE:
    case PGRES_TUPLES_OK:
      tuples = 1;
      if (!e.fail.status && !timed_out) {
        if (!e.started) enc_start(&e, r);
        if (!e.fail.status && PQntuples(r) > 0) enc_row(&e, r, 0);
      }
      if (PQresultStatus(r) == PGRES_TUPLES_OK) affected = affected_rows(r);
      break;
    case PGRES_COMMAND_OK:
      affected = affected_rows(r);
      break;
    case PGRES_EMPTY_QUERY:
      break;
    case PGRES_COPY_IN:
      PQputCopyEnd(pg, "COPY FROM STDIN is not supported by the Data API");
      break;
    case PGRES_COPY_OUT: {
      char *buf;
      while (PQgetCopyData(pg, &buf, 0) > 0) PQfreemem(buf);
      if (!dberr.status) VALIDATION(&dberr, "COPY TO STDOUT is not supported by the Data API");
      break;
    }
    default:
      if (!dberr.status) db_error_from_result(r, &dberr);
      break;
    }
    PQclear(r);
  }
  int rc = -1;
  if (timed_out) {
    db_statement_timeout(err, c);
  } else if (e.fail.status) {
    *err = e.fail;
    memset(&e.fail, 0, sizeof e.fail);
  } else if (dberr.status) {
    if (db_stopping(s) && dberr.message && strstr(dberr.message, "SQLState: 57014")) {
      apierr_set(err, 503, "ServiceUnavailableError", "The service is stopping; the statement was cancelled.");
    } else {
      *err = dberr;
      memset(&dberr, 0, sizeof dberr);
    }
  } else if (lost || PQstatus(pg) != CONNECTION_OK) {
    db_error_from_conn(c, err);
  } else if (tuples && e.o.json) {
    if (!e.started) {
      sb_puts(&e.inner, "[");
    }
    sb_putc(&e.inner, ']');
    sb_puts(out, "{\"formattedRecords\":\"");
    sb_json_esc(out, e.inner.p ? e.inner.p : "", e.inner.len);
    sb_printf(out, "\",\"numberOfRecordsUpdated\":%lld}", affected);
    rc = 0;
  } else if (tuples) {
    if (!e.started) sb_puts(out, "{\"records\":[");
    sb_putc(out, ']');
    if (o.meta) put_metadata(&e, c, out);
    sb_printf(out, ",\"numberOfRecordsUpdated\":%lld}", affected);
    rc = 0;
  } else {
    sb_printf(out, "{\"generatedFields\":[],\"numberOfRecordsUpdated\":%lld}", affected);
    rc = 0;
  }
  if (rc == 0 && (out->oom || e.inner.oom)) {
    apierr_set(err, 500, "InternalServerErrorException", "out of memory");
    rc = -1;
  }
  if (lost) c->cancelled = 1;
  enc_free(&e);
  apierr_clear(&dberr);
  return rc;
}

static const char *const LONG_TYPES[] = {"LONG", "STRING", NULL};
static const char *const DECIMAL_TYPES[] = {"STRING", "DOUBLE_OR_LONG", NULL};
static const char *const FORMATS[] = {"NONE", "JSON", NULL};

int op_execute(server *s, json_t *req, sbuf *out, apierr *err) {
  common cm;
  if (check_common(s, req, 1, 1, &cm, err) != 0) return -1;
  result_opts o = {0};
  int cont = 0, fmt = 0;
  if (get_bool(req, "includeResultMetadata", &o.meta, err) || get_bool(req, "continueAfterTimeout", &cont, err) ||
      get_enum(json_object_get(req, "formatRecordsAs"), "formatRecordsAs", FORMATS, 0, &fmt, err))
    return -1;
  o.json = fmt == 1;
  json_t *rso = json_object_get(req, "resultSetOptions");
  if (rso && !json_is_null(rso)) {
    if (!json_is_object(rso)) {
      VALIDATION(err, "1 validation error detected: Value at 'resultSetOptions' must be an object");
      return -1;
    }
    if (get_enum(json_object_get(rso, "longReturnType"), "resultSetOptions.longReturnType", LONG_TYPES, 0,
                 &o.long_as_string, err) ||
        get_enum(json_object_get(rso, "decimalReturnType"), "resultSetOptions.decimalReturnType", DECIMAL_TYPES, 0,
                 &o.decimal_dl, err))
      return -1;
  }
  sql_scan scan;
  if (sql_scan_run(cm.sql, strlen(cm.sql), &scan) != 0) {
    apierr_set(err, 500, "InternalServerErrorException", "out of memory");
    return -1;
  }
  binds b;
  int rc = -1;
  if (binds_init(&b, scan.nnames) != 0) {
    apierr_set(err, 500, "InternalServerErrorException", "out of memory");
    goto done;
  }
  if (scan.multi) {
    VALIDATION(err, "Multistatements aren't supported.");
    goto done;
  }
  if (bind_set(json_object_get(req, "parameters"), "parameters", 0, &scan, &b, err) != 0) goto done;

  txn *t = NULL;
  dbconn *c;
  const char *db = cm.database;
  if (cm.transaction_id) {
    t = tx_acquire(s, cm.transaction_id, err);
    if (!t) goto done;
    c = t->c;
    db = c->db;
  } else {
    c = db_acquire(s, db, err);
    if (!c) goto done;
  }
  int detached = 0;
  db_active(s, c, 1);
  rc = run_statement(s, c, t, db, &scan, &b, o, cont, out, err, &detached);
  if (!detached) {
    db_active(s, c, 0);
    if (t) tx_release(s, t);
    else db_release(s, c);
  }
done:
  binds_free(&b);
  sql_scan_free(&scan);
  return rc;
}
