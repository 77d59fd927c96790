#ifndef ALEX_EMBEDDED_H
#define ALEX_EMBEDDED_H
#include <stddef.h>

/* One Lua module compiled into the binary; the table ends with a NULL name. */
struct embedded_module {
  const char *name;      /* "alex.db" */
  const char *chunkname; /* "@lua/alex/db.lua", so tracebacks name the source file */
  const char *source;
  size_t size;
};

extern const struct embedded_module alex_embedded_modules[];

#endif
