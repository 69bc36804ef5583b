package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// rkeMain: `rke --version` or `rke up [--config FILE]`, nothing else (urfave/cli's answers).
func rkeMain(args []string) {
	switch {
	case len(args) == 1 && (args[0] == "--version" || args[0] == "-v"):
		fmt.Printf("rke version %s\n", version)
	case len(args) >= 1 && args[0] == "up":
		rkeUp(upConfigPath(args[1:]))
	case len(args) >= 1 && strings.HasPrefix(args[0], "-"):
		usageError("flag provided but not defined: %s", args[0])
	case len(args) >= 1:
		unknownCommand(args[0], []string{"remove", "version", "config", "etcd", "cert", "encrypt", "util", "help"},
			"`rke up --config FILE` and `rke --version`")
	default:
		usageError("rke needs a command (the stand-in knows `up --config FILE` and `--version`)")
	}
}

// upConfigPath: the FILE of `--config FILE` / `--config=FILE` (default cluster.yml, as rke's).
func upConfigPath(args []string) string {
	path := "cluster.yml"
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "--config" && i+1 < len(args):
			path = args[i+1]
			i++
		case strings.HasPrefix(args[i], "--config="):
			path = strings.TrimPrefix(args[i], "--config=")
		default:
			usageError("flag provided but not defined: %s", args[i])
		}
	}
	return path
}

// The yaml tags of RKE's RancherKubernetesEngineConfig and RKEConfigNode (types/rke_types.go).
var rkeTopLevelKeys = []string{
	"nodes", "services", "network", "authentication", "addons", "addons_include", "system_images",
	"ssh_key_path", "ssh_cert_path", "ssh_agent_auth", "authorization", "ignore_docker_version",
	"enable_cri_dockerd", "kubernetes_version", "private_registries", "ingress", "cluster_name",
	"cloud_provider", "prefix_path", "win_prefix_path", "addon_job_timeout", "bastion_host",
	"monitoring", "restore", "rotate_certificates", "rotate_encryption_key", "dns",
	"upgrade_strategy", "cri_dockerd_stream_server_address", "cri_dockerd_stream_server_port",
}

var rkeNodeKeys = []string{
	"nodeName", "address", "port", "internal_address", "role", "hostname_override", "user",
	"docker_socket", "ssh_agent_auth", "ssh_key", "ssh_key_path", "ssh_cert", "ssh_cert_path",
	"labels", "taints",
}

type rkeNode struct {
	Address          string            `yaml:"address"`
	Port             string            `yaml:"port"`
	Role             []string          `yaml:"role"`
	HostnameOverride string            `yaml:"hostname_override"`
	User             string            `yaml:"user"`
	SSHKeyPath       string            `yaml:"ssh_key_path"`
	Labels           map[string]string `yaml:"labels"`
}

type rkeConfig struct {
	Nodes       []rkeNode `yaml:"nodes"`
	SSHKeyPath  string    `yaml:"ssh_key_path"`
	Version     string    `yaml:"kubernetes_version"`
	ClusterName string    `yaml:"cluster_name"`
	Network     struct {
		Plugin string `yaml:"plugin"`
	} `yaml:"network"`
	Ingress struct {
		Provider string `yaml:"provider"`
	} `yaml:"ingress"`
}

