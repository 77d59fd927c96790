/* Column metadata: columnMetadata with pgjdbc's values (precision, scale,
 * flags), and the per-session cache of the catalogue facts it needs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "columns.h"

/* pgjdbc's precision, scale and flags for a builtin type. */
static int display_size(Oid oid, int typmod) {
  int sec = typmod == -1 ? 7 : typmod == 0 ? 0 : typmod == 1 ? 3 : typmod + 1;
  switch (oid) {
  case 1082: return 13;
  case 1083: return 8 + sec;
  case 1266: return 8 + sec + 6;
  case 1114: return 13 + 1 + 8 + sec;
  case 1184: return 13 + 1 + 8 + sec + 6;
  default: return 2147483647;
  }
}

static int jdbc_precision(Oid oid, int typmod) {
  switch (oid) {
  case 21: return 5;
  case 23: case 26: return 10;
  case 20: return 19;
  case 700: return 8;
  case 701: return 17;
  case 1700: return typmod == -1 ? 0 : ((typmod - 4) >> 16) & 0xFFFF;
  case 18: case 16: return 1;
  case 1042: case 1043: return typmod == -1 ? 2147483647 : typmod - 4;
  case 1082: case 1083: case 1266: case 1114: case 1184: return display_size(oid, typmod);
  default: return 2147483647;
  }
}

static int jdbc_scale(Oid oid, int typmod) {
  switch (oid) {
  case 700: return 8;
  case 701: return 17;
  case 1700: return typmod == -1 ? 0 : (typmod - 4) & 0xFFFF;
  case 1083: case 1266: case 1114: case 1184: return typmod == -1 ? 6 : typmod;
  default: return 0;
  }
}

static int jdbc_case_sensitive(Oid oid) {
  switch (oid) {
  case 26: case 21: case 23: case 20: case 700: case 701: case 1700: case 16: case 1560: case 1562:
  case 1082: case 1083: case 1266: case 1114: case 1184: case 1186:
    return 0;
  default:
    return 1;
  }
}

static int jdbc_signed(Oid oid) {
  return oid == 21 || oid == 23 || oid == 20 || oid == 700 || oid == 701 || oid == 1700;
}

static const colmeta *meta_find(const dbconn *c, Oid rel, int att) {
  for (int i = 0; i < c->meta_count; i++)
    if (c->meta[i].rel == rel && c->meta[i].att == att) return &c->meta[i];
  return NULL;
}

static void meta_store(dbconn *c, Oid rel, int att, const char *relname, int notnull, int autoinc) {
  if (!c->meta) {
    c->meta = calloc(COLMETA_CACHE_SIZE, sizeof *c->meta);
    if (!c->meta) return; /* no cache: the next call asks the catalogue again */
  }
  colmeta *m = (colmeta *)meta_find(c, rel, att);
  if (!m) {
    m = &c->meta[c->meta_next];
    c->meta_next = (c->meta_next + 1) % COLMETA_CACHE_SIZE;
    if (c->meta_count < COLMETA_CACHE_SIZE) c->meta_count++;
  }
  m->rel = rel;
  m->att = att;
  m->notnull = notnull;
  m->autoinc = autoinc;
  snprintf(m->relname, sizeof m->relname, "%s", relname);
}

/* columnMetadata; base-column facts come from the catalogue on the same
 * session, once per column per session (the cache in dbconn). */
