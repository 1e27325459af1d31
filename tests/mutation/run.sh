#!/usr/bin/env bash
#  tests/mutation/run.sh - proves that the guarantee tests can fail.
#
#  Each mutant is bookstore-node built with one guarantee deliberately broken
#  (a BS_MUTANT_<NAME> block in its sources; `make mutants` puts it in
#  build/mutant/<name>/bin beside links to the other programs in bin/).
#  For each, the integration test that guards the guarantee runs against the
#  mutant and must fail, on the check that guards it: a "not ok - " line
#  matching the mutant's pattern.  One line per mutant:
#      ok - <guarantee>: <test> fails against mutant <name>
#  A test that passes, fails only elsewhere, outlives the time limit or
#  leaves a process running is "not ok".
#
#  tests/mutation/run.sh [REGEX]   only the mutants whose name matches
#  BS_HELPERS            the test helper programs (default build/release/tests)
#  BS_MUTATION_TIMEOUT   seconds one test may take (default 300)
#  BS_MUTATION_SKIP_MISSING=1   a mutant that is not built is skipped
#                        rather than failed (the suite's test_mutation)
#  BS_TEST_OUT           where logs go (kept in <it>/mutation)
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
MUTANT_DIR=$ROOT/build/mutant
export BS_HELPERS=${BS_HELPERS:-$ROOT/build/release/tests}
#  test_bad_input and test_cache run the probe and stale_check helpers
for helper in probe stale_check; do
    if [ ! -x "$BS_HELPERS/$helper" ]; then
        echo "# $BS_HELPERS/$helper is missing: the tests that need it cannot run (make bins)"
    fi
done
FILTER=${1:-.}
TIMEOUT=${BS_MUTATION_TIMEOUT:-300}
if [ -n "${BS_TEST_OUT:-}" ]; then
    OUT=$BS_TEST_OUT/mutation
    mkdir -p "$OUT"
else
    OUT=$(mktemp -d /tmp/bookstore-mutation.XXXXXX)
fi

#  mutant | guarantee | test | pattern of the failing check (grep -E)
MUTANTS=(
    "oversell|no oversell: successful buys never exceed the stock|test_concurrent_buys|100 concurrent buys of 10 copies: exactly 10 succeed"
    "no_dedup|exactly-once: a retried request takes effect once|test_exactly_once|a retried restock adds its copies once"
    "forget_store|nothing acknowledged is lost on SIGKILL|test_restart_alone|catalog-1 kept the buy's stock"
    "follower_skips_prices|replicas of a partition converge|test_replication|every replica of each partition reports the same digest"
    "no_invalidation|no read older than an acknowledged write|test_cache|after a buy the next lookup shows the new stock"
    "refused_write_applied|bad input is refused and changes nothing|test_bad_input|no bad input changed any replica's digest"
)

failed=0
skipped=0
total_start=$SECONDS

#  The pids (not zombies) left in a session
s_session_pids() {
    ps -e -o pid=,sid=,stat= | awk -v sid="$1" '$2 == sid && $3 !~ /^Z/ { print $1 }'
}

#  run_mutant NAME GUARANTEE TEST PATTERN
run_mutant() {
    local name=$1 guarantee=$2 test=$3 pattern=$4
    local bin=$MUTANT_DIR/$name/bin line="$guarantee: $test fails against mutant $name"
    local log=$OUT/$name.log
    if [ ! -x "$bin/bookstore-node" ]; then
        if [ "${BS_MUTATION_SKIP_MISSING:-0}" = 1 ]; then
            echo "ok - $line # SKIP mutant not built (make mutants)"
            skipped=$((skipped + 1))
        else
            echo "not ok - $line (mutant not built: make mutants)"
            failed=$((failed + 1))
        fi
        return
    fi
    local start=$SECONDS
    #  In a session of its own, so that whatever the test leaves running
    #  can be found (the launcher puts each node in a process group of its
    #  own, but in the same session); its output stays in the log, where
    #  its ok / not ok lines cannot be counted as this script's
    BS_BIN=$bin timeout "$TIMEOUT" setsid bash -c 'echo $$ > "$0"; exec bash "$1"' \
        "$OUT/$name.sid" "tests/integration/$test.sh" > "$log" 2>&1
    local rc=$? sid
    sid=$(cat "$OUT/$name.sid" 2>/dev/null)
    rm -f "$OUT/$name.sid"
    local why=
    if [ "$rc" = 124 ]; then
        why="timed out after ${TIMEOUT}s"
    elif [ "$rc" = 0 ] && ! grep -q '^not ok ' "$log"; then
        why="the test passed"
    elif ! grep -qE "^not ok - .*($pattern)" "$log"; then
        why="the test failed, but not on '$pattern'"
    fi
    #  The test's cleanup kills what it started; anything still there is
    #  reported, then killed by pid
    local left= deadline=$((SECONDS + 5))
    if [ -n "$sid" ]; then
        left=$(s_session_pids "$sid")
        while [ -n "$left" ] && [ $SECONDS -lt $deadline ]; do
            sleep 0.1
            left=$(s_session_pids "$sid")
        done
        if [ -n "$left" ]; then
            why="${why:+$why; }left running: $(echo $left)"
            for pid in $left; do kill -KILL "$pid" 2>/dev/null; done
        fi
    fi
    #  A failing test keeps its cluster's directory: keep its log, drop the rest
    local kept
    kept=$(sed -nE 's|^# kept (/tmp/bookstore-it\.[A-Za-z0-9]+)$|\1|p' "$log")
    if [ -n "$kept" ] && [ -d "$kept" ]; then
        cp "$kept/cluster.log" "$OUT/$name-cluster.log" 2>/dev/null
        rm -rf "$kept"
    fi
    grep -E '^not ok ' "$log" | sed 's/^/#   /'
    if [ -z "$why" ]; then
        echo "ok - $line"
    else
        echo "not ok - $line ($why; log: $log)"
        failed=$((failed + 1))
    fi
    echo "# $name: $((SECONDS - start))s"
}

count=0
for m in "${MUTANTS[@]}"; do
    IFS='|' read -r name guarantee test pattern <<< "$m"
    [[ $name =~ $FILTER ]] || continue
    count=$((count + 1))
    run_mutant "$name" "$guarantee" "$test" "$pattern"
done
echo "# $count mutants: $((count - failed - skipped)) caught, $failed not, $skipped skipped, in $((SECONDS - total_start))s"
if [ "$failed" = 0 ] && [ -z "${BS_TEST_OUT:-}" ]; then
    rm -rf "$OUT"
else
    echo "# logs in $OUT"
fi
[ "$failed" = 0 ] && [ "$count" -gt 0 ]
