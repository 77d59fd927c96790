/*
 * alexlua: a Lua 5.4 interpreter with the alex.* library and its C bindings
 * built in.  Command line, errors, tracebacks and Ctrl-C follow lua.c, so a
 * user who knows `lua` knows `alexlua`.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "dotenv.h"
#include "embedded.h"
#include "host.h"
#include "lineedit.h"

#define PROGNAME "alexlua"

/*
 * Signal state.  A signal handler cannot find a lua_State by itself, so the
 * state running the script is kept here, as lua.c does.  Only the host's one
 * main state is ever stored; bindings read the interrupt flag through the
 * registry (ALEX_INTERRUPT_KEY), never through this variable.
 *
 * SIGINT, SIGTERM and SIGHUP all become a Lua error at the next instruction,
 * so transaction blocks roll back before the process ends however it is
 * stopped; a second one of the same signal kills at once.
 */
static lua_State *volatile signal_state = NULL;
static volatile sig_atomic_t interrupt_pending = 0;
static volatile sig_atomic_t pending_signal = 0;
/* the signal last raised into Lua: a failing exit after it is 128 + signal */
static volatile sig_atomic_t raised_signal = 0;

/* The stop signals, with the name interrupted() gives each and the error
 * text it raises: exactly this, without a position, so code that catches it
 * can recognize it (the traceback still says where).  The first, SIGINT,
 * stands for any other. */
static const struct {
  int sig;
  const char *name, *message;
} stop_signals[] = {
    {SIGINT, "SIGINT", "interrupted"}, {SIGTERM, "SIGTERM", "terminated"}, {SIGHUP, "SIGHUP", "hangup"}};
#define N_STOP_SIGNALS (sizeof stop_signals / sizeof stop_signals[0])

static size_t stop_signal_index(int sig) {
  for (size_t i = 0; i < N_STOP_SIGNALS; i++)
    if (stop_signals[i].sig == sig) return i;
  return 0;
}

static const char *signal_message(int sig) { return stop_signals[stop_signal_index(sig)].message; }

static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  int sig = pending_signal ? pending_signal : SIGINT;
  interrupt_pending = 0;
  pending_signal = 0;
  raised_signal = sig;
  lua_pushstring(L, signal_message(sig));
  lua_error(L);
}

static void on_stop_signal(int sig) {
  signal(sig, SIG_DFL); /* the same signal again kills the process */
  pending_signal = sig;
  interrupt_pending = 1;
  if (signal_state)
    lua_sethook(signal_state, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT, 1);
}

/* Stop signals the parent set to be ignored (nohup, SIGHUP for a background
 * job) stay ignored: read once in main, before any handler is installed. */
static int inherited_ignore[N_STOP_SIGNALS];

static void note_ignored_signals(void) {
  for (size_t i = 0; i < N_STOP_SIGNALS; i++) {
    struct sigaction sa;
    inherited_ignore[i] = sigaction(stop_signals[i].sig, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN;
  }
}

static void catch_stop_signals(void (*handler)(int)) {
  for (size_t i = 0; i < N_STOP_SIGNALS; i++)
    if (!inherited_ignore[i]) signal(stop_signals[i].sig, handler);
}

/* The exit status for `code`: a failure after a stop signal was raised into
 * Lua is 128 + signal, as a shell reports a process the signal ended, whether
 * the script let the error through or caught it, cleaned up and exited. */
static int exit_status(int code) {
  if (code != 0 && raised_signal) return 128 + raised_signal;
  return code;
}

static void print_usage(FILE *out) {
  fprintf(out,
          "usage: " PROGNAME " [options] [script [args]]\n"
          "Available options are:\n"
          "  -e stat          execute string 'stat'\n"
          "  -i               enter interactive mode after executing 'script'\n"
          "  -l mod           require library 'mod' into global 'mod'\n"
          "  -l g=mod         require library 'mod' into global 'g'\n"
          "  -v, --version    show version information\n"
          "  -h, --help       show this help\n"
          "  --env-file PATH  read environment settings from PATH instead of ./.env\n"
          "  --no-env-file    read no .env file\n"
          "  --               stop handling options\n"
          "  -                stop handling options and execute stdin\n"
          "Settings already in the environment win over the .env file.\n"
          "ALEX_LUA_PATH, when set, is searched for alex.* modules before the built-in copy.\n");
}

static void print_version(void) {
  printf(PROGNAME " %s (%s)\n", ALEX_VERSION, LUA_RELEASE);
  fflush(stdout);
}

/* ---------- errors ---------- */

static int message_handler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  /* Runs for uncaught errors only: exit 128 + signal only when the signal is
   * what ends the script, not when the script caught it and later failed
   * otherwise. */
  if (raised_signal && msg && strcmp(msg, signal_message(raised_signal)) == 0) {
    /* a stop, not a bug: one line, no traceback */
    lua_pushstring(L, msg);
    return 1;
  }
  raised_signal = 0;
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      msg = lua_tostring(L, -1);
    else
      msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

static void report(lua_State *L, int status) {
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (msg == NULL) msg = "(error object is not a string)";
    fprintf(stderr, PROGNAME ": %s\n", msg);
    fflush(stderr);
    lua_pop(L, 1);
  }
}

