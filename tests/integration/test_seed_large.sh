#!/usr/bin/env bash
#  A catalog primary loads a large initial catalog (--seed) one batch per
#  turn of its loop, so that it keeps its heartbeats, replication and reads
#  meanwhile: queued whole, 25,000 books kept it in its commits for seconds
#  (22 s under the sanitizers) and the broker declared it dead.  20,000
#  books: every one is there on both replicas, no catalog node is declared
#  dead, and the replicas converge.
source "$(dirname "$0")/lib.sh"
bs_plan 5
BOOKS=20000
SEED=$BS_TMP/large.cfg
awk -v n=$BOOKS 'BEGIN {
    for (i = 1; i <= n; i++)
        printf "book\n    item = %d\n    title = \"Volume %d\"\n    topic = t%d\n    cost = %d\n    stock = 5\n", 100000 + i, i, i % 50, i % 90 + 1
}' > "$SEED"
bs_start_cluster --restock-period 0 --catalog 2 --order 1 --no-gateway --seed "$SEED"
last=$((100000 + BOOKS))
has_last() { bs --json --timeout-ms 2000 --attempts 1 --node "$1" lookup "$last" | bs_holds '.ok and .stock == 5'; }
check "the last of $BOOKS books is there on both catalog replicas" \
    eval 'until_true 120 has_last catalog-1 && until_true 60 has_last catalog-2'
check "no catalog node was declared dead while it loaded" \
    bs_no_line 'catalog-[12] declared dead' "$BS_TMP/cluster.log"
check "the replicas converge" bs_wait_converged 60
check "a book from the middle of the file is there with its price" \
    bs_holds '.ok and .cost == 11 and .title == "Volume 10000"' <<< "$(bs --json lookup 110000)"
