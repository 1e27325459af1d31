#!/usr/bin/env bash
#  tests/fuzz/run.sh - runs every libFuzzer target for a while and reports.
#
#  Each target of build/fuzz/fuzz/ runs for FUZZ_SECONDS from its seed
#  corpus (tests/fuzz/corpus/<target>) and a working corpus that grows from
#  run to run (build/fuzz/work/corpus/<target>; the seeds in the repository
#  are never written).  A crash, a leak, a timeout or a memory blow-up stops
#  that target and leaves its input in build/fuzz/work/crashes/<target>/.
#  At the end one line per target: runs, executions per second, coverage
#  (edges), features, corpus size, and its crashes; the summary is also in
#  build/fuzz/work/summary.txt.  Exit 1 when any target crashed.
#
#  FUZZ_SECONDS  seconds per target (600)
#  FUZZ_TARGETS  regular expression choosing targets by name (all)
#  FUZZ_NICE     niceness of the fuzzing processes (19)
#  FUZZ_BIN      the targets' directory (build/fuzz/fuzz)
#  FUZZ_WORK     working corpora, crashes and logs (build/fuzz/work)
set -u
cd "$(dirname "$0")/../.."
SECONDS_EACH=${FUZZ_SECONDS:-600}
FILTER=${FUZZ_TARGETS:-.}
NICENESS=${FUZZ_NICE:-19}
BIN=${FUZZ_BIN:-$PWD/build/fuzz/fuzz}
WORK=${FUZZ_WORK:-$PWD/build/fuzz/work}

targets=()
for t in "$BIN"/fuzz_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    [[ $name =~ $FILTER ]] && targets+=("$name")
done
if [ ${#targets[@]} -eq 0 ]; then
    echo "run.sh: no fuzz targets in $BIN (build them: make VARIANT=fuzz fuzz-targets)" >&2
    exit 2
fi
mkdir -p "$WORK"
echo "# fuzzing ${#targets[@]} target(s) for ${SECONDS_EACH}s each (nice $NICENESS); work in $WORK"

summary=$WORK/summary.txt
printf '%-14s %10s %9s %6s %7s %7s %s\n' target runs exec/s cov ft corpus crashes > "$summary"
crashed=0
for name in "${targets[@]}"; do
    corpus=$WORK/corpus/$name
    crashes=$WORK/crashes/$name
    log=$WORK/$name.log
    mkdir -p "$corpus" "$crashes"
    seeds=tests/fuzz/corpus/$name
    [ -d "$seeds" ] || seeds=
    #  Node and control inputs hold several messages each
    max_len=4096
    case $name in fuzz_node|fuzz_control) max_len=16384 ;; esac
    echo "# $name: ${SECONDS_EACH}s"
    nice -n "$NICENESS" "$BIN/$name" -max_total_time="$SECONDS_EACH" -print_final_stats=1 \
        -timeout=30 -rss_limit_mb=2560 -max_len="$max_len" -artifact_prefix="$crashes/" \
        "$corpus" $seeds > "$log" 2>&1
    rc=$?
    runs=$(awk '/stat::number_of_executed_units/ { print $NF }' "$log" | tail -1)
    speed=$(awk '/stat::average_exec_per_sec/ { print $NF }' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<< "$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<< "$last")
    found=$(grep -c 'Test unit written to' "$log")
    if [ "$rc" -ne 0 ] || [ "$found" -gt 0 ]; then
        crashed=1
        echo "# $name: CRASHED (exit $rc); its input and report:"
        grep -E 'Test unit written to|^SUMMARY|ERROR:|fuzz: invariant' "$log" | head -10 | sed 's/^/#   /'
        [ "$found" -gt 0 ] || found=1
    fi
    grep -h 'fuzz: known bug' "$log" | sort -u | sed 's/^/#   /'
    printf '%-14s %10s %9s %6s %7s %7s %s\n' "$name" "${runs:-?}" "${speed:-?}" "${cov:-?}" "${ft:-?}" \
        "${corp:-?}" "$found" >> "$summary"
done
echo "#"
sed 's/^/# /' "$summary"
[ "$crashed" -eq 0 ] && echo "# no crashes" || echo "# crashes: see $WORK/crashes"
exit "$crashed"
