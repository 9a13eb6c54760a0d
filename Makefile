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
RUST_SOURCES := $(shell find src -name '*.rs') Cargo.toml Cargo.lock build.rs

.PHONY: all lib header header-check demo test bench clean install

all: lib $(C_PROGRAMS)

lib: $(LIBDIR)/liblivefeed.a

$(LIBDIR)/liblivefeed.a $(LIBDIR)/liblivefeed.so: $(RUST_SOURCES)
	$(CARGO) build --release --locked
	@touch $(LIBDIR)/liblivefeed.a

$(BUILD):
	mkdir -p $(BUILD)

# C programs link the static library: one self-contained binary each.
$(BUILD)/%: examples-c/%.c include/livefeed.h $(LIBDIR)/liblivefeed.a | $(BUILD)
	$(CC) $(WARN) $(CFLAGS) -Iinclude $< -o $@ $(LIBDIR)/liblivefeed.a $(NATIVE_STATIC_LIBS)

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
