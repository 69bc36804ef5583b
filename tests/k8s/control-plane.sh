#!/usr/bin/env bash
# Runs INSIDE the lab host that carries the test control plane (cluster.sh copies it there with
# the binaries and the PKI under /opt/graphrun-k8s). Starts or stops etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kwok, the artifact mirror and a chart repository
# (python3 http.server).
#
#   control-plane.sh start API_IP | stop | health
#
# Everything but the API server (0.0.0.0:6443), the artifact mirror (API_IP:8880) and the chart
# repository (API_IP:8879) listens on 127.0.0.1. Network safety: kwok gives pods loopback addresses (127.100.0.0/16, node IP
# 127.0.0.1), so no Service ever gets a routable endpoint, and the API server resolves webhooks
# through endpoints (--enable-aggregator-routing), never dialling a ClusterIP (10.96.x.x).
set -euo pipefail
ROOT=/opt/graphrun-k8s
BIN=$ROOT/bin
PKI=$ROOT/pki
RUN=/run/graphrun-k8s          # pid files (the host's /run is a tmpfs: gone with the host)
DATA=/var/lib/graphrun-k8s     # etcd's data, wiped by stop
LOGS=/var/log/graphrun-k8s
CHART_REPO_PORT=8879
MIRROR_PORT=8880
# Stopped in this order (the reverse of start).
COMPONENTS=(mirror chart-repo kwok kube-scheduler kube-controller-manager kube-apiserver etcd)

die() { printf 'control-plane: error: %s\n' "$*" >&2; exit 1; }

running() { [[ -f $RUN/$1.pid ]] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

# launch NAME COMMAND...: detached from the ssh session, output to LOGS/NAME.log.
launch() {
    local name=$1
    shift
    running "$name" && return 0
    setsid nohup "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
    echo $! >"$RUN/$name.pid"
}

# wait_for NAME URL: polls a local health URL until it answers (python3: the host has no curl).
wait_for() {
    local name=$1 url=$2 i
    for i in $(seq 1 600); do
        python3 - "$url" <<'EOF' && return 0
import ssl, sys, urllib.request
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
try:
    urllib.request.urlopen(sys.argv[1], timeout=1, context=context).read()
except Exception:
    sys.exit(1)
EOF
        running "$name" || die "$name exited: $(tail -n 5 "$LOGS/$name.log")"
        sleep 0.2
    done
    die "$name not healthy after 2 minutes: $(tail -n 5 "$LOGS/$name.log")"
}

start() {
    local api_ip=$1
    mkdir -p "$RUN" "$DATA" "$LOGS"
    launch etcd "$BIN/etcd" --name graphrun-test --data-dir "$DATA/etcd" \
        --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
        --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
        --initial-cluster graphrun-test=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381
    wait_for etcd http://127.0.0.1:2379/health
    # --endpoint-reconciler-type=none: the apiserver's own Endpoints would name this host.
    launch kube-apiserver "$BIN/kube-apiserver" \
        --etcd-servers=http://127.0.0.1:2379 \
        --bind-address=0.0.0.0 --advertise-address="$api_ip" --secure-port=6443 \
        --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
        --client-ca-file="$PKI/ca.crt" \
        --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
        --service-account-issuer=https://kubernetes.default.svc.cluster.local \
        --service-cluster-ip-range=10.96.0.0/12 \
        --authorization-mode=Node,RBAC --allow-privileged=true \
        --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
        --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
        --requestheader-extra-headers-prefix=X-Remote-Extra- \
        --proxy-client-cert-file="$PKI/front-proxy-client.crt" --proxy-client-key-file="$PKI/front-proxy-client.key" \
        --endpoint-reconciler-type=none \
        --enable-aggregator-routing=true \
        --profiling=false
    wait_for kube-apiserver https://127.0.0.1:6443/livez
    launch kube-controller-manager "$BIN/kube-controller-manager" \
        --kubeconfig="$PKI/controller-manager.kubeconfig" \
        --authentication-kubeconfig="$PKI/controller-manager.kubeconfig" \
        --authorization-kubeconfig="$PKI/controller-manager.kubeconfig" \
        --bind-address=127.0.0.1 --secure-port=10257 \
        --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
        --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
        --use-service-account-credentials=true --leader-elect=false \
        --service-cluster-ip-range=10.96.0.0/12
    launch kube-scheduler "$BIN/kube-scheduler" \
        --kubeconfig="$PKI/scheduler.kubeconfig" \
        --authentication-kubeconfig="$PKI/scheduler.kubeconfig" \
        --authorization-kubeconfig="$PKI/scheduler.kubeconfig" \
        --bind-address=127.0.0.1 --secure-port=10259 --leader-elect=false
    launch kwok "$BIN/kwok" --kubeconfig="$PKI/kwok.kubeconfig" --config="$ROOT/conf/kwok.yaml" \
        --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
        --node-ip=127.0.0.1 --cidr=127.100.0.0/16 --node-lease-duration-seconds=40
    if [[ -d $ROOT/charts ]]; then
        launch chart-repo python3 -m http.server "$CHART_REPO_PORT" --bind "$api_ip" --directory "$ROOT/charts"
    fi
    if [[ -d $ROOT/mirror ]]; then
        launch mirror python3 -m http.server "$MIRROR_PORT" --bind "$api_ip" --directory "$ROOT/mirror"
    fi
    health
}

health() {
    wait_for kube-apiserver https://127.0.0.1:6443/readyz
    wait_for kube-controller-manager https://127.0.0.1:10257/healthz
    wait_for kube-scheduler https://127.0.0.1:10259/healthz
    running kwok || die "kwok is not running: $(tail -n 5 "$LOGS/kwok.log")"
}

stop() {
    local name pid i
    for name in "${COMPONENTS[@]}"; do
        [[ -f $RUN/$name.pid ]] || continue
        pid=$(cat "$RUN/$name.pid")
        if kill "$pid" 2>/dev/null; then
            for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$RUN/$name.pid"
    done
    # A fresh cluster on every start: no state carried from one test run to the next.
    rm -rf "$DATA"
}

case ${1:-} in
    start) [[ -n ${2:-} ]] || die "usage: control-plane.sh start API_IP"; start "$2" ;;
    stop) stop ;;
    health) health ;;
    *) die "usage: control-plane.sh start API_IP | stop | health" ;;
esac