func rkeUp(path string) {
	text, err := os.ReadFile(path)
	if err != nil {
		fatalf("Failed to resolve cluster file: Can not find cluster configuration file: %v", err)
	}
	config, err := parseRKEConfig(text)
	if err != nil {
		fatalf("Failed to parse cluster file: %v", err)
	}
	if err := validateRKEConfig(config); err != nil {
		fatalf("%v", err)
	}
	infof("Building Kubernetes cluster")
	for _, node := range config.Nodes {
		if err := reachNode(config, node); err != nil {
			fatalf("%v", err)
		}
	}
	// RKE's API URL is the first controlplane host's address.
	api := ""
	for _, node := range config.Nodes {
		if hasRole(node, "controlplane") {
			api = node.Address
			break
		}
	}
	if !isLocalAddress(api) {
		fatalf("stand-in: the first controlplane node (%s) must be the host rke runs on: the control plane is started here", api)
	}
	infof("[controlplane] Building up Controller Plane..")
	if err := startControlPlane(api); err != nil {
		fatalf("[controlPlane] Failed to bring up Control Plane: %v", err)
	}
	client, err := newAPIClient(api)
	if err == nil {
		err = client.waitReady(2 * time.Minute)
	}
	if err != nil {
		fatalf("%v", err)
	}
	for _, node := range config.Nodes {
		if err := client.registerNode(nodeName(node), roleLabels(node)); err != nil {
			fatalf("%v", err)
		}
	}
	dir, base := filepath.Split(path)
	if err := writeRKEState(filepath.Join(dir, strings.TrimSuffix(base, filepath.Ext(base))+".rkestate"), config); err != nil {
		fatalf("Failed to save cluster state: %v", err)
	}
	cluster := config.ClusterName
	if cluster == "" {
		cluster = "local"
	}
	kube := kubeconfig{server: "https://" + api + ":" + apiPort, cluster: cluster, user: "kube-admin-" + cluster}
	if err := kube.write(filepath.Join(dir, "kube_config_"+base)); err != nil {
		fatalf("Failed to write kubeconfig: %v", err)
	}
	infof("Finished building Kubernetes cluster successfully")
}

// parseRKEConfig decodes cluster.yml. Where RKE ignores a key it does not know, the stand-in
// refuses it: a misspelt key in graphrun's cluster.yml would otherwise pass unnoticed.
func parseRKEConfig(text []byte) (rkeConfig, error) {
	var config rkeConfig
	var raw map[string]any
	if err := yaml.Unmarshal(text, &raw); err != nil {
		return config, err
	}
	if err := unknownKeys("", raw, rkeTopLevelKeys); err != nil {
		return config, err
	}
	if nodes, ok := raw["nodes"].([]any); ok {
		for i, node := range nodes {
			if fields, ok := node.(map[string]any); ok {
				if err := unknownKeys(fmt.Sprintf("nodes[%d].", i), fields, rkeNodeKeys); err != nil {
					return config, err
				}
			}
		}
	}
	err := yaml.Unmarshal(text, &config)
	return config, err
}

func unknownKeys(prefix string, fields map[string]any, known []string) error {
	var unknown []string
	for key := range fields {
		if !contains(known, key) {
			unknown = append(unknown, prefix+key)
		}
	}
	sort.Strings(unknown)
	if len(unknown) > 0 {
		return fmt.Errorf("unknown key(s) %v: not in RKE's cluster.yml schema (RKE would ignore them; the test stand-in refuses them)", unknown)
	}
	return nil
}

func contains(list []string, item string) bool {
	for _, candidate := range list {
		if candidate == item {
			return true
		}
	}
	return false
}

// RKE v1.8's Kubernetes lines (its system images cover 1.30 to 1.32).
var rkeSupportedVersion = regexp.MustCompile(`^v1\.3[0-2]\.[0-9]+-rancher[0-9]+-[0-9]+$`)
var semver = regexp.MustCompile(`^v?[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$`)

