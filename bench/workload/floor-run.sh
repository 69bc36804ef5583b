#!/usr/bin/env bash
# bench/workload/floor-run.sh — run the floor workload (floor.sh) on hosts b1..bN.
#
#   floor-run.sh session  N   one ssh session per host, all ten tasks in it
#   floor-run.sh per-task N   one ssh connection per host (ControlMaster, opened
#                             first), then one multiplexed session per task
#   floor-run.sh safe     N   as session, with edits as graphrun makes them (SAFE=1 in
#                             floor.sh: atomic replacement, one backup per edited file)
#
# Hosts run in parallel; tasks within a host run in order. Exit status is
# non-zero if any host failed. GRBENCH_SKEW="HOST:SLOW:FAST" appends the skew
# tasks: sleep SLOW seconds on HOST, FAST on the others, then touch R/done.
set -uo pipefail

STATE=${GRAPHRUN_BENCH_DIR:-/var/tmp/graphrun-bench}
CFG=$STATE/ssh_config
SCRIPT=$(dirname "$(readlink -f "$0")")/floor.sh
MODE=${1:?usage: floor-run.sh session|per-task|safe N}
N=${2:?usage: floor-run.sh session|per-task|safe N}
TASKS=(1 2 3 4 5 6 7 8 9 10)

# tasks for one host: the ten, plus the skew tail when asked for
host_tasks() {
    local t=("${TASKS[@]}")
    if [ -n "${GRBENCH_SKEW:-}" ]; then
        local slow_host slow fast
        IFS=: read -r slow_host slow fast <<< "$GRBENCH_SKEW"
        if [ "$1" = "$slow_host" ]; then t+=("sleep:$slow"); else t+=("sleep:$fast"); fi
        t+=("done")
    fi
    echo "${t[@]}"
}

run_session() {
    # shellcheck disable=SC2046  # word splitting of the task list is wanted
    ssh -F "$CFG" "$1" sh -s -- "$1" $(host_tasks "$1") < "$SCRIPT"
}

run_safe() {
    # shellcheck disable=SC2046  # word splitting of the task list is wanted
    { echo SAFE=1; cat "$SCRIPT"; } | ssh -F "$CFG" "$1" sh -s -- "$1" $(host_tasks "$1")
}

run_per_task() {
    local h=$1 t rc=0
    local mux=(-F "$CFG" -o ControlMaster=auto -o ControlPersist=60s -o "ControlPath=$CPDIR/%C")
    ssh "${mux[@]}" "$h" true || return 1          # opens the master connection
    for t in $(host_tasks "$h"); do
        ssh "${mux[@]}" "$h" sh -s -- "$h" "$t" < "$SCRIPT" || { rc=1; break; }
    done
    ssh "${mux[@]}" -O exit "$h" 2>/dev/null       # close it: no state outlives the run
    return $rc
}

case $MODE in
    session)  fn=run_session ;;
    safe)     fn=run_safe ;;
    per-task) fn=run_per_task
              CPDIR=$(mktemp -d "$STATE/run/cp.XXXXXX")
              trap 'rm -rf "$CPDIR"' EXIT ;;
    *) echo "floor-run.sh: unknown mode $MODE" >&2; exit 2 ;;
esac

pids=()
for i in $(seq 1 "$N"); do
    "$fn" "b$i" &
    pids+=($!)
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
[ "$failed" -eq 0 ] || { echo "floor-run.sh: $failed of $N hosts failed" >&2; exit 1; }
