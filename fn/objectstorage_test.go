package fn

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"

	inputv1alpha1 "github.com/dbplane/dbplane/apis/input/v1alpha1"
	v1 "github.com/dbplane/dbplane/apis/v1"
)

// TestObjectStoragePods reads the backup and restore pods with an Input's
// bucket: rclone from its image through an emptyDir, the remote configured
// by variables, the keys only through secretKeyRef, the CA from its Secret,
// and the Database's own prefix (the source's for a restore).
func TestObjectStoragePods(t *testing.T) {
	s3 := &inputv1alpha1.S3{ //nolint:gosec // Names of Secrets, no credential.
		Endpoint: "https://s3.example.net", Bucket: "backups", Prefix: "prod/", Region: "eu-west-1",
		CredentialsSecretName: "backup-s3", CASecretName: "backup-s3-ca"}
	spec := v1.DatabaseSpec{Type: v1.PostgreSQL, Version: "16", Storage: v1.Storage{Size: "1Gi"}, Backup: &v1.Backup{Enabled: true},
		Restore: &v1.Restore{From: "orders-old"}}
	p := params(t, spec)
	p.S3 = s3

	type want struct {
		Init      []string // image: command
		Literal   map[string]string
		FromKeys  map[string]string // variable -> secret/key
		Volumes   map[string]string // volume -> source
		MountsRO  map[string]bool
		NoLiteral []string
	}
	summarise := func(ps corev1.PodSpec) want {
		w := want{Literal: map[string]string{}, FromKeys: map[string]string{}, Volumes: map[string]string{}, MountsRO: map[string]bool{}}
		for _, c := range ps.InitContainers {
			w.Init = append(w.Init, c.Image+": "+c.Command[0]+" "+c.Command[1]+" "+c.Command[2])
		}
		for _, e := range ps.Containers[0].Env {
			switch {
			case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
				w.FromKeys[e.Name] = e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
			case e.Name == "RESTORE_SCRATCH" || strings.HasPrefix(e.Name, "S3_") || strings.HasPrefix(e.Name, "RCLONE"):
				w.Literal[e.Name] = e.Value
			}
		}
		for _, v := range ps.Volumes {
			switch {
			case v.PersistentVolumeClaim != nil:
				w.Volumes[v.Name] = "pvc " + v.PersistentVolumeClaim.ClaimName
			case v.Secret != nil:
				w.Volumes[v.Name] = "secret " + v.Secret.SecretName
			case v.EmptyDir != nil:
				w.Volumes[v.Name] = "emptyDir"
			}
		}
		for _, m := range ps.Containers[0].VolumeMounts {
			w.MountsRO[m.MountPath] = m.ReadOnly
		}
		return w
	}
	literal := func(prefix string, extra map[string]string) map[string]string {
		m := map[string]string{
			"RCLONE": "/dbplane-tools/rclone", "S3_BUCKET": "backups", "S3_PREFIX": prefix,
			"RCLONE_CONFIG": "/dev/null", "RCLONE_CA_CERT": "/etc/dbplane/s3-ca/ca.crt",
			"RCLONE_CONFIG_DBPLANE_TYPE": "s3", "RCLONE_CONFIG_DBPLANE_PROVIDER": "Other",
			"RCLONE_CONFIG_DBPLANE_ENDPOINT": "https://s3.example.net", "RCLONE_CONFIG_DBPLANE_REGION": "eu-west-1",
			"RCLONE_CONFIG_DBPLANE_ENV_AUTH": "false", "RCLONE_CONFIG_DBPLANE_FORCE_PATH_STYLE": "true",
			"RCLONE_CONFIG_DBPLANE_NO_CHECK_BUCKET": "true",
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	keys := map[string]string{ //nolint:gosec // Secret and key names, no credential.
		"PGPASSWORD":                              "orders-credentials/password",
		"RCLONE_CONFIG_DBPLANE_ACCESS_KEY_ID":     "backup-s3/AWS_ACCESS_KEY_ID",
		"RCLONE_CONFIG_DBPLANE_SECRET_ACCESS_KEY": "backup-s3/AWS_SECRET_ACCESS_KEY",
	}
	init := []string{"docker.io/rclone/rclone:1.60.1: cp /usr/local/bin/rclone /dbplane-tools/rclone"}

	cases := map[string]struct {
		reason string
		pod    corev1.PodSpec
		want   want
	}{
		"Backup": {
			reason: "The backup pod uploads under <prefix><namespace>/<name>/ with rclone copied from its image, keeps writing to its backup volume, and reads the keys only from the platform's Secret.",
			pod:    BackupCronJob(p).Spec.JobTemplate.Spec.Template.Spec,
			want: want{
				Init: init, Literal: literal("prod/team-a/orders/", nil), FromKeys: keys,
				Volumes:  map[string]string{"backup": "pvc orders-backup", "tools": "emptyDir", "s3-ca": "secret backup-s3-ca", "tls": "secret orders-tls"},
				MountsRO: map[string]bool{"/backup": false, "/dbplane-tools": true, "/etc/dbplane/s3-ca": true, "/etc/dbplane-tls": true},
			},
		},
		"Restore": {
			reason: "The restore pod downloads from the source Database's prefix into an emptyDir in place of the source's backup volume, which it does not mount.",
			pod:    RestoreJob(p).Spec.Template.Spec,
			want: want{
				Init: init, Literal: literal("prod/team-a/orders-old/", map[string]string{"RESTORE_SCRATCH": "/backup"}), FromKeys: keys,
				Volumes:  map[string]string{"backup": "emptyDir", "tools": "emptyDir", "s3-ca": "secret backup-s3-ca", "tls": "secret orders-tls"},
				MountsRO: map[string]bool{"/backup": false, "/dbplane-tools": true, "/etc/dbplane/s3-ca": true, "/etc/dbplane-tls": true},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, summarise(tc.pod), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s\n-want, +got:\n%s", tc.reason, diff)
			}
		})
	}

	without := BackupCronJob(params(t, spec)).Spec.JobTemplate.Spec.Template.Spec
	if len(without.InitContainers) != 0 || len(without.Volumes) != 2 {
		t.Errorf("without object storage the backup pod has no init container and only its volume and the TLS Secret's ca.crt, got %d and %d", len(without.InitContainers), len(without.Volumes))
	}
}

// TestDecodeInputS3 decodes the Input's backupStorage.
func TestDecodeInputS3(t *testing.T) {
	in := func(s3 string) *fnv1.RunFunctionRequest {
		return &fnv1.RunFunctionRequest{Input: resource.MustStructJSON(`{"apiVersion":"fn.database.example.com/v1alpha1","kind":"Input","backupStorage":{"s3":` + s3 + `}}`)}
	}
	cases := map[string]struct {
		reason string
		req    *fnv1.RunFunctionRequest
		want   *inputv1alpha1.S3
		err    string
	}{
		"Defaults": {
			reason: "The region defaults to us-east-1.",
			req:    in(`{"endpoint":"http://s3:9000","bucket":"b","credentialsSecretName":"s3"}`),
			want:   &inputv1alpha1.S3{Endpoint: "http://s3:9000", Bucket: "b", Region: "us-east-1", CredentialsSecretName: "s3"},
		},
		"NoCredentials": {
			reason: "Without the credentials Secret no upload could log in.",
			req:    in(`{"endpoint":"http://s3:9000","bucket":"b"}`),
			err:    "backupStorage.s3: endpoint, bucket and credentialsSecretName are required",
		},
		"PrefixWithoutSlash": {
			reason: "A prefix is a path: without its / the Databases' prefixes would run into it.",
			req:    in(`{"endpoint":"http://s3:9000","bucket":"b","prefix":"prod","credentialsSecretName":"s3"}`),
			err:    `backupStorage.s3.prefix: "prod" must end in /`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := DecodeInput(tc.req)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if diff := cmp.Diff(tc.err, gotErr); diff != "" {
				t.Errorf("%s\nDecodeInput(...): -want error, +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.want, got.S3); err == nil && diff != "" {
				t.Errorf("%s\nDecodeInput(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestObjectStorageEncryption: with the Input's encryption key Secret the
// pods read the key only through secretKeyRef and go through the crypt
// remote onto the Database's own prefix; without it there is neither.
func TestObjectStorageEncryption(t *testing.T) {
	spec := v1.DatabaseSpec{Type: v1.MySQL, Version: "8.4", Storage: v1.Storage{Size: "1Gi"}, Backup: &v1.Backup{Enabled: true}}
	s3 := inputv1alpha1.S3{Endpoint: "https://s3.example.net", Bucket: "backups", Region: "us-east-1", CredentialsSecretName: "backup-s3"}
	type want struct {
		Key    string
		Remote string
	}
	cases := map[string]struct {
		reason string
		secret string
		want   want
	}{
		"Encrypted": {
			reason: "The key comes from the named Secret's key, and the crypt remote wraps the Database's prefix.",
			secret: "backup-key",
			want:   want{Key: "backup-key/key", Remote: "dbplane:backups/team-a/orders/"},
		},
		"Plain": {
			reason: "Without a key Secret nothing is encrypted and no key is read.",
			want:   want{},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := params(t, spec)
			s := s3
			s.EncryptionKeySecretName = tc.secret
			p.S3 = &s
			got := want{}
			for _, e := range BackupCronJob(p).Spec.JobTemplate.Spec.Template.Spec.Containers[0].Env {
				switch {
				case e.Name == "BACKUP_KEY" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
					got.Key = e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
				case e.Name == "BACKUP_KEY":
					t.Errorf("%s\nBACKUP_KEY is not from a Secret: %+v", tc.reason, e)
				case e.Name == "RCLONE_CONFIG_DBPLANECRYPT_REMOTE":
					got.Remote = e.Value
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\n-want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}
