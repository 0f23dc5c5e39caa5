package main

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/gotrain/gotrain/data/augment"
	"github.com/gotrain/gotrain/optim"
)

// A config file (train --config) is YAML or JSON (which YAML reads too): a
// mapping whose keys are the train flags' names, with "_" or "-", and whose
// values are the flags' values:
//
//	model: cnn
//	batch_size: 64
//	optimizer: adamw
//	augment: rotation=10,shift=0.1
//
// A few settings may be written as nested sections instead, the way users
// write them in Keras or PyTorch configs; each sets the flat key(s) shown:
//
//	optimizer: {name: adamw, lr: 3e-3, momentum: 0, weight_decay: 1e-4,
//	            decay_mode: decoupled, decay_bias_norm: false, clip_norm: 1,
//	            schedule: ...}                       -> optimizer, lr, ...
//	augment: {rotation: 10, shift: 0.1, hflip: true, zoom: [0.9, 1.1]}
//	                                                 -> augment: rotation=10,shift=0.1,hflip,zoom=0.9:1.1
//	schedule: {name: cosine, warmup: 500}            -> schedule: cosine:warmup=500
//	early_stopping: {monitor: val_loss, patience: 5} -> early_stopping: val_loss:5
//	reduce_lr_on_plateau: {monitor: val_loss, patience: 3, factor: 0.5}
//	                                                 -> reduce_lr_on_plateau: val_loss:3,factor=0.5
//
// freeze also takes a list. A setting given twice, in one spelling or two
// (batch_size and batch-size, lr and optimizer.lr), is an error naming
// both; so is an unknown key, a value of the wrong type or a null.

// trainFields maps trainFlags' json keys to its fields.
func trainFields(f *trainFlags) (map[string]reflect.Value, []string) {
	fields := map[string]reflect.Value{}
	var keys []string
	v := reflect.ValueOf(f).Elem()
	for i := range v.NumField() {
		k := v.Type().Field(i).Tag.Get("json")
		if k == "" || k == "-" {
			continue
		}
		fields[k] = v.Field(i)
		keys = append(keys, k)
	}
	return fields, keys
}

// flagKey is the config key of a flag name.
func flagKey(name string) string { return strings.ReplaceAll(name, "-", "_") }

// overrideFromFlags copies into g every setting the command line gave
// (pflag's Changed), from f, where the flags were parsed.
func overrideFromFlags(g, f *trainFlags, fs *pflag.FlagSet) error {
	gf, _ := trainFields(g)
	ff, _ := trainFields(f)
	var err error
	fs.Visit(func(fl *pflag.Flag) {
		if fl.Name == "config" {
			return
		}
		dst, ok := gf[flagKey(fl.Name)]
		if !ok {
			err = fmt.Errorf("flag --%s has no trainFlags field", fl.Name)
			return
		}
		dst.Set(ff[flagKey(fl.Name)])
	})
	return err
}

// configReader reads one config file into a trainFlags.
type configReader struct {
	path   string
	fields map[string]reflect.Value
	keys   []string
	set    map[string]string // flat key -> where it was set: `key "lr" (line 3)`
}

