package postgres

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Verifiers PostgreSQL 15 stored for these roles and passwords
// (password_encryption scram-sha-256 and md5).
const (
	pencilSCRAM = "SCRAM-SHA-256$4096:OQ68BYCYRV6WmOw37oE+bw==$ldyCa0XMWG2HmpnBvIzvaZ4tSGHkeVeJBQgw+Z0c0OY=:F8TUf6eNPsnBDoOSBHEU0DQ9/Tudy+sVUFgf92go+us="
	weirdSCRAM  = "SCRAM-SHA-256$4096:dFYRtIC0LdW5Q+A76+4QdQ==$lN3jJpgCgcCkkC/E1VT3arxNG/Yg7geCRVv263/1qiw=:kRU6h7XKuts280w8vdpYZ0xhaIdaOoP3yq+XH7d419c="
	pencilMD5   = "md5bd4fa3474ee1a319b1d6a57289b214cf" // Role v2.
)

func TestVerifyPassword(t *testing.T) {
	type want struct {
		ok  bool
		err bool
	}
	cases := map[string]struct {
		reason   string
		verifier string
		role     string
		password string
		want     want
	}{
		"SCRAMMatch": {
			reason:   "A SCRAM-SHA-256 verifier PostgreSQL made for pencil verifies pencil.",
			verifier: pencilSCRAM, role: "v1", password: "pencil",
			want: want{ok: true},
		},
		"SCRAMMismatch": {
			reason:   "It does not verify another password.",
			verifier: pencilSCRAM, role: "v1", password: "pencil2",
			want: want{ok: false},
		},
		"SCRAMHostilePassword": { //nolint:gosec // A test case name.
			reason:   "A password with spaces, a backslash and quotes verifies byte for byte.",
			verifier: weirdSCRAM, role: "we'ird", password: `p@ss word \ 'q'`,
			want: want{ok: true},
		},
		"MD5Match": {
			reason:   "An md5 verifier is md5(password || role name).",
			verifier: pencilMD5, role: "v2", password: "pencil",
			want: want{ok: true},
		},
		"MD5OtherRole": {
			reason:   "An md5 verifier is salted with the role name: another role does not match.",
			verifier: pencilMD5, role: "v3", password: "pencil",
			want: want{ok: false},
		},
		"NoPassword": {
			reason:   "A role without a password has no verifier and never matches.",
			verifier: "", role: "v1", password: "pencil",
			want: want{ok: false},
		},
		"MalformedSCRAM": {
			reason:   "A verifier that is not SCRAM's shape is an error, not a match.",
			verifier: "SCRAM-SHA-256$4096:nosalt", role: "v1", password: "pencil",
			want: want{err: true},
		},
		"BadIterations": {
			reason:   "An absurd iteration count is refused before deriving anything.",
			verifier: strings.Replace(pencilSCRAM, "4096", "0", 1), role: "v1", password: "pencil",
			want: want{err: true},
		},
		"Unknown": {
			reason:   "An unknown format is an error.",
			verifier: "plaintext", role: "v1", password: "plaintext",
			want: want{err: true},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ok, err := VerifyPassword(tc.verifier, tc.role, tc.password)
			if diff := cmp.Diff(tc.want, want{ok: ok, err: err != nil}, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("%s\nVerifyPassword(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestNewSCRAMVerifier(t *testing.T) {
	v, err := NewSCRAMVerifier("pencil")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v, "SCRAM-SHA-256$4096:") {
		t.Errorf("NewSCRAMVerifier: want PostgreSQL's format with 4096 iterations, got %q", v)
	}
	if ok, err := VerifyPassword(v, "any", "pencil"); !ok || err != nil {
		t.Errorf("NewSCRAMVerifier: a new verifier verifies its password, got %v, %v", ok, err)
	}
	if ok, _ := VerifyPassword(v, "any", "Pencil"); ok {
		t.Error("NewSCRAMVerifier: a new verifier does not verify another password")
	}
	w, err := NewSCRAMVerifier("pencil")
	if err != nil {
		t.Fatal(err)
	}
	if v == w {
		t.Error("NewSCRAMVerifier: every verifier has its own random salt")
	}

	// The verifier PostgreSQL made for pencil, remade from its salt.
	got, err := scramVerifier("pencil", mustB64(t, "OQ68BYCYRV6WmOw37oE+bw=="), 4096)
	if err != nil {
		t.Fatal(err)
	}
	if got != pencilSCRAM {
		t.Errorf("scramVerifier: -want, +got:\n%s", cmp.Diff(pencilSCRAM, got))
	}
}

func TestMatchesRemembersOnlyMatches(t *testing.T) {
	ms := &matches{m: map[[32]byte]struct{}{}}
	if ok, err := ms.Verify(pencilSCRAM, "v1", "wrong"); ok || err != nil {
		t.Fatalf("Verify(wrong): %v, %v", ok, err)
	}
	if len(ms.m) != 0 {
		t.Error("a mismatch is not remembered")
	}
	for range 2 {
		if ok, err := ms.Verify(pencilSCRAM, "v1", "pencil"); !ok || err != nil {
			t.Fatalf("Verify(pencil): %v, %v", ok, err)
		}
	}
	if len(ms.m) != 1 {
		t.Errorf("a match is remembered once, have %d", len(ms.m))
	}
	if ok, _ := ms.Verify(weirdSCRAM, "v1", "pencil"); ok {
		t.Error("a remembered match does not carry over to another verifier")
	}
}
