# SPDX-License-Identifier: Apache-2.0
#
# One Makefile for the whole tree. Every program directory contributes its *.c
# files: main.c becomes the program, everything else goes into a static library
# that the unit tests link against. Generated protobuf-c code lives only in
# $(BUILD)/gen.

BUILD   ?= build
PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR  ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
UNITDIR ?= $(PREFIX)/lib/systemd/system
VERSION ?= 0.1.0

CC      ?= cc
PKGS    := libprotobuf-c libsystemd sqlite3 libcjson
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS))

WARN    := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes \
           -Wvla -Wimplicit-fallthrough -Wno-unused-parameter
HARDEN  := -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE
# Each function in its own section, so the linker drops what a program does not use
# (the shim links only a little of libcommon): a third less text per shim.
SECTIONS := -ffunction-sections -fdata-sections
OPT     ?= -O2 -g
CFLAGS  ?=
override CFLAGS += -std=gnu11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -DKYB_VERSION=\"$(VERSION)\" \
           $(OPT) $(WARN) $(HARDEN) $(SECTIONS) -I. -Icommon -I$(BUILD)/gen $(PKG_CFLAGS) -MMD -MP
LDFLAGS ?=
override LDFLAGS += -pie -Wl,-z,relro,-z,now -Wl,--gc-sections
LIBS    := $(PKG_LIBS)

PROTOS      := $(shell find proto -name '*.proto' | sort)
PROTO_C     := $(patsubst proto/%.proto,$(BUILD)/gen/%.pb-c.c,$(PROTOS))
PROTO_H     := $(PROTO_C:.c=.h)
PROTO_O     := $(PROTO_C:.c=.o)

