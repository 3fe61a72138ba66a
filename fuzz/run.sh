#!/bin/sh
# Runs afl-fuzz on every harness of a fuzz build for a fixed time each and
# summarises what it found. Called by `make fuzz`; see fuzz/README.md.
#   usage: fuzz/run.sh BUILD_DIR SECONDS
# Each run starts afresh in BUILD_DIR/findings/<short>/ (the previous run's
# findings there are removed). Exits 1 if any harness found a crash or hang.
set -eu

if [ $# -ne 2 ]; then
	echo "usage: $0 build-dir seconds" >&2
	exit 2
fi
build=$1
seconds=$2
srcdir=$(cd "$(dirname "$0")" && pwd)

# A container has no CPU frequency governor to check and usually a
# core_pattern that pipes to a helper; neither matters for short runs.
# The harnesses never reach the terminal UI.
export AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_TRY_AFFINITY=1
# A sanitizer report must end in a signal for afl-fuzz to count a crash.
export ASAN_OPTIONS="abort_on_error=1:symbolize=0:detect_leaks=0:allocator_may_return_null=1"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1:symbolize=0"

# Prints the value of one field of a fuzzer_stats file, or 0.
stat_field()
{
	sed -n "s/^$2 *: *//p" "$1" | head -n 1 | grep . || echo 0
}

# Counts the inputs afl-fuzz saved in one findings directory.
count_inputs()
{
	if [ -d "$1" ]; then
		find "$1" -type f -name 'id:*' | wc -l | tr -d ' '
	else
		echo 0
	fi
}

found=""
for src in "$srcdir"/fuzz_*.cc; do
	short=$(basename "$src" .cc)
	short=${short#fuzz_}
	harness=$build/fuzz/fuzz_$short
	out=$build/findings/$short
	if [ ! -x "$harness" ]; then
		echo "fuzz: $harness is missing: build with MAILD_FUZZ=ON first" >&2
		exit 2
	fi
	rm -rf "$out"
	mkdir -p "$build/findings"
	if ! afl-fuzz -V "$seconds" -i "$srcdir/corpus/$short" -o "$out" -- "$harness" \
	    >"$out.log" 2>&1; then
		echo "fuzz: afl-fuzz failed on $short; its output:" >&2
		tail -n 30 "$out.log" >&2
		exit 2
	fi
	# afl-fuzz writes to a subdirectory per instance ("default").
	stats=$out/default/fuzzer_stats
	execs=$(stat_field "$stats" execs_done)
	paths=$(stat_field "$stats" corpus_count)
	crashes=$(count_inputs "$out/default/crashes")
	hangs=$(count_inputs "$out/default/hangs")
	printf '%-12s %10s execs %6s paths %4s crashes %4s hangs\n' "$short" "$execs" "$paths" "$crashes" "$hangs"
	if [ "$crashes" != 0 ] || [ "$hangs" != 0 ]; then
		found="$found $short"
	fi
done

if [ -n "$found" ]; then
	echo
	for short in $found; do
		echo "fuzz: $short found crashes or hangs in $build/findings/$short/default/{crashes,hangs}/"
		echo "  copy each input to fuzz/regressions/$short/ (a short descriptive name), fix the bug,"
		echo "  and check that 'make check' replays it cleanly"
	done
	exit 1
fi
