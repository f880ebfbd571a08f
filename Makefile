# Berth: build, install, test, benchmark, demo.
PREFIX ?= /usr/local
CARGO ?= cargo
BINARIES := berthd berth-supervisor berth-ctl berth
# The runtime and the shim run once per container: built static and non-PIE, they skip
# the dynamic loader and relocations (about half a millisecond per exec here).
STATIC_BINARIES := berth-runtime berth-shim
HOST := $(shell rustc -vV | sed -n 's/^host: //p')
STATIC_DIR := target/static/$(HOST)/release
DEMO_DIR ?= /tmp/berth-demo

.PHONY: all build deps install demo test fuzz lint bench critest clean

all: build

deps:
	./deploy/install-deps.sh

build:
	$(CARGO) build --release --workspace --bins
	RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static" \
	  $(CARGO) build --release -p berth-runtime -p berth-shim --target $(HOST) --target-dir target/static

install: build
	install -d $(PREFIX)/bin
	for b in $(BINARIES); do install -m 0755 target/release/$$b $(PREFIX)/bin/$$b; done
	for b in $(STATIC_BINARIES); do install -m 0755 $(STATIC_DIR)/$$b $(PREFIX)/bin/$$b; done
	# containerd finds the shim for runtime io.containerd.berth.v2 under this name.
	ln -sf berth-shim $(PREFIX)/bin/containerd-shim-berth-v2

# Build, install, make a busybox bundle and run a container with berth-runtime.
demo: deps install
	./deploy/demo.sh $(DEMO_DIR) $(PREFIX)/bin

# Everything CI runs: format check, then unit and integration tests (root needed).
test: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml -- --check
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace --no-fail-fast
	./fuzz/run.sh 15

# The fuzz harnesses (fuzz/README.md, a workspace of their own), each for FUZZ_SECONDS.
FUZZ_SECONDS ?= 60
fuzz:
	./fuzz/run.sh $(FUZZ_SECONDS)

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml -- --check
	$(CARGO) clippy --manifest-path fuzz/Cargo.toml --all-targets -- -D warnings

bench: deps build
	# What `make install` installs: the static runtime and shim beside the rest.
	mkdir -p target/bench-bin
	cp target/release/berthd target/release/berth-supervisor target/release/berth-ctl target/bench-bin/
	cp $(STATIC_DIR)/berth-shim $(STATIC_DIR)/berth-runtime target/bench-bin/
	./bench/runtime.sh
	./bench/pull.sh
	./bench/shim_memory.sh 50 target/bench-bin
	./bench/supervisor_run.sh 10 target/bench-bin
	BERTH_RUNTIME=$(CURDIR)/target/bench-bin/berth-runtime ./bench/engines.sh
	./bench/engine_containers.sh 20 100 target/bench-bin
	./bench/build.sh 5 3000 target/bench-bin

# The Kubernetes CRI conformance suite (critest v1.26.1) against berthd, and against
# containerd's CRI for the baseline (CRITEST_BASELINE=1). Not part of `make test`: critest
# is built from a cri-tools clone with the offline kit (../shared/cri-kit/README.txt:
# build-critest.sh CLONE); results in docs/conformance.md.
critest:
	$(CARGO) build --workspace --bins
	./deploy/critest-berthd.sh
	if [ -n "$(CRITEST_BASELINE)" ]; then "$${KIT:-../shared/cri-kit}/baseline.sh"; fi

clean:
	$(CARGO) clean
