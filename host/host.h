#ifndef ALEX_HOST_H
#define ALEX_HOST_H
#include <lua.h>

/* Registry key of a light userdata pointing at the host's `volatile
 * sig_atomic_t` interrupt flag: non-zero while a Ctrl-C waits to be raised as
 * a Lua error.  Bindings that block (alex.http) poll it to stop early; only the
 * host clears it.  Absent when a binding runs in another host. */
#define ALEX_INTERRUPT_KEY "alex.interrupt_flag"

int luaopen_alex_sigv4(lua_State *L);
int luaopen_alex_http(lua_State *L);
int luaopen_alex_validate(lua_State *L);
int luaopen_alex_clock(lua_State *L);

/* Opens the standard libraries and the alex.* modules in L. */
void alex_open_host(lua_State *L);

#endif
