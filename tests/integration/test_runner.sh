#!/usr/bin/env bash
#  The test runner itself: skips count as skips, a script must run its plan,
#  a missing unit binary fails, a script past its timeout is stopped (its
#  cleanup trap runs; what ignores TERM gets KILL; the processes it started
#  in groups of their own stop too), and a test that leaves processes
#  running fails.  Runs tests/run.sh on small scripts made up here.
source "$(dirname "$0")/lib.sh"
bs_plan 14

W=$BS_TMP/runner
mkdir -p "$W/scripts" "$W/src" "$W/unit" "$W/out"
#  Every pid a made-up script starts is written here, to be stopped at exit
PIDS=$W/pids
touch "$PIDS"
stop_started() {
    local p
    for p in $(cat "$PIDS"); do kill -KILL "$p" 2>/dev/null; done
    bs_cleanup
}
trap stop_started EXIT

#  A process that leaves its parent's process group, as the cluster's
#  nodes do
cat > "$W/own_group.py" <<'EOF'
import os, sys
os.setpgid(0, 0)
for name in sys.argv[1:]:
    with open(name, "a") as f:
        f.write("%d\n" % os.getpid())
os.execvp("sleep", ["sleep", "300"])
EOF

script() { cat > "$W/scripts/test_$1.sh"; }
script a_pass <<'EOF'
echo "1..2"
echo "ok - one"
echo "ok - two"
EOF
script b_skip <<'EOF'
echo "1..2"
echo "ok - runs here"
echo "ok - needs a tool # SKIP the tool is not installed"
EOF
script c_noplan <<'EOF'
echo "ok - one"
EOF
script d_short <<'EOF'
echo "1..3"
echo "ok - one"
echo "ok - two"
exit 0
EOF
script e_timeout <<EOF
# timeout: 2
trap 'echo trap ran > "$W/e_trap"' EXIT
echo "1..1"
python3 "$W/own_group.py" "$PIDS" &
while [ ! -s "$PIDS" ]; do sleep 0.05; done
sleep 300
echo "ok - never"
EOF
script f_stubborn <<EOF
# timeout: 2
trap '' TERM
echo "1..1"
echo \$\$ >> "$PIDS"
while :; do sleep 0.2; done
EOF
script g_leaves <<EOF
echo "1..1"
python3 "$W/own_group.py" "$PIDS" "$W/g_pid" &
while [ ! -s "$W/g_pid" ]; do sleep 0.05; done
echo "ok - done, but a process runs on"
EOF
#  A unit test whose binary was never built
echo 'int main (void) { return 0; }' > "$W/src/test_unbuilt.c"

BS_SCRIPTS=$W/scripts BS_UNIT_SRC=$W/src BS_UNIT=$W/unit BS_TEST_OUT=$W/out \
    BS_TEST_GRACE=2 TESTS= "$BS_ROOT/tests/run.sh" > "$W/run.log" 2>&1
rc=$?
sed 's/^/#   /' "$W/run.log"
last=$(tail -n 1 "$W/run.log")

#  a_pass 2, b_skip 1 (+1 skipped), d_short 2, g_leaves 1 pass; c_noplan's
#  own ok passes too
check "the last line counts passes, failures and skips apart" \
    test "$last" = "7 passed, 6 failed, 1 skipped"
check "the runner exits non-zero when a test fails" test "$rc" -ne 0
check "a skip is shown with its reason" \
    grep -q '^# skipped \[test_b_skip\] needs a tool # SKIP the tool is not installed' "$W/run.log"
check "a script with no plan fails" grep -q 'not ok - test_c_noplan printed no plan' "$W/run.log"
check "a script that runs fewer checks than its plan fails" \
    grep -q 'not ok - test_d_short ran 2 checks but planned 3' "$W/run.log"
check "a missing unit binary fails" grep -q 'not ok - test_unbuilt: no executable' "$W/run.log"
check "a script past its timeout fails" \
    grep -q 'not ok - test_e_timeout finished within its timeout of 2s' "$W/run.log"
check "a stopped script's cleanup trap runs" test -s "$W/e_trap"
check "a script that ignores TERM fails on its timeout" \
    grep -q 'not ok - test_f_stubborn finished within its timeout of 2s' "$W/run.log"
check "a test that leaves a process running fails" \
    grep -q 'not ok - test_g_leaves stops every process it starts' "$W/run.log"
#  (a killed process takes a moment to go: wait up to 5 s)
still_alive() {
    local p
    alive=
    for p in $(cat "$PIDS"); do
        [ -e "/proc/$p" ] && [ "$(awk '{print $3}' "/proc/$p/stat" 2> /dev/null)" != Z ] && alive="$alive $p"
    done
    [ -n "$alive" ]
}
deadline=$((SECONDS + 5))
while still_alive && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
check "every process the scripts started is stopped (left:${alive:- none})" test -z "$alive"
check "the passing script passes" grep -q '^# test_a_pass: 2 passed, 0 failed, 0 skipped' "$W/run.log"

#  A passing run: exit status 0, and ", 0 skipped" on the last line
rm -f "$W/src/test_unbuilt.c"
BS_SCRIPTS=$W/scripts BS_UNIT_SRC=$W/src BS_UNIT=$W/unit BS_TEST_OUT=$W/out2 \
    TESTS='^test_a_pass$' "$BS_ROOT/tests/run.sh" > "$W/run2.log" 2>&1
rc=$?
check "a passing run exits 0" test "$rc" = 0
check "a passing run ends with its counts, 0 skipped" test "$(tail -n 1 "$W/run2.log")" = "2 passed, 0 failed, 0 skipped"
