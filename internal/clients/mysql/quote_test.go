package mysql

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type quoted struct {
	q   string
	err bool
}

func TestQuoteIdentifier(t *testing.T) {
	cases := map[string]struct {
		reason string
		name   string
		want   quoted
	}{
		"Plain":    {reason: "A plain name is backquoted.", name: "app", want: quoted{q: "`app`"}},
		"Backtick": {reason: "A backtick is doubled, so it cannot end the identifier.", name: "a`b", want: quoted{q: "`a``b`"}},
		"Injection": {
			reason: "A name that tries to end the identifier and start a statement stays one identifier.",
			name:   "x`; DROP DATABASE mysql; --", want: quoted{q: "`x``; DROP DATABASE mysql; --`"},
		},
		"QuotesBackslashes": {
			reason: "Quotes and backslashes mean nothing inside backquotes.",
			name:   `we'ird"na\me`, want: quoted{q: "`we'ird\"na\\me`"},
		},
		"Unicode":       {reason: "Unicode passes through.", name: "ユーザー", want: quoted{q: "`ユーザー`"}},
		"TrailingSpace": {reason: "MySQL refuses database names ending in a space.", name: "app ", want: quoted{err: true}},
		"TooLong":       {reason: "Identifiers hold at most 64 characters.", name: strings.Repeat("ユ", 65), want: quoted{err: true}},
		"NUL":           {reason: "A NUL is refused.", name: "a\x00b", want: quoted{err: true}},
		"Empty":         {reason: "An empty name is refused.", name: "", want: quoted{err: true}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			q, err := QuoteIdentifier(tc.name)
			if diff := cmp.Diff(tc.want, quoted{q: q, err: err != nil}, cmp.AllowUnexported(quoted{})); diff != "" {
				t.Errorf("%s\nQuoteIdentifier(%q): -want, +got:\n%s", tc.reason, tc.name, diff)
			}
		})
	}
}

func TestQuoteLiteral(t *testing.T) {
	cases := map[string]struct {
		reason string
		s      string
		want   quoted
	}{
		"Plain":       {reason: "A plain string is single-quoted.", s: "pw", want: quoted{q: "'pw'"}},
		"SingleQuote": {reason: "A single quote is doubled.", s: "it's", want: quoted{q: "'it''s'"}},
		"Injection": {
			reason: "A string that tries to end the literal stays one literal.",
			s:      "x'@'%'; DROP USER root; --", want: quoted{q: "'x''@''%''; DROP USER root; --'"},
		},
		"Backslash": {
			reason: "With NO_BACKSLASH_ESCAPES a backslash is an ordinary character, even before a quote.",
			s:      `a\'b\`, want: quoted{q: `'a\''b\'`},
		},
		"DoubleQuote": {reason: "Double quotes need nothing.", s: `a"b`, want: quoted{q: `'a"b'`}},
		"Unicode":     {reason: "Unicode passes through.", s: "Ünïcødé", want: quoted{q: "'Ünïcødé'"}},
		"NUL":         {reason: "A NUL is refused.", s: "a\x00b", want: quoted{err: true}},
		"InvalidUTF8": {reason: "Bytes that are not UTF-8 are refused.", s: "a\xff", want: quoted{err: true}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			q, err := QuoteLiteral(tc.s)
			if diff := cmp.Diff(tc.want, quoted{q: q, err: err != nil}, cmp.AllowUnexported(quoted{})); diff != "" {
				t.Errorf("%s\nQuoteLiteral(%q): -want, +got:\n%s", tc.reason, tc.s, diff)
			}
		})
	}
}

func TestAccount(t *testing.T) {
	cases := map[string]struct {
		reason string
		name   string
		want   quoted
	}{
		"Plain":     {reason: "An account is a quoted user at any host.", name: "app", want: quoted{q: "'app'@'%'"}},
		"Hostile":   {reason: "A name with quotes and an @ stays one user name.", name: "x'@'%", want: quoted{q: "'x''@''%'@'%'"}},
		"MaxLength": {reason: "32 characters fit MySQL 8.", name: strings.Repeat("ü", 32), want: quoted{q: "'" + strings.Repeat("ü", 32) + "'@'%'"}},
		"TooLong":   {reason: "33 characters do not.", name: strings.Repeat("a", 33), want: quoted{err: true}},
		"Colon":     {reason: "A colon cannot be carried by a Go MySQL DSN's user name.", name: "a:b", want: quoted{err: true}},
		"NUL":       {reason: "A NUL is refused.", name: "a\x00", want: quoted{err: true}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			q, err := Account(tc.name)
			if diff := cmp.Diff(tc.want, quoted{q: q, err: err != nil}, cmp.AllowUnexported(quoted{})); diff != "" {
				t.Errorf("%s\nAccount(%q): -want, +got:\n%s", tc.reason, tc.name, diff)
			}
		})
	}
}

func TestGrantTarget(t *testing.T) {
	cases := map[string]struct {
		reason string
		db     string
		want   quoted
	}{
		"Plain":      {reason: "A name without wildcards is itself.", db: "app", want: quoted{q: "`app`.*"}},
		"Underscore": {reason: "_ is a wildcard in database grants: escaped, my_app does not match myXapp.", db: "my_app", want: quoted{q: "`my\\_app`.*"}},
		"Percent":    {reason: "% is a wildcard too.", db: "50%", want: quoted{q: "`50\\%`.*"}},
		"Backslash":  {reason: "A backslash escapes in the pattern, so it is escaped itself.", db: `a\b`, want: quoted{q: "`a\\\\b`.*"}},
		"Backtick":   {reason: "A backtick is doubled after escaping wildcards.", db: "a`_", want: quoted{q: "`a``\\_`.*"}},
		"NUL":        {reason: "A NUL is refused.", db: "a\x00", want: quoted{err: true}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			q, err := GrantTarget(tc.db)
			if diff := cmp.Diff(tc.want, quoted{q: q, err: err != nil}, cmp.AllowUnexported(quoted{})); diff != "" {
				t.Errorf("%s\nGrantTarget(%q): -want, +got:\n%s", tc.reason, tc.db, diff)
			}
		})
	}
}
