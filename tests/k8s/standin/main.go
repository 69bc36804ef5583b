// The test stand-in for the rke and rke2 binaries, which no registry reachable here serves.
//
// One program, linked twice (build.sh sets `flavor` and `version`): as `rke_linux-amd64` it
// takes exactly `rke --version` and `rke up --config FILE`; as `bin/rke2` of the rke2 tarball,
// `rke2 --version`, `rke2 server` and `rke2 agent`. Each checks its arguments and configuration
// file the way the real binary does (with the real one's messages), then starts the lab's real
// control plane on this host (tests/k8s/control-plane.sh, staged under /opt/graphrun-k8s by
// `cluster.sh stage`), writes the kubeconfig where the real one would, and registers the
// cluster's nodes as kwok nodes, so `kubectl get nodes` lists them Ready.
package main

import (
	"fmt"
	"os"
)

// Set at link time (-X main.flavor=rke|rke2 -X main.version=vX).
var (
	flavor  = "rke"
	version = "v0.0.0"
)

func main() {
	switch flavor {
	case "rke":
		rkeMain(os.Args[1:])
	case "rke2":
		rke2Main(os.Args[1:])
	default:
		fatalf("stand-in linked without a flavor (rke or rke2)")
	}
}

// The real binaries log through logrus; without a terminal its text formatter writes
// `time=... level=info msg=...`, with one `INFO[0000] ...`. The stand-ins use the short form.
func infof(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "INFO[0000] "+format+"\n", args...)
}

func warnf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "WARN[0000] "+format+"\n", args...)
}

// fatalf is logrus.Fatal: the message, then exit status 1.
func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "FATA[0000] "+format+"\n", args...)
	os.Exit(1)
}

// usageError is urfave/cli's answer to an argument it does not know (exit status 1 as well).
func usageError(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "Incorrect Usage: "+format+"\n\n", args...)
	os.Exit(1)
}

// unknownCommand: a real command the stand-in leaves out is said so (exit 1); anything else gets
// urfave/cli's answer (exit 3).
func unknownCommand(command string, real []string, implemented string) {
	if contains(real, command) {
		fatalf("the test stand-in does not implement `%s %s`: graphrun runs only %s", flavor, command, implemented)
	}
	fmt.Fprintf(os.Stderr, "No help topic for '%s'\n", command)
	os.Exit(3)
}
