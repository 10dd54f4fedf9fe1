package jwtauth

import (
	"reflect"
	"sort"
	"strings"
	"testing"
)

func TestParseXFCC(t *testing.T) {
	cases := []struct {
		in   string
		want []xfccElement
	}{
		{`By=spiffe://a;Hash=h1;Subject="CN=x,O=Acme\, Inc.";URI=spiffe://b`,
			[]xfccElement{{"by": "spiffe://a", "hash": "h1", "subject": `CN=x,O=Acme, Inc.`, "uri": "spiffe://b"}}},
		{`By=a;Cert="a%2Cb",By=b;Cert="c;d=e"`,
			[]xfccElement{{"by": "a", "cert": "a%2Cb"}, {"by": "b", "cert": "c;d=e"}}},
		{`Subject="say \"hi\""`, []xfccElement{{"subject": `say "hi"`}}},
		{`Hash=abc; By=x`, []xfccElement{{"hash": "abc", "by": "x"}}},
		{`By=x=y`, []xfccElement{{"by": "x=y"}}},
		{``, nil},
		{`;;,`, nil},
		{`URI=a;URI=b`, []xfccElement{{"uri": "b"}}},
	}
	for _, c := range cases {
		got, err := parseXFCC(c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: got %v want %v", c.in, got, c.want)
		}
	}
	for _, bad := range []string{
		`Cert="unterminated`, `Cert="a"b`, `=x`, `key`, `a=b"c`, `Hash=1;Hash=2`,
		strings.Repeat("a=b,", maxXFCCElements+1),
	} {
		if _, err := parseXFCC(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

// formatXFCC is the inverse of parseXFCC, quoting every value; the fuzz
// test uses it for a round trip.
func formatXFCC(elems []xfccElement) string {
	var out []string
	for _, el := range elems {
		keys := make([]string, 0, len(el))
		for k := range el {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var pairs []string
		for _, k := range keys {
			v := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(el[k])
			pairs = append(pairs, k+`="`+v+`"`)
		}
		out = append(out, strings.Join(pairs, ";"))
	}
	return strings.Join(out, ",")
}