/* Runs the function on the stack with narg arguments under a traceback handler,
 * with Ctrl-C turned into a Lua error while it runs. */
static int docall(lua_State *L, int narg, int nres) {
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, message_handler);
  lua_insert(L, base);
  signal_state = L;
  catch_stop_signals(on_stop_signal);
  int status = lua_pcall(L, narg, nres, base);
  catch_stop_signals(SIG_DFL);
  signal_state = NULL;
  lua_remove(L, base);
  return status;
}

static int dochunk(lua_State *L, int status) {
  if (status == LUA_OK) status = docall(L, 0, 0);
  report(L, status);
  return status;
}

static int dostring(lua_State *L, const char *s, const char *name) {
  return dochunk(L, luaL_loadbuffer(L, s, strlen(s), name));
}

/* -l g=mod or -l mod */
static int dolibrary(lua_State *L, char *spec) {
  char *eq = strchr(spec, '=');
  const char *global = spec, *mod = spec;
  if (eq) {
    *eq = '\0';
    mod = eq + 1;
  }
  lua_getglobal(L, "require");
  lua_pushstring(L, mod);
  int status = docall(L, 1, 1);
  if (status == LUA_OK) {
    if (!eq) { /* "a.b" goes into global "a" like lua.c does with the name up to '-' */
      lua_pushstring(L, global);
      global = lua_tostring(L, -1);
      lua_pop(L, 1);
    }
    lua_setglobal(L, global);
  }
  report(L, status);
  return status;
}

/* ---------- .env ---------- */

/* The keys one .env file has set so far: a later line for the same key
 * replaces an earlier one (last wins, as in a shell), while a variable that was
 * in the environment before the file still wins over every line of it. */
struct env_keys {
  char **keys;
  size_t n, cap;
};

static void env_keys_free(struct env_keys *k) {
  for (size_t i = 0; i < k->n; i++) free(k->keys[i]);
  free(k->keys);
}

static int dotenv_set(void *ud, const char *key, const char *value) {
  struct env_keys *k = ud;
  int from_file = 0;
  for (size_t i = 0; i < k->n && !from_file; i++) from_file = strcmp(k->keys[i], key) == 0;
  if (!from_file) {
    if (getenv(key) != NULL) return 0; /* the environment wins over the file */
    if (k->n == k->cap) {
      size_t cap = k->cap ? k->cap * 2 : 16;
      char **p = cap > SIZE_MAX / sizeof *p ? NULL : realloc(k->keys, cap * sizeof *p);
      if (!p) {
        errno = ENOMEM;
        return -2;
      }
      k->keys = p;
      k->cap = cap;
    }
    if ((k->keys[k->n] = strdup(key)) == NULL) {
      errno = ENOMEM;
      return -2;
    }
    k->n++;
  }
  if (setenv(key, value, 1) != 0) return -2;
  return 0;
}

/* A .env holds a few settings: one over this is the wrong file (a log, a
 * dump), and reading it whole would only waste memory. */
#define ENV_FILE_MAX (1024 * 1024)

/* Returns 0, or -1 after printing an error.  A missing ./.env is fine; a
 * missing --env-file is an error, because the user named it.  Only a regular
 * file is read: a FIFO or a device (/dev/zero) could block or never end. */
