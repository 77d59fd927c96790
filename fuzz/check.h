#ifndef ALEX_FUZZ_CHECK_H
#define ALEX_FUZZ_CHECK_H
#include <stdio.h>
#include <stdlib.h>

/* A property every input must keep; a broken one is a crash the fuzzer
 * keeps, with the file and line of the check. */
#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
      abort();                                                                   \
    }                                                                            \
  } while (0)

#endif
