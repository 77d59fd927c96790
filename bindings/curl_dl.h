#ifndef ALEX_CURL_DL_H
#define ALEX_CURL_DL_H
/*
 * libcurl, loaded with dlopen the first time alex.http is required.
 * Linking it would load libcurl and its ~30 dependencies (GnuTLS, Kerberos,
 * LDAP, ...) at every start of alexlua, tripling `alexlua -e ''`; most runs
 * need no HTTP until the first Data API call.
 *
 * Include this instead of <curl/curl.h>: the curl_* names below then call
 * through a table of function pointers filled once per process (pthread_once)
 * and never written again.
 */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>
#include <stddef.h>

struct alex_curl_api {
  CURLcode (*global_init)(long);
  void (*global_cleanup)(void);
  CURL *(*easy_init)(void);
  void (*easy_cleanup)(CURL *);
  void (*easy_reset)(CURL *);
  CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
  CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
  const char *(*easy_strerror)(CURLcode);
  void (*free)(void *);
  CURLM *(*multi_init)(void);
  CURLMcode (*multi_cleanup)(CURLM *);
  CURLMcode (*multi_add_handle)(CURLM *, CURL *);
  CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
  CURLMcode (*multi_perform)(CURLM *, int *);
  CURLMcode (*multi_poll)(CURLM *, struct curl_waitfd *, unsigned int, int, int *);
  CURLMsg *(*multi_info_read)(CURLM *, int *);
  const char *(*multi_strerror)(CURLMcode);
  struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
  void (*slist_free_all)(struct curl_slist *);
  CURLU *(*url)(void);
  void (*url_cleanup)(CURLU *);
  CURLUcode (*url_get)(const CURLU *, CURLUPart, char **, unsigned int);
  CURLUcode (*url_set)(CURLU *, CURLUPart, const char *, unsigned int);
  const char *(*url_strerror)(CURLUcode);
  curl_version_info_data *(*version_info)(CURLversion);
};

/* Loads libcurl once; returns the table, or NULL with a message in err. */
const struct alex_curl_api *alex_curl_load(char *err, size_t errlen);
/* The loaded table; only valid after alex_curl_load succeeded. */
const struct alex_curl_api *alex_curl(void);

/* curl.h defines these two as argument-count-checking macros */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#define curl_global_init (alex_curl()->global_init)
#define curl_global_cleanup (alex_curl()->global_cleanup)
#define curl_easy_init (alex_curl()->easy_init)
#define curl_easy_cleanup (alex_curl()->easy_cleanup)
#define curl_easy_reset (alex_curl()->easy_reset)
#define curl_easy_setopt (alex_curl()->easy_setopt)
#define curl_easy_getinfo (alex_curl()->easy_getinfo)
#define curl_easy_strerror (alex_curl()->easy_strerror)
#define curl_free (alex_curl()->free)
#define curl_multi_init (alex_curl()->multi_init)
#define curl_multi_cleanup (alex_curl()->multi_cleanup)
#define curl_multi_add_handle (alex_curl()->multi_add_handle)
#define curl_multi_remove_handle (alex_curl()->multi_remove_handle)
#define curl_multi_perform (alex_curl()->multi_perform)
#define curl_multi_poll (alex_curl()->multi_poll)
#define curl_multi_info_read (alex_curl()->multi_info_read)
#define curl_multi_strerror (alex_curl()->multi_strerror)
#define curl_slist_append (alex_curl()->slist_append)
#define curl_slist_free_all (alex_curl()->slist_free_all)
#define curl_url (alex_curl()->url)
#define curl_url_cleanup (alex_curl()->url_cleanup)
#define curl_url_get (alex_curl()->url_get)
#define curl_url_set (alex_curl()->url_set)
#define curl_url_strerror (alex_curl()->url_strerror)
#define curl_version_info (alex_curl()->version_info)

#endif