static int load_env_file(const char *path, int required) {
  /* O_NONBLOCK: opening a FIFO must not wait for a writer */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (!required && errno == ENOENT) return 0;
    fprintf(stderr, PROGNAME ": cannot read env file %s: %s\n", path, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    fprintf(stderr, PROGNAME ": env file %s is not a regular file\n", path);
    return -1;
  }
  FILE *f = fdopen(fd, "rb");
  if (!f) {
    int e = errno;
    close(fd);
    fprintf(stderr, PROGNAME ": cannot read env file %s: %s\n", path, strerror(e));
    return -1;
  }
  if (st.st_size > ENV_FILE_MAX) {
    fclose(f);
    fprintf(stderr, PROGNAME ": env file %s is larger than %d bytes: not a settings file\n", path, ENV_FILE_MAX);
    return -1;
  }
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  if (!buf) {
    fclose(f);
    fprintf(stderr, PROGNAME ": out of memory reading %s\n", path);
    return -1;
  }
  size_t n;
  while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
    len += n;
    if (len > ENV_FILE_MAX) { /* it grew after the check */
      free(buf);
      fclose(f);
      fprintf(stderr, PROGNAME ": env file %s is larger than %d bytes: not a settings file\n", path, ENV_FILE_MAX);
      return -1;
    }
    if (len == cap) {
      char *p = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
      if (!p) {
        free(buf);
        fclose(f);
        fprintf(stderr, PROGNAME ": out of memory reading %s\n", path);
        return -1;
      }
      buf = p;
      cap *= 2;
    }
  }
  int read_error = ferror(f);
  fclose(f);
  if (read_error) {
    free(buf);
    fprintf(stderr, PROGNAME ": cannot read env file %s\n", path);
    return -1;
  }
  char err[256];
  int line = 0;
  struct env_keys keys = {0};
  int rc = dotenv_parse(buf, len, dotenv_set, &keys, &line, err, sizeof err);
  env_keys_free(&keys);
  free(buf);
  if (rc == -1) {
    fprintf(stderr, PROGNAME ": %s:%d: %s\n", path, line, err);
    return -1;
  }
  if (rc != 0) {
    fprintf(stderr, PROGNAME ": %s: cannot set environment: %s\n", path, strerror(errno));
    return -1;
  }
  return 0;
}

/* ---------- the embedded library ---------- */

/* package.searchers entry: alex.* from ALEX_LUA_PATH when set and found there,
 * else from the copy compiled into the binary. */
static int embedded_searcher(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  const char *dev_path = getenv("ALEX_LUA_PATH");
  if (dev_path && *dev_path) {
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "searchpath");
    lua_pushstring(L, name);
    lua_pushstring(L, dev_path);
    lua_call(L, 2, 1);
    if (lua_isstring(L, -1)) {
      const char *file = lua_tostring(L, -1);
      if (luaL_loadfile(L, file) != LUA_OK) return lua_error(L);
      lua_pushstring(L, file);
      return 2;
    }
    lua_pop(L, 2);
  }
  for (const struct embedded_module *m = alex_embedded_modules; m->name; m++) {
    if (strcmp(m->name, name) == 0) {
      if (luaL_loadbufferx(L, m->source, m->size, m->chunkname, "t") != LUA_OK) return lua_error(L);
      lua_pushstring(L, m->chunkname + 1);
      return 2;
    }
  }
  lua_pushfstring(L, "no embedded module '%s'", name);
  return 1;
}

static void install_searcher(lua_State *L) {
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "searchers");
  lua_Integer n = luaL_len(L, -1);
  for (lua_Integer i = n; i >= 2; i--) { /* shift to make room at index 2, after preload */
    lua_rawgeti(L, -1, i);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushcfunction(L, embedded_searcher);
  lua_rawseti(L, -2, 2);
  lua_pop(L, 2);
}

static void preload(lua_State *L, const char *name, lua_CFunction open) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, open);
  lua_setfield(L, -2, name);
  lua_pop(L, 1);
}

static int dotenv_collect(void *ud, const char *key, const char *value) {
  lua_State *L = ud;
  lua_pushstring(L, value);
  lua_setfield(L, -2, key);
  return 0;
}

/* dotenv(text [, name]) -> table of settings, or nil and "name:line: problem".
 * The same parser the host uses for .env, for files such as .alex/local.env. */
