#!/usr/bin/env bash
#  tests/run.sh - runs every unit test binary and integration script and ends
#  with one line "N passed, M failed, K skipped".
#
#  Each program prints TAP: "ok - name", "not ok - name", "ok - name # SKIP
#  reason" (a check that could not run here: counted as skipped, never as
#  passed) and one plan line "1..N".  A program fails when it prints no plan,
#  runs a different number of checks than its plan, exits non-zero, runs
#  longer than its timeout, or leaves processes running.  A unit test whose
#  source is in tests/unit but whose binary is missing fails too.
#
#  BS_BIN           directory of the programs under test (default: bin)
#  BS_UNIT          directory of the unit test binaries
#  TESTS            optional filter: run only tests whose name matches this regex
#  BS_TEST_TIMEOUT  seconds a test may run (default 600); a script overrides
#                   it with a line "# timeout: SECONDS", and the environment
#                   overrides that with BS_TIMEOUT_<test name>=SECONDS
#  BS_TEST_GRACE    seconds between TERM and KILL on a timeout (default 30)
#  BS_UNIT_SRC, BS_SCRIPTS  where the unit test sources and the integration
#                   scripts are (default tests/unit, tests/integration)
set -u
cd "$(dirname "$0")/.."
export BS_BIN=${BS_BIN:-$PWD/bin}
BS_UNIT=${BS_UNIT:-$PWD/build/release/tests}
export BS_HELPERS=$BS_UNIT
BS_UNIT_SRC=${BS_UNIT_SRC:-tests/unit}
BS_SCRIPTS=${BS_SCRIPTS:-tests/integration}
FILTER=${TESTS:-.}
TIMEOUT=${BS_TEST_TIMEOUT:-600}
GRACE=${BS_TEST_GRACE:-30}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
OUTDIR=${BS_TEST_OUT:-$(mktemp -d /tmp/bookstore-tests.XXXXXX)}
mkdir -p "$OUTDIR"
#  Tests may leave artifacts (screenshots) beside their logs
export BS_TEST_OUT=$OUTDIR
passed=0
failed=0
skipped=0
failures=()
skips=()

#  The processes of a session (the test and everything it started, the
#  cluster's nodes included: they leave the test's process group but not
#  its session)
session_pids() { ps -o pid= -s "$1" 2>/dev/null | tr -d ' '; }

#  The timeout of a test: BS_TIMEOUT_<name>, else the script's
#  "# timeout: SECONDS" line (in its first 10 lines), else BS_TEST_TIMEOUT
timeout_of() {
    local name=$1 file=$2 var="BS_TIMEOUT_$1" t
    if [ -n "${!var:-}" ]; then echo "${!var}"; return; fi
    if [ -n "$file" ]; then
        t=$(head -n 10 "$file" | sed -nE "s/^# timeout: *([0-9]+) *\$/\\1/p" | head -n 1)
        [ -n "$t" ] && { echo "$t"; return; }
    fi
    echo "$TIMEOUT"
}

