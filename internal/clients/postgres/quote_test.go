package postgres

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestQuoteIdentifier(t *testing.T) {
	type want struct {
		q   string
		err bool
	}
	cases := map[string]struct {
		reason string
		name   string
		want   want
	}{
		"Plain": {
			reason: "A plain name is double-quoted, which keeps its case.",
			name:   "app",
			want:   want{q: `"app"`},
		},
		"UpperCase": {
			reason: "Upper case survives quoting instead of folding to lower case.",
			name:   "App",
			want:   want{q: `"App"`},
		},
		"DoubleQuote": {
			reason: "A double quote is doubled, so it cannot end the identifier.",
			name:   `a"b`,
			want:   want{q: `"a""b"`},
		},
		"Injection": {
			reason: "A name that tries to end the identifier and start a statement stays one identifier.",
			name:   `x"; DROP ROLE postgres; --`,
			want:   want{q: `"x""; DROP ROLE postgres; --"`},
		},
		"SingleQuoteBackslashSemicolon": {
			reason: "Single quotes, backslashes and semicolons mean nothing inside a quoted identifier.",
			name:   `we'ird\na;me`,
			want:   want{q: `"we'ird\na;me"`},
		},
		"Unicode": {
			reason: "Unicode passes through unchanged.",
			name:   "Ünïcødé ユーザー",
			want:   want{q: `"Ünïcødé ユーザー"`},
		},
		"MaxLength": {
			reason: "A 63-byte name is kept whole by PostgreSQL.",
			name:   strings.Repeat("a", 63),
			want:   want{q: `"` + strings.Repeat("a", 63) + `"`},
		},
		"TooLong": {
			reason: "A 64-byte name would be silently truncated by PostgreSQL and is refused.",
			name:   strings.Repeat("a", 64),
			want:   want{err: true},
		},
		"TooLongMultibyte": {
			reason: "The limit is in bytes: 22 three-byte characters are 66 bytes.",
			name:   strings.Repeat("ユ", 22),
			want:   want{err: true},
		},
		"NUL": {
			reason: "A NUL cannot be sent to PostgreSQL and is refused.",
			name:   "a\x00b",
			want:   want{err: true},
		},
		"Empty": {
			reason: "An empty name is refused.",
			name:   "",
			want:   want{err: true},
		},
		"InvalidUTF8": {
			reason: "Bytes that are not UTF-8 are refused.",
			name:   "a\xffb",
			want:   want{err: true},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			q, err := QuoteIdentifier(tc.name)
			if diff := cmp.Diff(tc.want, want{q: q, err: err != nil}, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("%s\nQuoteIdentifier(%q): -want, +got:\n%s", tc.reason, tc.name, diff)
			}
		})
	}
}

func TestQuoteLiteral(t *testing.T) {
	type want struct {
		q   string
		err bool
	}
	cases := map[string]struct {
		reason string
		s      string
		want   want
	}{
		"Plain": {
			reason: "A plain string is single-quoted.",
			s:      "pencil",
			want:   want{q: `'pencil'`},
		},
		"SingleQuote": {
			reason: "A single quote is doubled, so it cannot end the literal.",
			s:      `it's`,
			want:   want{q: `'it''s'`},
		},
		"Injection": {
			reason: "A string that tries to end the literal and start a statement stays one literal.",
			s:      `'; DROP ROLE postgres; --`,
			want:   want{q: `'''; DROP ROLE postgres; --'`},
		},
		"Backslash": {
			reason: "A backslash makes an escape string with backslashes doubled, which reads the same whatever standard_conforming_strings is.",
			s:      `a\'b`,
			want:   want{q: `E'a\\''b'`},
		},
		"TrailingBackslash": {
			reason: "A trailing backslash cannot escape the closing quote.",
			s:      `a\`,
			want:   want{q: `E'a\\'`},
		},
		"SCRAMVerifier": {
			reason: "A SCRAM verifier holds $, +, / and = and needs no escaping.",
			s:      "SCRAM-SHA-256$4096:c2FsdA==$a+b/c=:d+e/f=",
			want:   want{q: `'SCRAM-SHA-256$4096:c2FsdA==$a+b/c=:d+e/f='`},
		},
		"Unicode": {
			reason: "Unicode passes through unchanged.",
			s:      "ユーザー",
			want:   want{q: `'ユーザー'`},
		},
		"NUL": {
			reason: "A NUL cannot be in a text value and is refused.",
			s:      "a\x00b",
			want:   want{err: true},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			q, err := QuoteLiteral(tc.s)
			if diff := cmp.Diff(tc.want, want{q: q, err: err != nil}, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("%s\nQuoteLiteral(%q): -want, +got:\n%s", tc.reason, tc.s, diff)
			}
		})
	}
}