static int host_dotenv(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  const char *name = luaL_optstring(L, 2, "(string)");
  char err[256];
  int line = 0;
  lua_newtable(L);
  if (dotenv_parse(text, len, dotenv_collect, L, &line, err, sizeof err) != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s:%d: %s", name, line, err);
    return 2;
  }
  return 1;
}

/* isatty(fd): whether fd (0, 1, 2) is a terminal, for colour decisions. */
static int host_isatty(lua_State *L) {
  lua_Integer fd = luaL_checkinteger(L, 1);
  luaL_argcheck(L, fd >= 0 && fd <= INT_MAX, 1, "not a file descriptor");
  lua_pushboolean(L, isatty((int)fd));
  return 1;
}

/* interrupted() -> the name of the stop signal raised into Lua ("SIGINT",
 * "SIGTERM", "SIGHUP") and its number, or nil: lets a script that caught the
 * error tell a stop from a failure. */
static int host_interrupted(lua_State *L) {
  int sig = raised_signal;
  if (!sig) return 0;
  lua_pushstring(L, stop_signals[stop_signal_index(sig)].name);
  lua_pushinteger(L, sig);
  return 2;
}

/* rearm_signals(): for a program that goes on after catching a stop (a
 * console): the next Ctrl-C is an error again instead of killing, and the
 * exit status forgets the one caught. */
static int host_rearm_signals(lua_State *L) {
  (void)L;
  raised_signal = 0;
  if (signal_state) catch_stop_signals(on_stop_signal);
  return 0;
}

static int open_host_info(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"rearm_signals", host_rearm_signals},
      {"interrupted", host_interrupted},
      {"isatty", host_isatty},
      {"dotenv", host_dotenv},
      {NULL, NULL},
  };
  luaL_newlib(L, funcs);
  lua_pushstring(L, ALEX_VERSION);
  lua_setfield(L, -2, "version");
  lua_pushstring(L, ALEX_LIBEXECDIR);
  lua_setfield(L, -2, "libexecdir");
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = '\0';
    lua_pushstring(L, exe);
    lua_setfield(L, -2, "executable");
  }
  return 1;
}

/* os.exit that closes the state by default, so finalizers (the ALEX_STATS
 * report, open transactions' rollback) run however a script ends.
 * os.exit(code, false) keeps Lua's abrupt exit. */
static int os_exit_closing(lua_State *L) {
  int status;
  if (lua_isboolean(L, 1)) status = lua_toboolean(L, 1) ? EXIT_SUCCESS : EXIT_FAILURE;
  else status = (int)luaL_optinteger(L, 1, EXIT_SUCCESS);
  int close = lua_isnoneornil(L, 2) ? 1 : lua_toboolean(L, 2);
  fflush(stdout);
  signal_state = NULL; /* a Ctrl-C from here on must not touch the state being closed */
  if (close) lua_close(L);
  exit(exit_status(status));
}

void alex_open_host(lua_State *L) {
  luaL_openlibs(L);
  lua_pushlightuserdata(L, (void *)&interrupt_pending);
  lua_setfield(L, LUA_REGISTRYINDEX, ALEX_INTERRUPT_KEY);
  lua_getglobal(L, "os");
  lua_pushcfunction(L, os_exit_closing);
  lua_setfield(L, -2, "exit");
  lua_pop(L, 1);
  preload(L, "alex.host", open_host_info);
  preload(L, "alex.sigv4", luaopen_alex_sigv4);
  preload(L, "alex.http", luaopen_alex_http);
  preload(L, "alex.validate", luaopen_alex_validate);
  preload(L, "alex.clock", luaopen_alex_clock);
  preload(L, "alex.lineedit", luaopen_alex_lineedit);
  install_searcher(L);
}

/* ---------- arguments ---------- */

/* What the command line asks for, read from argv once (as lua.c's
 * collectargs does): the flags, and the -e/-l actions in their order. */
struct action {
  char kind;       /* 'e' or 'l' */
  char *text;      /* the chunk or the module spec (points into argv) */
};

struct options {
  int script;        /* index of the script (or of "-") in argv, 0 for none */
  int interactive;
  int version;
  int stdin_script;  /* '-' was given */
  int no_env;
  const char *env_file;
  struct action *actions; /* -e and -l, in order */
  int n_actions;
};

