#!/usr/bin/env bash
# graphrun test lab: N isolated Debian hosts (systemd-nspawn + overlayfs +
# network namespaces) on this machine, each running sshd, for graphrun's
# integration tests.  See tests/lab/README.md.
#
#   lab.sh up N | down | stop hN | start hN | partition hN | heal hN
#   lab.sh rekey hN | status | env | systemd-up | airgap HOST | reconnect HOST
#   lab.sh restart-sshd hN [GAP] | small-disk hN PATH SIZE
#
# Several labs can run side by side: GRAPHRUN_LAB_ID=K (0..9, default 0) gives
# lab K its own subnet 10.77.K.0/24, interface/netns names, nft table and state
# dir, so independent test runs never touch each other's hosts.
#
# Layout (STATE = /var/tmp/graphrun-lab[-K]; `env` exports it as GRAPHRUN_LAB_DIR for tests,
# but lab.sh itself goes by the ID alone, so an exported dir never points lab K at another's):
#   /var/cache/graphrun-lab/base   debootstrapped root fs, shared read-only lower
#   STATE/id_ed25519{,.pub}         lab key (root, deploy, ops)
#   STATE/deploy-password           sudo password of user "deploy" (0600)
#   STATE/known_hosts               for graphrun (empty on fresh hosts)
#   STATE/inventory.toml            graphrun inventory
#   STATE/hosts/hN/{upper,work,root,nspawn.pid,nspawn.log,provisioned}
set -euo pipefail

# ---------------------------------------------------------------- settings --
LAB_ID=${GRAPHRUN_LAB_ID:-0}
[[ $LAB_ID =~ ^[0-9]$ ]] || { echo "lab: error: GRAPHRUN_LAB_ID must be 0..9" >&2; exit 1; }
# Lab 0 keeps the historical names; lab K>0 gets a suffix/prefix of its own.
if (( LAB_ID == 0 )); then SUFFIX=; PREFIX=grlab; else SUFFIX=-$LAB_ID; PREFIX=grl${LAB_ID}x; fi
STATE=/var/tmp/graphrun-lab$SUFFIX
CACHE=/var/cache/graphrun-lab
BASE=$CACHE/base
# Bump when the base recipe changes: a cached base with another stamp is rebuilt.
BASE_VERSION=2
SUITE=bookworm
# iputils-ping: not in the brief's list, but tests want to ping between hosts.
BASE_PACKAGES=openssh-server,iproute2,procps,sudo,python3,ca-certificates,iputils-ping
# procps: sysctl and pgrep, used on the machine side.
MACHINE_PACKAGES=(debootstrap systemd-container nftables openssh-client iproute2 procps)

BRIDGE=${PREFIX}0
NET=10.77.$LAB_ID
SUBNET=$NET.0/24
GATEWAY=$NET.1
NFT_TABLE="inet graphrun_lab${SUFFIX/-/_}"
MAX_HOSTS=99
SSH_WAIT_SECONDS=30
# Fixed PATH for everything run inside a host: never leak the caller's env.
INNER_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# ----------------------------------------------------------------- helpers --
log() { printf 'lab: %s\n' "$*" >&2; }
die() { printf 'lab: error: %s\n' "$*" >&2; exit 1; }

need_root() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (it creates netns, mounts, bridges, nft tables)"
}

