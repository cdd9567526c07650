package xsql

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAddressMapLookup(t *testing.T) {
	type want struct {
		addr string
		err  bool
	}
	cases := map[string]struct {
		reason string
		file   *string // nil: no file
		addr   string
		want   want
	}{
		"NoFile": {
			reason: "A map whose file does not exist (yet) dials every address as it is.",
			addr:   "orders.team-a.svc.cluster.local:5432",
			want:   want{addr: "orders.team-a.svc.cluster.local:5432"},
		},
		"Mapped": {
			reason: "An address in the map is dialled where it maps to.",
			file:   ptr("orders.team-a.svc.cluster.local:5432: 127.0.0.1:40001\n"),
			addr:   "orders.team-a.svc.cluster.local:5432",
			want:   want{addr: "127.0.0.1:40001"},
		},
		"JSON": {
			reason: "The map may be JSON.",
			file:   ptr(`{"orders-0.orders-headless.team-a.svc.cluster.local:5432": "127.0.0.1:40002"}`),
			addr:   "orders-0.orders-headless.team-a.svc.cluster.local:5432",
			want:   want{addr: "127.0.0.1:40002"},
		},
		"CaseInsensitiveHost": {
			reason: "Host names match regardless of case, as DNS does.",
			file:   ptr("Orders.Team-A.svc.cluster.local:5432: 127.0.0.1:40001\n"),
			addr:   "orders.team-a.svc.cluster.local:5432",
			want:   want{addr: "127.0.0.1:40001"},
		},
		"OtherPort": {
			reason: "The port is part of the address: another port of the same host is not mapped.",
			file:   ptr("orders.team-a.svc.cluster.local:5432: 127.0.0.1:40001\n"),
			addr:   "orders.team-a.svc.cluster.local:3306",
			want:   want{addr: "orders.team-a.svc.cluster.local:3306"},
		},
		"Empty": {
			reason: "An empty file maps nothing.",
			file:   ptr(""),
			addr:   "db:5432",
			want:   want{addr: "db:5432"},
		},
		"Malformed": {
			reason: "A file that is not a map of strings fails the dial rather than dialling somewhere unintended.",
			file:   ptr("- a list\n"),
			addr:   "db:5432",
			want:   want{err: true},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			m := AddressMap{Path: filepath.Join(t.TempDir(), "addresses.yaml")}
			if tc.file != nil {
				if err := os.WriteFile(m.Path, []byte(*tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := m.Lookup(tc.addr)
			if (err != nil) != tc.want.err {
				t.Fatalf("%s\nLookup(%q): error %v, want error %t", tc.reason, tc.addr, err, tc.want.err)
			}
			if diff := cmp.Diff(tc.want.addr, got); diff != "" {
				t.Errorf("%s\nLookup(%q): -want, +got:\n%s", tc.reason, tc.addr, diff)
			}
		})
	}
}

// TestAddressMapRereads shows a test can add entries while the provider
// runs: every dial reads the file.
func TestAddressMapRereads(t *testing.T) {
	m := AddressMap{Path: filepath.Join(t.TempDir(), "addresses.yaml")}
	var dialled []string
	dial := m.Dial(func(_ context.Context, _, addr string) (net.Conn, error) {
		dialled = append(dialled, addr)
		return nil, nil
	})
	_, _ = dial(t.Context(), "tcp", "db:5432") // Recorded.
	if err := os.WriteFile(m.Path, []byte("db:5432: 127.0.0.1:40001\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _ = dial(t.Context(), "tcp", "db:5432") // Recorded.
	if err := os.WriteFile(m.Path, []byte("db:5432: 127.0.0.1:40002\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _ = dial(t.Context(), "tcp", "db:5432") // Recorded.
	if diff := cmp.Diff([]string{"db:5432", "127.0.0.1:40001", "127.0.0.1:40002"}, dialled); diff != "" {
		t.Errorf("Dial reads the map on every dial: -want, +got:\n%s", diff)
	}
}

func ptr[T any](v T) *T { return &v }
