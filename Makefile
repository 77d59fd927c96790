# alexlua: `make` builds, `make test` runs every spec, `make run` does the main job locally.
# Every target that needs Debian packages depends on the deps group it needs (tools/deps.sh): `deps`
# (build) for make, make run and make install; deps-test, deps-bench, deps-fuzz for the others.
# Each installs only what is missing.

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

.PHONY: all deps deps-test deps-bench deps-fuzz test check lint install uninstall clean asan-test run
all: deps $(ALEXLUA) $(if $(LOCAL_SOURCES),$(DATAAPI))

deps:
	@sh tools/deps.sh build

deps-test deps-bench deps-fuzz: deps-%: deps
	@sh tools/deps.sh $*

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
test: all deps-test
	ALEXLUA=$(abspath $(ALEXLUA)) ALEX_DATAAPI=$(abspath $(DATAAPI)) \
	  $(ALEXLUA) --no-env-file spec/run.lua $(SPEC)

check: test

# The main job on the local default: build, local stack, reset with test data, verify.
run: all
	$(ALEXLUA) scripts/reset.lua --with-test-data
	$(ALEXLUA) scripts/verify.lua

asan-test:
	$(MAKE) SANITIZE=1 test

lint: deps-test
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
bench-dataapi: all deps-bench
	ALEXLUA=$(abspath $(ALEXLUA)) ALEX_DATAAPI=$(abspath $(DATAAPI)) \
	  $(ALEXLUA) --no-env-file bench/dataapi_bench.lua

# ---- terraform
# spec/terraform_spec.lua parses and format-checks terraform/*.tf with
# HashiCorp's HCL library built to WebAssembly (npm @cdktf/hcl2json and
# @cdktf/hcl-tools), installed from tools/hcl/package-lock.json when missing.
# Where terraform and a filesystem mirror of the hashicorp/aws provider are
# found (ALEX_TF_PROVIDER_MIRROR=<folder>, else /opt/tf-plugins and the folders
# Terraform searches), it also runs terraform validate and terraform test
# (terraform/tests/, provider mocked) on a temp copy of the module, offline;
# otherwise those specs are pending, with the reason.
.PHONY: hcl-deps terraform-check
HCL_STAMP = tools/hcl/node_modules/.package-lock.json

hcl-deps: $(HCL_STAMP)

$(HCL_STAMP): tools/hcl/package.json tools/hcl/package-lock.json | deps-test
	cd tools/hcl && npm ci --no-audit --no-fund --loglevel=error

test: $(HCL_STAMP)

terraform-check: all deps-test $(HCL_STAMP)
	ALEXLUA=$(abspath $(ALEXLUA)) ALEX_DATAAPI=$(abspath $(DATAAPI)) \
	  $(ALEXLUA) --no-env-file spec/run.lua spec/terraform_spec.lua spec/aurora_spec.lua

# ---- fuzz
# libFuzzer harnesses for the C parts that read untrusted input (fuzz/README.md).
# `make fuzz` builds each with clang (-fsanitize=fuzzer,address,undefined) and
# runs it for FUZZ_SECONDS on a copy of its seed corpus in $(BUILD)/fuzz/corpus
# (new inputs accumulate there; fuzz/corpus holds the committed seeds).
# `make -j5 fuzz` runs the targets side by side; FUZZ_TARGETS=sqlscan narrows;
# `make fuzz-regress` replays the committed corpora once (seconds).  clang is
# stricter than gcc about vprintf wrappers, hence -Wno-format-nonliteral.
.PHONY: fuzz fuzz-build fuzz-regress
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_OPTS    ?=
FUZZ_TARGETS ?= dotenv sigv4 sqlscan request validate
FUZZ_DIR      = $(BUILD)/fuzz
FUZZ_CFLAGS   = $(WARN) -Wno-format-nonliteral -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
  -fno-sanitize-recover=undefined $(DEFS) -Ihost -Ibindings -Ilocal
FUZZ_LIBS_dotenv   =
FUZZ_LIBS_sigv4    = -lcrypto
FUZZ_LIBS_sqlscan  = -lcrypto -lpthread
FUZZ_LIBS_validate = -lm
FUZZ_LIBS_request  = $(LOCAL_LIBS)
FUZZ_INC_request   = $(LOCAL_CFLAGS)
define FUZZ_LINK
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_INC_$(notdir $@)) -o $@ $(filter %.c,$^) $(FUZZ_LIBS_$(notdir $@))
endef

$(FUZZ_DIR)/dotenv: fuzz/dotenv.c fuzz/check.h host/dotenv.c host/dotenv.h | deps-fuzz
	$(FUZZ_LINK)
$(FUZZ_DIR)/sigv4: fuzz/sigv4.c fuzz/check.h bindings/sigv4_core.c bindings/sigv4_core.h | deps-fuzz
	$(FUZZ_LINK)
