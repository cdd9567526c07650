// Command image writes a container image tarball holding one static binary,
// run as nonroot (65532): the function's runtime image, built without Docker
// so that `crossplane xpkg build --embed-runtime-image-tarball` can embed it.
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	bin := flag.String("binary", "", "static binary to put at /function")
	ref := flag.String("ref", "", "image reference to record in the tarball")
	out := flag.String("out", "", "tarball to write")
	port := flag.String("port", "9443/tcp", "port the binary listens on")
	flag.Parse()
	if err := run(*bin, *ref, *out, *port); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(bin, ref, out, port string) error {
	b, err := os.ReadFile(bin) //nolint:gosec // A path from the Makefile.
	if err != nil {
		return fmt.Errorf("cannot read binary: %w", err)
	}
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	if err := tw.WriteHeader(&tar.Header{Name: "function", Mode: 0o755, Size: int64(len(b)), Uid: 0, Gid: 0, ModTime: time.Unix(0, 0)}); err != nil {
		return fmt.Errorf("cannot write layer: %w", err)
	}
	if _, err := tw.Write(b); err != nil {
		return fmt.Errorf("cannot write layer: %w", err)
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
		Entrypoint:   []string{"/function"},
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
