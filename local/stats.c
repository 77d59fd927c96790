/* Call statistics for the admin API: operation and RDS action counts,
 * injected faults, request and response body bytes. */
#include <string.h>

#include "server.h"

void stats_count(server *s, int fault, enum op op, int rds_action, uint64_t in, uint64_t out) {
  pthread_mutex_lock(&s->stats_mu);
  if (op < OP_NONE) s->st.ops[op]++;
  if (rds_action >= 0 && rds_action < RDS_NACTIONS) s->st.rds[rds_action]++;
  if (fault >= 0) s->st.faults[fault]++;
  s->st.bytes_in += in;
  s->st.bytes_out += out;
  pthread_mutex_unlock(&s->stats_mu);
}

void stats_reset(server *s) {
  pthread_mutex_lock(&s->stats_mu);
  memset(&s->st, 0, sizeof s->st);
  pthread_mutex_unlock(&s->stats_mu);
}

void stats_json(server *s, sbuf *b) {
  stats st;
  pthread_mutex_lock(&s->stats_mu);
  st = s->st;
  pthread_mutex_unlock(&s->stats_mu);
  sb_puts(b, "{\"operations\":{");
  for (int i = 0; i < 5; i++) sb_printf(b, "%s\"%s\":%llu", i ? "," : "", OP_NAMES[i], (unsigned long long)st.ops[i]);
  sb_puts(b, "},\"rds_actions\":{");
  for (int i = 0; i < RDS_NACTIONS; i++)
    sb_printf(b, "%s\"%s\":%llu", i ? "," : "", RDS_ACTION_NAMES[i], (unsigned long long)st.rds[i]);
  sb_printf(b, "},\"bytes_in\":%llu,\"bytes_out\":%llu,\"faults\":{", (unsigned long long)st.bytes_in,
            (unsigned long long)st.bytes_out);
  for (int i = 0; i < NFAULTS; i++)
    sb_printf(b, "%s\"%s\":%llu", i ? "," : "", FAULT_NAMES[i], (unsigned long long)st.faults[i]);
  sb_printf(b, "},\"open_transactions\":%d}", db_open_transactions(s));
}
