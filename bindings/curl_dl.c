/* Loads libcurl at run time: see curl_dl.h for why. */
#define _GNU_SOURCE 1
#include "curl_dl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* Written once under pthread_once, read-only afterwards: process-wide like
 * libcurl itself, and the same for every Lua state. */
static struct alex_curl_api api;
static const struct alex_curl_api *loaded = NULL;
static char load_error[256];
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

/* dlsym returns void *; converting it to a function pointer is what POSIX
 * requires to work, through a union to stay within ISO C. */
static int resolve(void *lib, const char *name, void *slot, size_t size) {
  void *sym = dlsym(lib, name);
  if (!sym) {
    snprintf(load_error, sizeof load_error, "libcurl has no %s", name);
    return -1;
  }
  union { void *obj; void (*fn)(void); } u = {.obj = sym};
  memcpy(slot, &u.fn, size);
  return 0;
}

#define RESOLVE(field, name) \
  if (resolve(lib, name, &api.field, sizeof api.field) != 0) return

static void load(void) {
  void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char *why = dlerror();
    snprintf(load_error, sizeof load_error, "cannot load libcurl.so.4: %s", why ? why : "unknown error");
    return;
  }
  RESOLVE(global_init, "curl_global_init");
  RESOLVE(global_cleanup, "curl_global_cleanup");
  RESOLVE(easy_init, "curl_easy_init");
  RESOLVE(easy_cleanup, "curl_easy_cleanup");
  RESOLVE(easy_reset, "curl_easy_reset");
  RESOLVE(easy_setopt, "curl_easy_setopt");
  RESOLVE(easy_getinfo, "curl_easy_getinfo");
  RESOLVE(easy_strerror, "curl_easy_strerror");
  RESOLVE(free, "curl_free");
  RESOLVE(multi_init, "curl_multi_init");
  RESOLVE(multi_cleanup, "curl_multi_cleanup");
  RESOLVE(multi_add_handle, "curl_multi_add_handle");
  RESOLVE(multi_remove_handle, "curl_multi_remove_handle");
  RESOLVE(multi_perform, "curl_multi_perform");
  RESOLVE(multi_poll, "curl_multi_poll");
  RESOLVE(multi_info_read, "curl_multi_info_read");
  RESOLVE(multi_strerror, "curl_multi_strerror");
  RESOLVE(slist_append, "curl_slist_append");
  RESOLVE(slist_free_all, "curl_slist_free_all");
  RESOLVE(url, "curl_url");
  RESOLVE(url_cleanup, "curl_url_cleanup");
  RESOLVE(url_get, "curl_url_get");
  RESOLVE(url_set, "curl_url_set");
  RESOLVE(url_strerror, "curl_url_strerror");
  RESOLVE(version_info, "curl_version_info");
  loaded = &api; /* the library stays loaded for the life of the process */
}

const struct alex_curl_api *alex_curl_load(char *err, size_t errlen) {
  pthread_once(&load_once, load);
  if (!loaded) snprintf(err, errlen, "%s", load_error);
  return loaded;
}

const struct alex_curl_api *alex_curl(void) { return loaded; }
