# Warren — the two commands a newcomer needs are `make demo` and `make test`.
# Everything here runs as root on Debian 12 (CI does); `make deps` installs
# what is missing from Debian's packages and is idempotent.

SHELL    := /bin/bash
GO       ?= go
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.Version=$(VERSION)
# grpcnotrace: gRPC (containerd's client) without golang.org/x/net/trace's
# debug pages, which nothing here serves: 0.3 MB of the binary (DESIGN §8).
TAGS     := grpcnotrace
export CGO_ENABLED := 0

# Debian packages the build, the tests, the demo and the image need.
DEB_PACKAGES := containerd runc crun nftables iproute2 busybox-static systemd-container \
                docker-registry curl ca-certificates pebble wrk nginx-light

.PHONY: all build deps test unit lint bench demo demo-stop clean

all: build

build: bin/warren bin/warrenctl

bin/warren: FORCE
	$(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $@ ./daemons/warren

bin/warrenctl: FORCE
	$(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $@ ./ctl/warrenctl

FORCE:

# deps: install what is missing, nothing else.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else echo "make deps: all Debian packages present"; fi
	@$(GO) mod download

# test: the whole suite. Tests that need root (containerd, nftables,
# namespaces) run when run as root, as CI does; so do the appliance tests
# (make qa: the image tree built, hosts booted under a real systemd), after
# the rest, since they want the machine to themselves.
test: deps build lint
	$(GO) test -count=1 -timeout 25m ./...
	cd third_party/raft && $(GO) vet . && $(GO) test -count=1 -run Warren .
	cd third_party/wireguard-go && $(GO) vet ./device && $(GO) test -count=1 -run Warren ./device
	cd third_party/go-msgpack && $(GO) vet ./codec
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory qa; \
	else echo "make test: not root, so the appliance tests (make qa) did not run"; fi

# unit: the fast tests only (no root needed).
unit:
	$(GO) test -short ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

# bench: the figures table of DESIGN.md §8, printed (never asserted).
bench: deps build
	$(GO) run ./qa/bench

# demo: a real one-node cluster on a real containerd, an example service,
# and a request to it through its published port.
demo: deps build
	./qa/demo/demo.sh

demo-stop:
	./qa/demo/demo.sh stop

clean:
	rm -rf bin

# ---------------------------------------------------------------------------
# The appliance (issue 4): units, the OS image, qa hosts. image/README.md and
# units/README.md explain them.

# units-check: systemd-analyze verify + security scores against
# units/security-thresholds (needs only the `systemd` package: PID 1 need not
# be systemd). `make test` runs it.
.PHONY: units-check image image-tree image-disk image-deps qa qa-slow
test: units-check
units-check: deps
	./units/check.sh

# Heavy Debian packages that only the image and the qa targets need; `make
# deps` (and so `make test`) does not install them.
IMAGE_DEB_PACKAGES := mkosi debootstrap e2fsprogs fdisk zstd qemu-system-x86 \
                      openssh-client iproute2 systemd-container

image-deps:
	@missing=""; for p in $(IMAGE_DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make image-deps: installing$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

IMAGE_OUT   := image/out
# What the image is made of, apart from the binaries (qa hosts get the
# current bin/warren and bin/warrenctl bound in at boot, so a code change
# does not rebuild the tree).
IMAGE_INPUTS := mkosi.conf image/postinst.sh image/finalize.sh \
                $(shell find image/extra units -type f 2>/dev/null) units/README.md image/cloud-init/README.md
MKOSI       := mkosi --force

# The staging tree mkosi copies in (ExtraTrees=image/out/staging).
$(IMAGE_OUT)/staging: build $(IMAGE_INPUTS)
	rm -rf $@ && mkdir -p $@/usr/bin $@/usr/lib/systemd/system $@/usr/lib/systemd/system-preset \
	  $@/usr/lib/sysusers.d $@/usr/lib/tmpfiles.d $@/usr/share/doc/warren $(IMAGE_OUT)/cache/apt
	install -m 0755 bin/warren bin/warrenctl $@/usr/bin/
	install -m 0644 units/*.service units/*.socket $@/usr/lib/systemd/system/
	for d in units/*.*.d; do install -D -m 0644 -t $@/usr/lib/systemd/system/$$(basename $$d) $$d/*; done
	install -m 0644 units/system-preset/*.preset $@/usr/lib/systemd/system-preset/
	install -m 0644 units/sysusers.d/warren.conf $@/usr/lib/sysusers.d/
	install -m 0644 units/tmpfiles.d/warren.conf $@/usr/lib/tmpfiles.d/
	install -m 0644 units/README.md $@/usr/share/doc/warren/units.md
	install -m 0644 image/cloud-init/README.md $@/usr/share/doc/warren/warren.conf.md

# image-tree: the directory tree the qa hosts boot (no kernel).
image-tree: $(IMAGE_OUT)/tree/.warren-built
$(IMAGE_OUT)/tree/.warren-built: $(IMAGE_INPUTS) | image-deps
	$(MAKE) --no-print-directory $(IMAGE_OUT)/staging
	@start=$$(date +%s); \
	$(MKOSI) --format=directory --output=$(IMAGE_OUT)/tree build && \
	echo "$$(( $$(date +%s) - start ))" > $(IMAGE_OUT)/tree.build-seconds && \
	touch $@ && echo "image-tree: $(IMAGE_OUT)/tree in $$(cat $(IMAGE_OUT)/tree.build-seconds) s"

# image-disk: a GPT disk image (ext4 root, label "root") with a Debian kernel
# and a generic initramfs inside, copied out for qemu's -kernel/-initrd,
# and the disk compressed for flashing (zstdcat warren.raw.zst | dd of=...).
image-disk: $(IMAGE_OUT)/warren.raw.zst
$(IMAGE_OUT)/warren.raw.zst: $(IMAGE_INPUTS) | image-deps
	$(MAKE) --no-print-directory $(IMAGE_OUT)/staging
	@start=$$(date +%s); \
	$(MKOSI) --format=gpt_ext4 --output=$(IMAGE_OUT)/warren.raw \
	  --package=linux-image-amd64,initramfs-tools \
	  --environment=WARREN_KERNEL_OUT=$(abspath $(IMAGE_OUT))/warren build && \
	zstd -q -f -T0 -6 $(IMAGE_OUT)/warren.raw -o $@ && \
	echo "$$(( $$(date +%s) - start ))" > $(IMAGE_OUT)/disk.build-seconds && \
	echo "image-disk: $(IMAGE_OUT)/warren.raw (+ .zst, .vmlinuz, .initrd) in $$(cat $(IMAGE_OUT)/disk.build-seconds) s"

# image: both, rebuilt from scratch with the current binaries.
image:
	rm -f $(IMAGE_OUT)/tree/.warren-built $(IMAGE_OUT)/warren.raw.zst
	$(MAKE) --no-print-directory image-tree image-disk

# qa: the nspawn hosts booted from the image tree (qa/nspawn): socket
# activation, restarts, watchdog, agent restart, reboot, SSH, cloud-init.
qa: deps image-deps build image-tree
	WARREN_QA=nspawn $(GO) test -count=1 -timeout 30m -v ./qa/nspawn/

# qa-slow: the disk image booted in qemu (software emulation).
qa-slow: deps image-deps build image-disk
	WARREN_QA=qemu $(GO) test -count=1 -timeout 20m -v -run 'TestQemu' ./qa/nspawn/
