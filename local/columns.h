#ifndef ALEX_DATAAPI_COLUMNS_H
#define ALEX_DATAAPI_COLUMNS_H
/* columnMetadata, with the per-session cache of base-column facts. */
#include "encode.h"

/* Appends ",\"columnMetadata\":[...]" for the columns e read, asking the
 * catalogue on c (the session that ran the statement) for what c's cache lacks. */
void put_metadata(encoder *e, dbconn *c, sbuf *b);

#endif
