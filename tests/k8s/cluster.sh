#!/usr/bin/env bash
# A real Kubernetes control plane for graphrun's tests, running ON A LAB HOST and reached from the
# control machine over the lab network, as a real cluster would be.
#
#   GRAPHRUN_LAB_ID=K tests/k8s/cluster.sh up | down | env | status
#
# `up` needs the binaries (tests/k8s/build.sh) and the lab host (tests/lab/lab.sh up 4): it copies
# the binaries, the PKI and kwok's config into the host (over ssh, only when they changed), starts
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok there (control-plane.sh),
# waits for /readyz from this machine, registers a kwok node and waits for it to be Ready. The
# artifact mirror (mirror.sh) is served from the host over HTTP (port 8880). When the chart
# fixtures are beside the repo (../shared/charts, or GRAPHRUN_SHARED_DIR/charts) they are served
# from the host as a chart repository over HTTP. `down` stops it all and wipes etcd.
#
# The host is h4 by default (GRAPHRUN_K8S_HOST): the SSH tests stop, cut off and re-key h1..h3.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=tests/k8s/common.sh
source "$HERE/common.sh"
eval "$(bash "$REPO/tests/lab/lab.sh" env)"

HOST=${GRAPHRUN_K8S_HOST:-h4}
[[ $HOST =~ ^h[0-9]+$ ]] || die "GRAPHRUN_K8S_HOST must name a lab host (h1, h2, ...), not '$HOST'"
HOST_IP=$GRAPHRUN_LAB_NET.$((10 + ${HOST#h}))
STATE=$GRAPHRUN_LAB_DIR/k8s
PKI=$STATE/pki
KUBECONFIG_FILE=$PKI/admin.kubeconfig
SHARED=${GRAPHRUN_SHARED_DIR:-$REPO/../shared}
BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
REMOTE_ROOT=/opt/graphrun-k8s
MIRROR_PORT=8880  # as control-plane.sh serves it

on_host() {
    ssh -F /dev/null -i "$GRAPHRUN_LAB_KEY" -o BatchMode=yes -o StrictHostKeyChecking=no \
        -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=5 "root@$HOST_IP" "$@"
}

kubectl() { "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

# copy_tree NAME DIR FILES...: sends FILES of DIR to REMOTE_ROOT/NAME unless the host already has
# exactly them (a checksum of the lot is kept beside them).
copy_tree() {
    local name=$1 dir=$2 sum
    shift 2
    sum=$(cd "$dir" && cat "$@" | sha256sum | cut -d' ' -f1)
    if [[ $(on_host cat "$REMOTE_ROOT/$name.sha256" 2>/dev/null || true) == "$sum" ]]; then
        return 0
    fi
    log "copying $name to $HOST"
    tar -C "$dir" -cf - "$@" |
        on_host "rm -rf $REMOTE_ROOT/$name && mkdir -p $REMOTE_ROOT/$name && tar -C $REMOTE_ROOT/$name -xf - && echo $sum > $REMOTE_ROOT/$name.sha256"
}

copy_to_host() {
    local name
    for name in "${BINARIES[@]}" kubectl; do
        [[ -x $K8S_BIN/$name ]] || die "$K8S_BIN/$name missing: run tests/k8s/build.sh first"
    done
    copy_tree bin "$K8S_BIN" "${BINARIES[@]}"
    # The admin credentials stay on this machine.
    local pki_files charts
    mapfile -t pki_files < <(cd "$PKI" && find . -maxdepth 1 -type f ! -name 'admin.*' ! -name '.*' -printf '%f\n' | sort)
    copy_tree pki "$PKI" "${pki_files[@]}"
    copy_tree conf "$HERE" control-plane.sh kwok.yaml
    local mirror files
    mirror=$(bash "$HERE/mirror.sh" build)
    mapfile -t files < <(cd "$mirror" && find . -type f ! -name '.*' | sort)
    copy_tree mirror "$mirror" "${files[@]}"
    if [[ -f $SHARED/charts/index.yaml ]]; then
        mapfile -t charts < <(cd "$SHARED/charts" && find . -maxdepth 1 -type f -printf '%f\n' | sort)
        copy_tree charts "$SHARED/charts" "${charts[@]}"
    else
        log "no chart fixtures at $SHARED/charts: no chart repository (set GRAPHRUN_SHARED_DIR)"
    fi
}

cmd_up() {
    local started
    started=$(date +%s.%N)
    ensure_machine_packages
    on_host true || die "lab host $HOST ($HOST_IP) not reachable: run GRAPHRUN_LAB_ID=$GRAPHRUN_LAB_ID tests/lab/lab.sh up ${HOST#h}"
    bash "$HERE/certs.sh" "$PKI" "$HOST_IP"
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

cmd_down() {
    on_host true 2>/dev/null || { log "down: $HOST not reachable (nothing to stop)"; return 0; }
    on_host "[ ! -x $REMOTE_ROOT/conf/control-plane.sh ] || $REMOTE_ROOT/conf/control-plane.sh stop"
    log "down: control plane on $HOST stopped, etcd wiped"
}

cmd_env() {
    printf 'export GRAPHRUN_K8S_KUBECONFIG=%q\n' "$KUBECONFIG_FILE"
    printf 'export GRAPHRUN_K8S_BIN=%q\n' "$K8S_BIN"
    printf 'export GRAPHRUN_K8S_API=%q\n' "https://$HOST_IP:6443"
    # The artifact mirror over HTTP, and the same layout as a local folder.
    printf 'export GRAPHRUN_MIRROR=%q\n' "http://$HOST_IP:$MIRROR_PORT"
    printf 'export GRAPHRUN_MIRROR_DIR=%q\n' "$K8S_CACHE/mirror"
    # Only when there is a chart repository to serve (tests that need one skip without it).
    [[ -f $SHARED/charts/index.yaml ]] && printf 'export GRAPHRUN_K8S_CHART_REPO=%q\n' "http://$HOST_IP:8879"
    return 0
}

case ${1:-} in
    up) cmd_up ;;
    down) cmd_down ;;
    env) cmd_env ;;
    status) on_host "$REMOTE_ROOT/conf/control-plane.sh health" && kubectl get nodes ;;
    *) die "usage: cluster.sh up | down | env | status" ;;
esac
