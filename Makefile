# Socket Server Models - one non-recursive Makefile for everything.
#
#   make                 debug build (-O0 -g3): 02-select/server, tests/echo-client ...
#   make release         -O2 build under build/release/
#   make test            unit tests + every model through the scenario catalogue
#   make test MODEL=02-select     one model only
#   make sanitize        the whole test run under ASan+UBSan (build/asan/)
#   make tsan            the threaded models under ThreadSanitizer (build/tsan/)
#   make valgrind        each server under memcheck, leak-checked after SIGTERM
#   make helgrind        06's callback threads under helgrind (TSan cannot)
#   make faults          every Linux row with transient kernel errors injected
#   make gdb M=02        a model under gdb with its walkthrough.gdb
#   make compare         every model under the same workloads (release build)
#   make win32           the Win32 twins (NN-model/win32.c) with mingw-w64
#   make test-win32      the twins under Wine, through the same runner
#   make run-win32 M=04 [ARGS="-v"]   one twin under Wine
#   make deps            install missing Debian packages (run by the targets above)
#
# Debug binaries sit beside their source so that a student types `gdb ./server`;
# objects and the other variants live under build/<variant>/.

SHELL := /bin/bash
CC ?= cc

# ---------------------------------------------------------------- packages
# A fresh Debian/Ubuntu machine needs nothing but `make test` (README.md,
# "The two commands"): each target installs what it lacks.
DEPS_BUILD   := gcc make pkg-config check liburing-dev
DEPS_TEST    := socat valgrind gdb strace
DEPS_COMPARE := gnuplot-nox strace libuv1-dev libev-dev
# Only for the Win32 targets: about 220 MB to fetch, 1.4 GB on disk, so
# `make test` never pulls them. `wine` is the launcher, wine64 the loader.
DEPS_WIN32   := gcc-mingw-w64-x86-64 wine wine64

# $(call ensure_packages,list): install what dpkg does not have (as root),
# or print the exact sudo line and fail.
define ensure_packages
@missing=""; \
if command -v dpkg-query >/dev/null 2>&1; then \
  for p in $(1); do \
    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' \
      || missing="$$missing $$p"; \
  done; \
else \
  echo "make: not a Debian system; make sure these are installed: $(1)" >&2; \
fi; \
if [ -n "$$missing" ]; then \
  if [ "$$(id -u)" = 0 ]; then \
    echo "make: installing:$$missing"; \
    export DEBIAN_FRONTEND=noninteractive; \
    apt-get update -qq >/dev/null && apt-get install -y -qq $$missing >/dev/null \
      || { echo "make: apt-get install$$missing failed" >&2; exit 1; }; \
  else \
    echo "make: missing packages; run: sudo apt-get install$$missing" >&2; \
    exit 1; \
  fi; \
fi
endef

.PHONY: deps deps-test deps-compare deps-win32
deps:
	$(call ensure_packages,$(DEPS_BUILD))
deps-test: deps
	$(call ensure_packages,$(DEPS_TEST))
deps-compare: deps
	$(call ensure_packages,$(DEPS_COMPARE))
deps-win32:
	$(call ensure_packages,$(DEPS_WIN32))

# ---------------------------------------------------------------- flags
# Recursive (=) so pkg-config runs when a recipe needs it, after `deps`.
CHECK_CFLAGS  = $(shell pkg-config --cflags check)
CHECK_LIBS    = $(shell pkg-config --libs check)
URING_CFLAGS  = $(shell pkg-config --cflags liburing)
URING_LIBS    = $(shell pkg-config --libs liburing)

WARN    := -Wall -Wextra -Wshadow -Werror
BASE    := -std=gnu11 -D_GNU_SOURCE -pthread $(WARN) -Icommon
debug_CFLAGS   := -O0 -g3 -fno-omit-frame-pointer
release_CFLAGS := -O2 -g -D_FORTIFY_SOURCE=2
asan_CFLAGS    := -O1 -g3 -fno-omit-frame-pointer -fsanitize=address,undefined \
                  -fno-sanitize-recover=all
