# A thin wrapper around CMake; see README.md.
#   make deps     install the Debian packages the build and tests need
#   make build    configure and build in ./build (test hooks on)
#   make run      build and start the family in the foreground (./run/)
#   make check    build and run every test (SANITIZE=1: under ASan+UBSan)
#   make install  build without test hooks and install (DESTDIR, PREFIX)
#   make clean    remove build trees and ./run/

PREFIX   ?= /usr/local
DESTDIR  ?=
SANITIZE ?= 0
JOBS     ?= $(shell nproc)
# Warnings are errors in CI (.ci/run sets CI=1).
WERROR   ?= $(if $(CI),ON,OFF)

ifeq ($(SANITIZE),1)
BUILD ?= build-sanitize
SANITIZE_FLAG = ON
else
BUILD ?= build
SANITIZE_FLAG = OFF
endif
RELEASE_BUILD = build-release

DEBIAN_PACKAGES = g++ make cmake pkg-config libtls-dev libevent-dev \
	libsqlite3-dev libseccomp-dev libargon2-dev libldns-dev libssl-dev \
	libcriterion-dev mandoc swaks openssl python3 passwd

.PHONY: all deps build run check install clean

all: build

deps:
	@missing=""; \
	for p in $(DEBIAN_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		echo "installing:$$missing"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing || \
		{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; }; \
	else \
		echo "maild needs these Debian packages:$$missing"; \
		echo "install them with:"; \
		echo "  sudo apt-get install -y$$missing"; \
		exit 1; \
	fi

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DMAILD_TEST_HOOKS=ON -DMAILD_WERROR=$(WERROR) -DMAILD_SANITIZE=$(SANITIZE_FLAG)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

run: build
	sh etc/dev/run.sh $(BUILD)

check: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

install: deps
	cmake -S . -B $(RELEASE_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMAILD_TESTS=OFF \
		-DMAILD_TEST_HOOKS=OFF -DMAILD_WERROR=$(WERROR) -DCMAKE_INSTALL_PREFIX=$(PREFIX)
	cmake --build $(RELEASE_BUILD) -j $(JOBS)
	DESTDIR=$(DESTDIR) cmake --install $(RELEASE_BUILD)

clean:
	rm -rf build build-sanitize $(RELEASE_BUILD) run
