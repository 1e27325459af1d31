#!/usr/bin/env bash
#  tests/run.sh - runs every unit test binary and integration script and ends
#  with one line "N passed, M failed".
#
#  BS_BIN   directory of the programs under test (default: bin)
#  BS_UNIT  directory of the unit test binaries
#  TESTS    optional filter: run only tests whose file name matches this regex
set -u
cd "$(dirname "$0")/.."
export BS_BIN=${BS_BIN:-$PWD/bin}
BS_UNIT=${BS_UNIT:-$PWD/build/release/tests}
export BS_HELPERS=$BS_UNIT
FILTER=${TESTS:-.}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
OUTDIR=${BS_TEST_OUT:-$(mktemp -d /tmp/bookstore-tests.XXXXXX)}
mkdir -p "$OUTDIR"
#  Tests may leave artifacts (screenshots) beside their logs
export BS_TEST_OUT=$OUTDIR
passed=0
failed=0
failures=()

#  Runs one test program; it prints "ok - name" / "not ok - name" lines.
#  A program that exits non-zero without printing "not ok" counts as a failure.
run_one() {
    local name=$1; shift
    local log="$OUTDIR/$name.log"
    local start=$SECONDS
    "$@" > "$log" 2>&1
    local rc=$?
    local ok notok
    ok=$(grep -c '^ok ' "$log")
    notok=$(grep -c '^not ok ' "$log")
    if [ "$rc" -ne 0 ] && [ "$notok" -eq 0 ]; then
        notok=1
        echo "not ok - $name exited with status $rc" >> "$log"
    fi
    passed=$((passed + ok))
    failed=$((failed + notok))
    grep -E '^(not )?ok |^# SKIP' "$log" | sed "s/^/[$name] /"
    if [ "$notok" -gt 0 ]; then
        failures+=("$name")
        echo "---- $name log (last 60 lines) ----"
        tail -n 60 "$log"
        echo "----"
    fi
    echo "# $name: $ok passed, $notok failed in $((SECONDS - start))s"
}

for t in "$BS_UNIT"/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    [[ $name =~ $FILTER ]] || continue
    run_one "$name" "$t"
done

for t in tests/integration/test_*.sh; do
    [ -f "$t" ] || continue
    name=$(basename "$t" .sh)
    [[ $name =~ $FILTER ]] || continue
    run_one "$name" bash "$t"
done

echo "# logs in $OUTDIR"
if [ ${#failures[@]} -gt 0 ]; then
    #  Every failed check again, so that the end of the output names them all
    for name in "${failures[@]}"; do
        grep -E '^not ok ' "$OUTDIR/$name.log" | sed "s/^/# [$name] /"
    done
    echo "# failing: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
