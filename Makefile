# runvz — build, demo, test, install, bench.
# Every target that needs system packages installs them itself (`make deps`),
# so the README's commands work on a fresh Debian 12 machine.

CARGO   ?= cargo
PREFIX  ?= /usr/local
RUNVZ   := target/release/runvz
# Packages the build, the demo and the tests need (Debian names).
PACKAGES := busybox-static libseccomp-dev pkg-config runc hyperfine procps util-linux \
            qemu-system-x86 cpio criu iptables iproute2 debootstrap e2fsprogs \
            libelf-dev zlib1g-dev patch btrfs-progs xfsprogs time

.PHONY: all build deps demo test test-v2 lint revendor-check install bench layout clean

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

# `runvz --version` names the commit it was built from, as runc's does.
build: deps
	RUNVZ_COMMIT=$$(git rev-parse --short HEAD 2>/dev/null || echo unknown) $(CARGO) build --release --locked -p runvz

# Build, make a busybox rootfs, and walk a container through its life.
demo: build
	@bash hack/demo.sh $(RUNVZ)

# lint also proves vendor/libcontainer is the published crate plus patches/.
lint: revendor-check
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

revendor-check:
	@bash hack/revendor.sh --check

# Unit + integration tests on this host (cgroup v1 here) under nextest (every test
# has a time limit, .config/nextest.toml), then the integration tests again in a
# cgroup v2 VM; one closing count for both.
test: build lint
	@bash hack/test.sh

# Only the cgroup v2 VM run (boots Debian's kernel under qemu).
test-v2: build
	$(CARGO) build --locked -p runtime-tests --tests
	@bash hack/vm/run-tests.sh

install: build
	install -D -m 0755 $(RUNVZ) $(DESTDIR)$(PREFIX)/bin/runvz

# hyperfine against runc, then the load test at full size: 1,000 containers
# (half of them system containers) at once (#14).
bench: build
	@bash hack/bench.sh
	RUNTIME=$(CURDIR)/$(RUNVZ) RUNVZ_LOAD_CONTAINERS=1000 $(CARGO) nextest run --locked -p runtime-tests --test load --no-capture

# Rewrites hack/hot-functions.txt, the functions a start runs, which build.rs
# has the linker place together (hack/layout.sh says how and why); commit it.
layout: deps
	@bash hack/layout.sh

clean:
	$(CARGO) clean
