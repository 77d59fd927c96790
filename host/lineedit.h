#ifndef ALEX_LINEEDIT_H
#define ALEX_LINEEDIT_H
#include <stddef.h>

#include <lua.h>

/* Line editing and history on libedit (loaded at first use), for
 * `alexlua -i` and the alex.lineedit module. */
int alex_lineedit_editing(void);               /* terminals, and libedit loaded */
char *alex_lineedit_read(const char *prompt);  /* malloc'd line without newline, or NULL at end of input */
void alex_lineedit_add(const char *line);
int alex_lineedit_history_path(char *out, size_t size); /* 0, or -1: no history */
int alex_lineedit_load(const char *path);               /* 0 (a missing file too), or -1 */
int alex_lineedit_save(const char *path, int max_lines); /* 0, or -1 */
int luaopen_alex_lineedit(lua_State *L);

#endif
