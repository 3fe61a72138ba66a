# A thin wrapper around CMake; see README.md.
#   make deps     install the Debian packages the build and tests need
#   make build    configure and build in ./build (test hooks on)
#   make run      build and start the family in the foreground (./run/)
#   make check    build and run every test (SANITIZE=1: under ASan+UBSan)
#   make memcheck run every unit test program under valgrind memcheck
#   make fuzz     run AFL++ on every fuzz harness (FUZZ_SECONDS each)
#   make bench    build and run the benchmark (docs/PERFORMANCE.md; BENCH_ARGS)
#   make bench-quick  its few-second run, as make check runs it
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
FUZZ_BUILD = build-fuzz
FUZZ_SECONDS ?= 60
# Passed to bench/run.py, e.g. BENCH_ARGS="--target 127.0.0.1:2525 --rcpt u@example.org".
BENCH_ARGS ?=

# The sanitizer run: UBSan prints a stack trace and stops at its first
# report (the build already makes its checks non-recoverable), so a report
# from any test program or role fails its test.
ifeq ($(SANITIZE),1)
TEST_ENV = UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
else
TEST_ENV =
endif

# Criterion runs each test in a re-executed worker whose exit status it
# ignores: every process writes its own log, and any error or definite
# or indirect leak in one fails the program.
VALGRIND = valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect \
	--trace-children=yes

DEBIAN_PACKAGES = g++ make cmake pkg-config libtls-dev libevent-dev \
	libsqlite3-dev libseccomp-dev libargon2-dev libldns-dev libssl-dev \
	libcriterion-dev mandoc swaks openssl python3 passwd valgrind afl++

.PHONY: all deps build run check memcheck fuzz bench bench-quick install clean

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
	cd $(BUILD) && $(TEST_ENV) ctest --output-on-failure -j $(JOBS)

memcheck: build
	@if [ "$(SANITIZE)" = 1 ]; then echo "memcheck: valgrind and ASan do not mix; run without SANITIZE=1"; exit 1; fi
	@rm -rf $(BUILD)/memcheck && mkdir -p $(BUILD)/memcheck; status=0; \
	for test in $(BUILD)/tests/test_*; do \
		[ -f "$$test" ] && [ -x "$$test" ] || continue; \
		name=$$(basename $$test); \
		echo "memcheck: $$name"; \
		$(VALGRIND) --log-file=$(BUILD)/memcheck/$$name.%p.log $$test --jobs 1 \
			>$(BUILD)/memcheck/$$name.out 2>&1 || { cat $(BUILD)/memcheck/$$name.out; status=1; }; \
		for log in $(BUILD)/memcheck/$$name.*.log; do \
			if grep -q 'ERROR SUMMARY: [1-9]' $$log; then cat $$log; status=1; fi; \
		done; \
	done; \
	exit $$status

fuzz: deps
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_CXX_COMPILER=afl-clang-fast++ -DMAILD_FUZZ=ON -DMAILD_SANITIZE=ON \
		-DMAILD_TESTS=OFF
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	sh fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

bench: build
	/usr/bin/python3 bench/run.py --build-dir $(BUILD) $(BENCH_ARGS)

bench-quick: build
	/usr/bin/python3 bench/run.py --build-dir $(BUILD) --quick $(BENCH_ARGS)

install: deps
	cmake -S . -B $(RELEASE_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMAILD_TESTS=OFF \
		-DMAILD_TEST_HOOKS=OFF -DMAILD_WERROR=$(WERROR) -DCMAKE_INSTALL_PREFIX=$(PREFIX)
	cmake --build $(RELEASE_BUILD) -j $(JOBS)
	DESTDIR=$(DESTDIR) cmake --install $(RELEASE_BUILD)

clean:
	rm -rf build build-sanitize $(RELEASE_BUILD) $(FUZZ_BUILD) run
