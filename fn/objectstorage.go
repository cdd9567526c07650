package fn

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	inputv1alpha1 "github.com/dbplane/dbplane/apis/input/v1alpha1"
)

// Object storage: with the Input's backupStorage.s3, the backup Job uploads
// every backup with rclone, and a restore Job downloads from the source
// Database's prefix. The server images have no S3 client, so an init
// container copies rclone's static binary from its own image into an
// emptyDir the script runs it from.
const (
	// rcloneImage is the S3 client's image: rclone 1.60.1, the version
	// Debian 12 packages, which test/integration runs the scripts with.
	rcloneImage = "docker.io/rclone/rclone:1.60.1"
	// rcloneInImage is where the image has the binary.
	rcloneInImage = "/usr/local/bin/rclone"

	toolsVolume = "tools"
	toolsMount  = "/dbplane-tools"
	s3CAVolume  = "s3-ca"
	s3CAMount   = "/etc/dbplane/s3-ca"

	// Keys of the platform's S3 credentials Secret and CA Secret.
	keyAccessKeyID     = "AWS_ACCESS_KEY_ID"
	keySecretAccessKey = "AWS_SECRET_ACCESS_KEY" //nolint:gosec // The name of a Secret's key, not a credential.
	keyCA              = "ca.crt"
	keyEncryption      = "key"
)

// S3Prefix is where a Database's backups live in the bucket: the Input's
// prefix, then <namespace>/<name>/.
func S3Prefix(s *inputv1alpha1.S3, namespace, name string) string {
	return s.Prefix + namespace + "/" + name + "/"
}

// s3Env is the environment of a script that reads or writes the backups of
// Database name under its prefix: rclone's remote dbplane: configured by
// variables, its keys from the platform's Secret.
func s3Env(s *inputv1alpha1.S3, namespace, name string) []corev1.EnvVar {
	lit := map[string]string{
		"RCLONE":                                 toolsMount + "/rclone",
		"S3_BUCKET":                              s.Bucket,
		"S3_PREFIX":                              S3Prefix(s, namespace, name),
		"RCLONE_CONFIG_DBPLANE_TYPE":             "s3",
		"RCLONE_CONFIG_DBPLANE_PROVIDER":         "Other",
		"RCLONE_CONFIG_DBPLANE_ENDPOINT":         s.Endpoint,
		"RCLONE_CONFIG_DBPLANE_REGION":           s.Region,
		"RCLONE_CONFIG_DBPLANE_ENV_AUTH":         "false",
		"RCLONE_CONFIG_DBPLANE_FORCE_PATH_STYLE": "true",
		// The bucket exists; the keys need not be allowed to create it.
		"RCLONE_CONFIG_DBPLANE_NO_CHECK_BUCKET": "true",
		// rclone writes no config file: it has none to read.
		"RCLONE_CONFIG": "/dev/null",
	}
	if s.CASecretName != "" {
		lit["RCLONE_CA_CERT"] = s3CAMount + "/" + keyCA
	}
	if s.EncryptionKeySecretName != "" {
		// The remote dbplanecrypt: encrypts into dbplane: under the prefix;
		// the scripts derive its password from BACKUP_KEY.
		lit["RCLONE_CONFIG_DBPLANECRYPT_TYPE"] = "crypt"
		lit["RCLONE_CONFIG_DBPLANECRYPT_REMOTE"] = "dbplane:" + s.Bucket + "/" + S3Prefix(s, namespace, name)
		lit["RCLONE_CONFIG_DBPLANECRYPT_FILENAME_ENCRYPTION"] = "off"
		lit["RCLONE_CONFIG_DBPLANECRYPT_DIRECTORY_NAME_ENCRYPTION"] = "false"
	}
	env := literalEnv(lit)
	fromSecret := func(v, secret, key string) {
		env = append(env, corev1.EnvVar{Name: v, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: secret},
			Key:                  key,
		}}})
	}
	fromSecret("RCLONE_CONFIG_DBPLANE_ACCESS_KEY_ID", s.CredentialsSecretName, keyAccessKeyID)
	fromSecret("RCLONE_CONFIG_DBPLANE_SECRET_ACCESS_KEY", s.CredentialsSecretName, keySecretAccessKey)
	if s.EncryptionKeySecretName != "" {
		fromSecret("BACKUP_KEY", s.EncryptionKeySecretName, keyEncryption)
	}
	sortEnv(env)
	return env
}

// withS3 gives a backup or restore pod env and rclone, from its image
// through an emptyDir, and the CA bundle when there is one.
func withS3(p Params, t *corev1.PodTemplateSpec, env []corev1.EnvVar) {
	s := p.S3
	ps := &t.Spec
	c := &ps.Containers[0]
	c.Env = append(c.Env, env...)
	sortEnv(c.Env)
	ps.InitContainers = append(ps.InitContainers, corev1.Container{
		Name:            "rclone",
		Image:           rcloneImage,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command:         []string{"cp", rcloneInImage, toolsMount + "/rclone"},
		Resources:       c.Resources,
		VolumeMounts:    []corev1.VolumeMount{{Name: toolsVolume, MountPath: toolsMount}},
		SecurityContext: containerSecurityContext(),
	})
	ps.Volumes = append(ps.Volumes, corev1.Volume{Name: toolsVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: toolsVolume, MountPath: toolsMount, ReadOnly: true})
	if s.CASecretName != "" {
		ps.Volumes = append(ps.Volumes, corev1.Volume{Name: s3CAVolume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: s.CASecretName,
			Items:      []corev1.KeyToPath{{Key: keyCA, Path: keyCA}},
		}}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: s3CAVolume, MountPath: s3CAMount, ReadOnly: true})
	}
}

// sortEnv sorts variables by name, so output is stable.
func sortEnv(env []corev1.EnvVar) {
	slices.SortFunc(env, func(a, b corev1.EnvVar) int { return strings.Compare(a.Name, b.Name) })
}