// readConfig sets f from a YAML or JSON config file. Errors are usage
// errors naming the file, the line and the key.
func readConfig(path string, f *trainFlags) error {
	b, err := readConfigFile(path)
	if err != nil {
		return err
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil && err != io.EOF {
		return usagef("config %s: %v", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	// yaml reads one document at a time: the settings of a second would
	// be ignored.
	var next yaml.Node
	if err := dec.Decode(&next); err != io.EOF {
		line := next.Line
		if len(next.Content) > 0 {
			line = next.Content[0].Line
		}
		return usagef("config %s line %d: a second YAML document (after ---): a config is one mapping of settings", path, line)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil // an empty file sets nothing
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return usagef("config %s line %d: expected a mapping of settings (key: value), got %s", path, top.Line, nodeKind(top))
	}
	r := &configReader{path: path, set: map[string]string{}}
	r.fields, r.keys = trainFields(f)
	return r.mapping(top, "", map[string]string{})
}

// sections are the nested sections a config may use: optimizer's keys set
// flat keys; the others are specs built from their mappings.
var (
	optimizerKeys = map[string]string{"name": "optimizer", "lr": "lr", "momentum": "momentum", "weight_decay": "weight_decay",
		"decay_mode": "decay_mode", "decay_bias_norm": "decay_bias_norm", "clip_norm": "clip_norm", "schedule": "schedule"}
	specSections = map[string]func(r *configReader, n *yaml.Node, name string) (string, error){
		"augment":              (*configReader).augmentSpec,
		"schedule":             (*configReader).scheduleSpec,
		"early_stopping":       (*configReader).earlySpec,
		"reduce_lr_on_plateau": (*configReader).plateauSpec,
	}
)

// mapping reads the pairs of a mapping node. prefix is "" at the top and
// "optimizer." inside that section; rename maps the section's keys to flat
// keys (nil at the top: keys are flat keys).
func (r *configReader) mapping(n *yaml.Node, prefix string, rename map[string]string) error {
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		name := prefix + kn.Value
		key := flagKey(kn.Value)
		if prefix != "" {
			flat, ok := rename[key]
			if !ok {
				return usagef("config %s line %d: unknown key %s (%s keys: %s)", r.path, kn.Line, quote(name), strings.TrimSuffix(prefix, "."), strings.Join(slices.Sorted(maps.Keys(rename)), ", "))
			}
			key = flat
		}
		if key == "optimizer" && prefix == "" && vn.Kind == yaml.MappingNode {
			if err := r.mapping(vn, "optimizer.", optimizerKeys); err != nil {
				return err
			}
			continue
		}
		if build, ok := specSections[key]; ok && vn.Kind == yaml.MappingNode {
			spec, err := build(r, vn, name)
			if err != nil {
				return err
			}
			if err := r.setString(key, name, kn.Line, spec); err != nil {
				return err
			}
			continue
		}
		if err := r.scalar(key, name, kn.Line, vn); err != nil {
			return err
		}
	}
	return nil
}

// claim records that name (at line) sets the flat key, or fails naming
// both places when something set it already.
func (r *configReader) claim(key, name string, line int) error {
	where := fmt.Sprintf("key %q (line %d)", name, line)
	if prev, ok := r.set[key]; ok {
		return usagef("config %s: %s and %s both set %s; give it once", r.path, prev, where, key)
	}
	r.set[key] = where
	return nil
}

func (r *configReader) field(key, name string, line int) (reflect.Value, error) {
	fv, ok := r.fields[key]
	if !ok {
		sections := append(slices.Sorted(maps.Keys(specSections)), "optimizer")
		sort.Strings(sections)
		return fv, usagef("config %s line %d: unknown key %s (keys: %s; sections: %s)", r.path, line, quote(name), strings.Join(r.keys, ", "), strings.Join(sections, ", "))
	}
	return fv, nil
}

// scalar sets the flat key from a scalar node (or, for freeze, a list).
func (r *configReader) scalar(key, name string, line int, vn *yaml.Node) error {
	fv, err := r.field(key, name, line)
	if err != nil {
		return err
	}
	if err := r.claim(key, name, line); err != nil {
		return err
	}
	want := kindName[fv.Kind()]
	switch {
	case vn.Kind == yaml.SequenceNode && key == "freeze":
		var items []string
		for _, it := range vn.Content {
			if it.Kind != yaml.ScalarNode {
				return usagef("config %s line %d: key %q: expected a list of parameter names or globs", r.path, it.Line, name)
			}
			items = append(items, it.Value)
		}
		fv.SetString(strings.Join(items, ","))
		return nil
	case vn.Kind == yaml.ScalarNode && vn.Tag == "!!null":
		return usagef("config %s line %d: key %q has no value: expected %s", r.path, line, name, want)
	case vn.Kind != yaml.ScalarNode:
		return usagef("config %s line %d: key %q: expected %s, got %s", r.path, line, name, want, nodeKind(vn))
	}
	if err := setScalar(fv, vn.Value); err != nil {
		return usagef("config %s line %d: key %q: %v", r.path, vn.Line, name, err)
	}
	return nil
}

func (r *configReader) setString(key, name string, line int, s string) error {
	fv, err := r.field(key, name, line)
	if err != nil {
		return err
	}
	if err := r.claim(key, name, line); err != nil {
		return err
	}
	fv.SetString(s)
	return nil
}

// pairs lists a section's key/value pairs with "-" spelled "_", refusing
// keys given twice and values that are not scalars (a two-item list is
// allowed where list says so).
type pair struct {
	key, value string
	line       int
}

func (r *configReader) pairs(n *yaml.Node, section string, list bool) ([]pair, error) {
	var out []pair
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		k := flagKey(kn.Value)
		name := section + "." + kn.Value
		if l, dup := seen[k]; dup {
			return nil, usagef("config %s: key %q (line %d) and key %q (line %d) both set %s.%s; give it once", r.path, name, kn.Line, section+"."+k, l, section, k)
		}
		seen[k] = kn.Line
		switch {
		case vn.Kind == yaml.ScalarNode && vn.Tag == "!!null":
			return nil, usagef("config %s line %d: key %q has no value", r.path, kn.Line, name)
		case vn.Kind == yaml.ScalarNode:
			out = append(out, pair{k, vn.Value, kn.Line})
		case vn.Kind == yaml.SequenceNode && list && len(vn.Content) == 2 && vn.Content[0].Kind == yaml.ScalarNode && vn.Content[1].Kind == yaml.ScalarNode:
			out = append(out, pair{k, vn.Content[0].Value + ":" + vn.Content[1].Value, kn.Line})
		default:
			return nil, usagef("config %s line %d: key %q: expected a single value, got %s", r.path, kn.Line, name, nodeKind(vn))
		}
	}
	return out, nil
}

// augmentSpec turns {rotation: 10, hflip: true, zoom: [0.9, 1.1]} into
// rotation=10,hflip,zoom=0.9:1.1 and checks it.
func (r *configReader) augmentSpec(n *yaml.Node, name string) (string, error) {
	ps, err := r.pairs(n, name, true)
	if err != nil {
		return "", err
	}
	var items []string
	for _, p := range ps {
		switch p.value {
		case "true":
			items = append(items, p.key)
		case "false":
		default:
			items = append(items, p.key+"="+p.value)
		}
	}
	spec := strings.Join(items, ",")
	if _, err := augment.ParseSpec(spec); err != nil {
		return "", usagef("config %s line %d: %s: %v", r.path, n.Line, name, err)
	}
	return spec, nil
}

// scheduleSpec turns {name: cosine, warmup: 500} into cosine:warmup=500.
func (r *configReader) scheduleSpec(n *yaml.Node, name string) (string, error) {
	ps, err := r.pairs(n, name, false)
	if err != nil {
		return "", err
	}
	kind := ""
	var items []string
	for _, p := range ps {
		if p.key == "name" {
			kind = p.value
			continue
		}
		items = append(items, p.key+"="+p.value)
	}
	if kind == "" {
		return "", usagef("config %s line %d: %s: needs name (constant, step, exp or cosine)", r.path, n.Line, name)
	}
	spec := kind
	if len(items) > 0 {
		spec += ":" + strings.Join(items, ",")
	}
	if _, err := optim.ParseSchedule(spec); err != nil {
		return "", usagef("config %s line %d: %s: %v", r.path, n.Line, name, err)
	}
	return spec, nil
}

// monitorSpec reads {monitor, patience, other...} into MONITOR:PATIENCE
// and the other keys (those allowed) as ,key=value, and checks the spec.
func (r *configReader) monitorSpec(n *yaml.Node, name string, allowed []string, check func(spec string) error) (string, error) {
	ps, err := r.pairs(n, name, false)
	if err != nil {
		return "", err
	}
	monitor, patience := "val_loss", ""
	var items []string
	for _, p := range ps {
		switch {
		case p.key == "monitor":
			monitor = p.value
		case p.key == "patience":
			patience = p.value
		case slices.Contains(allowed, p.key):
			items = append(items, p.key+"="+p.value)
		default:
			return "", usagef("config %s line %d: unknown key %s (%s keys: %s)", r.path, p.line, quote(name+"."+p.key), name, strings.Join(append([]string{"monitor", "patience"}, allowed...), ", "))
		}
	}
	if patience == "" {
		return "", usagef("config %s line %d: %s: needs patience (epochs without improvement)", r.path, n.Line, name)
	}
	spec := monitor + ":" + patience
	if len(items) > 0 {
		spec += "," + strings.Join(items, ",")
	}
	if err := check(spec); err != nil {
		return "", usagef("config %s line %d: %s: %v", r.path, n.Line, name, err)
	}
	return spec, nil
}

func (r *configReader) earlySpec(n *yaml.Node, name string) (string, error) {
	return r.monitorSpec(n, name, nil, func(s string) error { _, _, err := parseEarly(s); return err })
}

func (r *configReader) plateauSpec(n *yaml.Node, name string) (string, error) {
	return r.monitorSpec(n, name, plateauKeys, func(s string) error { _, err := parsePlateau(s); return err })
}

// maxConfigSize bounds a config file: a few hundred bytes of settings.
// /dev/zero or a wrong path to a large file must not be read to the end.
const maxConfigSize = 1 << 20

func readConfigFile(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, usagef("--config: %v", err)
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxConfigSize+1))
	if err != nil {
		return nil, usagef("--config: %v", err)
	}
	if len(b) > maxConfigSize {
		return nil, usagef("--config %s: larger than 1 MiB; a config file holds a few settings", path)
	}
	return b, nil
}

// quote quotes a value from the config for a message, shortened when it
// is long, so that one bad value does not fill the terminal.
func quote(s string) string {
	const max = 40
	if len(s) <= max {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%s... (%d bytes)", strconv.Quote(s[:max]), len(s))
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	return quote(n.Value)
}

var kindName = map[reflect.Kind]string{reflect.String: "a string", reflect.Int: "an integer",
	reflect.Uint64: "a non-negative integer", reflect.Float64: "a number", reflect.Bool: "true or false"}

// setScalar parses s as the type of the field v.
func setScalar(v reflect.Value, s string) error {
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("%s: expected an integer", quote(s))
		}
		v.SetInt(int64(n))
	case reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return fmt.Errorf("%s: expected a non-negative integer", quote(s))
		}
		v.SetUint(n)
	case reflect.Float64:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("%s: expected a number", quote(s))
		}
		v.SetFloat(x)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil || (s != "true" && s != "false") {
			return fmt.Errorf("%s: expected true or false", quote(s))
		}
		v.SetBool(b)
	default:
		return fmt.Errorf("unsupported field kind %s", v.Kind())
	}
	return nil
}
