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

# SAFE=1 (floor-run.sh safe): edits as graphrun makes them — a changed file is replaced by a
# new one renamed over it (keeping its mode and owner; never half-written), an appended line
# never lands on a last line without its newline, and PATH.bak keeps the file as it was
# before the run (a hard link to a replaced file, a copy of one appended to; none for a file
# the run created). The processes this costs are what graphrun's first run pays for its
# guarantees, apart from graphrun itself.
SAFE=${SAFE:-0}
SCRATCH=/dev/shm/grbench-$HOST.edited   # an edit compared before it is made (outside R,
                                        # which the re-run's "rewrote" check walks)

# stage PATH — start PATH.new as a copy of PATH (its mode and owner), or empty
stage() {
    if [ -f "$1" ]; then cp -p "$1" "$1.new"; else : > "$1.new"; fi
}

# first_edit PATH — whether this run has not changed PATH before (and now it has)
EDITED=
first_edit() {
    case " $EDITED " in *" $1 "*) return 1 ;; esac
    EDITED="$EDITED $1"
}

# swap_in PATH — rename PATH.new over PATH, the version from before the run kept as PATH.bak
swap_in() {
    if first_edit "$1" && [ -f "$1" ]; then ln -f "$1" "$1.bak"; fi
    mv -f "$1.new" "$1"
}

# put PATH MODE CONTENT — write the file only if its content differs
put() {
    if ! printf '%s' "$3" | cmp -s - "$1" 2>/dev/null; then
        if [ "$SAFE" = 1 ]; then
            stage "$1" && printf '%s' "$3" > "$1.new" && swap_in "$1"
        else
            printf '%s' "$3" > "$1"
        fi
    fi
    if [ -n "$2" ]; then chmod "$2" "$1"; fi
}

# has_line PATH LINE — 0: LINE is a whole line of PATH; 1: it is not; 3: it is not and the
# last line lacks its newline (one process answers both, as in graphrun)
has_line() {
    L=$2 awk 'BEGIN { RS = "\001" }
{ s = s (NR > 1 ? RS : "") $0 }
END {
  if (s == "") exit 1
  nl = substr(s, length(s)) != "\n"
  if (index("\n" s (nl ? "\n" : ""), "\n" ENVIRON["L"] "\n")) exit 0
  exit nl ? 3 : 1
}' "$1"
}

# line PATH LINE — append LINE unless it is already a whole line of PATH
line() {
    if [ "$SAFE" = 1 ]; then
        nl=
        if [ -f "$1" ]; then
            has_line "$1" "$2" && return 0
            [ $? = 3 ] && nl=1
        fi
        if first_edit "$1" && [ -f "$1" ]; then cp -p "$1" "$1.bak"; fi
        { [ -z "$nl" ] || echo; printf '%s\n' "$2"; } >> "$1"
    elif ! grep -qxF "$2" "$1" 2>/dev/null; then
        printf '%s\n' "$2" >> "$1"
    fi
}

task() {
    case $1 in
    1)  mkdir -p "$R/etc/sysctl.d" ;;
    2)  if [ ! -e "$R/etc/fstab" ]; then
            printf '%s\n' 'UUID=abc / ext4 defaults 0 1' '/swap.img none swap sw 0 0' > "$R/etc/fstab"
        fi ;;
    3)  if [ "$SAFE" = 1 ]; then
            # the edit compared first (a match may change nothing; sed quits with 3 when
            # nothing matched), then made by sed -i: a new file renamed over the old one,
            # its mode and owner kept
            if sed -E -e "s/$SWAP_RE/# \\1/" -e 't hit' -e 'b last' -e :hit -e x -e 's/^/1/' \
                    -e x -e :last -e '$ {' -e x -e '/^$/ Q 3' -e x -e '}' \
                    "$R/etc/fstab" > "$SCRATCH" &&
                    ! cmp -s "$SCRATCH" "$R/etc/fstab"; then
                if first_edit "$R/etc/fstab"; then ln -f "$R/etc/fstab" "$R/etc/fstab.bak"; fi
                sed -E -i "s/$SWAP_RE/# \\1/" "$R/etc/fstab"
            fi
        elif grep -Eq "$SWAP_RE" "$R/etc/fstab"; then
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
