# livefeed — build, demo, test and benchmark entry points for people who build C.
#   make        library (static + shared), header check, C programs into build/
#   make demo   live events from the bundled sensor simulator through the C API
#   make test   everything CI runs (installs what it needs first)
#   make bench  throughput and memory figures

CARGO   ?= cargo
CC      ?= cc
CXX     ?= c++
BUILD   := build
LIBDIR  := target/release
CFLAGS  ?= -O2 -g
WARN    := -std=c11 -Wall -Wextra -Werror -pedantic
# What the static library needs from the system (see README "Linking"; checked by make test).
NATIVE_STATIC_LIBS := -lssl -lcrypto -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
C_PROGRAMS := $(patsubst examples-c/%.c,$(BUILD)/%,$(wildcard examples-c/*.c))
ASAN_PROGRAMS := $(patsubst examples-c/%.c,$(BUILD)/asan/%,$(wildcard examples-c/*.c))
ASAN    := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
RUST_SOURCES := $(shell find src -name '*.rs') Cargo.toml Cargo.lock build.rs

.PHONY: all asan lib header header-check demo test bench clean

all: lib $(C_PROGRAMS)

lib: $(LIBDIR)/liblivefeed.a

$(LIBDIR)/liblivefeed.a $(LIBDIR)/liblivefeed.so: $(RUST_SOURCES)
	$(CARGO) build --release --locked
	@touch $(LIBDIR)/liblivefeed.a

$(BUILD) $(BUILD)/asan:
	mkdir -p $@

# The same programs instrumented with AddressSanitizer and UBSan (run by make test).
asan: lib $(ASAN_PROGRAMS)

$(BUILD)/asan/%: examples-c/%.c include/livefeed.h $(LIBDIR)/liblivefeed.a | $(BUILD)/asan
	$(CC) $(WARN) $(ASAN) -pthread -Iinclude $< -o $@ $(LIBDIR)/liblivefeed.a $(NATIVE_STATIC_LIBS)

# C programs link the static library: one self-contained binary each.
$(BUILD)/%: examples-c/%.c include/livefeed.h $(LIBDIR)/liblivefeed.a | $(BUILD)
	$(CC) $(WARN) $(CFLAGS) -pthread -Iinclude $< -o $@ $(LIBDIR)/liblivefeed.a $(NATIVE_STATIC_LIBS)

header:
	scripts/gen-header.sh

header-check:
	scripts/gen-header.sh --check

demo: all
	scripts/demo.sh

test:
	scripts/test.sh

bench: all
	scripts/bench.sh

clean:
	rm -rf $(BUILD)
	$(CARGO) clean
