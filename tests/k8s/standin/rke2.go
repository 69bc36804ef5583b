package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"
)

const (
	rke2DefaultConfig  = "/etc/rancher/rke2/config.yaml"
	rke2KubeconfigPath = "/etc/rancher/rke2/rke2.yaml"
	rke2TokenPath      = "/var/lib/rancher/rke2/server/token"
)

// Flags both `rke2 server` and `rke2 agent` read from config.yaml (a key is a flag's long name;
// a trailing `+` appends to a list).
var rke2CommonKeys = []string{
	"config", "debug", "data-dir", "token", "token-file", "server", "node-name", "with-node-id",
	"node-label", "node-taint", "node-ip", "node-external-ip", "node-internal-dns",
	"node-external-dns", "resolv-conf", "kubelet-arg", "kube-proxy-arg", "protect-kernel-defaults",
	"selinux", "lb-server-port", "private-registry", "system-default-registry", "snapshotter",
	"container-runtime-endpoint", "image-credential-provider-bin-dir",
	"image-credential-provider-config", "cloud-provider-name", "cloud-provider-config", "profile",
	"kube-proxy-image", "pause-image", "runtime-image", "airgap-extra-registry", "enable-pprof",
}

// Flags only `rke2 server` knows.
var rke2ServerKeys = []string{
	"bind-address", "advertise-address", "tls-san", "tls-san-security", "cluster-cidr",
	"service-cidr", "service-node-port-range", "cluster-dns", "cluster-domain", "write-kubeconfig",
	"write-kubeconfig-mode", "write-kubeconfig-group", "agent-token", "agent-token-file",
	"cluster-reset", "cluster-reset-restore-path", "kube-apiserver-arg", "etcd-arg",
	"kube-controller-manager-arg", "kube-scheduler-arg", "kube-cloud-controller-manager-arg",
	"etcd-expose-metrics", "etcd-disable-snapshots", "etcd-snapshot-schedule-cron",
	"etcd-snapshot-retention", "etcd-snapshot-dir", "disable", "disable-scheduler",
	"disable-cloud-controller", "disable-kube-proxy", "cni", "ingress-controller",
	"enable-servicelb", "secrets-encryption", "embedded-registry", "audit-policy-file",
	"pod-security-admission-config-file", "egress-selector-mode", "helm-job-image",
}

// The CNIs rke2 ships.
var rke2CNIs = []string{"canal", "calico", "cilium", "flannel", "multus", "none"}

func rke2Main(args []string) {
	switch {
	case len(args) == 1 && (args[0] == "--version" || args[0] == "-v"):
		fmt.Printf("rke2 version %s (graphrun test stand-in)\ngo version %s\n", version, runtime.Version())
	case len(args) >= 1 && (args[0] == "server" || args[0] == "agent"):
		if len(args) > 1 {
			usageError("flag provided but not defined: %s (graphrun's units run `rke2 %s` alone; settings live in %s)", args[1], args[0], rke2ConfigPath())
		}
		rke2Run(args[0])
	case len(args) >= 1 && strings.HasPrefix(args[0], "-"):
		usageError("flag provided but not defined: %s", args[0])
	case len(args) >= 1:
		unknownCommand(args[0], []string{"etcd-snapshot", "cert", "secrets-encrypt", "token", "completion", "help"},
			"`rke2 server`, `rke2 agent` and `rke2 --version`")
	default:
		usageError("rke2 needs a command (the stand-in knows `server`, `agent` and `--version`)")
	}
}

// rke2ConfigPath: config.yaml, or the file RKE2_CONFIG_FILE names (as rke2 reads it).
func rke2ConfigPath() string {
	if path := os.Getenv("RKE2_CONFIG_FILE"); path != "" {
		return path
	}
	return rke2DefaultConfig
}