/* Returns 0, or -1 after printing what is wrong. */
static int parse_args(int argc, char **argv, struct options *o) {
  o->actions = malloc((size_t)(argc > 0 ? argc : 1) * sizeof *o->actions);
  if (!o->actions) {
    fprintf(stderr, PROGNAME ": not enough memory\n");
    return -1;
  }
  int i;
  for (i = 1; i < argc; i++) {
    char *a = argv[i];
    if (a[0] != '-') break;
    if (strcmp(a, "-") == 0) {
      o->stdin_script = 1;
      break;
    }
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    if (strcmp(a, "-i") == 0) o->interactive = 1;
    else if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) o->version = 1;
    else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      print_usage(stdout);
      exit(EXIT_SUCCESS);
    } else if (strcmp(a, "--no-env-file") == 0) o->no_env = 1;
    else if (strcmp(a, "--env-file") == 0 || strncmp(a, "--env-file=", 11) == 0) {
      if (a[10] == '=') o->env_file = a + 11;
      else if (++i < argc) o->env_file = argv[i];
      else {
        fprintf(stderr, PROGNAME ": '--env-file' needs a path\n");
        return -1;
      }
    } else if ((a[1] == 'e' || a[1] == 'l')) {
      char *text = a + 2; /* -estat / -lmod, as lua.c accepts */
      if (*text == '\0') {
        if (++i >= argc) {
          fprintf(stderr, PROGNAME ": '%s' needs an argument\n", a);
          return -1;
        }
        text = argv[i];
      }
      o->actions[o->n_actions].kind = a[1];
      o->actions[o->n_actions].text = text;
      o->n_actions++;
    } else {
      fprintf(stderr, PROGNAME ": unrecognized option '%s'\n", a);
      print_usage(stderr);
      return -1;
    }
  }
  o->script = (i < argc) ? i : 0;
  return 0;
}

/* arg[0] is the script, arg[1..] its arguments, negative indices what came before. */
static void create_arg_table(lua_State *L, char **argv, int argc, int script) {
  int base = script ? script : argc;
  if (script == 0) base = 0;
  lua_createtable(L, argc - base, base + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - base);
  }
  lua_setglobal(L, "arg");
}

static int run_actions(lua_State *L, const struct options *o) {
  for (int i = 0; i < o->n_actions; i++) {
    const struct action *act = &o->actions[i];
    int status = act->kind == 'e' ? dostring(L, act->text, "=(command line)") : dolibrary(L, act->text);
    if (status != LUA_OK) return status;
  }
  return LUA_OK;
}

static int handle_script(lua_State *L, char **argv, int argc, int script, int from_stdin) {
  const char *fname = from_stdin ? NULL : argv[script];
  int status = luaL_loadfile(L, fname);
  if (status == LUA_OK) {
    int first = script + 1;
    int n = 0;
    luaL_checkstack(L, argc, "too many arguments to script");
    for (int i = first; i < argc; i++, n++) lua_pushstring(L, argv[i]);
    status = docall(L, n, LUA_MULTRET);
  }
  report(L, status);
  return status;
}

/* ---------- interactive mode: libedit on a terminal, plain stdin otherwise ---------- */

static int incomplete(lua_State *L, int status) {
  if (status == LUA_ERRSYNTAX) {
    size_t lmsg;
    const char *msg = lua_tolstring(L, -1, &lmsg);
    if (lmsg >= 5 && strcmp(msg + lmsg - 5, "<eof>") == 0) {
      lua_pop(L, 1);
      return 1;
    }
  }
  return 0;
}

/* Reads one line (with its newline) onto the Lua stack; 0 at end of input.
 * On a terminal it comes through libedit, with line editing and history. */
static int push_line(lua_State *L, const char *prompt) {
  char *line = alex_lineedit_read(prompt);
  if (!line) return 0;
  lua_pushfstring(L, "%s\n", line);
  free(line);
  return 1;
}

/* The chunk as history keeps it: without the final newline. */
static void remember(lua_State *L, int idx) {
  size_t len;
  const char *text = lua_tolstring(L, idx, &len);
  if (!text || len == 0) return;
  lua_pushlstring(L, text, text[len - 1] == '\n' ? len - 1 : len);
  alex_lineedit_add(lua_tostring(L, -1));
  lua_pop(L, 1);
}

