#!/usr/bin/env bash
#  The libFuzzer targets (tests/fuzz), briefly: each runs for
#  FUZZ_TEST_SECONDS (10) from a scratch copy of its seed corpus and must end
#  without a crash, a leak or a broken invariant; every seed and every
#  known bug's input (tests/fuzz/crashes, tolerated unless FUZZ_STRICT=1)
#  runs clean.  The targets are built by `make test` (make VARIANT=fuzz
#  fuzz-targets); without clang's fuzzer runtime, or without the targets,
#  the test says so and is skipped.
source "$(dirname "$0")/lib.sh"
bs_plan 6

FUZZ_BIN=${BS_FUZZ_BIN:-$BS_ROOT/build/fuzz/fuzz}
SECONDS_EACH=${FUZZ_TEST_SECONDS:-10}
skip() { bs_skip_rest "$*"; }

runtime=$(clang -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null)
[ -n "$runtime" ] && [ -f "$runtime" ] \
    || skip "clang's libFuzzer runtime is missing (make deps-fuzz installs clang and libclang-rt-14-dev)"
targets=()
for t in "$FUZZ_BIN"/fuzz_*; do
    [ -x "$t" ] && targets+=("$t")
done
[ ${#targets[@]} -gt 0 ] || skip "no fuzz targets in $FUZZ_BIN (build them: make VARIANT=fuzz fuzz-targets)"
sources=$(ls "$BS_ROOT"/tests/fuzz/fuzz_*.c | wc -l)
check "every tests/fuzz/fuzz_*.c is built ($sources)" test "${#targets[@]}" = "$sources"

#  One check per property, over every target, so that the plan is fixed
no_seeds=""; bad_seeds=""; bad_known=""; found=""; idle=""
for t in "${targets[@]}"; do
    name=$(basename "$t")
    seeds=$BS_ROOT/tests/fuzz/corpus/$name
    work=$BS_TMP/$name
    mkdir -p "$work/corpus" "$work/crashes"
    [ -n "$(ls -A "$seeds" 2>/dev/null)" ] || no_seeds="$no_seeds $name"
    #  Every seed, then every known bug's input, once
    "$t" -runs=0 -artifact_prefix="$work/replayed-" "$seeds" > "$work/seeds.log" 2>&1 \
        || bad_seeds="$bad_seeds $name"
    if [ -d "$BS_ROOT/tests/fuzz/crashes/$name" ]; then
        "$t" -runs=0 -artifact_prefix="$work/replayed-" "$BS_ROOT/tests/fuzz/crashes/$name" > "$work/known.log" 2>&1 \
            || bad_known="$bad_known $name"
    fi
    nice -n 10 "$t" -max_total_time="$SECONDS_EACH" -timeout=20 -rss_limit_mb=2560 -max_len=8192 \
        -print_final_stats=1 -artifact_prefix="$work/crashes/" "$work/corpus" "$seeds" > "$work/fuzz.log" 2>&1
    rc=$?
    runs=$(awk '/stat::number_of_executed_units/ { print $NF }' "$work/fuzz.log" | tail -1)
    cov=$(grep -E '^#[0-9]+.*cov: ' "$work/fuzz.log" | tail -1 | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    log "$name: ${runs:-?} runs in ${SECONDS_EACH}s, coverage ${cov:-?} edges"
    if [ "$rc" != 0 ] || [ -n "$(ls -A "$work/crashes")" ]; then
        found="$found $name(exit $rc)"
        grep -E 'Test unit written to|^SUMMARY|ERROR:|fuzz: invariant' "$work/fuzz.log" | head -10 | sed 's/^/# /'
        mkdir -p "${BS_TEST_OUT:-$BS_TMP}/fuzz-crashes"
        cp "$work/crashes/"* "${BS_TEST_OUT:-$BS_TMP}/fuzz-crashes/" 2>/dev/null
    fi
    [ "${runs:-0}" -gt 0 ] || idle="$idle $name"
done
check "every target has a seed corpus${no_seeds:+ (none:$no_seeds)}" test -z "$no_seeds"
check "every seed runs clean${bad_seeds:+ (not in:$bad_seeds)}" test -z "$bad_seeds"
check "the known bugs' inputs run clean (tolerated)${bad_known:+ (not in:$bad_known)}" test -z "$bad_known"
check "${SECONDS_EACH}s of fuzzing each target found nothing${found:+ (found in:$found)}" test -z "$found"
check "every target ran some inputs${idle:+ (none in:$idle)}" test -z "$idle"