// rke2Config reads config.yaml (absent is fine, as for rke2) as flag name → value(s).
func rke2Config(role string) map[string]any {
	config := map[string]any{}
	text, err := os.ReadFile(rke2ConfigPath())
	if os.IsNotExist(err) {
		return config
	}
	if err != nil {
		fatalf("%v", err)
	}
	if err := yaml.Unmarshal(text, &config); err != nil {
		fatalf("failed to parse %s: %v", rke2ConfigPath(), err)
	}
	known := rke2CommonKeys
	if role == "server" {
		known = append(append([]string{}, rke2CommonKeys...), rke2ServerKeys...)
	}
	var unknown []string
	for key := range config {
		if !contains(known, strings.TrimSuffix(key, "+")) {
			unknown = append(unknown, key)
		}
	}
	sort.Strings(unknown)
	for _, key := range unknown {
		// rke2's own words; it then skips the key, where the stand-in stops.
		warnf("Unknown flag --%s found in config.yaml, skipping", key)
	}
	if len(unknown) > 0 {
		fatalf("the test stand-in refuses config.yaml keys that `rke2 %s` does not know: %v", role, unknown)
	}
	return config
}

// stringValue: a scalar setting as text ("" when absent).
func stringValue(config map[string]any, key string) string {
	value, ok := config[key]
	if !ok || value == nil {
		return ""
	}
	return fmt.Sprint(value)
}

// listValue: a setting given as a list or a comma-separated string.
func listValue(config map[string]any, key string) []string {
	var items []string
	switch value := config[key].(type) {
	case []any:
		for _, item := range value {
			items = append(items, fmt.Sprint(item))
		}
	case nil:
	default:
		items = strings.Split(fmt.Sprint(value), ",")
	}
	return items
}

func rke2Run(role string) {
	config := rke2Config(role)
	server := stringValue(config, "server")
	token := stringValue(config, "token")
	if role == "agent" && server == "" {
		fatalf("--server is required")
	}
	if server != "" && token == "" && stringValue(config, "token-file") == "" {
		fatalf("--token is required")
	}
	for _, cni := range listValue(config, "cni") {
		if !contains(rke2CNIs, strings.TrimSpace(cni)) {
			fatalf("invalid value %s for --cni flag: must be one of %v", cni, rke2CNIs)
		}
	}
	name := stringValue(config, "node-name")
	if name == "" {
		hostname, err := os.Hostname()
		if err != nil {
			fatalf("%v", err)
		}
		name = hostname
	}

	var client *apiClient
	var err error
	switch {
	case server == "":
		client, err = rke2StartServer(config, token)
	case role == "server":
		client, err = rke2JoinServer(config, server)
	default:
		// An agent: the first server's API, with the credentials `cluster.sh stage` left here
		// (a real node gets its kubelet certificate from the server's port 9345).
		client, err = joinServer(server)
	}
	if err != nil {
		fatalf("%v", err)
	}
	labels := map[string]string{}
	if role == "server" {
		for _, label := range []string{"control-plane", "etcd", "master"} {
			labels["node-role.kubernetes.io/"+label] = "true"
		}
	}
	for _, label := range append(listValue(config, "node-label"), listValue(config, "node-label+")...) {
		if key, value, ok := strings.Cut(label, "="); ok {
			labels[key] = value
		}
	}
	if err := client.registerNode(name, labels); err != nil {
		fatalf("%v", err)
	}
	infof("rke2 %s is up: node %s registered", role, name)
	notifyReadyAndWait()
}

// rke2StartServer: the first server starts the control plane here and writes rke2.yaml
// (https://127.0.0.1:6443, as rke2 writes it) and the join token.
func rke2StartServer(config map[string]any, token string) (*apiClient, error) {
	address := stringValue(config, "node-ip")
	if address == "" {
		var err error
		if address, err = firstHostAddress(); err != nil {
			return nil, err
		}
	}
	if err := startControlPlane(address); err != nil {
		return nil, err
	}
	client, err := newAPIClient("127.0.0.1")
	if err != nil {
		return nil, err
	}
	if err := client.waitReady(2 * time.Minute); err != nil {
		return nil, err
	}
	if err := writeRKE2Kubeconfig(config); err != nil {
		return nil, err
	}
	return client, writeJoinToken(token)
}