tsan_CFLAGS    := -O1 -g3 -fno-omit-frame-pointer -fsanitize=thread
VARIANTS := debug release asan tsan

# Per-model extras: the library a model is built on.
06-aio-overlapped_LIBS    = -lrt
07-completion-port_CFLAGS = $(URING_CFLAGS)
07-completion-port_LIBS   = $(URING_LIBS)

# ---------------------------------------------------------------- sources
# A source joins a program by the folder it sits in, never by its name:
#   NN-model/*.c       NN-model/server
#   tests/client/      tests/echo-client; all but its main (CLIENT_MAIN)
#                      also tests/check, whose tests use the client's parts
#   tests/scenarios/   tests/echo-client and tests/check: the catalogue
#   tests/runner/      tests/check (its main is tests/runner/main.c)
#   tests/unit/        tests/check
#   tests/tools/X.c    tests/tool-X
#   tests/ref/X.c      build/release/tests/ref/X, for make compare only
# and every program links common/.
MODELS       := $(sort $(patsubst %/server.c,%,$(wildcard [0-9][0-9]-*/server.c)))
# common/X_win32.c is X.c for the Win32 twins; the Linux build leaves it out.
COMMON_SRC   := $(filter-out %_win32.c,$(wildcard common/*.c))
CLIENT_MAIN  := tests/client/echo-client.c
CLIENT_SRC   := $(filter-out $(CLIENT_MAIN),$(wildcard tests/client/*.c))
SCENARIO_SRC := $(wildcard tests/scenarios/*.c)
RUNNER_SRC   := $(wildcard tests/runner/*.c)
UNIT_SRC     := $(wildcard tests/unit/*.c)
TOOL_SRC     := $(wildcard tests/tools/*.c)
TOOLS        := $(patsubst tests/tools/%.c,tests/tool-%,$(TOOL_SRC))

# Per-folder flags (the object rule adds $(<folder>_CFLAGS)). Test code
# includes across folders by path from tests/: "scenarios/steps.h".
TESTS_CFLAGS           := -Itests
tests/client_CFLAGS    = $(TESTS_CFLAGS)
tests/scenarios_CFLAGS = $(TESTS_CFLAGS)
tests/runner_CFLAGS    = $(TESTS_CFLAGS) $(CHECK_CFLAGS)
tests/unit_CFLAGS      = $(TESTS_CFLAGS) $(CHECK_CFLAGS)

# $(call bindir,variant): where a variant's binaries go ("" for debug).
bindir = $(if $(filter debug,$(1)),,build/$(1)/)
objs   = $(patsubst %.c,build/$(1)/obj/%.o,$(2))

# One set of rules per variant.
define variant_rules
build/$(1)/obj/%.o: %.c | deps
	@mkdir -p $$(@D)
	$$(CC) $$(BASE) $$($(1)_CFLAGS) $$($$(patsubst %/,%,$$(dir $$<))_CFLAGS) \
	    -MMD -MP -c $$< -o $$@

$(1)_SERVERS := $$(foreach m,$$(MODELS),$$(call bindir,$(1))$$(m)/server)
$(1)_CLIENT  := $$(call bindir,$(1))tests/echo-client
$(1)_CHECK   := $$(call bindir,$(1))tests/check
$(1)_TOOLS   := $$(foreach t,$$(TOOLS),$$(call bindir,$(1))$$(t))

$$(call bindir,$(1))tests/echo-client: $$(call objs,$(1),$$(CLIENT_MAIN) $$(CLIENT_SRC) $$(SCENARIO_SRC) $$(COMMON_SRC))
	@mkdir -p $$(@D)
	$$(CC) $$(BASE) $$($(1)_CFLAGS) $$^ -o $$@ -lm

$$(call bindir,$(1))tests/check: $$(call objs,$(1),$$(RUNNER_SRC) $$(UNIT_SRC) $$(CLIENT_SRC) $$(SCENARIO_SRC) $$(COMMON_SRC))
	@mkdir -p $$(@D)
	$$(CC) $$(BASE) $$($(1)_CFLAGS) $$^ -o $$@ $$(CHECK_LIBS) -lm

$$(call bindir,$(1))tests/tool-%: build/$(1)/obj/tests/tools/%.o $$(call objs,$(1),$$(COMMON_SRC))
	@mkdir -p $$(@D)
	$$(CC) $$(BASE) $$($(1)_CFLAGS) $$^ -o $$@

.PHONY: build-$(1)
build-$(1): $$($(1)_SERVERS) $$($(1)_CLIENT) $$($(1)_CHECK) $$($(1)_TOOLS)
endef
$(foreach v,$(VARIANTS),$(eval $(call variant_rules,$(v))))

# A model's server: every .c in its directory (07 adds cport.c) but its
# Win32 twin, + common/.
define server_rules
$(call bindir,$(2))$(1)/server: $(call objs,$(2),$(filter-out %/win32.c,$(wildcard $(1)/*.c)) $(COMMON_SRC))
	@mkdir -p $$(@D)
	$$(CC) $$(BASE) $$($(2)_CFLAGS) $$^ -o $$@ $$($(1)_LIBS)
endef
$(foreach v,$(VARIANTS),$(foreach m,$(MODELS),$(eval $(call server_rules,$(m),$(v)))))

# ---------------------------------------------------------------- Win32 twins
# NN-model/win32.c -> build/win32/NN-model/win32.exe, with mingw-w64 and the
# Win32 side of common/: X_win32.c where there is one (net, err_text, sig,
# clock), else the plain-C X.c (options, the echo buffer, stats, log).
# _WIN32_WINNT 0x0601 (Windows 7): WSAPoll, inet_ntop, CancelIoEx,
# GetQueuedCompletionStatusEx are declared from Vista on.
WIN32_CC     := x86_64-w64-mingw32-gcc
WIN32_CFLAGS := -std=gnu11 $(WARN) -O0 -g3 -Icommon -D_WIN32_WINNT=0x0601 \
                -D__USE_MINGW_ANSI_STDIO=1
WIN32_LIBS   := -lws2_32 -lmswsock
WIN32_MODELS := $(sort $(patsubst %/win32.c,%,$(wildcard [0-9][0-9]-*/win32.c)))
WIN32_COMMON := $(foreach f,$(COMMON_SRC),$(if $(wildcard $(f:.c=_win32.c)),$(f:.c=_win32.c),$(f)))
WIN32_EXES   := $(foreach m,$(WIN32_MODELS),build/win32/$(m)/win32.exe)

