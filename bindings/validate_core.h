#ifndef ALEX_VALIDATE_CORE_H
#define ALEX_VALIDATE_CORE_H
/*
 * The rules of alex.validate as plain C with no Lua types, so they can be
 * fuzzed alone.  No global mutable state; the only globals are the constant
 * name sets.
 *
 * An allocation is a map of percentages, e.g. {north_america = 60, europe = 40}:
 *   - it has at least one entry;
 *   - every key is a string from the set of its kind (regions, sectors, asset
 *     classes);
 *   - every value is a finite number in [0, 100] (a string "50" is not a number);
 *   - the values sum to 100 within 0.05 (99.95 and 100.05 pass, 99.94 and
 *     100.06 fail; a 1e-9 slack absorbs binary rounding of decimal inputs).
 *     The sum is checked only when every value is a finite number, and counts
 *     every such value (unknown keys and out-of-range values included), added
 *     in key order so the result does not depend on the input order.
 * Every problem is reported, one after the other, keys in a stable order:
 * string keys by byte order, then non-string keys by their display text; the
 * sum comes last.
 */
#include <stddef.h>

typedef enum {
  VALIDATE_SET_REGIONS,
  VALIDATE_SET_SECTORS,
  VALIDATE_SET_ASSET_CLASSES,
  VALIDATE_SET_INSTRUMENT_TYPES,
  VALIDATE_SET_COUNT
} validate_set;

/* The kinds of allocation, each checked against one set. */
typedef enum {
  VALIDATE_KIND_REGIONS,
  VALIDATE_KIND_SECTORS,
  VALIDATE_KIND_ASSET_CLASS,
  VALIDATE_KIND_COUNT
} validate_kind;

typedef enum {
  VALIDATE_VALUE_NUMBER, /* number holds it */
  VALIDATE_VALUE_STRING, /* str/str_len hold it */
  VALIDATE_VALUE_OTHER   /* str names it, e.g. "true", "a table" */
} validate_value_type;

typedef struct {
  int key_is_string;     /* 0: key holds a display text instead, e.g. "1", "true", "table" */
  const char *key;       /* the key's bytes when key_is_string, else its display text */
  size_t key_len;
  validate_value_type value_type;
  double number;
  const char *str;       /* VALIDATE_VALUE_STRING: the bytes; VALIDATE_VALUE_OTHER: a NUL-terminated description */
  size_t str_len;
} validate_entry;

/* NULL-terminated, in their documented order. */
const char *const *validate_set_names(validate_set set);
/* Returns the set for "regions", "sectors", "asset_classes" (or
 * "asset_class"), "instrument_types", or -1. */
int validate_set_lookup(const char *name);
/* 1 when the len bytes at s are a member of set. */
int validate_is_member(validate_set set, const char *s, size_t len);

/* "regions", "sectors", "asset_class" -> kind, or -1. */
int validate_kind_lookup(const char *name);
const char *validate_kind_name(validate_kind kind);

/*
 * Checks n entries against the rules for kind.  Returns 0 when valid, 1 when
 * not with *msg set to a malloc'd NUL-terminated message starting with
 * "<kind>: " (the caller frees it), or -1 when out of memory (*msg NULL).
 * The entries are not modified.
 */
int validate_allocation(const validate_entry *entries, size_t n, validate_kind kind, char **msg);

/* Message for a map that is not a table at all: "<kind>: expected a table of
 * percentages, got <what>".  Same return convention (1 or -1). */
int validate_not_a_map(validate_kind kind, const char *what, char **msg);

#endif
