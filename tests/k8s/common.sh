# Shared by the Kubernetes test harness scripts (sourced, not run).
K8S_CACHE=${GRAPHRUN_K8S_CACHE:-/var/cache/graphrun-k8s}
K8S_BIN=$K8S_CACHE/bin
# What the harness scripts call on the machine (the lab brings its own).
K8S_MACHINE_PACKAGES=(openssl curl unzip python3-pip)

log() { printf 'k8s: %s\n' "$*" >&2; }
die() { printf 'k8s: error: %s\n' "$*" >&2; exit 1; }

ensure_machine_packages() {
    local missing=() p
    for p in "${K8S_MACHINE_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    (( ${#missing[@]} == 0 )) && return 0
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
