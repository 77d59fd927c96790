# alexlua: `make` builds, `make test` runs every spec, `make run` does the main job locally.
# Every target that needs Debian packages depends on `deps`, which installs only what is missing.

PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR     = $(PREFIX)/bin
LIBEXECDIR = $(PREFIX)/libexec/alexlua
VERSION    = 0.1.0

ifeq ($(SANITIZE),1)
BUILD ?= build/asan
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD ?= build
SANFLAGS =
endif

CC      ?= cc
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
WARN     = -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wformat=2
PKGS_HOST  = lua5.4 libcurl openssl
# libcurl is loaded at run time (bindings/curl_dl.c), so it is not linked:
PKGS_HOST_LINK = lua5.4 libcrypto
PKGS_LOCAL = libmicrohttpd jansson libpq openssl
DEFS     = -D_POSIX_C_SOURCE=200809L -DALEX_VERSION='"$(VERSION)"' -DALEX_LIBEXECDIR='"$(LIBEXECDIR)"'
ALL_CFLAGS = $(WARN) $(CFLAGS) $(SANFLAGS) $(DEFS) -Ibindings -Ihost -I$(BUILD)

LUA_SOURCES   = $(shell find lua -name '*.lua' | sort)
HOST_SOURCES  = $(wildcard host/*.c)
BIND_SOURCES  = $(wildcard bindings/*.c)
LOCAL_SOURCES = $(wildcard local/*.c)
HOST_OBJECTS  = $(HOST_SOURCES:%.c=$(BUILD)/%.o) $(BIND_SOURCES:%.c=$(BUILD)/%.o) $(BUILD)/embedded_lua.o
LOCAL_OBJECTS = $(LOCAL_SOURCES:%.c=$(BUILD)/%.o) $(BUILD)/bindings/sigv4_core.o $(BUILD)/host/dotenv.o

ALEXLUA = $(BUILD)/alexlua
DATAAPI = $(BUILD)/alex-dataapi

.PHONY: all deps test check lint install uninstall clean asan-test run
all: deps $(ALEXLUA) $(if $(LOCAL_SOURCES),$(DATAAPI))

deps:
	@sh tools/deps.sh

# pkg-config is asked only after deps ran, hence the recursive-expansion variables.
HOST_CFLAGS  = $(shell pkg-config --cflags $(PKGS_HOST))
HOST_LIBS    = $(shell pkg-config --libs $(PKGS_HOST_LINK)) -lm -ldl -lpthread
LOCAL_CFLAGS = $(shell pkg-config --cflags $(PKGS_LOCAL))
LOCAL_LIBS   = $(shell pkg-config --libs $(PKGS_LOCAL)) -lpthread -lm

$(BUILD)/host/%.o $(BUILD)/bindings/%.o: CFLAGS_EXTRA = $(HOST_CFLAGS)
$(BUILD)/local/%.o: CFLAGS_EXTRA = $(LOCAL_CFLAGS)
$(DATAAPI): HOST_CFLAGS =

$(BUILD)/%.o: %.c $(wildcard host/*.h bindings/*.h local/*.h) | deps
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CFLAGS_EXTRA) -c $< -o $@

$(BUILD)/embedded_lua.c: tools/embed.lua $(LUA_SOURCES) | deps
	@mkdir -p $(BUILD)
	lua5.4 tools/embed.lua $@ lua $(LUA_SOURCES)

$(BUILD)/embedded_lua.o: $(BUILD)/embedded_lua.c host/embedded.h
	$(CC) $(WARN) $(CFLAGS) $(SANFLAGS) -Ihost -c $< -o $@

$(ALEXLUA): $(HOST_OBJECTS)
	$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $(HOST_OBJECTS) $(HOST_LIBS)

$(DATAAPI): $(LOCAL_OBJECTS)
	$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $(LOCAL_OBJECTS) $(LOCAL_LIBS)

# Specs run under alexlua itself, so they load the embedded library and the real
# bindings exactly as users get them.  SPEC=spec/foo_spec.lua narrows the run.
SPEC ?= spec
test: all
	ALEXLUA=$(abspath $(ALEXLUA)) ALEX_DATAAPI=$(abspath $(DATAAPI)) \
	  $(ALEXLUA) --no-env-file spec/run.lua $(SPEC)

check: test

# The main job on the local default: build, local stack, reset with test data, verify.
run: all
	$(ALEXLUA) scripts/reset.lua --with-test-data
	$(ALEXLUA) scripts/verify.lua

asan-test:
	$(MAKE) SANITIZE=1 test

lint: deps
	luacheck -q lua scripts spec bench tools
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability --std=c11 \
	  --suppress=missingIncludeSystem -Ihost -Ibindings host bindings local

install: $(ALEXLUA)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXECDIR)
	install -m 755 $(ALEXLUA) $(DESTDIR)$(BINDIR)/alexlua
	if [ -f $(DATAAPI) ]; then install -m 755 $(DATAAPI) $(DESTDIR)$(LIBEXECDIR)/alex-dataapi; fi
	if [ -f local/stack.sh ]; then install -m 755 local/stack.sh $(DESTDIR)$(LIBEXECDIR)/stack.sh; fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/alexlua
	rm -rf $(DESTDIR)$(LIBEXECDIR)

clean:
	rm -rf build

# ---- local stack (local Data API service on a local PostgreSQL) ----
# (owned by the local-stack work: local-up, local-down, local-reset)
.PHONY: local-up local-down local-reset local-status bench-dataapi
STACK = ALEX_DATAAPI_BIN=$(abspath $(DATAAPI)) sh local/stack.sh

local-up: all
	@$(STACK) up

local-down:
	@$(STACK) down

local-reset:
	@$(STACK) reset

local-status:
	@$(STACK) status

# Single-row SELECTs through the service vs. pgbench over libpq, on a private stack.
bench-dataapi: all
	ALEXLUA=$(abspath $(ALEXLUA)) ALEX_DATAAPI=$(abspath $(DATAAPI)) \
	  $(ALEXLUA) --no-env-file bench/dataapi_bench.lua

# ---- terraform
# spec/terraform_spec.lua parses and format-checks terraform/*.tf with
# HashiCorp's HCL library built to WebAssembly (npm @cdktf/hcl2json and
# @cdktf/hcl-tools), installed from tools/hcl/package-lock.json when missing.
.PHONY: hcl-deps terraform-check
HCL_STAMP = tools/hcl/node_modules/.package-lock.json

hcl-deps: $(HCL_STAMP)

$(HCL_STAMP): tools/hcl/package.json tools/hcl/package-lock.json | deps
	cd tools/hcl && npm ci --no-audit --no-fund --loglevel=error

test: $(HCL_STAMP)

terraform-check: all $(HCL_STAMP)
	ALEXLUA=$(abspath $(ALEXLUA)) $(ALEXLUA) --no-env-file spec/run.lua spec/terraform_spec.lua spec/aurora_spec.lua
