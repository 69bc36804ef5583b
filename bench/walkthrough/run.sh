#!/usr/bin/env bash
# The lab end-to-end walkthrough's wall time and how it splits: puts the lab's hosts and cluster
# back to before the walkthrough (its add-on releases and namespaces, the rke folder, the key, the
# kubectl and helm binaries), applies playbooks/rke-rancher-lab.toml once with --output json, and
# prints the timings (timings.py). Needs the lab and the cluster harness up, as the playbook says.
#   GRAPHRUN_LAB_ID=K bash bench/walkthrough/run.sh [GRAPHRUN_BINARY]
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
GRAPHRUN=${1:-$REPO/target/debug/graphrun}
eval "$(bash "$REPO/tests/lab/lab.sh" env)"
eval "$(bash "$REPO/tests/k8s/cluster.sh" env)"

on() { # ADDRESS COMMAND
    ssh -F /dev/null -i "$GRAPHRUN_LAB_KEY" -o BatchMode=yes -o StrictHostKeyChecking=no \
        -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "root@$1" "$2"
}
kubectl() { "$GRAPHRUN_K8S_BIN/kubectl" --kubeconfig "$GRAPHRUN_K8S_KUBECONFIG" "$@"; }

master=$GRAPHRUN_LAB_NET.14 worker=$GRAPHRUN_LAB_NET.13
on "$master" 'helm uninstall rancher -n cattle-system --wait >/dev/null 2>&1; helm uninstall cert-manager -n cert-manager --wait >/dev/null 2>&1; true'
kubectl delete namespace minio cattle-system cert-manager --ignore-not-found --wait=true >/dev/null
for address in "$master" "$worker"; do
    on "$address" 'rm -rf /opt/graphrun-walkthrough /root/.ssh/graphrun_walkthrough /root/.ssh/graphrun_walkthrough.pub /usr/local/bin/kubectl /usr/local/bin/helm /root/.kube/config'
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$REPO/playbooks/rke-rancher-lab.toml" "$work/"
RANCHER_BOOTSTRAP_PASSWORD=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n') \
    "$GRAPHRUN" apply "$work/rke-rancher-lab.toml" --inventory "$GRAPHRUN_LAB_INVENTORY" \
    --output json >"$work/events.jsonl"
python3 "$REPO/bench/walkthrough/timings.py" <"$work/events.jsonl"
