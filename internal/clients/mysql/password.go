package mysql

import (
	"crypto/sha1" //nolint:gosec // mysql_native_password is SHA-1 based; verifying and creating its format.
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/crossplane/crossplane-runtime/v2/pkg/errors"
)

// Authentication plugins whose stored strings the provider verifies.
//
//nolint:gosec // Plugin names, not credentials.
const (
	NativePassword      = "mysql_native_password"
	CachingSHA2Password = "caching_sha2_password"
)

// NativeHash is the mysql_native_password string the server stores for
// password: '*' and the upper-case hex of SHA1(SHA1(password)). MariaDB
// creates accounts with it by default and accepts it pre-hashed (IDENTIFIED
// VIA mysql_native_password USING '*...'), so the password never appears in
// a statement.
func NativeHash(password string) string {
	first := sha1.Sum([]byte(password)) //nolint:gosec // The plugin's format.
	second := sha1.Sum(first[:])        //nolint:gosec // The plugin's format.
	return "*" + strings.ToUpper(hex.EncodeToString(second[:]))
}

// VerifyPassword reports whether password matches what the server stores
// for an account using plugin, without logging in. It returns false, not an
// error, for a plugin it does not verify (unix_socket, ed25519, ...): the
// provider then resets the account to its own plugin and password.
func VerifyPassword(plugin string, stored []byte, password string) (bool, error) {
	switch plugin {
	case NativePassword:
		return subtle.ConstantTimeCompare([]byte(NativeHash(password)), stored) == 1, nil
	case CachingSHA2Password:
		return verifyCachingSHA2(stored, password)
	}
	return false, nil
}

// Shape of MySQL 8's caching_sha2_password string:
// $A$<3 hex digits: rounds / 1000>$<20-byte salt><43-character digest>.
const (
	sha2SaltBytes   = 20
	sha2DigestChars = 43
	sha2RoundsUnit  = 1000
)

// verifyCachingSHA2 recomputes the SHA-256 crypt digest of password with
// the stored salt and rounds.
func verifyCachingSHA2(stored []byte, password string) (bool, error) {
	if len(stored) != 7+sha2SaltBytes+sha2DigestChars || string(stored[:3]) != "$A$" || stored[6] != '$' {
		return false, errors.New("malformed caching_sha2_password string")
	}
	n, err := strconv.ParseUint(string(stored[3:6]), 16, 16)
	if err != nil || n == 0 {
		return false, errors.New("malformed caching_sha2_password string: bad iteration count")
	}
	salt := stored[7 : 7+sha2SaltBytes]
	want := stored[7+sha2SaltBytes:]
	got := sha256Crypt([]byte(password), salt, int(n)*sha2RoundsUnit)
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// sha256Crypt is the digest part of Ulrich Drepper's SHA-256 crypt
// ($5$), with the salt used in full: MySQL's caching_sha2_password uses a
// 20-byte salt where $5$ truncates salts to 16.
func sha256Crypt(password, salt []byte, rounds int) []byte {
	// Digest B: password, salt, password.
	b := sha256.New()
	b.Write(password)
	b.Write(salt)
	b.Write(password)
	sumB := b.Sum(nil)

	// Digest A: password, salt, B repeated over the password's length, then
	// B or the password for each bit of the length.
	a := sha256.New()
	a.Write(password)
	a.Write(salt)
	a.Write(repeat(sumB, len(password)))
	for i := len(password); i > 0; i >>= 1 {
		if i&1 != 0 {
			a.Write(sumB)
		} else {
			a.Write(password)
		}
	}
	sumA := a.Sum(nil)

	// P: a digest of the password repeated once per byte.
	dp := sha256.New()
	for range len(password) {
		dp.Write(password)
	}
	p := repeat(dp.Sum(nil), len(password))

	// S: a digest of the salt repeated 16 + A[0] times.
	ds := sha256.New()
	for range 16 + int(sumA[0]) {
		ds.Write(salt)
	}
	s := repeat(ds.Sum(nil), len(salt))

	c := sumA
	for i := range rounds {
		h := sha256.New()
		if i&1 != 0 {
			h.Write(p)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(s)
		}
		if i%7 != 0 {
			h.Write(p)
		}
		if i&1 != 0 {
			h.Write(c)
		} else {
			h.Write(p)
		}
		c = h.Sum(nil)
	}

	const itoa64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	out := make([]byte, 0, sha2DigestChars)
	b64 := func(b2, b1, b0 byte, n int) {
		w := uint(b2)<<16 | uint(b1)<<8 | uint(b0)
		for range n {
			out = append(out, itoa64[w&0x3f])
			w >>= 6
		}
	}
	for _, t := range [][3]int{{0, 10, 20}, {21, 1, 11}, {12, 22, 2}, {3, 13, 23}, {24, 4, 14}, {15, 25, 5}, {6, 16, 26}, {27, 7, 17}, {18, 28, 8}, {9, 19, 29}} {
		b64(c[t[0]], c[t[1]], c[t[2]], 4)
	}
	b64(0, c[31], c[30], 3)
	return out
}

// repeat returns sum repeated to exactly n bytes.
func repeat(sum []byte, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, sum[:min(len(sum), n-len(out))]...)
	}
	return out
}
