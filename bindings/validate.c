/*
 * alex.validate: checks of the planner's reference data, the rules in
 * validate_core.c.
 *
 *   validate.allocation(map, kind) -> true | nil, message
 *     kind is "regions", "sectors" or "asset_class".  A map that breaks the
 *     rules (including a map that is not a table) is a data problem: nil and a
 *     message naming every offending key and value.  An unknown kind is a
 *     programming error: it raises a Lua error.  The table is read raw
 *     (no __index / __pairs).
 *   validate.is_member(set_name, value) -> boolean
 *     set_name is "regions", "sectors", "asset_classes" (or "asset_class") or
 *     "instrument_types" (anything else raises); value must be a string to be
 *     a member.
 *   validate.REGIONS, SECTORS, ASSET_CLASSES, INSTRUMENT_TYPES: the sets as
 *     arrays in their documented order (fresh copies: editing them changes
 *     nothing in the checks).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "host.h"
#include "validate_core.h"

#define MSGBOX_MT "alex.validate.msgbox"
#define TEXT_MAX 48

/* One entry with room for the display texts of a non-string key or value. */
struct slot {
  validate_entry e;
  char key_text[TEXT_MAX];
  char value_text[TEXT_MAX];
};

/* A malloc'd message owned by a userdata, so a Lua error while pushing it
 * cannot leak it. */
struct msgbox {
  char *msg;
};

static int msgbox_gc(lua_State *L) {
  struct msgbox *box = luaL_checkudata(L, 1, MSGBOX_MT);
  free(box->msg);
  box->msg = NULL;
  return 0;
}

static struct msgbox *push_msgbox(lua_State *L) {
  struct msgbox *box = lua_newuserdatauv(L, sizeof *box, 0);
  box->msg = NULL;
  luaL_setmetatable(L, MSGBOX_MT);
  return box;
}

static void describe_number(lua_State *L, int idx, char *out, size_t len) {
  if (lua_isinteger(L, idx)) snprintf(out, len, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(L, idx));
  else snprintf(out, len, "%.14g", (double)lua_tonumber(L, idx));
}

static void fill_key(lua_State *L, int idx, struct slot *s) {
  validate_entry *e = &s->e;
  if (lua_type(L, idx) == LUA_TSTRING) {
    e->key_is_string = 1;
    e->key = lua_tolstring(L, idx, &e->key_len); /* anchored by the map */
    return;
  }
  e->key_is_string = 0;
  switch (lua_type(L, idx)) {
    case LUA_TNUMBER: describe_number(L, idx, s->key_text, sizeof s->key_text); break;
    case LUA_TBOOLEAN: snprintf(s->key_text, sizeof s->key_text, "%s", lua_toboolean(L, idx) ? "true" : "false"); break;
    default: snprintf(s->key_text, sizeof s->key_text, "%s", luaL_typename(L, idx)); break;
  }
  e->key = s->key_text;
  e->key_len = strlen(s->key_text);
}

static void fill_value(lua_State *L, int idx, struct slot *s) {
  validate_entry *e = &s->e;
  switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
      e->value_type = VALIDATE_VALUE_NUMBER;
      e->number = (double)lua_tonumber(L, idx);
      break;
    case LUA_TSTRING:
      e->value_type = VALIDATE_VALUE_STRING;
      e->str = lua_tolstring(L, idx, &e->str_len); /* anchored by the map */
      break;
    case LUA_TBOOLEAN:
      e->value_type = VALIDATE_VALUE_OTHER;
      snprintf(s->value_text, sizeof s->value_text, "%s", lua_toboolean(L, idx) ? "true" : "false");
      e->str = s->value_text;
      break;
    default:
      e->value_type = VALIDATE_VALUE_OTHER;
      snprintf(s->value_text, sizeof s->value_text, "a %s", luaL_typename(L, idx));
      e->str = s->value_text;
      break;
  }
}

