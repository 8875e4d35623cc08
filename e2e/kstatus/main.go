// Command kstatus prints what sigs.k8s.io/cli-utils' kstatus library computes for one
// Kubernetes object with status.Compute: the status Flux's kustomize-controller health
// checks act on (Flux uses github.com/fluxcd/cli-utils, whose status package is this code
// under another import path). It reads the object, as JSON or YAML, on stdin (for example
// `kubectl get rollout web -o json | kstatus`) and writes one line of JSON:
//
//	{"status": "InProgress", "message": "..."}
//
// status is one of InProgress, Current, Failed, Terminating (kstatus' statuses for an
// object that exists). Built by e2e/kstatus/build.sh; used by e2e/test_kstatus.py.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

type result struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	raw, err := io.ReadAll(in)
	if err != nil {
		return fmt.Errorf("reading stdin: %w", err)
	}
	// YAML is a superset of JSON: YAMLToJSON takes both. Then the decoder that client-go
	// and kubectl use for unstructured objects, which keeps whole numbers int64 (kstatus
	// reads metadata.generation and status.observedGeneration as int64).
	doc, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return fmt.Errorf("stdin is not JSON or YAML: %w", err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(doc); err != nil {
		return fmt.Errorf("stdin is not one Kubernetes object: %w", err)
	}
	res, err := status.Compute(u)
	if err != nil {
		return fmt.Errorf("computing the status: %w", err)
	}
	return json.NewEncoder(out).Encode(result{Status: string(res.Status), Message: res.Message})
}
