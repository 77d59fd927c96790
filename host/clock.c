/* alex.clock: what Lua's os library lacks for timing and backoff:
 * a monotonic clock, sub-second wall time, and a sleep that Ctrl-C ends early. */
#include <errno.h>
#include <math.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>

#include "host.h"

static double timespec_seconds(const struct timespec *ts) { return (double)ts->tv_sec + ts->tv_nsec / 1e9; }

/* Seconds from an arbitrary fixed point; never goes backwards. */
static int clock_monotonic(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, timespec_seconds(&ts));
  return 1;
}

/* Seconds since the epoch, with the fraction. */
static int clock_wall(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushnumber(L, timespec_seconds(&ts));
  return 1;
}

/* sleep(seconds): returns true, or false when a signal (Ctrl-C) cut it short;
 * the host then raises "interrupted" at the next Lua instruction. */
static int clock_sleep(lua_State *L) {
  double s = luaL_checknumber(L, 1);
  luaL_argcheck(L, isfinite(s) && s >= 0 && s <= 86400, 1, "seconds must be in [0, 86400]");
  struct timespec req = {(time_t)s, (long)((s - floor(s)) * 1e9)};
  if (req.tv_nsec >= 1000000000L) req.tv_nsec = 999999999L;
  int rc = nanosleep(&req, NULL);
  lua_pushboolean(L, rc == 0 || errno != EINTR);
  return 1;
}

int luaopen_alex_clock(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"monotonic", clock_monotonic}, {"wall", clock_wall}, {"sleep", clock_sleep}, {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
