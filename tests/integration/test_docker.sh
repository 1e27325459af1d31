#!/usr/bin/env bash
# timeout: 1800
#  The store as containers (tests/deploy/docker-test.sh): where no container
#  engine can run, it reports itself skipped with the reason.  It prints its
#  own plan.  A cold run builds the base images and the image (several
#  minutes); later runs reuse them.
exec "$(dirname "$0")/../deploy/docker-test.sh"
