#ifndef ALEX_DATAAPI_DRAIN_H
#define ALEX_DATAAPI_DRAIN_H
/* continueAfterTimeout: a statement that outlives its call. */
#include "server.h"

/* Hands the statement running on c (in transaction t, or autocommit when t
 * is NULL) to a background thread that reads it to its end and then releases
 * c or t; 0 when it did, -1 when no thread could be started. */
int detach_statement(server *s, dbconn *c, txn *t);

#endif