// validateRKEConfig: RKE's ValidateCluster and ValidateHostCount, in their order and words.
func validateRKEConfig(c rkeConfig) error {
	if c.Version != "" {
		if !semver.MatchString(c.Version) {
			return fmt.Errorf("%s is not valid semver", c.Version)
		}
		if !rkeSupportedVersion.MatchString(c.Version) {
			return fmt.Errorf("%s is an unsupported Kubernetes version and system images are not populated: etcd image is not populated", c.Version)
		}
	}
	addresses := map[string]bool{}
	hostnames := map[string]bool{}
	for _, node := range c.Nodes {
		if addresses[node.Address] {
			return fmt.Errorf("Cluster can't have duplicate node: %s", node.Address)
		}
		addresses[node.Address] = true
		if hostnames[node.HostnameOverride] {
			return fmt.Errorf("Cluster can't have duplicate node: %s", node.HostnameOverride)
		}
		hostnames[node.HostnameOverride] = true
	}
	for i, node := range c.Nodes {
		switch {
		case node.Address == "":
			return fmt.Errorf("Address for host (%d) is not provided", i+1)
		case node.User == "":
			return fmt.Errorf("User for host (%d) is not provided", i+1)
		case len(node.Role) == 0:
			return fmt.Errorf("Role for host (%d) is not provided", i+1)
		}
		for _, role := range node.Role {
			if role != "etcd" && role != "controlplane" && role != "worker" {
				return fmt.Errorf("Role [%s] for host (%d) is not recognized", role, i+1)
			}
		}
	}
	if !contains([]string{"", "none", "flannel", "calico", "canal", "weave", "aci"}, c.Network.Plugin) {
		return fmt.Errorf("Network plugin [%s] is not supported", c.Network.Plugin)
	}
	if c.Ingress.Provider != "" && c.Ingress.Provider != "nginx" && c.Ingress.Provider != "none" {
		return fmt.Errorf("Ingress controller %s is incorrect", c.Ingress.Provider)
	}
	if !anyNodeHas(c, "etcd") {
		return fmt.Errorf("Cluster must have at least one etcd plane host: please specify one or more etcd in cluster config")
	}
	if !anyNodeHas(c, "controlplane") {
		return fmt.Errorf("Cluster must have at least one control plane host: please specify one or more control planes in cluster config")
	}
	return nil
}

func anyNodeHas(c rkeConfig, role string) bool {
	for _, node := range c.Nodes {
		if hasRole(node, role) {
			return true
		}
	}
	return false
}

func hasRole(node rkeNode, role string) bool { return contains(node.Role, role) }

func nodeName(node rkeNode) string {
	if node.HostnameOverride != "" {
		return node.HostnameOverride
	}
	return node.Address
}

// roleLabels: the labels RKE puts on a node for its roles, plus the node's own.
func roleLabels(node rkeNode) map[string]string {
	labels := map[string]string{}
	for _, role := range node.Role {
		labels["node-role.kubernetes.io/"+role] = "true"
	}
	for key, value := range node.Labels {
		labels[key] = value
	}
	return labels
}

// reachNode logs in to a node over SSH with the key cluster.yml names, as RKE's tunnel does
// (RKE then talks to the node's Docker; the lab's sshd-only hosts have none, so that stops here).
func reachNode(c rkeConfig, node rkeNode) error {
	key := node.SSHKeyPath
	if key == "" {
		key = c.SSHKeyPath
	}
	if key == "" {
		key = "~/.ssh/id_rsa"
	}
	if strings.HasPrefix(key, "~/") {
		home, _ := os.UserHomeDir()
		key = filepath.Join(home, key[2:])
	}
	port := node.Port
	if port == "" {
		port = "22"
	}
	command := exec.Command("ssh", "-F", "/dev/null", "-i", key, "-p", port, "-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
		"-o", "ConnectTimeout=10", node.User+"@"+node.Address, "true")
	output, err := command.CombinedOutput()
	if err != nil {
		return fmt.Errorf("Failed to set up SSH tunneling for host [%s]: Unable to access node with address [%s:%s] using SSH. Please check if you are able to SSH to the node using the specified SSH Private Key and if you have configured the correct SSH username. Error: %v: %s",
			node.Address, node.Address, port, err, strings.TrimSpace(string(output)))
	}
	return nil
}

// writeRKEState: cluster.rkestate with the desired and current configuration, as RKE keeps it.
func writeRKEState(path string, c rkeConfig) error {
	state := map[string]any{
		"desiredState": map[string]any{"rkeConfig": c},
		"currentState": map[string]any{"rkeConfig": c},
	}
	data, err := json.MarshalIndent(state, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, data, 0o600)
}
