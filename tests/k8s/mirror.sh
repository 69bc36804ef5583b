#!/usr/bin/env bash
# The artifact mirror the tests install binaries from: the harness's real kubectl, Helm 3 and
# Helm 4 laid out as their upstream release
# servers publish them, under MIRROR/<upstream host>/<upstream path>:
#
#   dl.k8s.io/release/vK/bin/linux/amd64/kubectl (+ .sha256: the lone hash, as dl.k8s.io)
#   get.helm.sh/helm-vH-linux-amd64.tar.gz (+ .sha256sum: "HASH  NAME"), holding linux-amd64/helm
#   github.com/rancher/rke/releases/download/vR/rke_linux-amd64 (+ sha256sum.txt: "HASH  NAME")
#   github.com/rancher/rke2/releases/download/vR2/rke2.linux-amd64.tar.gz (+ sha256sum-amd64.txt),
#     holding bin/rke2, bin/rke2-killall.sh and lib/systemd/system/rke2-{server,agent}.{service,env},
#     for /usr/local
#     (the folder is spelt with rke2's `+`; GitHub's URL has `%2B`, which the HTTP server decodes)
#
#   tests/k8s/mirror.sh build     # builds the mirror of the current inputs (once); prints its folder
#   tests/k8s/mirror.sh path      # prints that folder (built or not)
#
# Each set of inputs (binaries, stand-ins, this script) has a folder of its own,
# K8S_CACHE/mirrors/<stamp>: worktrees and labs that share the cache never rebuild each other's
# mirror under their feet. Mirrors unused for two days are removed.
#
# Versions are read from the binaries themselves, so the paths always say what is served.
# cluster.sh copies the folder to the control-plane host and serves it over HTTP (port 8880).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/k8s/common.sh
source "$HERE/common.sh"

MIRRORS=$K8S_CACHE/mirrors
ARCH=amd64

# The version a binary reports (kubectl's JSON, helm's template).
kubectl_version() { "$K8S_BIN/kubectl" version --client -o json | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p'; }
helm_version() { "$K8S_BIN/$1" version --template '{{.Version}}'; }

# A gzip'd tarball with the same bytes for the same inputs (sorted names, fixed times and
# owners, no gzip timestamp): a rebuild that changes nothing leaves the checksum as it was.
reproducible_tarball() { # OUT DIR PATHS...
    local out=$1 dir=$2
    shift 2
    tar -C "$dir" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - "$@" | gzip -n >"$out"
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

# standin_version NAME: the release a stand-in says it is (`rke version v1.8.5`).
standin_version() { "$K8S_BIN/$1-standin" --version | sed -n "s/^$1 version \([^ ]*\).*/\1/p"; }

add_rke() { # ROOT
    local version dir
    version=$(standin_version rke)
    dir=$1/github.com/rancher/rke/releases/download/$version
    mkdir -p "$dir"
    install -m 0755 "$K8S_BIN/rke-standin" "$dir/rke_linux-$ARCH"
    printf '%s  %s\n' "$(sha256_of "$dir/rke_linux-$ARCH")" "rke_linux-$ARCH" >"$dir/sha256sum.txt"
}

add_rke2() { # ROOT
    local version dir work name=rke2.linux-$ARCH.tar.gz
    version=$(standin_version rke2)
    dir=$1/github.com/rancher/rke2/releases/download/$version
    work=$(mktemp -d)
    mkdir -p "$dir" "$work/bin" "$work/lib/systemd/system"
    install -m 0755 "$K8S_BIN/rke2-standin" "$work/bin/rke2"
    install -m 0755 "$HERE/standin/rke2-killall.sh" "$work/bin/rke2-killall.sh"
    install -m 0644 "$HERE"/standin/systemd/* "$work/lib/systemd/system/"
    reproducible_tarball "$dir/$name" "$work" bin lib
    rm -rf "$work"
    printf '%s  %s\n' "$(sha256_of "$dir/$name")" "$name" >"$dir/sha256sum-$ARCH.txt"
}

# Every input of the mirror: a different stamp means rebuild.
inputs_stamp() {
    local name
    {
        cat "$0"
        for name in kubectl helm3 helm4 rke-standin rke2-standin; do cat "$K8S_BIN/$name.stamp"; done
        cat "$HERE"/standin/systemd/* "$HERE/standin/rke2-killall.sh"
    } | sha256sum | cut -d' ' -f1
}

build() {
    local name mirror tmp
    for name in kubectl helm3 helm4 rke-standin rke2-standin; do
        [[ -x $K8S_BIN/$name ]] || die "$K8S_BIN/$name missing: run tests/k8s/build.sh first"
    done
    mkdir -p "$MIRRORS"
    exec 6>"$MIRRORS/.lock"
    flock 6
    mirror=$MIRRORS/$(inputs_stamp)
    if [[ ! -d $mirror ]]; then
        log "mirror: building $mirror"
        # Into a temp dir, then renamed: a half-built mirror is never served.
        tmp=$mirror.tmp.$$
        rm -rf "$MIRRORS"/*.tmp.*
        mkdir -p "$tmp"
        add_kubectl "$tmp"
        add_helm "$tmp" helm3
        add_helm "$tmp" helm4
        add_rke "$tmp"
        add_rke2 "$tmp"
        mv "$tmp" "$mirror"
    fi
    touch "$mirror"
    find "$MIRRORS" -mindepth 1 -maxdepth 1 -type d -mtime +2 -exec rm -rf {} +
    echo "$mirror"
}

case ${1:-} in
    build) build ;;
    path) echo "$MIRRORS/$(inputs_stamp)" ;;
    *) die "usage: mirror.sh build | path" ;;
esac
