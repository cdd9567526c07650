// Package postgres manages PostgreSQL logins: pure builders of the SQL the
// provider runs (every identifier and literal through QuoteIdentifier and
// QuoteLiteral), SCRAM-SHA-256 and MD5 password verification, and a Client
// that runs them through an xsql.DB.
package postgres

import (
	"strings"
	"unicode/utf8"

	"github.com/crossplane/crossplane-runtime/v2/pkg/errors"
)

// MaxIdentifierBytes is the longest identifier PostgreSQL keeps
// (NAMEDATALEN - 1). It silently truncates longer ones, so two long names
// could name one role: they are refused instead.
const MaxIdentifierBytes = 63

// ValidateName returns an error when name cannot name a role or database:
// empty, longer than MaxIdentifierBytes, not UTF-8, or holding a NUL, which
// the protocol cannot carry.
func ValidateName(name string) error {
	switch {
	case name == "":
		return errors.New("name is empty")
	case len(name) > MaxIdentifierBytes:
		return errors.Errorf("name %q is %d bytes long: PostgreSQL keeps at most %d", name, len(name), MaxIdentifierBytes)
	case !utf8.ValidString(name):
		return errors.Errorf("name %q is not valid UTF-8", name)
	case strings.ContainsRune(name, 0):
		return errors.Errorf("name %q contains a NUL character", name)
	}
	return nil
}

// QuoteIdentifier quotes name as a PostgreSQL identifier: in double quotes,
// with double quotes doubled, so that any name, including one with quotes,
// spaces, semicolons or upper case, means exactly itself.
func QuoteIdentifier(name string) (string, error) {
	if err := ValidateName(name); err != nil {
		return "", err
	}
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`, nil
}

// QuoteLiteral quotes s as a PostgreSQL string constant: single quotes
// doubled and, when s holds a backslash, an escape string (E'...') with
// backslashes doubled, which reads the same whatever
// standard_conforming_strings is. A NUL is refused: text cannot hold one.
func QuoteLiteral(s string) (string, error) {
	if strings.ContainsRune(s, 0) {
		return "", errors.New("string contains a NUL character")
	}
	if !utf8.ValidString(s) {
		return "", errors.New("string is not valid UTF-8")
	}
	q := "'" + strings.ReplaceAll(s, "'", "''") + "'"
	if strings.Contains(s, `\`) {
		q = "E'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", "''") + "'"
	}
	return q, nil
}
