#!/usr/bin/env bash
# The walkthrough on lab hosts, from nothing: the lab's four hosts, the Kubernetes test harness
# (control plane, artifact mirror and chart repository on h4), then one apply of
# playbooks/rke-rancher-lab.toml. Needs root and the chart fixtures (../shared/charts beside the
# repo, or GRAPHRUN_SHARED_DIR). Idempotent: a second run changes nothing.
#   bash tests/walkthrough-lab.sh [APPLY OPTIONS...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/lab/lab.sh up 4
bash tests/k8s/build.sh
bash tests/k8s/cluster.sh up
eval "$(bash tests/lab/lab.sh env)"
eval "$(bash tests/k8s/cluster.sh env)"
if [[ -z ${GRAPHRUN_K8S_CHART_REPO:-} ]]; then
    echo "walkthrough-lab: no chart repository: put the chart fixtures in ../shared/charts or set GRAPHRUN_SHARED_DIR" >&2
    exit 1
fi
# Rancher's bootstrap password, unless one is given: made once for this lab and kept 0600 in its
# state folder (a new one each run would upgrade the release each run). It is never shown.
password_file=$GRAPHRUN_LAB_DIR/rancher-bootstrap-password
if [[ -z ${RANCHER_BOOTSTRAP_PASSWORD:-} && ! -s $password_file ]]; then
    (umask 077 && head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$password_file")
fi
RANCHER_BOOTSTRAP_PASSWORD=${RANCHER_BOOTSTRAP_PASSWORD:-$(cat "$password_file")}
export RANCHER_BOOTSTRAP_PASSWORD
cargo run --locked --quiet -- apply playbooks/rke-rancher-lab.toml --inventory "$GRAPHRUN_LAB_INVENTORY" "$@"
