// Package mysql manages MySQL 8 and MariaDB accounts: pure builders of the
// SQL the provider runs (every identifier and literal through the quoting
// helpers here), mysql_native_password and caching_sha2_password
// verification, and a Client that runs them through an xsql.DB.
//
// Accounts are 'name'@'%'. The provider's sessions run with sql_mode
// NO_BACKSLASH_ESCAPES (DSN sets it on every connection), so a string
// literal is exactly its characters between single quotes with quotes
// doubled, and backslashes need no escaping.
package mysql

import (
	"strings"
	"unicode/utf8"

	"github.com/crossplane/crossplane-runtime/v2/pkg/errors"
)

// Name limits, in characters. MySQL 8 keeps user names up to 32
// characters (MariaDB 80): the provider holds both to 32.
const (
	MaxUserNameChars   = 32
	MaxIdentifierChars = 64
)

// ValidateUserName returns an error when name cannot name an account on
// both MySQL 8 and MariaDB, or be written into a Go MySQL DSN (whose parser
// ends the user name at the first colon).
func ValidateUserName(name string) error {
	if err := validateString(name); err != nil {
		return err
	}
	switch {
	case name == "":
		return errors.New("name is empty")
	case utf8.RuneCountInString(name) > MaxUserNameChars:
		return errors.Errorf("name %q is longer than %d characters", name, MaxUserNameChars)
	case strings.Contains(name, ":"):
		return errors.Errorf("name %q contains a colon, which a Go MySQL DSN cannot carry in a user name", name)
	}
	return nil
}

// ValidateDatabaseName returns an error when name cannot name a database.
func ValidateDatabaseName(name string) error {
	if err := validateString(name); err != nil {
		return err
	}
	switch {
	case name == "":
		return errors.New("database name is empty")
	case utf8.RuneCountInString(name) > MaxIdentifierChars:
		return errors.Errorf("database name %q is longer than %d characters", name, MaxIdentifierChars)
	case strings.HasSuffix(name, " "):
		return errors.Errorf("database name %q ends with a space", name)
	}
	return nil
}

func validateString(s string) error {
	switch {
	case !utf8.ValidString(s):
		return errors.Errorf("%q is not valid UTF-8", s)
	case strings.ContainsRune(s, 0):
		return errors.Errorf("%q contains a NUL character", s)
	}
	return nil
}

// QuoteIdentifier quotes name in backticks, doubling backticks, so that any
// name, including one with quotes, semicolons or spaces, means itself.
func QuoteIdentifier(name string) (string, error) {
	if err := ValidateDatabaseName(name); err != nil {
		return "", err
	}
	return "`" + strings.ReplaceAll(name, "`", "``") + "`", nil
}

// QuoteLiteral quotes s as a string literal for a session with
// NO_BACKSLASH_ESCAPES: single quotes doubled, nothing else special. A NUL
// is refused.
func QuoteLiteral(s string) (string, error) {
	if err := validateString(s); err != nil {
		return "", err
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'", nil
}

// Account is the quoted account 'name'@'%'.
func Account(name string) (string, error) {
	if err := ValidateUserName(name); err != nil {
		return "", errors.Wrap(err, "invalid login name")
	}
	lit, err := QuoteLiteral(name)
	if err != nil {
		return "", err
	}
	return lit + "@'%'", nil
}

// DatabasePattern escapes the wildcards of a database-level grant: in GRANT
// ... ON `db`.*, `_` and `%` match any character, so my_app would also
// match myXapp, and `\` escapes. Escaped, the grant names exactly db. The
// result is also how mysql.db and information_schema store the grant.
func DatabasePattern(db string) string {
	return strings.NewReplacer(`\`, `\\`, `_`, `\_`, `%`, `\%`).Replace(db)
}

// GrantTarget is the quoted `db`.* of a database-level grant on exactly db.
func GrantTarget(db string) (string, error) {
	if err := ValidateDatabaseName(db); err != nil {
		return "", errors.Wrap(err, "invalid database name")
	}
	return "`" + strings.ReplaceAll(DatabasePattern(db), "`", "``") + "`.*", nil
}