COMMON_SRC  := $(wildcard common/*.c)
SHIM_SRC    := $(filter-out shim/main.c,$(wildcard shim/*.c))
DAEMON_SRC  := $(filter-out kybernated/main.c,$(wildcard kybernated/*.c))
CTL_SRC     := $(filter-out kybernatectl/main.c,$(wildcard kybernatectl/*.c))
UNIT_SRC    := $(wildcard tests/unit/test-*.c)
# The runner behind tests/unit/test.h (main() and the fixtures), in every unit test.
HARNESS_SRC := tests/unit/harness.c
FUZZ_SRC    := $(wildcard fuzz/fuzz-*.c)

# Objects live under $(BUILD)/obj: $(BUILD)/kybernated is the daemon binary,
# so it cannot also be a directory of objects.
obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIBCOMMON := $(BUILD)/libcommon.a
LIBSHIM   := $(BUILD)/libshim.a
LIBDAEMON := $(BUILD)/libdaemon.a
LIBCTL    := $(BUILD)/libctl.a

SHIM_BIN   := $(BUILD)/containerd-shim-kybernate-v1
DAEMON_BIN := $(BUILD)/kybernated
CTL_BIN    := $(BUILD)/kybernatectl
BINS       := $(SHIM_BIN) $(DAEMON_BIN) $(CTL_BIN)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

.PHONY: all shim daemon ctl unit setup demo check check-unit check-e2e install uninstall clean \
        fuzz asan asan-e2e format format-check lint tidy
all: $(BINS) $(UNIT_BINS)
shim: $(SHIM_BIN)
daemon: $(DAEMON_BIN)
ctl: $(CTL_BIN)
unit: $(UNIT_BINS)

# Generated code must exist before anything that includes it is compiled, and
# is kept (it is an intermediate of two rules).
.SECONDARY: $(PROTO_C) $(PROTO_H)
$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --proto_path=proto --c_out=$(BUILD)/gen $<

$(BUILD)/gen/%.pb-c.o: $(BUILD)/gen/%.pb-c.c
	$(CC) $(CFLAGS) -Wno-missing-prototypes -c -o $@ $<

$(BUILD)/obj/%.o: %.c | $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(LIBCOMMON): $(call obj,$(COMMON_SRC)) $(PROTO_O)
	@rm -f $@
	$(AR) rcs $@ $^
$(LIBSHIM): $(call obj,$(SHIM_SRC))
	@rm -f $@
	$(AR) rcs $@ $^
$(LIBDAEMON): $(call obj,$(DAEMON_SRC))
	@rm -f $@
	$(AR) rcs $@ $^
$(LIBCTL): $(call obj,$(CTL_SRC))
	@rm -f $@
	$(AR) rcs $@ $^

$(SHIM_BIN): $(BUILD)/obj/shim/main.o $(LIBSHIM) $(LIBCOMMON)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)
$(DAEMON_BIN): $(BUILD)/obj/kybernated/main.o $(LIBDAEMON) $(LIBCOMMON)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)
$(CTL_BIN): $(BUILD)/obj/kybernatectl/main.o $(LIBCTL) $(LIBCOMMON)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# A unit test links the library of the program its name starts with:
# test-shim-*.c -> libshim, test-daemon-*.c -> libdaemon, test-ctl-*.c -> libctl,
# test-common-*.c (tests of common/) -> libcommon only.
testlib = $(if $(filter test-shim-%,$(1)),$(LIBSHIM),$(if $(filter test-daemon-%,$(1)),$(LIBDAEMON),$(if $(filter test-ctl-%,$(1)),$(LIBCTL))))
.SECONDEXPANSION:
$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(call obj,$(HARNESS_SRC)) $$(call testlib,%) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# scripts/setup.sh when something the build or the tests need is missing (its
# --check changes nothing). The build then runs in a new make, which reads the
# pkg-config flags again: on a fresh machine they exist only after the set-up.
setup:
	@scripts/setup.sh --check >/dev/null 2>&1 || scripts/setup.sh

check: setup
	$(MAKE) --no-print-directory all
	BUILD=$(abspath $(BUILD)) tests/run

# The main job in one command: a pod moves between two private containerd
# "nodes" through a private registry (scripts/demo.sh).
demo: setup
	$(MAKE) --no-print-directory $(BINS)
	BUILD=$(abspath $(BUILD)) scripts/demo.sh

check-unit: $(UNIT_BINS) $(SHIM_BIN) # test-shim-wire runs the real shim
	BUILD=$(abspath $(BUILD)) tests/run --unit

check-e2e: all
	BUILD=$(abspath $(BUILD)) tests/run --e2e

# ASan + UBSan over the unit tests.
SAN_MAKE := OPT="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
	LDFLAGS="-fsanitize=address,undefined"
asan:
	$(MAKE) BUILD=build-asan $(SAN_MAKE) check-unit

# The end-to-end suite with ASan + UBSan builds of the shim, kybernated and
# kybernatectl (containerd runs the shim from $(BUILD)); fails on any report.
# Not in .ci/run (it takes as long as the suite).
ASAN_E2E := build-asan-e2e
asan-e2e:
	$(MAKE) BUILD=$(ASAN_E2E) $(SAN_MAKE) $(BINS:$(BUILD)/%=$(ASAN_E2E)/%)
	rm -rf $(ASAN_E2E)/sanitizer && mkdir -p $(ASAN_E2E)/sanitizer
	ASAN_OPTIONS=detect_leaks=0:log_path=$(abspath $(ASAN_E2E))/sanitizer/asan \
		UBSAN_OPTIONS=print_stacktrace=1:log_path=$(abspath $(ASAN_E2E))/sanitizer/ubsan \
		BUILD=$(abspath $(ASAN_E2E)) tests/run --e2e
	@if ls $(ASAN_E2E)/sanitizer/* >/dev/null 2>&1; then \
		echo "sanitizer reports in $(ASAN_E2E)/sanitizer:"; ls $(ASAN_E2E)/sanitizer; exit 1; fi

# libFuzzer targets: fuzz/fuzz-<name>.c, built with clang.
FUZZ_BUILD := build-fuzz
fuzz:
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=clang HARDEN= \
		OPT="-O1 -g -fsanitize=fuzzer-no-link,address,undefined" \
		LDFLAGS="-fsanitize=address,undefined" $(FUZZ_BUILD)/libcommon.a $(FUZZ_BUILD)/libshim.a \
		$(FUZZ_BUILD)/libdaemon.a
	@mkdir -p $(FUZZ_BUILD)/fuzz
	for f in $(FUZZ_SRC); do \
		n=$$(basename $$f .c); \
		clang -std=gnu11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -I. -Icommon \
			-I$(FUZZ_BUILD)/gen $(PKG_CFLAGS) -o $(FUZZ_BUILD)/fuzz/$$n $$f \
			$(FUZZ_BUILD)/libshim.a $(FUZZ_BUILD)/libdaemon.a $(FUZZ_BUILD)/libcommon.a $(LIBS) || exit 1; \
	done

install: $(BINS)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR)
	install -m 0755 $(SHIM_BIN) $(CTL_BIN) $(DESTDIR)$(BINDIR)/
	install -m 0755 $(DAEMON_BIN) $(DESTDIR)$(SBINDIR)/
	for u in systemd/*.service systemd/*.socket; do \
		[ -f "$$u" ] || continue; \
		sed 's|@SBINDIR@|$(SBINDIR)|g; s|@BINDIR@|$(BINDIR)|g' "$$u" > $(DESTDIR)$(UNITDIR)/$$(basename $$u); \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$(basename $$u); \
	done

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/containerd-shim-kybernate-v1 $(DESTDIR)$(BINDIR)/kybernatectl \
		$(DESTDIR)$(SBINDIR)/kybernated $(DESTDIR)$(UNITDIR)/kybernated.service \
		$(DESTDIR)$(UNITDIR)/kybernated.socket

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

lint: $(PROTO_H) # cppcheck reads the generated headers: without them it reports false leaks
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability --inline-suppr \
		-I common -I $(BUILD)/gen $$(git ls-files '*.c')

# clang-tidy (.clang-tidy) over every C file with the build's flags; the
# generated protobuf headers must exist first. Two files at a time (TIDY_JOBS).
CLANG_TIDY ?= clang-tidy
TIDY_JOBS  ?= 2
TIDY_FLAGS := -std=gnu11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -DKYB_VERSION=\"$(VERSION)\" \
              -I. -Icommon -I$(BUILD)/gen $(PKG_CFLAGS)
tidy: $(PROTO_H)
	git ls-files 'common/*.c' 'shim/*.c' 'kybernated/*.c' 'kybernatectl/*.c' 'tests/unit/*.c' \
		'fuzz/*.c' | xargs -P $(TIDY_JOBS) -I{} $(CLANG_TIDY) --quiet {} -- $(TIDY_FLAGS)

clean:
	rm -rf $(BUILD) build-asan $(ASAN_E2E) $(FUZZ_BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