// rke2JoinServer: a server that joins the first one serves the cluster's API on its own port
// 6443 as a real one does, here by relaying it to the first server's API (the staged serving
// certificate names every systemd lab host), and writes rke2.yaml like the first.
func rke2JoinServer(config map[string]any, server string) (*apiClient, error) {
	client, err := joinServer(server)
	if err != nil {
		return nil, err
	}
	listener, err := net.Listen("tcp", ":"+apiPort)
	if err != nil {
		return nil, fmt.Errorf("serving the API on port %s: %v", apiPort, err)
	}
	go relay(listener, client.hostPort)
	return client, writeRKE2Kubeconfig(config)
}

// relay copies every connection to `target` and back (TLS passes through untouched).
func relay(listener net.Listener, target string) {
	for {
		incoming, err := listener.Accept()
		if err != nil {
			return
		}
		go func() {
			defer incoming.Close()
			outgoing, err := net.DialTimeout("tcp", target, 10*time.Second)
			if err != nil {
				return
			}
			defer outgoing.Close()
			go io.Copy(outgoing, incoming)
			io.Copy(incoming, outgoing)
		}()
	}
}

// writeRKE2Kubeconfig: /etc/rancher/rke2/rke2.yaml, server https://127.0.0.1:6443 as rke2
// writes it, mode write-kubeconfig-mode (default 0600).
func writeRKE2Kubeconfig(config map[string]any) error {
	mode := os.FileMode(0o600)
	if text := stringValue(config, "write-kubeconfig-mode"); text != "" {
		parsed, err := strconv.ParseUint(text, 8, 32)
		if err != nil {
			return fmt.Errorf("invalid write-kubeconfig-mode %q: %v", text, err)
		}
		mode = os.FileMode(parsed)
	}
	kube := kubeconfig{server: "https://127.0.0.1:" + apiPort, cluster: "default", user: "default"}
	if err := kube.write(rke2KubeconfigPath); err != nil {
		return err
	}
	return os.Chmod(rke2KubeconfigPath, mode)
}

// writeJoinToken: rke2's `K10<sha256 of the cluster CA>::server:<token>` format.
func writeJoinToken(token string) error {
	if token == "" {
		return nil
	}
	ca, err := readPKI("ca.crt")
	if err != nil {
		return err
	}
	sum := sha256.Sum256(ca)
	if err := os.MkdirAll(filepath.Dir(rke2TokenPath), 0o700); err != nil {
		return err
	}
	return writeFileAtomic(rke2TokenPath, []byte("K10"+hex.EncodeToString(sum[:])+"::server:"+token+"\n"), 0o600)
}

// joinServer: the API client of the server that `server: https://HOST:9345` names.
func joinServer(server string) (*apiClient, error) {
	parsed, err := url.Parse(server)
	if err != nil || parsed.Scheme != "https" || parsed.Hostname() == "" {
		return nil, fmt.Errorf("invalid server url %q: want https://HOST:9345", server)
	}
	client, err := newAPIClient(parsed.Hostname())
	if err != nil {
		return nil, err
	}
	if err := client.waitReady(2 * time.Minute); err != nil {
		return nil, fmt.Errorf("the server %s is not up: %v", net.JoinHostPort(parsed.Hostname(), apiPort), err)
	}
	return client, nil
}

// notifyReadyAndWait tells systemd the service is up (the units are Type=notify, like rke2's)
// and stays in the foreground until stopped, as rke2 does.
func notifyReadyAndWait() {
	if socket := os.Getenv("NOTIFY_SOCKET"); socket != "" {
		if strings.HasPrefix(socket, "@") {
			socket = "\x00" + socket[1:]
		}
		connection, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: socket, Net: "unixgram"})
		if err != nil {
			fatalf("notify systemd: %v", err)
		}
		_, err = connection.Write([]byte("READY=1"))
		connection.Close()
		if err != nil {
			fatalf("notify systemd: %v", err)
		}
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	<-signals
}
