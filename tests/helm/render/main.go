// Command render renders a Helm chart the way `helm template` does, for the tests
// of deploy/helm/switchyard, where no helm binary can be installed. It uses Go's
// text/template with Sprig (the engine Helm uses) and defines the functions that
// are Helm's own: include, tpl, toYaml, fromYaml, fromYamlArray, toJson,
// fromJson, required, lookup.
//
//	render --chart DIR [--name RELEASE] [--namespace NS] [-f values.yaml]...
//	       [--set a.b=c]... [--set-string a.b=c]...
//
// Values are coalesced as Helm does: the chart's values.yaml, then each -f file,
// then each --set, later ones deep-merged over earlier ones; a null removes a
// key of the chart's defaults. YAML goes through sigs.k8s.io/yaml, as in Helm:
// every number is a float64, and toYaml writes what helm writes. Templates are templates/*.yaml, *.tpl and NOTES.txt (run,
// not printed); files whose names start with "_" only define templates.
// Output: each non-empty document as
// "---\n# Source: <chart>/templates/<file>\n<document>", files in name order.
// A template error goes to stderr with exit status 1.
//
// Not provided, because this chart does not use them: subcharts, .Files,
// --set list indexes and commas, Helm's schema check (the test runs values
// files through values.schema.json itself), and Helm's ordering of documents by
// kind (documents come in template-file order here).
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"sigs.k8s.io/yaml"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// loadYAML reads a values file or Chart.yaml as Helm does, with sigs.k8s.io/yaml
// (YAML to JSON, then encoding/json): maps of string keys, []interface{},
// float64 numbers, nil for null.
func loadYAML(path string) (map[string]interface{}, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := map[string]interface{}{}
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return m, nil
}

// coalesce merges src over dst, as Helm merges user values over a chart's: maps
// are merged key by key, anything else replaces, and a nil in src deletes the key.
func coalesce(dst, src map[string]interface{}) map[string]interface{} {
	for k, sv := range src {
		if sv == nil {
			delete(dst, k)
			continue
		}
		sm, sIsMap := sv.(map[string]interface{})
		dm, dIsMap := dst[k].(map[string]interface{})
		if sIsMap && dIsMap {
			dst[k] = coalesce(dm, sm)
		} else {
			dst[k] = sv
		}
	}
	return dst
}

// setValue applies one --set a.b.c=value (a value of true/false/null/a number is
// typed unless asString; list indexes and commas are not supported).
func setValue(values map[string]interface{}, expr string, asString bool) error {
	eq := strings.IndexByte(expr, '=')
	if eq <= 0 {
		return fmt.Errorf("--set %s: expected key=value", expr)
	}
	path := strings.Split(expr[:eq], ".")
	raw := expr[eq+1:]
	var val interface{} = raw
	if !asString {
		switch {
		case raw == "true":
			val = true
		case raw == "false":
			val = false
		case raw == "null":
			val = nil
		default:
			if f, err := strconv.ParseFloat(raw, 64); err == nil && !strings.ContainsAny(raw, "eE") {
				val = f
			}
		}
	}
	patch := map[string]interface{}{path[len(path)-1]: val}
	for i := len(path) - 2; i >= 0; i-- {
		patch = map[string]interface{}{path[i]: patch}
	}
	coalesce(values, patch)
	return nil
}

// toYAML, fromYAML and fromYAMLArray are Helm's (pkg/engine/funcs.go): through
// sigs.k8s.io/yaml, so the output is byte for byte what helm writes.
func toYAML(v interface{}) string {
	data, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(data), "\n")
}

