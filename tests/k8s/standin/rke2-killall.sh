#!/bin/sh
# bin/rke2-killall.sh of the rke2 stand-in's tarball. rke2's own script stops every process
# rke2 started on the node; here that is the rke2 services and the control plane the stand-in
# started (tests run it to give the host's port 6443 and memory back).
set -x
[ "$(id -u)" -eq 0 ] || exec sudo "$0" "$@"
for service in rke2-server rke2-agent; do
    systemctl stop "$service.service" 2>/dev/null || true
done
[ ! -x /opt/graphrun-k8s/conf/control-plane.sh ] || /opt/graphrun-k8s/conf/control-plane.sh stop
