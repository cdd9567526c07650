// Command image writes a container image tarball holding one static binary,
// run as nonroot (65532): the function's and the provider's runtime images,
// built without Docker so that `crossplane xpkg build
// --embed-runtime-image-tarball` can embed them.
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	bin := flag.String("binary", "", "static binary to put in the image")
	entrypoint := flag.String("entrypoint", "/function", "where the binary goes, and what runs")
	ref := flag.String("ref", "", "image reference to record in the tarball")
	out := flag.String("out", "", "tarball to write")
	port := flag.String("port", "9443/tcp", "port the binary listens on")
	ca := flag.String("ca-bundle", "", "CA certificates to put at /etc/ssl/certs/ca-certificates.crt, for binaries that dial TLS")
	flag.Parse()
	if err := run(*bin, *entrypoint, *ca, *ref, *out, *port); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(bin, entrypoint, ca, ref, out, port string) error {
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	files := []struct {
		src, dst string
		mode     int64
	}{{bin, entrypoint, 0o755}}
	if ca != "" {
		files = append(files, struct {
			src, dst string
			mode     int64
		}{ca, "/etc/ssl/certs/ca-certificates.crt", 0o644})
	}
	for _, f := range files {
		b, err := os.ReadFile(f.src) //nolint:gosec // Paths from test/xpkg.sh.
		if err != nil {
			return fmt.Errorf("cannot read %s: %w", f.src, err)
		}
		h := &tar.Header{Name: strings.TrimPrefix(f.dst, "/"), Mode: f.mode, Size: int64(len(b)), ModTime: time.Unix(0, 0)}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("cannot write layer: %w", err)
		}
		if _, err := tw.Write(b); err != nil {
			return fmt.Errorf("cannot write layer: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("cannot write layer: %w", err)
	}
	l, err := tarball.LayerFromReader(&layer)
	if err != nil {
		return fmt.Errorf("cannot make layer: %w", err)
	}
	base, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{Architecture: "amd64", OS: "linux", RootFS: v1.RootFS{Type: "layers"}})
	if err != nil {
		return fmt.Errorf("cannot make base image: %w", err)
	}
	img, err := mutate.AppendLayers(base, l)
	if err != nil {
		return fmt.Errorf("cannot make image: %w", err)
	}
	img, err = mutate.Config(img, v1.Config{
		Entrypoint:   []string{entrypoint},
		User:         "65532:65532",
		ExposedPorts: map[string]struct{}{port: {}},
	})
	if err != nil {
		return fmt.Errorf("cannot configure image: %w", err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return fmt.Errorf("cannot parse reference: %w", err)
	}
	return tarball.WriteToFile(out, r, img)
}