build/win32/obj/%.o: %.c | deps-win32
	@mkdir -p $(@D)
	$(WIN32_CC) $(WIN32_CFLAGS) -MMD -MP -c $< -o $@

$(foreach m,$(WIN32_MODELS),$(eval \
build/win32/$(m)/win32.exe: $(call objs,win32,$(m)/win32.c $(WIN32_COMMON)) ; \
	@mkdir -p $$(@D) && $(WIN32_CC) $(WIN32_CFLAGS) $$^ -o $$@ $(WIN32_LIBS)))

# Wine, headless, in a private prefix under build/: no debug chatter
# (WINEDEBUG), no offer to install Mono or Gecko (WINEDLLOVERRIDES).
# One wineserver is started persistent (-p) for a whole run, so each twin
# starts in a fraction of a second, and is stopped with -k at the end.
WINE_ENV := WINEPREFIX=$(CURDIR)/build/wine WINEDEBUG=-all \
            WINEDLLOVERRIDES="mscoree,mshtml="
build/wine/system.reg: | deps-win32
	@mkdir -p build/wine
	$(WINE_ENV) wineboot -i >/dev/null 2>&1 && $(WINE_ENV) wineserver -w

# ---------------------------------------------------------------- targets
.DEFAULT_GOAL := all
.PHONY: all release asan tsan-build test sanitize tsan valgrind helgrind faults gdb \
        compare clean win32 test-win32 run-win32

all: build-debug
release: build-release
asan: build-asan
tsan-build: build-tsan

# The runner: tests/check [MODEL]. It prints the model x scenario matrix and
# a last line "N passed, N failed".
test: deps-test build-debug
	tests/check $(MODEL)

sanitize: deps-test build-asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    build/asan/tests/check $(MODEL)

