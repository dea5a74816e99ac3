# Petrel build.  `make` builds build/petrel; `make SAN=1` builds the
# ASan+UBSan flavour into build-asan/.  Unit tests: tests/unit/test_*.c, each
# linked against every object but src/main.o.
CC      ?= gcc
SAN     ?= 0
ifeq ($(SAN),1)
BUILD   ?= build-asan
OPT     := -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD   ?= build
OPT     := -O2
endif
CFLAGS  := -std=gnu11 $(OPT) -g -Wall -Wextra -Werror -D_GNU_SOURCE -Isrc \
           -frounding-math -fsignaling-nans -fno-math-errno -MMD -MP $(EXTRA_CFLAGS)
LDFLAGS := $(OPT)
LIBS    := -lfdt -luring -lm -lz -lzstd -lslirp -ljansson -lseccomp -lpthread
# libmicrohttpd is dlopen'ed by src/api/http.c (its headers are needed to build)
# libvncserver likewise by src/ui/vnc.c

SRCS    := $(shell find src -name '*.c' | sort)
OBJS    := $(SRCS:%.c=$(BUILD)/%.o)
LIBOBJS := $(filter-out $(BUILD)/src/main.o,$(OBJS))
UNIT    := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(wildcard tests/unit/test_*.c))

# petrel serve's serial console: xterm.js from Debian's node-xterm, which
# ships CommonJS modules; bundled into one browser script (no CDN).  Skipped
# with a note when the package is missing (scripts/deps.sh build installs it).
XTERM_DIR ?= /usr/share/nodejs/xterm/lib
VENDOR  := $(if $(wildcard $(XTERM_DIR)/xterm.js),$(addprefix $(BUILD)/vendor/xterm/,xterm.js fit.js xterm.css))

all: $(BUILD)/petrel $(UNIT) $(VENDOR)
ifeq ($(VENDOR),)
	@echo "note: $(XTERM_DIR) missing (Debian's node-xterm): petrel serve will have no serial console in the page"
endif