static void repl(lua_State *L) {
  int editing = alex_lineedit_editing();
  char history[PATH_MAX];
  int keep_history = editing && alex_lineedit_history_path(history, sizeof history) == 0;
  if (keep_history) alex_lineedit_load(history);
  for (;;) {
    if (!push_line(L, "> ")) break;
    /* try as an expression first, as lua.c does */
    const char *code = lua_tostring(L, -1);
    const char *ret = lua_pushfstring(L, "return %s", code);
    int status = luaL_loadbuffer(L, ret, strlen(ret), "=stdin");
    if (status == LUA_OK) {
      lua_remove(L, -2); /* the "return" text */
    } else {
      lua_pop(L, 2); /* error message and "return" text */
      for (;;) {
        code = lua_tostring(L, -1);
        status = luaL_loadbuffer(L, code, strlen(code), "=stdin");
        if (!incomplete(L, status)) break;
        if (!push_line(L, ">> ")) {
          /* end of input inside an unfinished chunk: report why it is unfinished */
          status = luaL_loadbuffer(L, code, strlen(code), "=stdin");
          break;
        }
        lua_concat(L, 2);
      }
    }
    if (editing) remember(L, -2);
    lua_remove(L, -2); /* the source text */
    if (status == LUA_OK) {
      int base = lua_gettop(L);
      status = docall(L, 0, LUA_MULTRET);
      int n = lua_gettop(L) - base + 1;
      if (status == LUA_OK && n > 0) {
        lua_getglobal(L, "print");
        lua_insert(L, -(n + 1));
        if (lua_pcall(L, n, 0, 0) != LUA_OK) report(L, LUA_ERRRUN);
      }
    }
    report(L, status);
    lua_settop(L, 0);
  }
  fputs("\n", stdout);
  if (keep_history) alex_lineedit_save(history, 1000);
}

struct pmain_args {
  int argc;
  char **argv;
  struct options *opts;
  int exit_code;
};

static int pmain(lua_State *L) {
  struct pmain_args *pa = lua_touserdata(L, 1);
  struct options *o = pa->opts;
  char **argv = pa->argv;
  int argc = pa->argc;
  luaL_checkversion(L);
  alex_open_host(L);
  create_arg_table(L, argv, argc, o->stdin_script ? 0 : o->script);
  if (o->stdin_script) {
    /* arg[0] is "-"; find its index to give negative indices to the options */
    int idx = 1;
    while (idx < argc && strcmp(argv[idx], "-") != 0) idx++;
    create_arg_table(L, argv, argc, idx);
    o->script = idx;
  }
  int status = run_actions(L, o);
  if (status == LUA_OK && (o->script || o->stdin_script))
    status = handle_script(L, argv, argc, o->script, o->stdin_script);
  if (status != LUA_OK) {
    pa->exit_code = 1;
    return 0;
  }
  if (o->interactive || (!o->script && !o->stdin_script && !o->version && o->n_actions == 0
                         && isatty(STDIN_FILENO))) {
    print_version();
    repl(L);
  } else if (!o->script && !o->stdin_script && !o->version && o->n_actions == 0) {
    /* stdin is not a terminal: run it as a script, as lua.c does */
    status = handle_script(L, argv, argc, argc, 1);
    if (status != LUA_OK) pa->exit_code = 1;
  }
  return 0;
}

static int run(int argc, char **argv, struct options *opts) {
  if (parse_args(argc, argv, opts) != 0) return EXIT_FAILURE;
  if (opts->version) print_version();
  if (!opts->no_env) {
    if (load_env_file(opts->env_file ? opts->env_file : ".env", opts->env_file != NULL) != 0)
      return EXIT_FAILURE;
  }
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, PROGNAME ": cannot create Lua state: not enough memory\n");
    return EXIT_FAILURE;
  }
  struct pmain_args pa = {argc, argv, opts, 0};
  lua_pushcfunction(L, pmain);
  lua_pushlightuserdata(L, &pa);
  int status = lua_pcall(L, 1, 0, 0);
  report(L, status);
  lua_close(L);
  if (status != LUA_OK) return exit_status(EXIT_FAILURE);
  return exit_status(pa.exit_code);
}

int main(int argc, char **argv) {
  struct options opts = {0};
  note_ignored_signals();
  int code = run(argc, argv, &opts);
  free(opts.actions);
  return code;
}
