#!/usr/bin/env bash
# The artifact mirror the tests install binaries from: the harness's real kubectl, Helm 3 and
# Helm 4 laid out as their upstream release
# servers publish them, under MIRROR/<upstream host>/<upstream path>:
#
#   dl.k8s.io/release/vK/bin/linux/amd64/kubectl (+ .sha256: the lone hash, as dl.k8s.io)
#   get.helm.sh/helm-vH-linux-amd64.tar.gz (+ .sha256sum: "HASH  NAME"), holding linux-amd64/helm
#
#   tests/k8s/mirror.sh build     # (re)builds K8S_CACHE/mirror when an input changed; prints it
#
# Versions are read from the binaries themselves, so the paths always say what is served.
# cluster.sh copies the folder to the control-plane host and serves it over HTTP (port 8880).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/k8s/common.sh
source "$HERE/common.sh"

MIRROR=$K8S_CACHE/mirror
ARCH=amd64

# The version a binary reports (kubectl's JSON, helm's template).
kubectl_version() { "$K8S_BIN/kubectl" version --client -o json | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p'; }
helm_version() { "$K8S_BIN/$1" version --template '{{.Version}}'; }

# A gzip'd tarball with the same bytes for the same inputs (sorted names, fixed times and
# owners, no gzip timestamp): a rebuild that changes nothing leaves the checksum as it was.
reproducible_tarball() { # OUT DIR PATHS...
    local out=$1 dir=$2
    shift 2
    tar -C "$dir" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - "$@" | gzip -n -9 >"$out"
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

add_kubectl() { # ROOT
    local version dir
    version=$(kubectl_version)
    [[ -n $version ]] || die "cannot read kubectl's version"
    dir=$1/dl.k8s.io/release/$version/bin/linux/$ARCH
    mkdir -p "$dir"
    install -m 0755 "$K8S_BIN/kubectl" "$dir/kubectl"
    sha256_of "$dir/kubectl" >"$dir/kubectl.sha256"
}

add_helm() { # ROOT BINARY
    local version name work
    version=$(helm_version "$2")
    [[ $version == v* ]] || die "cannot read $2's version"
    name=helm-$version-linux-$ARCH.tar.gz
    work=$(mktemp -d)
    mkdir "$work/linux-$ARCH"
    install -m 0755 "$K8S_BIN/$2" "$work/linux-$ARCH/helm"
    mkdir -p "$1/get.helm.sh"
    reproducible_tarball "$1/get.helm.sh/$name" "$work" "linux-$ARCH"
    rm -rf "$work"
    printf '%s  %s\n' "$(sha256_of "$1/get.helm.sh/$name")" "$name" >"$1/get.helm.sh/$name.sha256sum"
}

# Every input of the mirror: a different stamp means rebuild.
inputs_stamp() {
    local name
    {
        cat "$0"
        for name in kubectl helm3 helm4; do cat "$K8S_BIN/$name.stamp"; done
    } | sha256sum | cut -d' ' -f1
}

build() {
    local name want tmp
    for name in kubectl helm3 helm4; do
        [[ -x $K8S_BIN/$name ]] || die "$K8S_BIN/$name missing: run tests/k8s/build.sh first"
    done
    mkdir -p "$K8S_CACHE"
    exec 6>"$K8S_CACHE/.mirror.lock"
    flock 6
    want=$(inputs_stamp)
    if [[ -f $MIRROR/.stamp && $(cat "$MIRROR/.stamp") == "$want" ]]; then
        echo "$MIRROR"
        return 0
    fi
    log "mirror: building $MIRROR"
    # Into a temp dir, then renamed: a half-built mirror is never served.
    tmp=$MIRROR.tmp.$$
    rm -rf "$MIRROR".tmp.* "$MIRROR".old.*
    mkdir -p "$tmp"
    add_kubectl "$tmp"
    add_helm "$tmp" helm3
    add_helm "$tmp" helm4
    echo "$want" >"$tmp/.stamp"
    [[ -d $MIRROR ]] && mv "$MIRROR" "$MIRROR.old.$$"
    mv "$tmp" "$MIRROR"
    rm -rf "$MIRROR.old.$$"
    echo "$MIRROR"
}

case ${1:-} in
    build) build ;;
    *) die "usage: mirror.sh build" ;;
esac
