package checkpoint

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// A path template names checkpoint files after the epoch and the metrics,
// with Python's str.format syntax as Keras uses it:
// "ckpt-{epoch:02d}-{val_loss:.4f}.onnx". A field is a key ("epoch", "batch",
// "step" or any log name) and an optional spec: [sign][0][width][.precision][type]
// with type d, f, F, e, E, g, G or %. "{{" and "}}" are literal braces.

type segment struct {
	lit  string // literal text, when key is ""
	key  string
	spec fmtSpec
	raw  string // the field as written, for errors
}

type fmtSpec struct {
	sign  byte // 0, '+', '-' or ' '
	zero  bool
	width int
	prec  int // -1 when absent
	verb  byte
}

type pathTemplate struct {
	src  string
	segs []segment
}

func parseTemplate(s string) (*pathTemplate, error) {
	t := &pathTemplate{src: s}
	var lit strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '{' && i+1 < len(s) && s[i+1] == '{', c == '}' && i+1 < len(s) && s[i+1] == '}':
			lit.WriteByte(c)
			i++
		case c == '}':
			return nil, fmt.Errorf("path template %q: single '}' at offset %d (write '}}' for a brace)", s, i)
		case c == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("path template %q: '{' at offset %d is not closed", s, i)
			}
			field := s[i+1 : i+end]
			seg, err := parseField(field)
			if err != nil {
				return nil, fmt.Errorf("path template %q: field {%s}: %w", s, field, err)
			}
			if lit.Len() > 0 {
				t.segs = append(t.segs, segment{lit: lit.String()})
				lit.Reset()
			}
			t.segs = append(t.segs, seg)
			i += end
		default:
			lit.WriteByte(c)
		}
	}
	if lit.Len() > 0 {
		t.segs = append(t.segs, segment{lit: lit.String()})
	}
	return t, nil
}

func parseField(f string) (segment, error) {
	key, spec, _ := strings.Cut(f, ":")
	if key == "" {
		return segment{}, fmt.Errorf("a field needs a name such as epoch or val_loss")
	}
	if strings.ContainsAny(key, "{[.!") {
		return segment{}, fmt.Errorf("field name %q: expected a plain metric name", key)
	}
	sp := fmtSpec{prec: -1}
	s := spec
	if s != "" && strings.IndexByte("+- ", s[0]) >= 0 {
		sp.sign, s = s[0], s[1:]
	}
	if s != "" && s[0] == '0' {
		sp.zero, s = true, s[1:]
	}
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	if n > 0 {
		sp.width, _ = strconv.Atoi(s[:n])
		s = s[n:]
	}
	if s != "" && s[0] == '.' {
		m := 1
		for m < len(s) && s[m] >= '0' && s[m] <= '9' {
			m++
		}
		if m == 1 {
			return segment{}, fmt.Errorf("spec %q: '.' needs a precision", spec)
		}
		sp.prec, _ = strconv.Atoi(s[1:m])
		s = s[m:]
	}
	if len(s) > 1 || (len(s) == 1 && strings.IndexByte("dfFeEgG%", s[0]) < 0) {
		return segment{}, fmt.Errorf("spec %q: expected [sign][0][width][.precision][type] with type d, f, e, g or %%", spec)
	}
	if len(s) == 1 {
		sp.verb = s[0]
	}
	if sp.verb == 'd' && sp.prec >= 0 {
		return segment{}, fmt.Errorf("spec %q: precision is not allowed with d", spec)
	}
	return segment{key: key, spec: sp, raw: "{" + f + "}"}, nil
}

// keys lists the names the template refers to.
func (t *pathTemplate) keys() []string {
	var k []string
	for _, s := range t.segs {
		if s.key != "" {
			k = append(k, s.key)
		}
	}
	return k
}

// render fills the template. ints holds integer-valued keys (epoch, batch,
// step), logs the metrics; a key found in neither is an error naming it.
func (t *pathTemplate) render(ints map[string]int64, logs map[string]float64) (string, error) {
	var b strings.Builder
	for _, s := range t.segs {
		if s.key == "" {
			b.WriteString(s.lit)
			continue
		}
		var out string
		if v, ok := ints[s.key]; ok {
			out = s.spec.formatInt(v)
		} else if v, ok := logs[s.key]; ok {
			var err error
			if out, err = s.spec.formatFloat(v); err != nil {
				return "", fmt.Errorf("path template %q: %s: %w", t.src, s.raw, err)
			}
		} else {
			avail := append(sortedKeys(ints), sortedKeys(logs)...)
			return "", fmt.Errorf("path template %q: %s names no known value (known: %s)", t.src, s.raw, strings.Join(avail, ", "))
		}
		b.WriteString(out)
	}
	return b.String(), nil
}

func (sp fmtSpec) formatInt(v int64) string {
	switch sp.verb {
	case 0, 'd':
		return sp.pad(strconv.FormatInt(v, 10))
	}
	s, _ := sp.formatFloat(float64(v))
	return s
}

func (sp fmtSpec) formatFloat(v float64) (string, error) {
	prec := sp.prec
	if prec < 0 {
		prec = 6
	}
	var s string
	switch sp.verb {
	case 'd':
		if v != math.Trunc(v) || math.IsInf(v, 0) {
			return "", fmt.Errorf("%v is not an integer, which d needs", v)
		}
		s = strconv.FormatFloat(v, 'f', 0, 64)
	case 'f', 'F', 'e', 'E':
		s = strconv.FormatFloat(v, sp.verb|0x20, prec, 64)
		if sp.verb == 'E' || sp.verb == 'F' {
			s = strings.ToUpper(s)
		}
	case 'g', 'G':
		s = strconv.FormatFloat(v, 'g', max(prec, 1), 64)
		if sp.verb == 'G' {
			s = strings.ToUpper(s)
		}
	case '%':
		s = strconv.FormatFloat(v*100, 'f', prec, 64) + "%"
	default:
		s = pyRepr(v)
		if sp.prec >= 0 {
			s = strconv.FormatFloat(v, 'g', max(sp.prec, 1), 64)
		}
	}
	switch s {
	case "NaN", "NAN":
		s = "nan"
	case "+Inf", "+INF":
		s = "inf"
	case "-Inf", "-INF":
		s = "-inf"
	}
	return sp.pad(s), nil
}

// pyRepr formats a float as Python's repr does: the shortest digits that
// read back exactly, fixed notation between 1e-4 and 1e16 with ".0" on whole
// numbers, exponent notation outside.
func pyRepr(v float64) string {
	a := math.Abs(v)
	if a == 0 || (a >= 1e-4 && a < 1e16) {
		s := strconv.FormatFloat(v, 'f', -1, 64)
		if !strings.ContainsAny(s, ".") {
			s += ".0"
		}
		return s
	}
	return strconv.FormatFloat(v, 'e', -1, 64)
}

// pad applies the sign and the width: zero padding goes after the sign,
// space padding before it, as in Python.
func (sp fmtSpec) pad(s string) string {
	neg := strings.HasPrefix(s, "-")
	if !neg && (sp.sign == '+' || sp.sign == ' ') {
		s = string(sp.sign) + s
	}
	if len(s) >= sp.width {
		return s
	}
	fill := sp.width - len(s)
	if sp.zero {
		if s != "" && (s[0] == '-' || s[0] == '+' || s[0] == ' ') {
			return s[:1] + strings.Repeat("0", fill) + s[1:]
		}
		return strings.Repeat("0", fill) + s
	}
	return strings.Repeat(" ", fill) + s
}
