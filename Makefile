# Warren — the two commands a newcomer needs are `make demo` and `make test`.
# Everything here runs as root on Debian 12 (CI does); `make deps` installs
# what is missing from Debian's packages and is idempotent.

SHELL    := /bin/bash
GO       ?= go
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.Version=$(VERSION)
export CGO_ENABLED := 0

# Debian packages the build, the tests, the demo and the image need.
DEB_PACKAGES := containerd runc nftables iproute2 busybox-static systemd-container \
                docker-registry curl ca-certificates

.PHONY: all build deps test unit lint bench demo demo-stop clean

all: build

build: bin/warren bin/warrenctl

bin/warren: FORCE
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./daemons/warren

bin/warrenctl: FORCE
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./ctl/warrenctl

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
# namespaces) run when run as root, as CI does.
test: deps build lint
	$(GO) test -count=1 -timeout 25m ./...

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
