# runvz — build, demo, test, install, bench.
# Every target that needs system packages installs them itself (`make deps`),
# so the README's commands work on a fresh Debian 12 machine.

CARGO   ?= cargo
PREFIX  ?= /usr/local
RUNVZ   := target/release/runvz
# Packages the build, the demo and the tests need (Debian names).
PACKAGES := busybox-static libseccomp-dev pkg-config runc hyperfine procps util-linux

.PHONY: all build deps demo test test-unit test-integration lint install bench clean

all: build

# Installs only what is missing; `apt-get update` first, as a fresh machine needs.
deps:
	@missing=""; for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

build: deps
	$(CARGO) build --release --locked -p runvz

# Build, make a busybox rootfs, and walk a container through its life.
demo: build
	@bash hack/demo.sh $(RUNVZ)

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

# Unit tests of the runtime, then the integration suites against the release
# binary (real namespaces, cgroups and bundles; run as root).
# nextest gives every test a time limit (.config/nextest.toml); plain cargo test
# is the fallback where nextest is missing.
test: build lint
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  RUNTIME=$(CURDIR)/$(RUNVZ) $(CARGO) nextest run --locked --workspace --no-fail-fast --profile ci; \
	else \
	  RUNTIME=$(CURDIR)/$(RUNVZ) $(CARGO) test --locked --workspace --no-fail-fast -- --test-threads=2; \
	fi

install: build
	install -D -m 0755 $(RUNVZ) $(DESTDIR)$(PREFIX)/bin/runvz

bench: build
	@bash hack/bench.sh

clean:
	$(CARGO) clean