#  run_one NAME SCRIPT_FILE COMMAND...: runs one test program in a session
#  of its own, so that a timeout can stop all it started.  On a timeout the
#  test's process group gets TERM (its cleanup traps run and stop its
#  cluster), and whatever still runs in its session after the grace period
#  gets KILL.
run_one() {
    local name=$1 file=$2; shift 2
    local log="$OUTDIR/$name.log"
    local start=$SECONDS limit timer grace who rc timed_out=0 left
    limit=$(timeout_of "$name" "$file")
    setsid "$@" > "$log" 2>&1 < /dev/null &
    local pid=$!
    sleep "$limit" & timer=$!
    wait -n -p who "$pid" "$timer" 2> /dev/null
    rc=$?
    if [ "$who" = "$timer" ]; then
        timed_out=1
        kill -TERM -- "-$pid" 2>/dev/null
        sleep "$GRACE" & grace=$!
        wait -n -p who "$pid" "$grace" 2> /dev/null
        rc=$?
        if [ "$who" = "$grace" ]; then
            left=$(session_pids "$pid")
            [ -n "$left" ] && kill -KILL $left 2>/dev/null
            wait "$pid" 2> /dev/null
            rc=$?
        else
            kill "$grace" 2>/dev/null; wait "$grace" 2>/dev/null
        fi
    else
        kill "$timer" 2>/dev/null; wait "$timer" 2>/dev/null
    fi
    #  The script's own plan and checks, before the runner adds its verdicts
    local plans plan checks
    plans=$(grep -cE '^1\.\.[0-9]+' "$log")
    plan=$(sed -nE 's/^1\.\.([0-9]+).*/\1/p' "$log" | head -n 1)
    checks=$(grep -cE '^(not )?ok ' "$log")
    #  A test stops what it started; what is left would disturb the next
    #  test.  (Orphans take a moment to be reaped: wait up to 2 s.)
    local i
    for ((i = 0; i < 20; i++)); do
        left=$(session_pids "$pid")
        [ -z "$left" ] && break
        sleep 0.1
    done
    if [ -n "$left" ]; then
        {
            echo "# processes still running after the test:"
            ps -o pid=,args= -p "$(echo $left | tr ' ' ,)" 2>/dev/null | sed 's/^/#   /'
        } >> "$log"
        kill -KILL $left 2>/dev/null
        for ((i = 0; i < 50; i++)); do
            [ -z "$(session_pids "$pid")" ] && break
            sleep 0.1
        done
        [ "$timed_out" = 1 ] || echo "not ok - $name stops every process it starts" >> "$log"
    fi
    [ "$timed_out" = 1 ] && echo "not ok - $name finished within its timeout of ${limit}s" >> "$log"
    local ok notok skip
    notok=$(grep -c '^not ok ' "$log")
    if [ "$rc" -ne 0 ] && [ "$notok" -eq 0 ]; then
        echo "not ok - $name exited with status $rc" >> "$log"
    fi
    if [ "$plans" -eq 0 ]; then
        echo "not ok - $name printed no plan (a line 1..N)" >> "$log"
    elif [ "$plans" -gt 1 ]; then
        echo "not ok - $name printed $plans plans, not one" >> "$log"
    elif [ "$checks" -ne "$plan" ] && [ "$timed_out" = 0 ]; then
        echo "not ok - $name ran $checks checks but planned $plan" >> "$log"
    fi
    ok=$(grep -E '^ok ' "$log" | grep -cvE '# *SKIP')
    skip=$(grep -E '^ok ' "$log" | grep -cE '# *SKIP')
    notok=$(grep -c '^not ok ' "$log")
    passed=$((passed + ok))
    failed=$((failed + notok))
    skipped=$((skipped + skip))
    grep -E '^(not )?ok ' "$log" | sed "s/^/[$name] /"
    local line
    while IFS= read -r line; do
        skips+=("[$name] ${line#ok - }")
    done < <(grep -E '^ok .*# *SKIP' "$log")
    if [ "$notok" -gt 0 ]; then
        failures+=("$name")
        echo "---- $name log (last 60 lines) ----"
        tail -n 60 "$log"
        echo "----"
    fi
    echo "# $name: $ok passed, $notok failed, $skip skipped in $((SECONDS - start))s"
}

#  The unit tests are the sources in tests/unit: each must have its binary
for src in "$BS_UNIT_SRC"/test_*.c; do
    [ -f "$src" ] || continue
    name=$(basename "$src" .c)
    [[ $name =~ $FILTER ]] || continue
    if [ -x "$BS_UNIT/$name" ] && [ -f "$BS_UNIT/$name" ]; then
        run_one "$name" "" "$BS_UNIT/$name"
    else
        log="$OUTDIR/$name.log"
        echo "not ok - $name: no executable $BS_UNIT/$name (build the unit tests)" > "$log"
        echo "[$name] $(cat "$log")"
        failed=$((failed + 1))
        failures+=("$name")
    fi
done

for t in "$BS_SCRIPTS"/test_*.sh; do
    [ -f "$t" ] || continue
    name=$(basename "$t" .sh)
    [[ $name =~ $FILTER ]] || continue
    run_one "$name" "$t" bash "$t"
done

echo "# logs in $OUTDIR"
#  Every skip with its reason, so that what did not run is not missed
for line in "${skips[@]}"; do echo "# skipped $line"; done
if [ ${#failures[@]} -gt 0 ]; then
    #  Every failed check again, so that the end of the output names them all
    for name in "${failures[@]}"; do
        grep -E '^not ok ' "$OUTDIR/$name.log" | sed "s/^/# [$name] /"
    done
    echo "# failing: ${failures[*]}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