func fromYAML(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := yaml.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromYAMLArray(s string) []interface{} {
	a := []interface{}{}
	if err := yaml.Unmarshal([]byte(s), &a); err != nil {
		a = []interface{}{err.Error()}
	}
	return a
}

func toJSON(v interface{}) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

func fromJSON(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func required(msg string, v interface{}) (interface{}, error) {
	if v == nil {
		return nil, errors.New(msg)
	}
	if s, ok := v.(string); ok && s == "" {
		return nil, errors.New(msg)
	}
	return v, nil
}

type renderer struct {
	tmpl      *template.Template
	chartName string
}

func (r *renderer) funcs() template.FuncMap {
	f := sprig.TxtFuncMap()
	// Helm removes these two: a chart must not read the renderer's environment.
	delete(f, "env")
	delete(f, "expandenv")
	f["toYaml"] = toYAML
	f["fromYaml"] = fromYAML
	f["fromYamlArray"] = fromYAMLArray
	f["toJson"] = toJSON
	f["fromJson"] = fromJSON
	f["required"] = required
	f["lookup"] = func(string, string, string, string) map[string]interface{} {
		return map[string]interface{}{} // no cluster, as in `helm template`
	}
	f["include"] = func(name string, data interface{}) (string, error) {
		var buf bytes.Buffer
		err := r.tmpl.ExecuteTemplate(&buf, name, data)
		return buf.String(), err
	}
	f["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := r.tmpl.Clone()
		if err != nil {
			return "", err
		}
		t, err = t.New("tpl").Parse(text)
		if err != nil {
			return "", fmt.Errorf("tpl: %v", err)
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, data); err != nil {
			return "", err
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	return f
}

var docSplit = regexp.MustCompile(`(?m)^---[ \t]*$`)

func run() error {
	var valueFiles, sets, setStrings listFlag
	chartDir := ""
	name, namespace := "release-name", "default"
	args := os.Args[1:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		next := func() (string, error) {
			if i+1 >= len(args) {
				return "", fmt.Errorf("%s needs a value", a)
			}
			i++
			return args[i], nil
		}
		var v string
		var err error
		switch a {
		case "--chart", "--name", "--namespace", "-f", "--values", "--set", "--set-string":
			if v, err = next(); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unknown argument %q", a)
		}
		switch a {
		case "--chart":
			chartDir = v
		case "--name":
			name = v
		case "--namespace":
			namespace = v
		case "-f", "--values":
			valueFiles.Set(v)
		case "--set":
			sets.Set(v)
		case "--set-string":
			setStrings.Set(v)
		}
	}
	if chartDir == "" {
		return errors.New("usage: render --chart DIR [--name N] [--namespace NS] [-f FILE]... [--set K=V]...")
	}

	chart, err := loadYAML(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		return err
	}
	values, err := loadYAML(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		return err
	}
	for _, f := range valueFiles {
		m, err := loadYAML(f)
		if err != nil {
			return err
		}
		coalesce(values, m)
	}
	for _, s := range sets {
		if err := setValue(values, s, false); err != nil {
			return err
		}
	}
	for _, s := range setStrings {
		if err := setValue(values, s, true); err != nil {
			return err
		}
	}

	chartName, _ := chart["name"].(string)
	// Helm's .Chart holds Chart.yaml with capitalised field names.
	chartObj := map[string]interface{}{}
	for k, v := range chart {
		chartObj[strings.ToUpper(k[:1])+k[1:]] = v
	}
	apiVersions := map[string]bool{}
	for _, v := range []string{"v1", "apps/v1", "autoscaling/v2", "policy/v1",
		"monitoring.coreos.com/v1"} {
		apiVersions[v] = true
	}
	caps := map[string]interface{}{
		"KubeVersion": map[string]interface{}{"Version": "v1.29.0", "Major": "1",
			"Minor": "29", "GitVersion": "v1.29.0"},
		"APIVersions": apiVersionSet(apiVersions),
	}

	r := &renderer{chartName: chartName}
	r.tmpl = template.New(chartName).Option("missingkey=zero")
	r.tmpl.Funcs(r.funcs())
	files, err := filepath.Glob(filepath.Join(chartDir, "templates", "*"))
	if err != nil {
		return err
	}
	sort.Strings(files)
	var renderable []string
	for _, f := range files {
		base := filepath.Base(f)
		if !(strings.HasSuffix(base, ".yaml") || strings.HasSuffix(base, ".tpl") ||
			base == "NOTES.txt") {
			continue
		}
		text, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		tname := chartName + "/templates/" + base
		if _, err := r.tmpl.New(tname).Parse(string(text)); err != nil {
			return err
		}
		if !strings.HasPrefix(base, "_") {
			renderable = append(renderable, tname)
		}
	}

	var out strings.Builder
	for _, tname := range renderable {
		ctx := map[string]interface{}{
			"Values": values,
			"Chart":  chartObj,
			"Release": map[string]interface{}{"Name": name, "Namespace": namespace,
				"Service": "Helm", "IsInstall": true, "IsUpgrade": false, "Revision": 1},
			"Capabilities": caps,
			"Template": map[string]interface{}{"Name": tname,
				"BasePath": chartName + "/templates"},
		}
		var buf bytes.Buffer
		if err := r.tmpl.ExecuteTemplate(&buf, tname, ctx); err != nil {
			return err
		}
		if strings.HasSuffix(tname, "/NOTES.txt") {
			continue // rendered, so that its errors show, but not a manifest
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		for _, doc := range docSplit.Split(text, -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", tname, strings.Trim(doc, "\n"))
		}
	}
	_, err = os.Stdout.WriteString(out.String())
	return err
}

// apiVersionSet answers .Capabilities.APIVersions.Has "group/version".
type apiVersionSet map[string]bool

func (s apiVersionSet) Has(v string) bool { return s[v] }

func stripComments(doc string) string {
	var b strings.Builder
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}
