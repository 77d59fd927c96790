/* Placeholder: replaced by the real signing core. */
#include "sigv4_core.h"
