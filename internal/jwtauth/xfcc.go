package jwtauth

import (
	"errors"
	"strings"
)

// xfccElement is one comma-separated element of an Envoy
// x-forwarded-client-cert header: key=value pairs joined by ';'. Keys are
// lower-cased; values are unquoted but still URL-encoded where Envoy
// encodes them (Cert, Chain).
type xfccElement map[string]string

var errXFCC = errors.New("malformed x-forwarded-client-cert header")

// maxXFCCElements bounds work on a hostile header.
const maxXFCCElements = 16

// parseXFCC splits the header per Envoy's grammar: elements by ',', pairs
// by ';', key=value, and a value may be double-quoted, in which case ',',
// ';' and '=' are literal and '\' escapes the next character. Subject
// values are quoted because DNs contain commas, so a naive split breaks.
func parseXFCC(h string) ([]xfccElement, error) {
	var (
		elems []xfccElement
		cur   = xfccElement{}
		key   strings.Builder
		val   strings.Builder
		inKey = true
	)
	endPair := func() error {
		k := strings.ToLower(strings.TrimSpace(key.String()))
		v := val.String()
		key.Reset()
		val.Reset()
		if inKey { // no '=' seen
			if k != "" {
				return errXFCC
			}
			return nil
		}
		inKey = true
		if k == "" {
			return errXFCC
		}
		if _, dup := cur[k]; dup && k != "uri" && k != "dns" {
			return errXFCC
		}
		cur[k] = v
		return nil
	}
	endElem := func() error {
		if err := endPair(); err != nil {
			return err
		}
		if len(cur) > 0 {
			elems = append(elems, cur)
		}
		if len(elems) > maxXFCCElements {
			return errXFCC
		}
		cur = xfccElement{}
		return nil
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case inKey && c == '=':
			inKey = false
			// Skip whitespace, then read a quoted value in one go.
			for i+1 < len(h) && h[i+1] == ' ' {
				i++
			}
			if i+1 < len(h) && h[i+1] == '"' {
				i += 2
				closed := false
				for ; i < len(h); i++ {
					if h[i] == '\\' && i+1 < len(h) {
						i++
						val.WriteByte(h[i])
						continue
					}
					if h[i] == '"' {
						closed = true
						break
					}
					val.WriteByte(h[i])
				}
				if !closed {
					return nil, errXFCC
				}
				// Only whitespace may follow the closing quote.
				for i+1 < len(h) && h[i+1] == ' ' {
					i++
				}
				if i+1 < len(h) && h[i+1] != ';' && h[i+1] != ',' {
					return nil, errXFCC
				}
			}
		case c == ';':
			if err := endPair(); err != nil {
				return nil, err
			}
		case c == ',':
			if err := endElem(); err != nil {
				return nil, err
			}
		case inKey:
			key.WriteByte(c)
		default:
			if c == '"' {
				return nil, errXFCC
			}
			val.WriteByte(c)
		}
	}
	if err := endElem(); err != nil {
		return nil, err
	}
	return elems, nil
}
