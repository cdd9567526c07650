package mysql

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNativeHash(t *testing.T) {
	// What MariaDB 10.11 stored for these passwords.
	for pw, want := range map[string]string{ //nolint:gosec // Test passwords and their hashes.
		"pw": "*D821809F681A40A6E379B50D0463EFAE20BDD122",
		"x":  "*B69027D44F6E5EDC07F1AEAD1477967B16F28227",
	} {
		if got := NativeHash(pw); got != want {
			t.Errorf("NativeHash(%q): -want, +got:\n%s", pw, cmp.Diff(want, got))
		}
	}
}

func TestSHA256Crypt(t *testing.T) {
	// Test vectors of Ulrich Drepper's SHA-crypt specification ($5$),
	// whose salts are at most 16 characters.
	cases := map[string]struct {
		password, salt string
		rounds         int
		want           string
	}{
		"DefaultRounds": {"Hello world!", "saltstring", 5000, "5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"},
		"10000Rounds":   {"Hello world!", "saltstringsaltst", 10000, "3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA"},
		"LongSalt":      {"This is just a test", "toolongsaltstrin", 5000, "Un/5jzAHMgOGZ5.mWJpuVolil07guHPvOW8mGRcvxa5"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := string(sha256Crypt([]byte(tc.password), []byte(tc.salt), tc.rounds)); got != tc.want {
				t.Errorf("sha256Crypt(%q, %q, %d): -want, +got:\n%s", tc.password, tc.salt, tc.rounds, cmp.Diff(tc.want, got))
			}
		})
	}
}

func TestVerifyPassword(t *testing.T) {
	// A caching_sha2_password string built the way MySQL 8 lays it out:
	// $A$005$ (5000 rounds), a 20-byte salt, the 43-character digest. No
	// MySQL 8 server is available to the tests to produce one.
	salt := "abcdefghij0123456789"
	sha2 := "$A$005$" + salt + string(sha256Crypt([]byte("pencil"), []byte(salt), 5000))

	type want struct {
		ok  bool
		err bool
	}
	cases := map[string]struct {
		reason   string
		plugin   string
		stored   string
		password string
		want     want
	}{
		"NativeMatch":    {reason: "mysql_native_password verifies its password.", plugin: NativePassword, stored: NativeHash("pencil"), password: "pencil", want: want{ok: true}},
		"NativeMismatch": {reason: "It does not verify another one.", plugin: NativePassword, stored: NativeHash("pencil"), password: "Pencil"},
		"NativeEmpty":    {reason: "An account without a password never matches.", plugin: NativePassword, stored: "", password: ""},
		"SHA2Match":      {reason: "caching_sha2_password verifies its password from salt and rounds.", plugin: CachingSHA2Password, stored: sha2, password: "pencil", want: want{ok: true}},
		"SHA2Mismatch":   {reason: "It does not verify another one.", plugin: CachingSHA2Password, stored: sha2, password: "pencil2"},
		"SHA2Malformed":  {reason: "A string of the wrong shape is an error.", plugin: CachingSHA2Password, stored: "$A$005$short", password: "pencil", want: want{err: true}},
		"SHA2BadRounds":  {reason: "A non-hex round count is an error.", plugin: CachingSHA2Password, stored: "$A$0x5$" + sha2[7:], password: "pencil", want: want{err: true}},
		"OtherPlugin":    {reason: "Another plugin (unix_socket, ed25519) is a mismatch, so the account is reset to the provider's.", plugin: "unix_socket", stored: "", password: "pencil"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ok, err := VerifyPassword(tc.plugin, []byte(tc.stored), tc.password)
			if diff := cmp.Diff(tc.want, want{ok: ok, err: err != nil}, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("%s\nVerifyPassword(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}