$(FUZZ_DIR)/sqlscan: fuzz/sqlscan.c fuzz/check.h local/sqlscan.c local/util.c local/sqlscan.h local/util.h | deps-fuzz
	$(FUZZ_LINK)
$(FUZZ_DIR)/validate: fuzz/validate.c fuzz/check.h bindings/validate_core.c bindings/validate_core.h | deps-fuzz
	$(FUZZ_LINK)
# The operations' request decoding, without libmicrohttpd or the HTTP front.
FUZZ_SRC_request = local/request.c local/params.c local/encode.c local/columns.c local/drain.c local/execute.c \
  local/batch.c local/transactions.c local/cluster.c local/db.c local/util.c local/sqlscan.c host/dotenv.c
$(FUZZ_DIR)/request: fuzz/request.c fuzz/check.h $(FUZZ_SRC_request) $(wildcard local/*.h) | deps-fuzz
	$(FUZZ_LINK)

fuzz-build: $(FUZZ_TARGETS:%=$(FUZZ_DIR)/%)

# One run per target: a crash leaves its input in $(FUZZ_DIR)/artifacts/<target>/
# and fails the target with the end of the fuzzer's log.
fuzz-run-%: $(FUZZ_DIR)/%
	@mkdir -p $(FUZZ_DIR)/corpus/$* $(FUZZ_DIR)/artifacts/$*
	@cp fuzz/corpus/$*/* $(FUZZ_DIR)/corpus/$*/
	@echo "fuzz: $* for $(FUZZ_SECONDS) s (log: $(FUZZ_DIR)/$*.log)"
	@$(FUZZ_DIR)/$* -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	  -artifact_prefix=$(FUZZ_DIR)/artifacts/$*/ $(if $(wildcard fuzz/$*.dict),-dict=fuzz/$*.dict) \
	  $(FUZZ_OPTS) $(FUZZ_DIR)/corpus/$* >$(FUZZ_DIR)/$*.log 2>&1 \
	  || { tail -n 60 $(FUZZ_DIR)/$*.log; echo "fuzz: $* FAILED; input in $(FUZZ_DIR)/artifacts/$*/"; exit 1; }
	@sed -n 's/^stat::number_of_executed_units: */fuzz: $* ok: executions: /p' $(FUZZ_DIR)/$*.log
	@echo "fuzz: $* corpus: $$(ls $(FUZZ_DIR)/corpus/$* | wc -l) inputs"

fuzz: $(FUZZ_TARGETS:%=fuzz-run-%)

fuzz-regress: $(FUZZ_TARGETS:%=$(FUZZ_DIR)/%)
	@for t in $(FUZZ_TARGETS); do \
	  $(FUZZ_DIR)/$$t fuzz/corpus/$$t/* >$(FUZZ_DIR)/$$t.regress.log 2>&1 \
	    || { tail -n 40 $(FUZZ_DIR)/$$t.regress.log; echo "fuzz-regress: $$t FAILED"; exit 1; }; \
	  echo "fuzz-regress: $$t: $$(ls fuzz/corpus/$$t | wc -l) inputs ok"; \
	done

# ---- bench
# `make bench` runs every benchmark (startup, sigv4, decode, dataapi, batch,
# reset, scale, each; the ones needing a database on their own private stacks)
# and writes bench/REPORT.md and bench/report.png (about 5 minutes on 2 cores).
# The single targets print their own figures; results also go to bench/out/.
.PHONY: bench bench-startup bench-sigv4 bench-decode bench-batch bench-reset bench-scale bench-each bench-fix
BENCH_ENV = ALEXLUA=$(abspath $(ALEXLUA)) ALEX_DATAAPI=$(abspath $(DATAAPI))

bench: all deps-bench
	$(BENCH_ENV) $(ALEXLUA) --no-env-file bench/report.lua

bench-startup: all deps-bench
	$(BENCH_ENV) sh bench/startup_bench.sh $(abspath $(ALEXLUA))

bench-sigv4: all deps-bench
	$(BENCH_ENV) $(ALEXLUA) --no-env-file bench/sigv4_bench.lua

bench-decode: all deps-bench
	$(BENCH_ENV) sh bench/decode_bench.sh

bench-batch bench-reset bench-scale bench-each bench-fix: bench-%: all deps-bench
	$(BENCH_ENV) $(ALEXLUA) --no-env-file bench/$*_bench.lua

# ---- soak
# `make soak` runs bench/soak.lua: reset/verify, concurrent migrate and
# concurrent ad-hoc fixes as child processes against a private stack that
# injects faults, for SOAK_SECONDS (default 180; SOAK_SEED repeats a run's
# choices).  Writes bench/SOAK.md; exits 1 on any violation.
.PHONY: soak
soak: all deps-bench
	ALEXLUA=$(abspath $(ALEXLUA)) ALEX_DATAAPI=$(abspath $(DATAAPI)) \
	  $(ALEXLUA) --no-env-file bench/soak.lua
