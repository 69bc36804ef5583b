#!/usr/bin/env bash
# A real Kubernetes control plane for graphrun's tests, running ON A LAB HOST and reached from the
# control machine over the lab network, as a real cluster would be.
#
#   GRAPHRUN_LAB_ID=K tests/k8s/cluster.sh up | down | env | status
#   GRAPHRUN_LAB_ID=K tests/k8s/cluster.sh stage HOST [SERVER]
#
# `up` needs the binaries (tests/k8s/build.sh) and the lab host (tests/lab/lab.sh up 4): it copies
# the binaries, the PKI and kwok's config into the host (over ssh, only when they changed), starts
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok there (control-plane.sh),
# waits for /readyz from this machine, registers a kwok node and waits for it to be Ready. The
# artifact mirror (mirror.sh) is served from the host over HTTP (port 8880). When the chart
# fixtures are beside the repo (../shared/charts, or GRAPHRUN_SHARED_DIR/charts) they are served
# from the host as a chart repository over HTTP. `down` stops it all (on staged hosts too) and
# wipes etcd.
#
# `stage HOST` copies the same binaries, control-plane.sh and a PKI made for HOST's address into
# HOST (an hN or sN lab host) without starting anything: the rke and rke2 stand-ins start the
# control plane there when graphrun runs them. `stage HOST SERVER` gives a joining node only
# SERVER's PKI (the rke2 agent stand-in registers its node with it).
#
# The host is h4 by default (GRAPHRUN_K8S_HOST): the SSH tests stop, cut off and re-key h1..h3.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=tests/k8s/common.sh
source "$HERE/common.sh"
eval "$(bash "$REPO/tests/lab/lab.sh" env)"