# "h3" or "3" -> 3
host_num() {
    local n=${1#h}
    [[ $n =~ ^[0-9]+$ ]] && (( n >= 1 && n <= MAX_HOSTS )) || die "bad host '$1' (want h1..h$MAX_HOSTS)"
    echo $((10#$n))
}

host_dir()  { echo "$STATE/hosts/h$1"; }
host_root() { echo "$STATE/hosts/h$1/root"; }
host_ip()   { echo "$NET.$((10 + $1))"; }
netns()     { echo "$PREFIX$1"; }
veth()      { echo "v$PREFIX$1"; }   # machine side; the peer becomes eth0 inside

# Run a command inside a host's root fs with a clean environment (chroot, no
# nspawn: fast, and fine for file-level provisioning).
in_root() {
    local root=$1; shift
    env -i PATH="$INNER_PATH" LC_ALL=C HOME=/root chroot "$root" "$@"
}

ssh_opts() {
    # -F /dev/null: ignore any ~/.ssh/config on the machine.
    echo -F /dev/null -i "$STATE/id_ed25519" -o BatchMode=yes \
        -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o LogLevel=ERROR -o ConnectTimeout=2
}

# Serialise lab.sh invocations on one state dir (tests may stop/start in parallel).
take_lock() {
    mkdir -p "$STATE"
    exec 9>"$STATE/.lock"
    flock 9
}

# --------------------------------------------------------- machine packages --
ensure_packages() {
    local missing=() p
    for p in "${MACHINE_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    (( ${#missing[@]} == 0 )) && return 0
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ----------------------------------------------------------------- base fs --
# The machine's Debian mirror: first URIs line of debian.sources, else the
# first "deb" line of sources.list.
debian_mirror() {
    local f=/etc/apt/sources.list.d/debian.sources uri=
    [[ -r $f ]] && uri=$(awk '/^URIs:/ {print $2; exit}' "$f")
    if [[ -z $uri && -r /etc/apt/sources.list ]]; then
        uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list)
    fi
    [[ -n $uri ]] || die "cannot find a Debian mirror in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list"
    echo "$uri"
}

base_is_current() {
    [[ -f $BASE/.graphrun-lab-base && $(cat "$BASE/.graphrun-lab-base") == "$BASE_VERSION" ]]
}

# Build once into a temp dir, then rename: an interrupted build never leaves a
# half-built cache behind (stale temp dirs are removed on the next try).
ensure_base() {
    mkdir -p "$CACHE"
    exec 8>"$CACHE/.lock"
    flock 8
    if base_is_current; then exec 8>&-; return 0; fi
    if [[ -d $BASE ]] && grep -q "lowerdir=${BASE}[,:]" /proc/self/mountinfo; then
        die "cached base $BASE is outdated but in use: run 'lab.sh down' first"
    fi
    local tmp=$CACHE/base.tmp.$$ mirror
    rm -rf "$CACHE"/base.tmp.* "$CACHE"/base.old.*
    mirror=$(debian_mirror)
    log "building base root fs from $mirror (one-time, a few minutes)"
    if ! debootstrap --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$tmp" "$mirror" \
            >"$CACHE/debootstrap.log" 2>&1; then
        tail -n 30 "$CACHE/debootstrap.log" >&2
        rm -rf "$tmp"
        die "debootstrap failed (full log: $CACHE/debootstrap.log)"
    fi
    customize_base "$tmp"
    echo "$BASE_VERSION" >"$tmp/.graphrun-lab-base"
    [[ -d $BASE ]] && mv "$BASE" "$CACHE/base.old.$$"
    mv "$tmp" "$BASE"
    rm -rf "$CACHE/base.old.$$"
    exec 8>&-
}

customize_base() {
    local root=$1
    # Same apt sources as the machine (they are known to work from here); drop
    # debootstrap's one-line sources.list to avoid "configured multiple times".
    if [[ -r /etc/apt/sources.list.d/debian.sources ]]; then
        cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/"
        rm -f "$root/etc/apt/sources.list"
    fi
    # The machine's mirror may be a dated snapshot: copy its Release-date checks.
    apt-config dump | grep -E '^Acquire::Check-(Valid-Until|Date) ' \
        >"$root/etc/apt/apt.conf.d/90graphrun-lab" || true
    # Every host generates its own host keys (see provision_host).
    rm -f "$root"/etc/ssh/ssh_host_*
    # Debian's sshd_config includes sshd_config.d/*.conf first; first value wins.
    cat >"$root/etc/ssh/sshd_config.d/graphrun-lab.conf" <<'EOF'
# graphrun test lab
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
MaxSessions 100
MaxStartups 100:30:200
AllowTcpForwarding yes
UseDNS no
EOF
    in_root "$root" apt-get clean
}

# ------------------------------------------------------------- state dir --
ensure_state() {
    mkdir -p "$STATE/hosts"
    chmod 700 "$STATE"
    if [[ ! -f $STATE/id_ed25519 ]]; then
        ssh-keygen -q -t ed25519 -N '' -C graphrun-lab -f "$STATE/id_ed25519"
    fi
    if [[ ! -s $STATE/deploy-password ]]; then
        (umask 077; head -c 18 /dev/urandom | base64 | tr '+/' 'xy' >"$STATE/deploy-password")
    fi
    chmod 600 "$STATE/deploy-password"
    [[ -f $STATE/known_hosts ]] || reset_known_hosts
}

reset_known_hosts() {
    : >"$STATE/known_hosts"
    chmod 600 "$STATE/known_hosts"
}

# Hosts that exist (provisioned), numerically sorted.
existing_hosts() {
    local d
    for d in "$STATE"/hosts/h*/provisioned; do
        [[ -e $d ]] || continue
        d=${d%/provisioned}; echo "${d##*/h}"
    done | sort -n
}

# The [defaults] table of every lab inventory.
inventory_defaults() {
    echo '[defaults]'
    echo 'user = "root"'
    echo 'port = 22'
    echo "identity_file = \"$STATE/id_ed25519\""
    echo "known_hosts_file = \"$STATE/known_hosts\""
    echo 'host_key_checking = "accept-new"'
    echo 'connect_timeout = "5s"'
}

write_inventory() {
    local tmp=$STATE/inventory.toml.tmp n
    {
        inventory_defaults
        for n in $(existing_hosts); do
            echo
            echo "[hosts.h$n]"
            echo "address = \"$(host_ip "$n")\""
            echo 'groups = ["lab"]'
        done
    } >"$tmp"
    mv "$tmp" "$STATE/inventory.toml"
}

# ---------------------------------------------------------------- network --
# Lab links use the uplink's MTU: this machine's eth0 is 1400, and a 1500-byte
# lab would depend on PMTU discovery through the NAT for every download.
lab_mtu() {
    local dev mtu
    dev=$(ip -o route show default 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "dev") {print $(i+1); exit}}')
    mtu=$( [[ -n $dev ]] && cat "/sys/class/net/$dev/mtu" 2>/dev/null || echo 1500)
    (( mtu > 1500 )) && mtu=1500
    echo "$mtu"
}

ensure_bridge() {
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        # Fixed MAC: a bridge otherwise takes its lowest port's MAC, which
        # changes as hosts come and go and leaves stale gateway ARP entries.
        ip link add "$BRIDGE" address "$(printf '02:77:00:00:%02x:01' "$LAB_ID")" mtu "$(lab_mtu)" type bridge
    fi
    ip addr replace "$GATEWAY/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
}

# NAT so hosts reach the Debian mirror, and nothing else beyond the lab: traffic that leaves the
# lab subnet is forwarded (and masqueraded) only to the mirror's addresses (HTTP/HTTPS) and to the
# machine's DNS resolvers (port 53, so apt can resolve the mirror); everything else from the lab
# is dropped, so a test can never reach a private or public address by mistake (a Kubernetes
# Service IP, an example address in a playbook).  Own table only; "table X; delete table X;
# table X {...}" in one transaction makes this idempotent.  The mirror's addresses are resolved
# at `up`/`start`.
ensure_nat() {
    local mirrors resolvers
    mirrors=$(lab_egress_addresses mirror)
    resolvers=$(lab_egress_addresses resolver)
    sysctl -q -w net.ipv4.ip_forward=1
    nft -f - <<EOF
table $NFT_TABLE
delete table $NFT_TABLE
table $NFT_TABLE {
    set mirror { type ipv4_addr; elements = { $mirrors } }
    set resolver { type ipv4_addr; elements = { $resolvers } }
    chain forward {
        type filter hook forward priority filter; policy accept;
        # host<->host traffic (bridged, seen here via br_netfilter) stays inside the lab
        ip saddr $SUBNET ip daddr $SUBNET accept
        ip saddr $SUBNET ip daddr @mirror tcp dport { 80, 443 } accept
        ip saddr $SUBNET ip daddr @resolver meta l4proto { tcp, udp } th dport 53 accept
        ip saddr $SUBNET counter drop
    }
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr $SUBNET ip daddr @mirror masquerade
        ip saddr $SUBNET ip daddr @resolver masquerade
    }
}
EOF
}

# "mirror": the IPv4 addresses of every host named in the machine's Debian sources (the hosts use
# the same sources); "resolver": the non-loopback IPv4 nameservers of /etc/resolv.conf (copied
# into the hosts).  Printed comma-separated, for an nft set.
lab_egress_addresses() {
    local names=() name addrs=()
    case $1 in
        mirror)
            mapfile -t names < <({
                debian_mirror
                awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }' /etc/apt/sources.list.d/debian.sources 2>/dev/null
            } | sed -E 's#^[a-z]+://([^/:]+).*#\1#' | sort -u)
            for name in "${names[@]}"; do
                mapfile -t -O "${#addrs[@]}" addrs < <(getent ahostsv4 "$name" | awk '{print $1}' | sort -u)
            done
            ;;
        resolver)
            mapfile -t addrs < <(awk '$1 == "nameserver" && $2 ~ /^[0-9.]+$/ && $2 !~ /^127\./ {print $2}' /etc/resolv.conf)
            ;;
    esac
    (( ${#addrs[@]} )) || die "no $1 address found (Debian sources / resolv.conf): the lab needs one for apt"
    local IFS=,
    echo "${addrs[*]}"
}

# netns + veth for host N.
ensure_host_net() {
    local n=$1
    wire_host "$(netns "$n")" "$(veth "$n")" "$(host_ip "$n")" "$n"
}

# Wires netns NS to the bridge: veth VETH on the machine side, eth0 with IP inside; MAC_ID
# (0..255) picks fixed MACs.  Re-wires from scratch whenever the pair is not exactly as
# expected (e.g. a previous run died between "add" and "move").
wire_host() {
    local ns=$1 veth=$2 ip=$3 mac_id=$4 peer mtu
    peer="${veth}p"
    [[ -e /run/netns/$ns ]] || ip netns add "$ns"
    if ! { ip -n "$ns" link show eth0 >/dev/null 2>&1 &&
           ip link show "$veth" 2>/dev/null | grep -q "master $BRIDGE"; }; then
        ip link del "$veth" 2>/dev/null || true
        ip link del "$peer" 2>/dev/null || true
        ip -n "$ns" link del eth0 2>/dev/null || true
        mtu=$(lab_mtu)
        # Fixed MACs per host: a re-created pair keeps them, so neighbours'
        # ARP caches stay valid (else ~30 s of silence after re-wiring).
        ip link add "$veth" address "$(printf '02:77:01:00:%02x:%02x' "$LAB_ID" "$mac_id")" mtu "$mtu" \
            type veth peer name "$peer" address "$(printf '02:77:00:%02x:01:%02x' "$LAB_ID" "$mac_id")" mtu "$mtu"
        ip link set "$peer" netns "$ns"
        ip -n "$ns" link set "$peer" name eth0
        ip link set "$veth" master "$BRIDGE"
    fi
    ip -n "$ns" link set lo up
    ip -n "$ns" addr replace "$ip/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route replace default via "$GATEWAY"
    ip link set "$veth" up   # note: this also heals a partition
}

# ------------------------------------------------------------ root fs --
ensure_overlay() {
    local n=$1 d root
    d=$(host_dir "$n"); root=$d/root
    mkdir -p "$d/upper" "$d/work" "$root"
    mountpoint -q "$root" ||
        mount -t overlay "graphrun-lab$SUFFIX-h$n" -o "lowerdir=$BASE,upperdir=$d/upper,workdir=$d/work" "$root"
}

# One-time per-host setup, written into the host's upper dir (host keys,
# users, keys).  The "provisioned" marker is written last; a host without it
# is wiped and redone.  Returns 0 if it (re)created the host, 1 if it existed.
provision_host() {
    local n=$1 d root
    d=$(host_dir "$n"); root=$d/root
    [[ -e $d/provisioned ]] && return 1
    log "creating h$n"
    if mountpoint -q "$root"; then umount "$root"; fi
    rm -rf "$d/upper" "$d/work"
    ensure_overlay "$n"
    provision_root "$root" "h$n"
    touch "$d/provisioned"
    return 0
}

# Host keys, users and their keys in ROOT for a host called NAME.
provision_root() {
    local root=$1 name=$2 pub
    pub=$(cat "$STATE/id_ed25519.pub")
    echo "$name" >"$root/etc/hostname"
    # deploy: sudo with password; ops: passwordless sudo.  Homes without skel
    # rc files: a bare, fast, predictable shell for graphrun.  ops gets "*"
    # (not the locked "!") as password so sshd never treats it as locked.
    in_root "$root" /bin/sh -eu -c '
        pub=$1
        ssh-keygen -A >/dev/null
        id deploy >/dev/null 2>&1 || useradd -M -d /home/deploy -s /bin/bash -G sudo deploy
        id ops    >/dev/null 2>&1 || useradd -M -d /home/ops -s /bin/bash ops
        usermod -p "*" ops
        echo "ops ALL=(ALL:ALL) NOPASSWD: ALL" >/etc/sudoers.d/ops
        chmod 0440 /etc/sudoers.d/ops
        for u in root deploy ops; do
            h=$(getent passwd "$u" | cut -d: -f6)
            mkdir -p "$h/.ssh"
            echo "$pub" >"$h/.ssh/authorized_keys"
            chmod 700 "$h/.ssh"; chmod 600 "$h/.ssh/authorized_keys"
            chown -R "$u:$u" "$h"
        done
    ' sh "$pub"
    printf 'deploy:%s\n' "$(cat "$STATE/deploy-password")" | in_root "$root" chpasswd
}

# Files refreshed at every start: the machine's DNS and the lab's names.
refresh_host_files() {
    local n=$1 root m
    root=$(host_root "$n")
    rm -f "$root/etc/resolv.conf"
    cp -L /etc/resolv.conf "$root/etc/resolv.conf"
    {
        echo "127.0.0.1 localhost"
        echo "::1 localhost ip6-localhost ip6-loopback"
        echo "127.0.1.1 h$n"
        for m in $(existing_hosts); do
            (( m == n )) || echo "$(host_ip "$m") h$m"
        done
    } >"$root/etc/hosts"
}

# --------------------------------------------------------------- processes --
# PID(s) of this lab's nspawn processes, found by their "-M PREFIXN" argument (whatever
# state dir started them).  pgrep skips zombies: their cmdline is empty.
lab_nspawn_pids() {
    pgrep -f -- "^[^ ]*systemd-nspawn .* -M $PREFIX${1:-[0-9]+} " || true
}

nspawn_pid() { lab_nspawn_pids "$1" | head -n1; }

# Machine-side PID of sshd inside host N: the process in its netns that is
# PID 2 in the container (nspawn --as-pid2).
sshd_pid() {
    local n=$1 pid
    for pid in $(ip netns pids "$(netns "$n")" 2>/dev/null); do
        [[ $(cat "/proc/$pid/comm" 2>/dev/null) == sshd ]] || continue
        awk '/^NSpid:/ { exit !($NF == 2) }' "/proc/$pid/status" 2>/dev/null && { echo "$pid"; return 0; }
    done
    return 0
}

start_host() {
    local n=$1 d root
    d=$(host_dir "$n"); root=$d/root
    [[ -n $(nspawn_pid "$n") ]] && return 0
    refresh_host_files "$n"
    printf '\n--- lab: start h%s at %s\n' "$n" "$(date -Is)" >>"$d/nspawn.log"
    # Detached (setsid + nohup) so it outlives this script and the caller's
    # session.  env -i: the container must not inherit the caller's env.
    # --resolv-conf/--timezone=off: we manage /etc ourselves, nspawn must not
    # rewrite it.  --console=pipe: sshd -e logs straight to nspawn.log.
    # The subshell execs all the way down, so $! is nspawn's PID.
    (
        close_extra_fds
        exec setsid env -i PATH="$INNER_PATH" SYSTEMD_NSPAWN_API_VFS_WRITABLE=1 \
            nohup systemd-nspawn -q -D "$root" --register=no --keep-unit \
                --network-namespace-path="/run/netns/$(netns "$n")" \
                --as-pid2 -M "$PREFIX$n" --hostname="h$n" \
                --resolv-conf=off --timezone=off --console=pipe \
                --capability=CAP_NET_ADMIN,CAP_SYS_ADMIN,CAP_SYS_MODULE \
                /bin/sh -c 'mkdir -p /run/sshd; exec /usr/sbin/sshd -D -e' \
            </dev/null >>"$d/nspawn.log" 2>&1
    ) &
    echo $! >"$d/nspawn.pid"
}

# Close every fd above 2 (our locks, and whatever the caller leaked to us): a
# long-lived host holding a caller's pipe open would make that caller hang
# waiting for EOF.
close_extra_fds() {
    local fd
    for fd in /proc/"$BASHPID"/fd/*; do
        fd=${fd##*/}
        if (( fd > 2 )); then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
}

# Kill host N: nspawn (which SIGKILLs the container on SIGTERM), then anything
# left in its netns.  Mounts and network stay, so "start" is quick.
stop_host() {
    local n=$1 pid
    pid=$(nspawn_pid "$n")
    if [[ -n $pid ]]; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            alive "$pid" || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    kill_netns_pids "$(netns "$n")"
    rm -f "$(host_dir "$n")/nspawn.pid"
}

kill_netns_pids() {
    local ns=$1 pids
    [[ -e /run/netns/$ns ]] || return 0
    for _ in $(seq 50); do
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        [[ -z $pids ]] && return 0
        # shellcheck disable=SC2086  # a list of pids
        kill -KILL $pids 2>/dev/null || true
        sleep 0.1
    done
    log "warning: processes still in netns $ns: $pids"
}

# Running and not a zombie.  Our detached nspawns are orphans, reaped by this
# machine's PID 1 only lazily, so "kill -0" would report dead hosts as alive.
alive() {
    local st
    st=$(sed -n 's/^.*) \(.\).*$/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $st && $st != Z ]]
}

ssh_ok() {
    # shellcheck disable=SC2046
    ssh $(ssh_opts) "root@$(host_ip "$1")" true </dev/null >/dev/null 2>&1
}

wait_ssh() {
    local n=$1 deadline=$((SECONDS + SSH_WAIT_SECONDS)) log
    until ssh_ok "$n"; do
        if (( SECONDS >= deadline )) || [[ -z $(nspawn_pid "$n") ]]; then
            log="$(host_dir "$n")/nspawn.log"
            log "h$n ($(host_ip "$n")): sshd did not answer within ${SSH_WAIT_SECONDS}s" \
                "$( [[ -z $(nspawn_pid "$n") ]] && echo '(its nspawn exited)')"
            log "last lines of $log:"
            tail -n 20 "$log" >&2 || true
            return 1
        fi
        sleep 0.3
    done
}

# shellcheck source=tests/lab/systemd-hosts.sh
. "$(dirname "${BASH_SOURCE[0]}")/systemd-hosts.sh"

# ---------------------------------------------------------------- commands --
cmd_up() {
    local count=${1:-} n created=0 failed=0
    [[ $count =~ ^[0-9]+$ ]] && (( count >= 1 && count <= MAX_HOSTS )) || die "usage: lab.sh up N (1..$MAX_HOSTS)"
    ensure_packages
    ensure_base
    ensure_state
    ensure_bridge
    ensure_nat
    for n in $(seq "$count"); do
        ensure_host_net "$n"
        ensure_overlay "$n"
        if provision_host "$n"; then created=1; fi
    done
    # New host keys exist now: old entries would only make graphrun fail.
    (( created )) && reset_known_hosts
    write_inventory
    for n in $(seq "$count"); do start_host "$n"; done
    for n in $(seq "$count"); do wait_ssh "$n" || failed=1; done
    (( failed )) && die "up failed (fix, then re-run 'lab.sh up $count' or 'lab.sh down')"
    log "up: h1..h$count ready ($STATE/inventory.toml)"
}

cmd_down() {
    local n ns pid mp
    systemd_hosts_down
    # Processes: every lab nspawn (found by its -M PREFIXN argument, whatever
    # state dir started it), then anything still inside a lab netns.
    for pid in $(lab_nspawn_pids); do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 0.2
    for pid in $(lab_nspawn_pids); do kill -KILL "$pid" 2>/dev/null || true; done
    for ns in $(lab_netns); do kill_netns_pids "$ns"; done
    remove_nspawn_leftovers
    # Mounts: our overlays (lowerdir = the base) and anything under STATE/hosts.
    for mp in $(lab_mounts); do
        umount "$mp" 2>/dev/null || umount -l "$mp"
    done
    for ns in $(lab_netns); do ip netns del "$ns"; done
    for n in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E "^v$PREFIX[0-9]+p?\$" || true); do
        ip link del "$n" 2>/dev/null || true
    done
    ip link del "$BRIDGE" 2>/dev/null || true
    # shellcheck disable=SC2086  # "inet graphrun_lab" is two words
    nft delete table $NFT_TABLE 2>/dev/null || true
    [[ -z $(lab_mounts) ]] || die "mounts still present, not removing $STATE/hosts: $(lab_mounts)"
    rm -rf "$STATE/hosts" "$STATE/inventory.toml"
    [[ -d $STATE ]] && reset_known_hosts
    log "down: lab removed (kept $STATE/id_ed25519 and the cached base $BASE)"
}

# nspawn keeps per-machine state in /run/systemd/nspawn.  /run is not a tmpfs
# on this machine, so nspawn refuses to delete its "propagate/PREFIXN" dir
# ("Attempted to remove disk file system ... we can't allow that") and these,
# plus one image lock file per overlay mount, would pile up.  Call only after
# our nspawns are dead and before the overlays are unmounted.
remove_nspawn_leftovers() {
    local dir=/run/systemd/nspawn mp
    rm -rf "$dir"/propagate/"$PREFIX"[0-9]*
    for mp in $(lab_mounts); do
        rm -f "$dir/locks/$(stat -c 'inode-%d:%i' "$mp" 2>/dev/null || echo none)"
    done
}

lab_netns() {
    ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$PREFIX[0-9]+\$" || true
}

# Mount points to remove, deepest first: under STATE/hosts, or this lab's
# overlays wherever they are (by their source name; other labs share the base).
lab_mounts() {
    awk -v state="$STATE/hosts/" -v src="^graphrun-lab$SUFFIX-h[0-9]+\$" '
        { for (i = 7; i <= NF; i++) if ($i == "-") break }
        index($5, state) == 1 || ($(i + 1) == "overlay" && $(i + 2) ~ src) { print $5 }
    ' /proc/self/mountinfo | sort -r | uniq
}

require_host() {
    local n=$1
    [[ -e $(host_dir "$n")/provisioned ]] || die "h$n does not exist (run 'lab.sh up N' first)"
}

cmd_stop()  { local n; n=$(host_num "${1:-}"); require_host "$n"; stop_host "$n"; log "h$n stopped"; }

cmd_start() {
    local n; n=$(host_num "${1:-}"); require_host "$n"
    ensure_bridge
    ensure_nat
    ensure_host_net "$n"
    ensure_overlay "$n"
    start_host "$n"
    wait_ssh "$n" || die "start h$n failed"
    log "h$n started"
}

cmd_partition() {
    local n; n=$(host_num "${1:-}"); require_host "$n"
    ip link set "$(veth "$n")" down
    log "h$n partitioned ($(veth "$n") down)"
}

cmd_heal() {
    local n; n=$(host_num "${1:-}"); require_host "$n"
    ip link set "$(veth "$n")" up
    log "h$n healed ($(veth "$n") up)"
}

# New host keys, then SIGHUP sshd: it re-executes itself and loads the new
# keys, keeping PID 2 (if sshd exited, nspawn would end the whole host).
cmd_rekey() {
    local n root pid newkey deadline
    n=$(host_num "${1:-}"); require_host "$n"
    ensure_overlay "$n"
    root=$(host_root "$n")
    rm -f "$root"/etc/ssh/ssh_host_*
    in_root "$root" ssh-keygen -A >/dev/null
    pid=$(sshd_pid "$n")
    if [[ -n $pid ]]; then
        kill -HUP "$pid"
        # Done only when sshd really serves the new key (not the old process
        # answering just before it handled the signal).
        newkey=$(cut -d' ' -f2 "$root/etc/ssh/ssh_host_ed25519_key.pub")
        deadline=$((SECONDS + SSH_WAIT_SECONDS))
        until ssh-keyscan -T 2 -t ed25519 "$(host_ip "$n")" 2>/dev/null | grep -qF -- "$newkey"; do
            (( SECONDS < deadline )) || die "sshd on h$n does not serve the new key after rekey"
            sleep 0.2
        done
    fi
    log "h$n rekeyed"
}

# sshd restarts, as `systemctl restart ssh` does it: for GAP seconds new connections are
# refused (an nft rule in the host's netns resets SYNs; not `ct state new`, which would also
# reset open connections that conntrack first sees mid-stream), then sshd re-executes itself
# (SIGHUP; it must stay PID 2, or nspawn would end the host). Sessions already open live on,
# as with a real restart, where each connection has its own sshd process.
cmd_restart_sshd() {
    local n gap ns pid deadline
    n=$(host_num "${1:-}"); require_host "$n"
    gap=${2:-0.5}
    [[ $gap =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "restart-sshd: GAP must be seconds, e.g. 0.5"
    ns=$(netns "$n")
    ip netns exec "$ns" nft -f - <<'NFT'
table inet graphrun_sshd_restart {
    chain input {
        type filter hook input priority 0;
        tcp dport 22 tcp flags & (syn | ack) == syn reject with tcp reset
    }
}
NFT
    sleep "$gap"
    pid=$(sshd_pid "$n")
    [[ -n $pid ]] && kill -HUP "$pid"
    ip netns exec "$ns" nft delete table inet graphrun_sshd_restart
    deadline=$((SECONDS + SSH_WAIT_SECONDS))
    until ssh_ok "$n"; do
        (( SECONDS < deadline )) || die "sshd on h$n does not answer after its restart"
        sleep 0.1
    done
    log "h$n: sshd restarted (new connections refused for ${gap}s)"
}

# A size-limited filesystem (tmpfs of SIZE, e.g. 64k) mounted at PATH inside host N, so a
# test can fill a disk without filling the machine's. Run again to change the size; it goes
# with the host's mount namespace when the host stops.
cmd_small_disk() {
    local n path size
    n=$(host_num "${1:-}"); require_host "$n"
    path=${2:-}; size=${3:-}
    [[ $path == /* && $path != *[!A-Za-z0-9/._-]* ]] || die "small-disk: PATH must be an absolute path"
    [[ $size =~ ^[0-9]+[kmg]?$ ]] || die "small-disk: SIZE must be like 64k or 1m"
    # shellcheck disable=SC2046
    ssh $(ssh_opts) "root@$(host_ip "$n")" \
        "mkdir -p $path && if mountpoint -q $path; then mount -o remount,size=$size $path; else mount -t tmpfs -o size=$size graphrun-small $path; fi" \
        </dev/null || die "small-disk: cannot mount $path on h$n"
    log "h$n: $path is a $size filesystem"
}

cmd_status() {
    local n pid link ssh hosts
    hosts=$(existing_hosts)
    [[ -n $hosts ]] || { echo "no hosts (run: lab.sh up N)"; return 0; }
    for n in $hosts; do
        pid=$(nspawn_pid "$n")
        link=$(ip -o link show "$(veth "$n")" 2>/dev/null | grep -q ',UP' && echo up || echo down)
        ssh=down
        [[ -n $pid ]] && timeout 1 bash -c "</dev/tcp/$(host_ip "$n")/22" 2>/dev/null && ssh=up
        printf 'h%-3s %-12s %-8s pid=%-8s link=%-4s ssh=%s\n' "$n" "$(host_ip "$n")" \
            "$([[ -n $pid ]] && echo running || echo stopped)" "${pid:--}" "$link" "$ssh"
    done
}

cmd_env() {
    printf 'export GRAPHRUN_LAB_ID=%q\n' "$LAB_ID"
    printf 'export GRAPHRUN_LAB_NET=%q\n' "$NET"
    printf 'export GRAPHRUN_LAB_DIR=%q\n' "$STATE"
    printf 'export GRAPHRUN_LAB_INVENTORY=%q\n' "$STATE/inventory.toml"
    printf 'export GRAPHRUN_LAB_KEY=%q\n' "$STATE/id_ed25519"
    printf 'export GRAPHRUN_LAB_KNOWN_HOSTS=%q\n' "$STATE/known_hosts"
    printf 'export GRAPHRUN_LAB_DEPLOY_PASSWORD_FILE=%q\n' "$STATE/deploy-password"
    printf 'export GRAPHRUN_LAB_HOSTS=%q\n' "$(existing_hosts | sed 's/^/h/' | paste -sd' ' -)"
    [[ -f $STATE/systemd-inventory.toml ]] &&
        printf 'export GRAPHRUN_LAB_SYSTEMD_INVENTORY=%q\n' "$STATE/systemd-inventory.toml"
    return 0
}

usage() {
    cat <<'EOF'
usage: lab.sh COMMAND
  up N          bring up hosts h1..hN (idempotent; running hosts are left alone)
  down          remove everything (processes, mounts, netns, veths, bridge, nft table)
  stop hN       kill a host (simulated crash);  start hN  bring it back
  partition hN  cut a host's link;              heal hN   restore it
  rekey hN      new ssh host keys for a host, sshd reloaded
  restart-sshd hN [GAP]    sshd restarts: new connections refused for GAP s (0.5), sessions kept
  small-disk hN PATH SIZE  a SIZE (e.g. 64k) filesystem at PATH inside the host: a disk to fill
  status        one line per host
  env           export lines for tests (GRAPHRUN_LAB_INVENTORY, ...)
  systemd-up    boot s1 (Debian 12) and s2 (Debian 13) with systemd as PID 1 (idempotent)
  airgap HOST   cut HOST (hN or sN) off from everything outside the lab; SSH still works
  reconnect HOST  undo airgap
EOF
}

main() {
    local cmd=${1:-}
    [[ $# -gt 0 ]] && shift
    case $cmd in
        env) cmd_env; return ;;
        ''|-h|--help|help) usage; return ;;
    esac
    need_root
    take_lock
    case $cmd in
        up)        cmd_up "$@" ;;
        down)      cmd_down ;;
        stop)      cmd_stop "$@" ;;
        start)     cmd_start "$@" ;;
        partition) cmd_partition "$@" ;;
        heal)      cmd_heal "$@" ;;
        rekey)     cmd_rekey "$@" ;;
        systemd-up) cmd_systemd_up ;;
        airgap)    cmd_airgap "$@" ;;
        reconnect) cmd_reconnect "$@" ;;
        restart-sshd) cmd_restart_sshd "$@" ;;
        small-disk) cmd_small_disk "$@" ;;
        status)    cmd_status ;;
        *)         usage >&2; exit 2 ;;
    esac
}

main "$@"
