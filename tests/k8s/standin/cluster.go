package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// What `cluster.sh stage` puts on the host: the control plane's binaries, its PKI (with the
// admin client certificate the kubeconfig carries) and control-plane.sh.
const (
	stagedRoot   = "/opt/graphrun-k8s"
	controlPlane = stagedRoot + "/conf/control-plane.sh"
	pkiDir       = stagedRoot + "/pki"
	apiPort      = "6443"
)

// startControlPlane starts (or finds running) the real control plane on this host, its API
// server advertising address.
func startControlPlane(address string) error {
	if _, err := os.Stat(controlPlane); err != nil {
		return fmt.Errorf("the control plane is not staged on this host (%s missing): run tests/k8s/cluster.sh stage HOST first", controlPlane)
	}
	command := exec.Command(controlPlane, "start", address)
	command.Stdout = os.Stderr
	command.Stderr = os.Stderr
	return command.Run()
}

// isLocalAddress: whether one of this host's interfaces has `address` (an IP or a name).
func isLocalAddress(address string) bool {
	ips, err := net.LookupHost(address)
	if err != nil {
		return false
	}
	local, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, candidate := range local {
		prefix, _, _ := strings.Cut(candidate.String(), "/")
		for _, ip := range ips {
			if ip == prefix {
				return true
			}
		}
	}
	return false
}

// firstHostAddress: the host's first non-loopback IPv4 address (a lab host has one).
func firstHostAddress() (string, error) {
	local, err := net.InterfaceAddrs()
	if err != nil {
		return "", err
	}
	for _, candidate := range local {
		if ipnet, ok := candidate.(*net.IPNet); ok && !ipnet.IP.IsLoopback() && ipnet.IP.To4() != nil {
			return ipnet.IP.String(), nil
		}
	}
	return "", fmt.Errorf("no IPv4 address on this host")
}

func readPKI(name string) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(pkiDir, name))
	if err != nil {
		return nil, fmt.Errorf("staged PKI: %v (run tests/k8s/cluster.sh stage HOST first)", err)
	}
	return data, nil
}

// kubeconfig is the admin kubeconfig the real tool writes, with its cluster, context and user
// names, the certificates embedded.
type kubeconfig struct {
	server, cluster, user string
}

func (k kubeconfig) write(path string) error {
	var blobs [3]string
	for i, name := range []string{"ca.crt", "admin.crt", "admin.key"} {
		data, err := readPKI(name)
		if err != nil {
			return err
		}
		blobs[i] = base64.StdEncoding.EncodeToString(data)
	}
	text := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: %s
    server: "%s"
  name: "%s"
contexts:
- context:
    cluster: "%s"
    user: "%s"
  name: "%s"
current-context: "%s"
users:
- name: "%s"
  user:
    client-certificate-data: %s
    client-key-data: %s
`, blobs[0], k.server, k.cluster, k.cluster, k.user, k.cluster, k.cluster, k.user, blobs[1], blobs[2])
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return writeFileAtomic(path, []byte(text), 0o600)
}

// writeFileAtomic writes a temp file beside path and renames it: a reader never sees half.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// apiClient talks to the API server at https://HOST:6443 with the staged admin certificate.
type apiClient struct {
	hostPort string
	base     string
	client   *http.Client
}

func newAPIClient(host string) (*apiClient, error) {
	caPEM, err := readPKI("ca.crt")
	if err != nil {
		return nil, err
	}
	certPEM, err := readPKI("admin.crt")
	if err != nil {
		return nil, err
	}
	keyPEM, err := readPKI("admin.key")
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}}}
	hostPort := net.JoinHostPort(host, apiPort)
	return &apiClient{
		hostPort: hostPort,
		base:     "https://" + hostPort,
		client:   &http.Client{Transport: transport, Timeout: 10 * time.Second},
	}, nil
}

func (a *apiClient) do(method, path string, body any) (int, []byte, error) {
	var reader io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		reader = bytes.NewReader(data)
	}
	request, err := http.NewRequest(method, a.base+path, reader)
	if err != nil {
		return 0, nil, err
	}
	request.Header.Set("Content-Type", "application/json")
	response, err := a.client.Do(request)
	if err != nil {
		return 0, nil, err
	}
	defer response.Body.Close()
	data, err := io.ReadAll(response.Body)
	return response.StatusCode, data, err
}

// registerNode creates a Node that kwok keeps Ready (one that exists already is left as it is)
// and waits until it is Ready.
func (a *apiClient) registerNode(name string, labels map[string]string) error {
	all := map[string]string{
		"kubernetes.io/arch":     "amd64",
		"kubernetes.io/os":       "linux",
		"kubernetes.io/hostname": name,
		"type":                   "kwok",
	}
	for key, value := range labels {
		all[key] = value
	}
	node := map[string]any{
		"apiVersion": "v1",
		"kind":       "Node",
		"metadata": map[string]any{
			"name":        name,
			"labels":      all,
			"annotations": map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
		},
	}
	status, body, err := a.do(http.MethodPost, "/api/v1/nodes", node)
	if err != nil {
		return err
	}
	if status != http.StatusCreated && status != http.StatusConflict {
		return fmt.Errorf("registering node %s: HTTP %d: %s", name, status, body)
	}
	return a.waitNodeReady(name, 2*time.Minute)
}

func (a *apiClient) waitNodeReady(name string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		status, body, err := a.do(http.MethodGet, "/api/v1/nodes/"+name, nil)
		if err == nil && status == http.StatusOK && nodeIsReady(body) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s not Ready after %s", name, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func nodeIsReady(body []byte) bool {
	var node struct {
		Status struct {
			Conditions []struct{ Type, Status string }
		}
	}
	if json.Unmarshal(body, &node) != nil {
		return false
	}
	for _, condition := range node.Status.Conditions {
		if condition.Type == "Ready" {
			return condition.Status == "True"
		}
	}
	return false
}

// waitReady polls /readyz until the API server answers.
func (a *apiClient) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		status, _, err := a.do(http.MethodGet, "/readyz", nil)
		if err == nil && status == http.StatusOK {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("API server %s not ready after %s", a.base, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
