/* BeginTransaction, CommitTransaction and RollbackTransaction: a transaction
 * pins one session from Begin to Commit/Rollback. */
#include <string.h>

#include "request.h"

int op_begin(server *s, json_t *req, sbuf *out, apierr *err) {
  common cm;
  if (check_common(s, req, 0, 0, &cm, err) != 0) return -1;
  dbconn *c = db_acquire(s, cm.database, err);
  if (!c) return -1;
  PGresult *r = PQexec(c->pg, "BEGIN");
  if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
    if (r) db_error_from_result(r, err);
    else db_error_from_conn(c, err);
    PQclear(r);
    db_release(s, c);
    return -1;
  }
  PQclear(r);
  txn *t = tx_begin(s, c, err);
  if (!t) {
    db_release(s, c);
    return -1;
  }
  sb_printf(out, "{\"transactionId\":\"%s\"}", t->id);
  return 0;
}

int op_end(server *s, json_t *req, int commit, sbuf *out, apierr *err) {
  common cm;
  if (check_common(s, req, 0, 2, &cm, err) != 0) return -1;
  txn *t = tx_take(s, cm.transaction_id, err);
  if (!t) return -1;
  PGconn *pg = t->c->pg;
  int rc = -1;
  db_active(s, t->c, 1);
  PGresult *r = PQexec(pg, commit ? "COMMIT" : "ROLLBACK");
  db_active(s, t->c, 0);
  if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
    if (r) db_error_from_result(r, err);
    else db_error_from_conn(t->c, err);
  } else if (commit && strcmp(PQcmdStatus(r), "ROLLBACK") == 0) {
    /* COMMIT of a failed transaction: PostgreSQL rolled it back instead */
    apierr_set(err, 400, "DatabaseErrorException",
               "ERROR: current transaction is aborted, commands ignored until end of transaction block; "
               "SQLState: 25P02");
  } else {
    sb_printf(out, "{\"transactionStatus\":\"%s\"}", commit ? "Transaction Committed" : "Rollback Complete");
    rc = 0;
  }
  PQclear(r);
  tx_finish(s, t, rc == 0);
  return rc;
}
