#ifndef ALEX_DATAAPI_UTIL_H
#define ALEX_DATAAPI_UTIL_H
/* Growable byte buffers, JSON text output, base64, clocks and the log. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <pthread.h>

/* A growable buffer.  Allocation failure sets `oom` (sticky) and makes every
 * later append a no-op, so a writer checks once at the end. */
typedef struct {
  char *p;
  size_t len, cap;
  int oom;
} sbuf;

int sb_reserve(sbuf *b, size_t extra);            /* 0, or -1 (and oom set) */
void sb_put(sbuf *b, const void *s, size_t n);
void sb_puts(sbuf *b, const char *s);
void sb_putc(sbuf *b, char c);
void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_vprintf(sbuf *b, const char *fmt, va_list ap);
/* A JSON string literal (with the quotes) for n bytes of UTF-8. */
void sb_json_str(sbuf *b, const char *s, size_t n);
/* The same without the surrounding quotes. */
void sb_json_esc(sbuf *b, const char *s, size_t n);
void sb_b64(sbuf *b, const unsigned char *s, size_t n);
/* Shortest decimal text that reads back as exactly d (finite d). */
void sb_double(sbuf *b, double d);
/* NUL-terminates and hands the bytes over (NULL on oom); b is emptied. */
char *sb_detach(sbuf *b, size_t *len);
void sb_free(sbuf *b);

/* Standard base64 decoding; '=' padding optional, nothing else accepted.
 * Returns a malloc'd buffer (never NULL on success, even for 0 bytes) or NULL
 * with *bad set to 1 for invalid input, 0 for out of memory. */
unsigned char *b64_decode(const char *s, size_t n, size_t *out_len, int *bad);

/* Seconds, monotonic and wall clock. */
double mono_now(void);
double wall_now(void);
void sleep_seconds(double s);

/* Constant-time equality of two byte strings of any length (the length is not secret). */
int ct_equal(const char *a, size_t al, const char *b, size_t bl);

char *xstrdup(const char *s); /* NULL when s is NULL or out of memory */

/* The whole of a file of at most READ_FILE_MAX bytes (the config file, the
 * cluster's state file) in a malloc'd buffer with a NUL after the *len bytes.
 * 0; -1 when it cannot be opened (errno says why: ENOENT when there is none);
 * -2 when it cannot be stat'ed or is larger than READ_FILE_MAX; -3 when out
 * of memory. */
#define READ_FILE_MAX (1 << 20)
int read_small_file(const char *path, char **out, size_t *len);

/* ---- log ---- */
enum { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };
typedef struct {
  FILE *f;
  int owned;
  int level;
  pthread_mutex_t mu;
} logger;
int log_level_parse(const char *s); /* -1 when unknown */
void logf_(logger *lg, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define LOGE(lg, ...) logf_((lg), LOG_ERROR, __VA_ARGS__)
#define LOGW(lg, ...) logf_((lg), LOG_WARN, __VA_ARGS__)
#define LOGI(lg, ...) logf_((lg), LOG_INFO, __VA_ARGS__)
#define LOGD(lg, ...) do { if ((lg)->level >= LOG_DEBUG) logf_((lg), LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