static int kind_arg(lua_State *L, int arg) {
  const char *name = luaL_checkstring(L, arg);
  int kind = validate_kind_lookup(name);
  if (kind < 0)
    return luaL_argerror(L, arg, lua_pushfstring(L, "unknown allocation kind '%s' (expected "
                                                    "'regions', 'sectors' or 'asset_class')", name));
  return kind;
}

static int push_result(lua_State *L, int rc, struct msgbox *box) {
  if (rc == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (rc < 0) return luaL_error(L, "alex.validate: not enough memory");
  lua_pushnil(L);
  lua_pushstring(L, box->msg);
  free(box->msg);
  box->msg = NULL;
  return 2;
}

static int l_allocation(lua_State *L) {
  validate_kind kind = (validate_kind)kind_arg(L, 2);
  lua_settop(L, 2);
  struct msgbox *box = push_msgbox(L); /* index 3 */
  if (!lua_istable(L, 1)) {
    char what[TEXT_MAX];
    snprintf(what, sizeof what, "%s", luaL_typename(L, 1));
    return push_result(L, validate_not_a_map(kind, what, &box->msg), box);
  }
  size_t n = 0;
  lua_pushnil(L);
  while (lua_next(L, 1) != 0) {
    lua_pop(L, 1);
    n++;
  }
  if (n > ((size_t)-1) / sizeof(struct slot)) return luaL_error(L, "alex.validate: table too large");
  struct slot *slots = lua_newuserdatauv(L, n ? n * sizeof *slots : 1, 0); /* index 4 */
  size_t i = 0;
  lua_pushnil(L);
  while (lua_next(L, 1) != 0 && i < n) {
    memset(&slots[i], 0, sizeof slots[i]);
    fill_key(L, -2, &slots[i]);
    fill_value(L, -1, &slots[i]);
    lua_pop(L, 1);
    i++;
  }
  lua_settop(L, 4);
  /* the core takes a plain array of entries; their texts stay in slots (index 4) */
  validate_entry *entries = lua_newuserdatauv(L, n ? n * sizeof *entries : 1, 0);
  for (size_t j = 0; j < i; j++) entries[j] = slots[j].e;
  return push_result(L, validate_allocation(entries, i, kind, &box->msg), box);
}

static int l_is_member(lua_State *L) {
  const char *set_name = luaL_checkstring(L, 1);
  int set = validate_set_lookup(set_name);
  if (set < 0)
    return luaL_argerror(L, 1, lua_pushfstring(L, "unknown set '%s' (expected 'regions', 'sectors', "
                                                  "'asset_classes' or 'instrument_types')", set_name));
  int member = 0;
  if (lua_type(L, 2) == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, 2, &len);
    member = validate_is_member((validate_set)set, s, len);
  }
  lua_pushboolean(L, member);
  return 1;
}

static void push_set(lua_State *L, validate_set set, const char *field) {
  const char *const *names = validate_set_names(set);
  lua_newtable(L);
  for (lua_Integer i = 1; names && *names; names++, i++) {
    lua_pushstring(L, *names);
    lua_rawseti(L, -2, i);
  }
  lua_setfield(L, -2, field);
}

int luaopen_alex_validate(lua_State *L) {
  if (luaL_newmetatable(L, MSGBOX_MT)) {
    lua_pushcfunction(L, msgbox_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  static const luaL_Reg funcs[] = {
    {"allocation", l_allocation},
    {"is_member", l_is_member},
    {NULL, NULL},
  };
  luaL_newlib(L, funcs);
  push_set(L, VALIDATE_SET_REGIONS, "REGIONS");
  push_set(L, VALIDATE_SET_SECTORS, "SECTORS");
  push_set(L, VALIDATE_SET_ASSET_CLASSES, "ASSET_CLASSES");
  push_set(L, VALIDATE_SET_INSTRUMENT_TYPES, "INSTRUMENT_TYPES");
  return 1;
}
