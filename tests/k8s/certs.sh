#!/usr/bin/env bash
# The test control plane's PKI and kubeconfigs (openssl, on the control machine).
#
#   tests/k8s/certs.sh PKI_DIR API_IP [OTHER_IP...]
#
# Writes, once per (dir, addresses): a CA; the API server's serving cert with API_IP,
# 127.0.0.1, 10.96.0.1, the kubernetes.default names and any OTHER_IP (hosts that relay the same
# API, as joining rke2 servers do) as SANs; client certs for the admin
# (system:masters), the controller manager, the scheduler and kwok; the front-proxy CA and client;
# the service-account key pair. Kubeconfigs: `admin.kubeconfig` (for the control machine:
# https://API_IP:6443, certs embedded, 0600) and `<component>.kubeconfig` for the components
# inside the host (https://127.0.0.1:6443, files under HOST_PKI).
set -euo pipefail
PKI=$1
API_IP=$2
shift 2
OTHER_SANS=""
for ip in "$@"; do OTHER_SANS+=",IP:$ip"; done
# What the serving cert was made for (a PKI made for other addresses is made again).
ADDRESSES=$(echo "$API_IP" "$@")
HOST_PKI=/opt/graphrun-k8s/pki
API_PORT=6443

if [[ -f $PKI/.api-ip && $(cat "$PKI/.api-ip") == "$ADDRESSES" && -f $PKI/admin.kubeconfig ]]; then
    exit 0
fi
rm -rf "$PKI"
mkdir -p "$PKI"
chmod 700 "$PKI"
cd "$PKI"
umask 077

quiet() { "$@" 2>/dev/null || { echo "certs: failed: $*" >&2; exit 1; }; }

new_ca() { # NAME CN
    quiet openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.crt" -days 3650 -subj "/CN=$2"
}

# signed CA NAME SUBJECT USAGE [SAN]: a key and a cert signed by CA.
signed() {
    local ca=$1 name=$2 subject=$3 usage=$4 san=${5:-}
    {
        echo "basicConstraints=CA:FALSE"
        echo "keyUsage=digitalSignature,keyEncipherment"
        echo "extendedKeyUsage=$usage"
        [[ -n $san ]] && echo "subjectAltName=$san"
    } >"$name.ext"
    quiet openssl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "$subject"
    quiet openssl x509 -req -in "$name.csr" -CA "$ca.crt" -CAkey "$ca.key" -CAcreateserial \
        -out "$name.crt" -days 3650 -extfile "$name.ext"
    rm -f "$name.csr" "$name.ext"
}

new_ca ca graphrun-test-ca
signed ca apiserver /CN=kube-apiserver serverAuth \
    "IP:$API_IP,IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local$OTHER_SANS"
signed ca admin "/CN=kubernetes-admin/O=system:masters" clientAuth
signed ca controller-manager /CN=system:kube-controller-manager clientAuth
signed ca scheduler /CN=system:kube-scheduler clientAuth
signed ca kwok "/CN=kwok-controller/O=system:masters" clientAuth
# The aggregation layer's CA: without it the controller manager and scheduler complain about a
# missing requestheader-client-ca-file.
new_ca front-proxy-ca front-proxy-ca
signed front-proxy-ca front-proxy-client /CN=front-proxy-client clientAuth
quiet openssl genrsa -out sa.key 2048
quiet openssl rsa -in sa.key -pubout -out sa.pub

# kubeconfig NAME SERVER CLUSTER_CA_LINE USER_LINES...
kubeconfig() {
    local name=$1 server=$2 ca_line=$3
    shift 3
    {
        printf 'apiVersion: v1\nkind: Config\nclusters:\n- name: graphrun-test\n  cluster:\n'
        printf '    server: %s\n    %s\n' "$server" "$ca_line"
        printf 'users:\n- name: %s\n  user:\n' "$name"
        printf '    %s\n' "$@"
        printf 'contexts:\n- name: %s\n  context: {cluster: graphrun-test, user: %s}\n' "$name" "$name"
        printf 'current-context: %s\n' "$name"
    } >"$name.kubeconfig"
}

for component in controller-manager scheduler kwok; do
    kubeconfig "$component" "https://127.0.0.1:$API_PORT" "certificate-authority: $HOST_PKI/ca.crt" \
        "client-certificate: $HOST_PKI/$component.crt" "client-key: $HOST_PKI/$component.key"
done
kubeconfig admin "https://$API_IP:$API_PORT" "certificate-authority-data: $(base64 -w0 ca.crt)" \
    "client-certificate-data: $(base64 -w0 admin.crt)" "client-key-data: $(base64 -w0 admin.key)"
echo "$ADDRESSES" >.api-ip
