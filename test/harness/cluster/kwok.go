//go:build e2e

package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// kwokConfig configures kwok. v0.8.0 does nothing without stages in its
// config and parallelism above zero.
const kwokConfig = `apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
options:
  podPlayStageParallelism: 4
  nodePlayStageParallelism: 2
  nodeLeaseDurationSeconds: 40
  nodeLeaseParallelism: 2
`

// kwokObjects are the fake node and the storage classes. The node has no
// taint, so StatefulSet and Job pods schedule on it.
const kwokObjects = `apiVersion: v1
kind: Node
metadata:
  name: ` + nodeName + `
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: ` + nodeName + `
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: ` + defaultStorageClass + `
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: ` + volumeProvisioner + `
reclaimPolicy: Delete
volumeBindingMode: Immediate
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: ` + fastStorageClass + `
provisioner: ` + volumeProvisioner + `
reclaimPolicy: Delete
volumeBindingMode: Immediate
allowVolumeExpansion: true
`

// kwokStageFiles are the stages the harness copies from kwok's module, by
// path under kustomize/stage.
var kwokStageFiles = []string{
	"node/fast/node-initialize.yaml",
	"node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
	"pod/fast/pod-ready.yaml",
	podCompleteStage,
	"pod/fast/pod-delete.yaml",
	// Provisioning and binding are the harness's volumeBinder's;
	// releasing and deleting are these two.
	"volume/fast/pv-delete.yaml",
	"volume/fast/pvc-delete.yaml",
}

// podCompleteStage completes Job pods; kwokJobSelector is how it selects them.
const (
	podCompleteStage = "pod/fast/pod-complete.yaml"
	kwokJobSelector  = `    - key: '.metadata.ownerReferences.[].kind'
      operator: 'In'
      values:
      - 'Job'`
)

// kwokClassSelector is how kwok's volume stages select their storage class;
// the harness widens it to both of its classes.
const kwokClassSelector = "self.spec.storageClassName == 'kwok-volume'"

// kwokStages reads the stages from dir (kwok's kustomize/stage) as one YAML
// stream, with the volume stages selecting both storage classes.
func kwokStages(dir string) (string, error) {
	var b strings.Builder
	for _, f := range kwokStageFiles {
		data, err := os.ReadFile(filepath.Join(dir, f)) //nolint:gosec // kwok's module files.
		if err != nil {
			return "", fmt.Errorf("cannot read kwok stage: %w", err)
		}
		s := string(data)
		if f == podCompleteStage {
			// Job pods of HostNamespace run on the host (RunPod), which
			// ends them.
			if !strings.Contains(s, kwokJobSelector) {
				return "", fmt.Errorf("kwok stage %s no longer selects %q: update the harness", f, kwokJobSelector)
			}
			s = strings.Replace(s, kwokJobSelector, kwokJobSelector+`
    - key: '.metadata.namespace'
      operator: 'NotIn'
      values:
      - '`+HostNamespace+`'`, 1)
		}
		if strings.HasPrefix(f, "volume/") {
			if !strings.Contains(s, kwokClassSelector) {
				return "", fmt.Errorf("kwok stage %s no longer selects %q: update the harness", f, kwokClassSelector)
			}
			s = strings.ReplaceAll(s, kwokClassSelector,
				fmt.Sprintf("self.spec.storageClassName in ['%s', '%s']", defaultStorageClass, fastStorageClass))
		}
		b.WriteString("---\n")
		b.WriteString(s)
		if !strings.HasSuffix(s, "\n") {
			b.WriteString("\n")
		}
	}
	return b.String(), nil
}
