package chartvalues

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

var (
	valuesRefRE = regexp.MustCompile(`\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)`)
	indexRefRE  = regexp.MustCompile(`index\s+\$?\.Values((?:\s+"[^"]*")+)`)
	quotedRE    = regexp.MustCompile(`"([^"]*)"`)
)

// TemplateKeys returns the values paths that the chart's own templates
// (chartDir/templates, recursively; not subcharts) read literally, as
// .Values.a.b, $.Values.a.b or index .Values "a" "b", as a tree shaped like
// values (a path read as a whole is nil, so anything below it is allowed).
// References relative to with/range scopes (.Values.service then .type) are
// not followed. A chart without templates gives an empty tree.
func TemplateKeys(chartDir string) (map[string]any, error) {
	tree := map[string]any{}
	root := filepath.Join(chartDir, "templates")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && path == root {
				return fs.SkipDir
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		addTemplateRefs(tree, string(data))
		return nil
	})
	return tree, err
}

func addTemplateRefs(tree map[string]any, text string) {
	for _, m := range valuesRefRE.FindAllStringSubmatch(text, -1) {
		record(tree, strings.Split(strings.TrimPrefix(m[1], "."), "."), nil, false)
	}
	for _, m := range indexRefRE.FindAllStringSubmatch(text, -1) {
		var path []string
		for _, q := range quotedRE.FindAllStringSubmatch(m[1], -1) {
			path = append(path, q[1])
		}
		if len(path) > 0 {
			record(tree, path, nil, false)
		}
	}
}
