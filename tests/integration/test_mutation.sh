#!/usr/bin/env bash
#  The guarantee tests can fail: each runs against a node built with its
#  guarantee deliberately broken (`make mutants`) and must fail on the check
#  that guards it (tests/mutation/run.sh).  No cluster of its own: each
#  guarantee test starts and stops its own, and its lines stay in its log.
source "$(dirname "$0")/lib.sh"
bs_plan 6
BS_MUTATION_SKIP_MISSING=1 "$BS_ROOT/tests/mutation/run.sh"