$(BUILD)/vendor/xterm/xterm.js: scripts/bundle-cjs.py $(wildcard $(XTERM_DIR)/*.js)
	@mkdir -p $(dir $@)
	python3 scripts/bundle-cjs.py $(XTERM_DIR)/xterm.js Terminal $@

$(BUILD)/vendor/xterm/fit.js: scripts/bundle-cjs.py $(XTERM_DIR)/addons/fit/fit.js
	@mkdir -p $(dir $@)
	python3 scripts/bundle-cjs.py $(XTERM_DIR)/addons/fit/fit.js xtermFit $@

$(BUILD)/vendor/xterm/xterm.css: $(XTERM_DIR)/xterm.css
	@mkdir -p $(dir $@)
	cp $< $@

$(BUILD)/petrel: $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/unit/%: tests/unit/%.c $(LIBOBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(LIBOBJS) $(LIBS) -lcurl

# libFuzzer targets (tests/fuzz), built with clang + ASan/UBSan into build-fuzz/.
# The sources are compiled once (with coverage instrumentation,
# -fsanitize=fuzzer-no-link) and every target links against them.
FUZZ_BUILD  := build-fuzz
FUZZ_SAN    := address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -std=gnu11 -O1 -g -D_GNU_SOURCE -Isrc -Itests/unit -Wall -Wextra -Werror -MMD -MP
FUZZERS     := $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_OBJS   := $(patsubst %.c,$(FUZZ_BUILD)/%.o,$(filter-out src/main.c,$(SRCS)))

fuzz: $(FUZZERS)

$(FUZZ_BUILD)/src/%.o: src/%.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,$(FUZZ_SAN) -c -o $@ $<

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJS)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer,$(FUZZ_SAN) -o $@ $< $(FUZZ_OBJS) $(LIBS)

clean:
	rm -rf build build-asan build-fuzz

.PHONY: all clean fuzz
-include $(OBJS:.o=.d) $(FUZZ_OBJS:.o=.d) $(FUZZERS:=.d)

# ---------------------------------------------------------------------------
# Plumbing: Debian dependencies, the default guest, running it, the test suite.
# `make run` and `make check` work on a fresh Debian 12 machine: they install
# the packages they need first (scripts/deps.sh installs only what is missing,
# so repeated runs are fast and need no network).
GUEST_DIR       := build/guest/riscv64
GUEST_TESTS_DIR := build/guest-tests/riscv64
# Debian's interpreter: python3-pytest/python3-pexpect are installed for it,
# whatever python3 comes first in PATH (pyenv, venvs).
PYTHON          ?= /usr/bin/python3
PYTEST_ARGS     ?=
RUN_ARGS        ?=

# Build dependencies only (gcc, make, libfdt).
deps:
	scripts/deps.sh build

# The default riscv64 guest (Debian trixie kernel + busybox + OpenSBI, and
# its ext4 root disk root.img), cached.
guest:
	scripts/deps.sh guest
	images/build-riscv64.sh $(abspath $(GUEST_DIR))

# Boot the default guest on the console.  Dependencies come first, so the
# compile step never runs before gcc/libfdt are installed.  RUN_ARGS adds
# flags, e.g. make run RUN_ARGS='--memory 1G'.
run:
	scripts/deps.sh build guest
	$(MAKE) --no-print-directory all
	$(MAKE) --no-print-directory guest
ifeq ($(SAN),1)
	PETREL_GUEST_DIR=$(abspath build/guest) ./$(BUILD)/petrel run $(RUN_ARGS)
else
	./$(BUILD)/petrel run $(RUN_ARGS)
endif

# Boot the default guest from its ext4 root disk (images/lib-rootfs.sh)
# instead of the initramfs.  The guest writes to its disk, so this boots a
# copy, ROOT_DISK: made from $(GUEST_DIR)/root.img when it doesn't exist, and
# kept (with whatever the guest wrote) for the next run; delete it to start
# afresh.  Shut the guest down with `poweroff` (not -f), which leaves the
# file system clean.  ROOT_APPEND is the kernel command line; RUN_ARGS adds
# flags, as for `make run`.
ROOT_DISK   ?= build/root-disk.img
ROOT_APPEND ?= root=/dev/vda console=ttyS0 earlycon=sbi

run-disk:
	scripts/deps.sh build guest
	$(MAKE) --no-print-directory all
	$(MAKE) --no-print-directory guest
	@if [ ! -e '$(ROOT_DISK)' ]; then \
		echo "cp --sparse=always $(GUEST_DIR)/root.img $(ROOT_DISK)"; \
		cp --sparse=always $(GUEST_DIR)/root.img '$(ROOT_DISK)'; \
	elif [ $(GUEST_DIR)/root.img -nt '$(ROOT_DISK)' ]; then \
		echo "note: $(ROOT_DISK) is older than the rebuilt $(GUEST_DIR)/root.img; delete it to boot a fresh copy"; \
	fi
ifeq ($(SAN),1)
	PETREL_GUEST_DIR=$(abspath build/guest) ./$(BUILD)/petrel run --disk '$(ROOT_DISK)' --append '$(ROOT_APPEND)' $(RUN_ARGS)
else
	./$(BUILD)/petrel run --disk '$(ROOT_DISK)' --append '$(ROOT_APPEND)' $(RUN_ARGS)
endif

# ASan+UBSan flavour into build-asan/.
asan:
	$(MAKE) --no-print-directory SAN=1 all

# Bare-metal riscv64 test programs (tests/guest/riscv64).  STRICT=1: Petrel
# follows the privileged spec where QEMU 7.2 deviates (see their README).
guest-tests:
	$(MAKE) --no-print-directory -C tests/guest/riscv64 STRICT=1 OUT=$(abspath $(GUEST_TESTS_DIR))
	$(MAKE) --no-print-directory -C tests/guest/x86 STRICT=1 OUT=$(abspath build/guest-tests/x86_64-strict)

# The whole suite.  A failing build step does not stop the run: pytest still
# runs (tests needing the missing pieces fail) and prints its summary, then
# `make check` fails.  PYTEST_ARGS adds pytest flags, e.g. PYTEST_ARGS='-k boot'.
check:
	scripts/deps.sh all
	@failed=""; \
	$(MAKE) --no-print-directory SAN=0 all         || failed="$$failed all"; \
	$(MAKE) --no-print-directory asan              || failed="$$failed asan"; \
	$(MAKE) --no-print-directory guest             || failed="$$failed guest"; \
	$(MAKE) --no-print-directory guest-x86         || failed="$$failed guest-x86"; \
	$(MAKE) --no-print-directory SAN=0 guest-tests || failed="$$failed guest-tests"; \
	$(MAKE) --no-print-directory fuzz              || failed="$$failed fuzz"; \
	if [ -n "$$failed" ]; then echo "make check: build steps FAILED:$$failed (running the tests anyway)" >&2; fi; \
	rc=0; $(PYTHON) -m pytest -v --durations=20 $(PYTEST_ARGS) tests/ || rc=$$?; \
	if [ -n "$$failed" ]; then echo "make check: build steps FAILED:$$failed" >&2; exit 1; fi; \
	exit $$rc

.PHONY: deps guest run run-disk asan guest-tests check

# The default x86-64 guest (Debian bookworm cloud kernel + busybox), cached.
GUEST_X86_DIR := build/guest/x86_64

guest-x86:
	scripts/deps.sh guest
	images/build-x86_64.sh $(abspath $(GUEST_X86_DIR))

.PHONY: guest-x86