# host_ip NAME: a lab host's address (hN: NET.(10+N), sN: NET.(100+N), as lab.sh gives them).
host_ip() {
    case $1 in
        h[0-9]*) [[ ${1#h} =~ ^[0-9]+$ ]] && echo "$GRAPHRUN_LAB_NET.$((10 + ${1#h}))" && return ;;
        s[0-9]*) [[ ${1#s} =~ ^[0-9]+$ ]] && echo "$GRAPHRUN_LAB_NET.$((100 + ${1#s}))" && return ;;
    esac
    die "'$1' does not name a lab host (h1, h2, ... or s1, s2)"
}

HOST=${GRAPHRUN_K8S_HOST:-h4}
[[ $HOST =~ ^h[0-9]+$ ]] || die "GRAPHRUN_K8S_HOST must name a lab host (h1, h2, ...), not '$HOST'"
HOST_IP=$(host_ip "$HOST")
STATE=$GRAPHRUN_LAB_DIR/k8s
PKI=$STATE/pki
KUBECONFIG_FILE=$PKI/admin.kubeconfig
SHARED=${GRAPHRUN_SHARED_DIR:-$REPO/../shared}
BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
REMOTE_ROOT=/opt/graphrun-k8s
MIRROR_PORT=8880  # as control-plane.sh serves it

# ssh_root ADDRESS COMMAND...
ssh_root() {
    local address=$1
    shift
    ssh -F /dev/null -i "$GRAPHRUN_LAB_KEY" -o BatchMode=yes -o StrictHostKeyChecking=no \
        -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=5 "root@$address" "$@"
}

on_host() { ssh_root "$HOST_IP" "$@"; }

kubectl() { "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

# pki_of HOST: the PKI made for HOST's address (the control-plane host's is STATE/pki).
pki_of() {
    if [[ $1 == "$HOST" ]]; then echo "$PKI"; else echo "$STATE/staged/$1/pki"; fi
}

# copy_tree ADDRESS NAME DIR FILES...: sends FILES of DIR to REMOTE_ROOT/NAME on the host unless
# it already has exactly them (a checksum of the lot is kept beside them).
copy_tree() {
    local address=$1 name=$2 dir=$3 sum
    shift 3
    sum=$(cd "$dir" && cat "$@" | sha256sum | cut -d' ' -f1)
    if [[ $(ssh_root "$address" cat "$REMOTE_ROOT/$name.sha256" 2>/dev/null || true) == "$sum" ]]; then
        return 0
    fi
    log "copying $name to $address"
    tar -C "$dir" -cf - "$@" |
        ssh_root "$address" "rm -rf $REMOTE_ROOT/$name && mkdir -p $REMOTE_ROOT/$name && tar -C $REMOTE_ROOT/$name -xf - && echo $sum > $REMOTE_ROOT/$name.sha256"
}

# relaying_hosts SERVER: the addresses that may serve SERVER's API too. A first rke2 server on
# a systemd host (s1, s2, as lab.sh systemd-up makes them) can be joined by the other, which then
# relays its API.
relaying_hosts() {
    local host
    [[ $1 == s* ]] || return 0
    for host in s1 s2; do
        [[ $host == "$1" ]] || host_ip "$host"
    done
}

# stage_host HOST SERVER: SERVER's PKI (made for its address) and control-plane.sh into HOST, and
# the binaries when HOST is a server itself. The admin certificate goes too: the stand-ins write
# the admin kubeconfig on the host, as the real rke and rke2 do.
stage_host() {
    local host=$1 server=$2 address pki name pki_files
    address=$(host_ip "$host")
    ssh_root "$address" true || die "lab host $host ($address) not reachable: bring it up with tests/lab/lab.sh first"
    pki=$(pki_of "$server")
    # shellcheck disable=SC2046  # one word per address
    bash "$HERE/certs.sh" "$pki" "$(host_ip "$server")" $(relaying_hosts "$server")
    if [[ $host == "$server" ]]; then
        for name in "${BINARIES[@]}"; do
            [[ -x $K8S_BIN/$name ]] || die "$K8S_BIN/$name missing: run tests/k8s/build.sh first"
        done
        copy_tree "$address" bin "$K8S_BIN" "${BINARIES[@]}"
    fi
    mapfile -t pki_files < <(cd "$pki" && find . -maxdepth 1 -type f ! -name '.*' -printf '%f\n' | sort)
    copy_tree "$address" pki "$pki" "${pki_files[@]}"
    copy_tree "$address" conf "$HERE" control-plane.sh kwok.yaml
}

copy_to_host() {
    [[ -x $K8S_BIN/kubectl ]] || die "$K8S_BIN/kubectl missing: run tests/k8s/build.sh first"
    stage_host "$HOST" "$HOST"
    local mirror files charts
    mirror=$(bash "$HERE/mirror.sh" build)
    mapfile -t files < <(cd "$mirror" && find . -type f ! -name '.*' | sort)
    copy_tree "$HOST_IP" mirror "$mirror" "${files[@]}"
    if [[ -f $SHARED/charts/index.yaml ]]; then
        mapfile -t charts < <(cd "$SHARED/charts" && find . -maxdepth 1 -type f -printf '%f\n' | sort)
        copy_tree "$HOST_IP" charts "$SHARED/charts" "${charts[@]}"
    else
        log "no chart fixtures at $SHARED/charts: no chart repository (set GRAPHRUN_SHARED_DIR)"
    fi
}

cmd_up() {
    local started
    started=$(date +%s.%N)
    ensure_machine_packages
    on_host true || die "lab host $HOST ($HOST_IP) not reachable: run GRAPHRUN_LAB_ID=$GRAPHRUN_LAB_ID tests/lab/lab.sh up ${HOST#h}"
    copy_to_host
    on_host "$REMOTE_ROOT/conf/control-plane.sh start $HOST_IP"
    # The API as a client on this machine sees it: over the lab network, the CA verified.
    local i
    for i in $(seq 1 300); do
        kubectl get --raw /readyz >/dev/null 2>&1 && break
        sleep 0.2
    done
    kubectl get --raw /readyz >/dev/null || die "API server at https://$HOST_IP:6443 not ready"
    kubectl apply -f "$HERE/kwok-node.yaml" >/dev/null
    kubectl wait --for=condition=Ready node/kwok-node-0 --timeout=120s >/dev/null
    log "up: API https://$HOST_IP:6443 ready, kwok-node-0 Ready ($(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}') s)"
}

# stop_on ADDRESS: stops whatever control plane runs there (nothing when none was staged).
stop_on() {
    ssh_root "$1" "[ ! -x $REMOTE_ROOT/conf/control-plane.sh ] || $REMOTE_ROOT/conf/control-plane.sh stop"
}

cmd_down() {
    local dir host
    for dir in "$STATE"/staged/*/; do
        [[ -d $dir ]] || continue
        host=$(basename "$dir")
        ssh_root "$(host_ip "$host")" true 2>/dev/null && stop_on "$(host_ip "$host")" && log "down: $host stopped"
    done
    on_host true 2>/dev/null || { log "down: $HOST not reachable (nothing to stop)"; return 0; }
    stop_on "$HOST_IP"
    log "down: control plane on $HOST stopped, etcd wiped"
}

cmd_stage() {
    local host=${1:-} server=${2:-${1:-}}
    [[ -n $host ]] || die "usage: cluster.sh stage HOST [SERVER]"
    ensure_machine_packages
    stage_host "$host" "$server"
    # Remembered for `down`, which stops what the stand-ins started.
    mkdir -p "$STATE/staged/$host"
    log "staged: $host ($(host_ip "$host")) with the PKI of $server"
}

cmd_env() {
    printf 'export GRAPHRUN_K8S_KUBECONFIG=%q\n' "$KUBECONFIG_FILE"
    printf 'export GRAPHRUN_K8S_BIN=%q\n' "$K8S_BIN"
    printf 'export GRAPHRUN_K8S_API=%q\n' "https://$HOST_IP:6443"
    # The artifact mirror over HTTP, and the same layout as a local folder.
    printf 'export GRAPHRUN_MIRROR=%q\n' "http://$HOST_IP:$MIRROR_PORT"
    printf 'export GRAPHRUN_MIRROR_DIR=%q\n' "$(bash "$HERE/mirror.sh" path)"
    # Only when there is a chart repository to serve (tests that need one skip without it).
    [[ -f $SHARED/charts/index.yaml ]] && printf 'export GRAPHRUN_K8S_CHART_REPO=%q\n' "http://$HOST_IP:8879"
    return 0
}

case ${1:-} in
    up) cmd_up ;;
    down) cmd_down ;;
    stage) shift; cmd_stage "$@" ;;
    env) cmd_env ;;
    status) on_host "$REMOTE_ROOT/conf/control-plane.sh health" && kubectl get nodes ;;
    *) die "usage: cluster.sh up | down | env | status | stage HOST [SERVER]" ;;
esac
