// minikube's storage-provisioner addon (k8s.io/minikube/cmd/storage-provisioner at v1.37.0) with one
// change: leader election off. Built against minikube v1.37.0's own dependencies, the upstream main
// crashes at start ("endpoints lock is removed, migrate to leases"): client-go v0.33 refuses the
// endpoints lock that sig-storage-lib-external-provisioner v6 hard-codes. The addon runs a single
// replica, so there is nothing to elect. Built by infra/nodeimage/kicbase.py in the minikube wrapper
// module of versions.toml ([tools.minikube.module]).
package main

import (
	"context"
	"os"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/minikube/pkg/storage"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v6/controller"
)

const provisionerName = "k8s.io/minikube-hostpath"

func main() {
	// The hostpath provisioner keeps its volumes under /tmp, which a scratch image lacks.
	if err := os.MkdirAll("/tmp", 0o755); err != nil {
		klog.Exitf("creating /tmp: %v", err)
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		klog.Exit(err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		klog.Exit(err)
	}
	version, err := client.Discovery().ServerVersion()
	if err != nil {
		klog.Exit(err)
	}
	klog.Info("storage provisioner (leader election off) starting")
	controller.NewProvisionController(client, provisionerName,
		storage.NewHostPathProvisioner("/tmp/hostpath-provisioner"), version.GitVersion,
		controller.LeaderElection(false)).Run(context.Background())
}