# TSan: the threaded models (01 threads, 07; 06 under helgrind). The runner runs only the
# variants that are threaded when given --threaded.
tsan: deps-test build-tsan
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	    build/tsan/tests/check --threaded $(MODEL)

valgrind: deps-test build-debug
	RUNNER_WRAP="valgrind --leak-check=full --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 --quiet" \
	    tests/check --valgrind $(MODEL)

# 06's threads under helgrind (TSan crashes in glibc's AIO): the race
# detector for the completion callbacks. tests/tools/helgrind.supp says why
# each of its two suppressions is a false positive.
helgrind: deps-test build-debug
	RUNNER_WRAP="valgrind --tool=helgrind --suppressions=tests/tools/helgrind.supp --error-exitcode=99 --quiet" \
	    tests/check --valgrind $(or $(MODEL),06-aio-overlapped)

# Every Linux row under `strace -f -e inject=...`: accept errors, EINTR on
# recv, send and the waits, io_uring_enter's EAGAIN and EBUSY; the client's
# whole suite, then SIGINT and exit 0 (tests/tools/faults.sh, NOTES §7.14).
faults: deps-test build-debug
	tests/tools/faults.sh $(MODEL)

win32: $(WIN32_EXES)

# The runner with --win32: the rows NN/win32, each twin started under wine
# and stopped with SIGINT (Wine's Ctrl-C). wineserver -k runs even when a
# test fails, and the exit status is the runner's. `wineserver -p` fails
# (exit 2) when one already runs for this prefix: that one will do.
test-win32: deps-test build-debug win32 build/wine/system.reg
	@$(WINE_ENV) wineserver -p 2>/dev/null || true
	$(WINE_ENV) tests/check --win32 $(MODEL); status=$$?; \
	$(WINE_ENV) wineserver -k; exit $$status

# make run-win32 M=04 [ARGS="-p 0 -v"]: Ctrl-C stops it, as on Windows.
run-win32: win32 build/wine/system.reg
	@exe=$$(ls build/win32/$(M)*/win32.exe 2>/dev/null | head -n1); \
	[ -n "$$exe" ] || { echo "make run-win32: no twin matches M=$(M)" >&2; exit 2; }; \
	$(WINE_ENV) wineserver -p 2>/dev/null; \
	$(WINE_ENV) wine $$exe $(ARGS); status=$$?; \
	$(WINE_ENV) wineserver -k; exit $$status

# make gdb M=02 [ARGS="--mode threads"]
gdb: deps-test build-debug
	@dir=$$(ls -d $(M)*/ 2>/dev/null | head -n1); \
	[ -n "$$dir" ] || { echo "make gdb: no model matches M=$(M)" >&2; exit 2; }; \
	cd $$dir && exec gdb -q -x walkthrough.gdb --args ./server $(ARGS)

# Reference servers on production event libraries, for compare only.
REF_SERVERS := build/release/tests/ref/libuv-echo build/release/tests/ref/libev-echo
LIBUV_LIBS = $(shell pkg-config --libs libuv)
build/release/tests/ref/libuv-echo: build/release/obj/tests/ref/libuv-echo.o $(call objs,release,$(COMMON_SRC))
	@mkdir -p $(@D)
	$(CC) $(BASE) $(release_CFLAGS) $^ -o $@ $(LIBUV_LIBS)
build/release/tests/ref/libev-echo: build/release/obj/tests/ref/libev-echo.o $(call objs,release,$(COMMON_SRC))
	@mkdir -p $(@D)
	$(CC) $(BASE) $(release_CFLAGS) $^ -o $@ -lev

compare: deps-compare build-release $(REF_SERVERS)
	tests/tools/compare.sh $(if $(QUICK),--quick)

clean:
	rm -rf build compare tests/echo-client tests/check $(TOOLS) \
	    $(foreach m,$(MODELS),$(m)/server)

# Keep objects that only a pattern rule chain builds (tests/tools/*.o):
# make would delete them as intermediates and relink the tool every time.
.SECONDARY:

-include $(shell find build -name '*.d' 2>/dev/null)
