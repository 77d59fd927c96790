/*
 * alex.lineedit: line editing and history for the console and `alexlua -i`,
 * on libedit (BSD licence, so the MIT-licensed binary may use it; GNU
 * readline's GPL would bind the whole program).
 *
 *   lineedit.read(prompt)          -> the line without its newline; nil at end
 *                                     of input; false when a stop signal
 *                                     (Ctrl-C) cut the line short
 *   lineedit.add(line)             -> adds a line to the history
 *   lineedit.load(path)            -> true, or nil and why (a missing file is fine)
 *   lineedit.save(path, max_lines) -> true, or nil and why (the file is made
 *                                     private: a history can hold secrets)
 *   lineedit.history_path()        -> where alexlua keeps the history (one
 *                                     file for `alexlua -i` and the console),
 *                                     or nil without a home folder
 *   lineedit.editing()             -> whether lines are edited (libedit loaded
 *                                     and stdin and stdout are terminals)
 *
 * libedit (with ncurses' tinfo and libbsd behind it) is loaded at the first
 * interactive read, as libcurl is: a script that never prompts does not pay
 * for it at start-up.  Without it, lines are read plainly.
 */
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "host.h"
#include "lineedit.h"

/* The part of libedit's readline interface alexlua uses.  Written once under
 * pthread_once, read-only afterwards: the terminal and libedit's history are
 * one per process. */
static struct {
  char *(*readline)(const char *);
  int (*add_history)(const char *);
  int (*read_history)(const char *);
  int (*write_history)(const char *);
  int (*history_truncate_file)(const char *, int);
  void (*using_history)(void);
  int *catch_signals;
} ed;
static int ed_loaded = 0;
static pthread_once_t ed_once = PTHREAD_ONCE_INIT;

static int resolve(void *lib, const char *name, void *slot, size_t size) {
  void *sym = dlsym(lib, name);
  if (!sym) return -1;
  union { void *obj; void (*fn)(void); } u = {.obj = sym};
  memcpy(slot, &u.fn, size);
  return 0;
}

static void load(void) {
  void *lib = dlopen("libedit.so.2", RTLD_NOW | RTLD_LOCAL);
  if (!lib) return;
  if (resolve(lib, "readline", &ed.readline, sizeof ed.readline) || resolve(lib, "add_history", &ed.add_history,
      sizeof ed.add_history) || resolve(lib, "read_history", &ed.read_history, sizeof ed.read_history) ||
      resolve(lib, "write_history", &ed.write_history, sizeof ed.write_history) ||
      resolve(lib, "history_truncate_file", &ed.history_truncate_file, sizeof ed.history_truncate_file) ||
      resolve(lib, "using_history", &ed.using_history, sizeof ed.using_history))
    return;
  ed.catch_signals = dlsym(lib, "rl_catch_signals");
  if (!ed.catch_signals) return;
  /* libedit must not install signal handlers of its own: the host's turn
   * Ctrl-C into a Lua error, and libedit's would re-raise it with the default
   * action */
  *ed.catch_signals = 0;
  ed.using_history();
  ed_loaded = 1;
}

/* Whether lines are edited: stdin and stdout are terminals and libedit loads. */
int alex_lineedit_editing(void) {
  if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) return 0;
  pthread_once(&ed_once, load);
  return ed_loaded;
}

/* A line without its newline (malloc'd), or NULL at end of input. */
char *alex_lineedit_read(const char *prompt) {
  if (alex_lineedit_editing()) return ed.readline(prompt);
  fputs(prompt, stdout);
  fflush(stdout);
  size_t cap = 256, len = 0;
  char *line = malloc(cap);
  if (!line) return NULL;
  int c;
  while ((c = getchar()) != EOF && c != '\n') {
    if (len + 1 >= cap) {
      char *p = cap > SIZE_MAX / 2 ? NULL : realloc(line, cap * 2);
      if (!p) {
        free(line);
        return NULL;
      }
      line = p;
      cap *= 2;
    }
    line[len++] = (char)c;
  }
  if (c == EOF && len == 0) {
    free(line);
    return NULL;
  }
  line[len] = '\0';
  return line;
}

void alex_lineedit_add(const char *line) {
  if (line && *line && alex_lineedit_editing()) ed.add_history(line);
}

static volatile sig_atomic_t *interrupt_flag(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, ALEX_INTERRUPT_KEY);
  volatile sig_atomic_t *flag = lua_islightuserdata(L, -1) ? lua_touserdata(L, -1) : NULL;
  lua_pop(L, 1);
  return flag;
}

static int l_read(lua_State *L) {
  const char *prompt = luaL_optstring(L, 1, "> ");
  volatile sig_atomic_t *flag = interrupt_flag(L);
  errno = 0;
  char *line = alex_lineedit_read(prompt);
  if (!line) {
    if (flag && *flag) {
      fputc('\n', stdout); /* the cut line stays on screen; the next prompt starts afresh */
      fflush(stdout);
      lua_pushboolean(L, 0);
      return 1;
    }
    lua_pushnil(L);
    return 1;
  }
  lua_pushstring(L, line);
  free(line);
  return 1;
}

static int l_editing(lua_State *L) {
  lua_pushboolean(L, alex_lineedit_editing());
  return 1;
}

/* $XDG_STATE_HOME/alexlua/history, else ~/.local/state/alexlua/history; the
 * folders are made (private) when missing.  Returns 0, or -1 when there is
 * no place for it. */
int alex_lineedit_history_path(char *out, size_t size) {
  const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
  char dir[PATH_MAX];
  int n;
  if (xdg && *xdg == '/') n = snprintf(dir, sizeof dir, "%s/alexlua", xdg);
  else if (home && *home == '/') n = snprintf(dir, sizeof dir, "%s/.local/state/alexlua", home);
  else return -1;
  if (n < 0 || (size_t)n >= sizeof dir) return -1;
  /* mkdir -p, each missing level private */
  for (char *p = dir + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) return -1;
    *p = '/';
  }
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) return -1;
  n = snprintf(out, size, "%s/history", dir);
  return (n < 0 || (size_t)n >= size) ? -1 : 0;
}

int alex_lineedit_save(const char *path, int max_lines) {
  if (!alex_lineedit_editing()) return 0;
  mode_t old = umask(077);
  int rc = ed.write_history(path);
  umask(old);
  if (rc != 0) return -1;
  chmod(path, 0600);
  ed.history_truncate_file(path, max_lines);
  return 0;
}

int alex_lineedit_load(const char *path) {
  if (!alex_lineedit_editing()) return 0;
  FILE *f = fopen(path, "r");
  if (!f) return errno == ENOENT ? 0 : -1;
  fclose(f);
  return ed.read_history(path) == 0 ? 0 : -1;
}

static int l_history_path(lua_State *L) {
  char path[PATH_MAX];
  if (alex_lineedit_history_path(path, sizeof path) != 0) return 0;
  lua_pushstring(L, path);
  return 1;
}

static int l_add(lua_State *L) {
  alex_lineedit_add(luaL_checkstring(L, 1));
  return 0;
}

static int l_load(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  if (alex_lineedit_load(path) != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: cannot read the history", path);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int l_save(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer max = luaL_optinteger(L, 2, 1000);
  luaL_argcheck(L, max > 0 && max <= INT_MAX, 2, "must be a positive number of lines");
  if (alex_lineedit_save(path, (int)max) != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: cannot write the history", path);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

int luaopen_alex_lineedit(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"read", l_read}, {"add", l_add}, {"load", l_load}, {"save", l_save},
      {"history_path", l_history_path}, {"editing", l_editing}, {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
