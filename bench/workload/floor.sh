# bench/workload/floor.sh — the benchmark workload as plain idempotent shell.
#
# This is the floor: the least work any tool could do. It is not run locally;
# floor-run.sh feeds it to a host's shell over ssh:
#
#     ssh -F $STATE/ssh_config HOST sh -s -- HOST [TASK...] < floor.sh
#
# TASK is 1..10 (default: all ten, in order). The skew scenario appends
# "sleep:SECONDS" and "done" (touch the finish marker R/done).
# Every task is idempotent and writes nothing when already converged.
set -eu
HOST=$1; shift
R=/tmp/grbench/$HOST
SWAP_RE='^([^#].*[[:space:]]swap[[:space:]].*)$'     # POSIX ERE, as in every tool
[ $# -gt 0 ] || set -- 1 2 3 4 5 6 7 8 9 10

# put PATH MODE CONTENT — write the file only if its content differs
put() {
    if ! printf '%s' "$3" | cmp -s - "$1" 2>/dev/null; then
        printf '%s' "$3" > "$1"
    fi
    if [ -n "$2" ]; then chmod "$2" "$1"; fi
}

# line PATH LINE — append LINE unless it is already a whole line of PATH
line() {
    if ! grep -qxF "$2" "$1" 2>/dev/null; then
        printf '%s\n' "$2" >> "$1"
    fi
}

task() {
    case $1 in
    1)  mkdir -p "$R/etc/sysctl.d" ;;
    2)  if [ ! -e "$R/etc/fstab" ]; then
            printf '%s\n' 'UUID=abc / ext4 defaults 0 1' '/swap.img none swap sw 0 0' > "$R/etc/fstab"
        fi ;;
    3)  if grep -Eq "$SWAP_RE" "$R/etc/fstab"; then
            sed -E -i "s/$SWAP_RE/# \\1/" "$R/etc/fstab"
        fi ;;
    4)  line "$R/etc/hosts" '10.0.0.1 master' ;;
    5)  line "$R/etc/hosts" '10.0.0.2 worker' ;;
    6)  line "$R/etc/hosts" '10.0.0.3 rancher-demo.domain.test' ;;
    7)  put "$R/etc/sysctl.d/90-k8s.conf" '' 'net.bridge.bridge-nf-call-iptables = 1
' ;;
    8)  put "$R/etc/resolv.head" 0644 'nameserver 192.0.2.53
nameserver 192.0.2.54
' ;;
    9)  if [ ! -e "$R/installed" ]; then touch "$R/installed"; fi ;;
    10) test -d "$R" ;;
    sleep:*) sleep "${1#sleep:}" ;;
    done) touch "$R/done" ;;
    *)  echo "floor.sh: unknown task $1" >&2; exit 2 ;;
    esac
}

for t in "$@"; do task "$t"; done