void put_metadata(encoder *e, dbconn *c, sbuf *b) {
  PGconn *pg = c->pg;
  int n = e->ncols;
  int *notnull = calloc(n > 0 ? (size_t)n : 1, sizeof *notnull);
  int *autoinc = calloc(n > 0 ? (size_t)n : 1, sizeof *autoinc);
  char **tname = calloc(n > 0 ? (size_t)n : 1, sizeof *tname);
  sbuf rels = {0}, cols = {0};
  int any = 0;
  for (int i = 0; i < n; i++) {
    if (notnull) notnull[i] = -1;
    if (e->tables[i] && e->tablecols[i] > 0) {
      const colmeta *m = meta_find(c, e->tables[i], e->tablecols[i]);
      if (m && notnull && autoinc && tname) {
        notnull[i] = m->notnull;
        autoinc[i] = m->autoinc;
        tname[i] = xstrdup(m->relname);
        continue;
      }
      sb_printf(&rels, "%s%u", any ? "," : "{", e->tables[i]);
      sb_printf(&cols, "%s%d", any ? "," : "{", e->tablecols[i]);
      any = 1;
    }
  }
  if (any && notnull && autoinc && tname) {
    sb_putc(&rels, '}');
    sb_putc(&rels, '\0');
    sb_putc(&cols, '}');
    sb_putc(&cols, '\0');
    const char *vals[2] = {rels.p, cols.p};
    PGresult *r = rels.oom || cols.oom ? NULL : PQexecParams(pg,
        "SELECT c.oid, a.attnum, c.relname, a.attnotnull, "
        "COALESCE(pg_catalog.pg_get_expr(d.adbin, d.adrelid) LIKE '%nextval(%', false) OR a.attidentity <> '' "
        "FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
        "LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE (a.attrelid, a.attnum) IN (SELECT * FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.oid[]), pg_catalog.unnest($2::pg_catalog.int2[])))",
        2, NULL, vals, NULL, NULL, 0);
    if (r && PQresultStatus(r) == PGRES_TUPLES_OK) {
      for (int row = 0; row < PQntuples(r); row++) {
        Oid rel = (Oid)strtoul(PQgetvalue(r, row, 0), NULL, 10);
        int att = atoi(PQgetvalue(r, row, 1));
        meta_store(c, rel, att, PQgetvalue(r, row, 2), PQgetvalue(r, row, 3)[0] == 't',
                   PQgetvalue(r, row, 4)[0] == 't');
        for (int i = 0; i < n; i++) {
          if (e->tables[i] == rel && e->tablecols[i] == att) {
            if (!tname[i]) tname[i] = xstrdup(PQgetvalue(r, row, 2));
            notnull[i] = PQgetvalue(r, row, 3)[0] == 't';
            autoinc[i] = PQgetvalue(r, row, 4)[0] == 't';
          }
        }
      }
    }
    PQclear(r);
  }
  sb_puts(b, ",\"columnMetadata\":[");
  for (int i = 0; i < n; i++) {
    const typeinfo *t = &e->types[i];
    Oid base = t->base;
    int tm = e->typmods[i];
    const char *typename = t->name;
    int ai = autoinc ? autoinc[i] : 0;
    if (ai && t->oid == 23) typename = "serial";
    else if (ai && t->oid == 20) typename = "bigserial";
    else if (ai && t->oid == 21) typename = "smallserial";
    int nullable = notnull && notnull[i] >= 0 ? (notnull[i] ? 0 : 1) : 2;
    const char *table = tname && tname[i] ? tname[i] : "";
    if (i) sb_putc(b, ',');
    sb_printf(b, "{\"arrayBaseColumnType\":0,\"isAutoIncrement\":%s,\"isCaseSensitive\":%s,\"isCurrency\":false,"
                 "\"isSigned\":%s,\"label\":",
              ai ? "true" : "false", jdbc_case_sensitive(base) ? "true" : "false", jdbc_signed(base) ? "true" : "false");
    sb_json_str(b, e->labels[i], strlen(e->labels[i]));
    sb_puts(b, ",\"name\":");
    sb_json_str(b, e->labels[i], strlen(e->labels[i]));
    sb_printf(b, ",\"nullable\":%d,\"precision\":%d,\"scale\":%d,\"schemaName\":\"\",\"tableName\":", nullable,
              jdbc_precision(base, t->kind == K_ARRAY ? -1 : tm), jdbc_scale(base, t->kind == K_ARRAY ? -1 : tm));
    sb_json_str(b, table, strlen(table));
    sb_printf(b, ",\"type\":%d,\"typeName\":", t->jdbc);
    sb_json_str(b, typename, strlen(typename));
    sb_putc(b, '}');
  }
  sb_putc(b, ']');
  for (int i = 0; i < n && tname; i++) free(tname[i]);
  free(tname);
  free(notnull);
  free(autoinc);
  sb_free(&rels);
  sb_free(&cols);
}
