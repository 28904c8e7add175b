#!/bin/sh
# Many projects on one machine: a Redis, the list queued in it, and N
# worker processes that take projects until none is left. Each worker
# serves /metrics on its own port (labelled worker="w1", ...).
#   examples/ops/fleet-local.sh projects.csv 4
# Needs redis-server and an etlpool built with `--features redis`; the
# tokens (ZEPHYR_TOKEN, QTEST_TOKEN) and URLs come from the environment or
# --config, as for `etlpool migrate`.
set -eu
list=${1:?usage: fleet-local.sh projects.csv [workers]}
workers=${2:-4}
export ETLPOOL_REDIS_URL=${ETLPOOL_REDIS_URL:-redis://127.0.0.1:6379}

redis-cli -u "$ETLPOOL_REDIS_URL" ping >/dev/null
etlpool migrate --projects "$list"
pids=
i=1
while [ "$i" -le "$workers" ]; do
    mkdir -p "w$i"
    (cd "w$i" && exec etlpool worker --drain --worker-name "w$i" \
        --metrics-addr "127.0.0.1:$((9463 + i))") &
    pids="$pids $!"
    i=$((i + 1))
done
# Each worker exits with the worst code of the projects it finished; this
# script with the last non-zero one.
rc=0
for pid in $pids; do wait "$pid" || rc=$?; done
etlpool status || true
exit "$rc"
