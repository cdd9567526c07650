package postgres

import (
	"crypto/hmac"
	"crypto/md5" //nolint:gosec // PostgreSQL's md5 password format, verified, never created.
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/crossplane/crossplane-runtime/v2/pkg/errors"
)

// SCRAM parameters of the verifiers the provider creates: PostgreSQL's own
// defaults (scram_iterations, a 16-byte salt).
const (
	SCRAMIterations = 4096
	SCRAMSaltBytes  = 16
)

// NewSCRAMVerifier returns the SCRAM-SHA-256 verifier PostgreSQL would store
// for password, with a random salt. Sending the verifier (ALTER ROLE ...
// PASSWORD 'SCRAM-SHA-256$...') instead of the password keeps the password
// out of the server's statement logs and pg_stat_statements, as psql's
// \password does.
func NewSCRAMVerifier(password string) (string, error) {
	salt := make([]byte, SCRAMSaltBytes)
	if _, err := rand.Read(salt); err != nil {
		return "", errors.Wrap(err, "cannot generate a SCRAM salt")
	}
	return scramVerifier(password, salt, SCRAMIterations)
}

func scramVerifier(password string, salt []byte, iterations int) (string, error) {
	stored, server, err := scramKeys(password, salt, iterations)
	if err != nil {
		return "", err
	}
	enc := base64.StdEncoding
	return "SCRAM-SHA-256$" + strconv.Itoa(iterations) + ":" + enc.EncodeToString(salt) +
		"$" + enc.EncodeToString(stored) + ":" + enc.EncodeToString(server), nil
}

// scramKeys derives RFC 5802's StoredKey and ServerKey. The password is used
// as is: SASLprep leaves the ASCII passwords the provider generates
// unchanged, and PostgreSQL uses the raw bytes of a password SASLprep
// rejects.
func scramKeys(password string, salt []byte, iterations int) (stored, server []byte, err error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return nil, nil, errors.Wrap(err, "cannot derive the SCRAM salted password")
	}
	clientKey := hmacSHA256(salted, "Client Key")
	s := sha256.Sum256(clientKey)
	return s[:], hmacSHA256(salted, "Server Key"), nil
}

func hmacSHA256(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

// VerifyPassword reports whether password matches the verifier PostgreSQL
// stores for role in pg_authid.rolpassword, without logging in: a
// SCRAM-SHA-256 verifier (the default since PostgreSQL 14) is recomputed
// from its salt and iteration count, an md5 one from the role name. It
// returns false for an empty verifier (no password) and an error for a
// verifier it cannot read.
func VerifyPassword(verifier, role, password string) (bool, error) {
	switch {
	case verifier == "":
		return false, nil
	case strings.HasPrefix(verifier, "SCRAM-SHA-256$"):
		return verifySCRAM(verifier, password)
	case strings.HasPrefix(verifier, "md5") && len(verifier) == 35:
		sum := md5.Sum([]byte(password + role)) //nolint:gosec // Verifying PostgreSQL's md5 format.
		want := "md5" + hex.EncodeToString(sum[:])
		return subtle.ConstantTimeCompare([]byte(want), []byte(verifier)) == 1, nil
	}
	return false, errors.New("unknown password verifier format")
}

// verifySCRAM checks SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>.
func verifySCRAM(verifier, password string) (bool, error) {
	parts := strings.Split(strings.TrimPrefix(verifier, "SCRAM-SHA-256$"), "$")
	if len(parts) != 2 {
		return false, errors.New("malformed SCRAM-SHA-256 verifier")
	}
	iterSalt := strings.SplitN(parts[0], ":", 2)
	keys := strings.SplitN(parts[1], ":", 2)
	if len(iterSalt) != 2 || len(keys) != 2 {
		return false, errors.New("malformed SCRAM-SHA-256 verifier")
	}
	iterations, err := strconv.Atoi(iterSalt[0])
	if err != nil || iterations < 1 || iterations > 10_000_000 {
		return false, errors.New("malformed SCRAM-SHA-256 verifier: bad iteration count")
	}
	enc := base64.StdEncoding
	salt, err := enc.DecodeString(iterSalt[1])
	if err != nil {
		return false, errors.New("malformed SCRAM-SHA-256 verifier: bad salt")
	}
	wantStored, err := enc.DecodeString(keys[0])
	if err != nil {
		return false, errors.New("malformed SCRAM-SHA-256 verifier: bad StoredKey")
	}
	wantServer, err := enc.DecodeString(keys[1])
	if err != nil {
		return false, errors.New("malformed SCRAM-SHA-256 verifier: bad ServerKey")
	}
	stored, server, err := scramKeys(password, salt, iterations)
	if err != nil {
		return false, err
	}
	return hmac.Equal(stored, wantStored) && hmac.Equal(server, wantServer), nil
}
