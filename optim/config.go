package optim

import (
	"fmt"
	"math"
	"strings"
)

// Optimizer names accepted in Config.Name (case-insensitive).
const (
	SGD      = "sgd"      // plain SGD; Momentum > 0 makes it momentum SGD
	Momentum = "momentum" // SGD with momentum (default 0.9)
	Nesterov = "nesterov" // SGD with Nesterov momentum (default 0.9)
	Adam     = "adam"
	AdamW    = "adamw" // Adam with decoupled weight decay
	RMSprop  = "rmsprop"
	Adagrad  = "adagrad"
)

var names = []string{SGD, Momentum, Nesterov, Adam, AdamW, RMSprop, Adagrad}

// DecayMode says how WeightDecay acts.
type DecayMode string

const (
	// DecayDefault is L2 for every optimizer but adamw, decoupled for adamw.
	DecayDefault DecayMode = ""
	// DecayL2 adds WeightDecay*p to the gradient (torch.optim's
	// weight_decay; Keras' l2(λ) regularizer with WeightDecay = 2λ).
	DecayL2 DecayMode = "l2"
	// DecayDecoupled multiplies p by 1 - lr*WeightDecay before the update
	// (AdamW).
	DecayDecoupled DecayMode = "decoupled"
)

// EpsMode says where Adam's epsilon goes.
type EpsMode string

const (
	// EpsPyTorch: p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
	EpsPyTorch EpsMode = "pytorch"
	// EpsKeras: p -= lr*sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps).
	EpsKeras EpsMode = "keras"
)

// Kind classifies a parameter for the default weight-decay rule.
type Kind int

const (
	Weight Kind = iota // kernels and matrices (rank >= 2)
	Bias               // biases (rank 1)
	Norm               // scale and shift of normalization layers
)

func (k Kind) String() string {
	switch k {
	case Weight:
		return "weight"
	case Bias:
		return "bias"
	case Norm:
		return "norm"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Param is a trainable parameter: its value name in the model, its shape
// (float32 data) and its kind.
type Param struct {
	Name  string
	Shape []int
	Kind  Kind
}

// Group sets the learning-rate multiplier and weight decay of the
// parameters it matches. A parameter matches when its name matches one of
// Patterns (none given: any name) and its kind is one of Kinds (none given:
// any kind). A group needs Patterns or Kinds.
type Group struct {
	Name string `json:"name,omitempty"` // for messages
	// Patterns are globs over parameter names: '*' matches any run of
	// characters ('/' and '.' included), '?' any one character.
	Patterns []string `json:"patterns,omitempty"`
	Kinds    []Kind   `json:"kinds,omitempty"`
	// LRScale multiplies the step's learning rate for these parameters
	// (0 means 1).
	LRScale float64 `json:"lr_scale,omitempty"`
	// WeightDecay, when set, replaces the config's weight decay for these
	// parameters, Bias and Norm kinds included.
	WeightDecay *float64 `json:"weight_decay,omitempty"`
}

// Config describes an optimizer. Fields a given optimizer does not use
// must be left zero. A zero field whose zero is not a sensible value takes
// PyTorch's default (see each field); Normalized fills them in.
type Config struct {
	// Name is one of sgd, momentum, nesterov, adam, adamw, rmsprop, adagrad.
	Name string `json:"name"`
	// LR is the base learning rate, the schedule's peak. 0 takes PyTorch's
	// default: 1e-3 for sgd/momentum/nesterov/adam/adamw, 1e-2 for
	// rmsprop and adagrad.
	LR float64 `json:"lr"`
	// Momentum (sgd, momentum, nesterov, rmsprop). For momentum and
	// nesterov 0 means 0.9.
	Momentum float64 `json:"momentum,omitempty"`
	// Dampening (sgd and momentum) scales the gradient added to the momentum
	// buffer by 1 - Dampening after the first step.
	Dampening float64 `json:"dampening,omitempty"`
	// Beta1 and Beta2 (adam, adamw): both zero means 0.9 and 0.999.
	Beta1 float64 `json:"beta1,omitempty"`
	Beta2 float64 `json:"beta2,omitempty"`
	// Eps: 0 takes the default: adam/adamw 1e-8 (1e-7 with EpsMode keras),
	// rmsprop 1e-8, adagrad 1e-10.
	Eps float64 `json:"eps,omitempty"`
	// EpsMode (adam, adamw): where epsilon goes; default pytorch.
	EpsMode EpsMode `json:"eps_mode,omitempty"`
	// Alpha (rmsprop): the smoothing constant; 0 means 0.99.
	Alpha float64 `json:"alpha,omitempty"`
	// Centered (rmsprop) normalizes by the estimated variance of the gradient.
	Centered bool `json:"centered,omitempty"`
	// LRDecay (adagrad): lr / (1 + (step-1)*LRDecay).
	LRDecay float64 `json:"lr_decay,omitempty"`
	// InitialAccumulator (adagrad): the initial value of the sum slot.
	InitialAccumulator float64 `json:"initial_accumulator,omitempty"`

	// WeightDecay is the decay coefficient, applied as DecayMode says.
	WeightDecay float64   `json:"weight_decay,omitempty"`
	DecayMode   DecayMode `json:"decay_mode,omitempty"`
	// DecayBiasNorm applies WeightDecay to Bias and Norm parameters too.
	DecayBiasNorm bool `json:"decay_bias_norm,omitempty"`
	// Groups refine learning rate and decay per parameter; first match wins.
	Groups []Group `json:"groups,omitempty"`

	// ClipNorm > 0 clips the gradients by their global L2 norm.
	ClipNorm float64 `json:"clip_norm,omitempty"`
	// ClipValue > 0 clamps each gradient element to [-ClipValue, ClipValue].
	ClipValue float64 `json:"clip_value,omitempty"`

	// Schedule drives the learning rate over steps and epochs; its Base is
	// LR when zero. The zero Schedule is constant.
	Schedule Schedule `json:"schedule"`
}

// KerasL2 converts the λ of a Keras l2(λ) regularizer, which adds λ*sum(p²)
// to the loss, to the WeightDecay (L2 mode) that gives the same gradient.
func KerasL2(lambda float64) float64 { return 2 * lambda }

// FieldError is a configuration error naming the field at fault.
type FieldError struct {
	Field string // as in Config ("Beta1", "Groups[0].Patterns", ...)
	Msg   string
}

func (e *FieldError) Error() string { return "optim: " + e.Field + ": " + e.Msg }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Normalized validates c and returns a copy with defaults filled in and
// the name lower-cased: what BuildUpdate uses, and what a trainer should
// keep (its Schedule has Base set).
func (c Config) Normalized() (Config, error) {
	c.Name = strings.ToLower(strings.TrimSpace(c.Name))
	finite := func(field string, v float64) error {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fieldErr(field, "must be a finite number, got %v", v)
		}
		return nil
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"LR", c.LR}, {"Momentum", c.Momentum}, {"Dampening", c.Dampening}, {"Beta1", c.Beta1},
		{"Beta2", c.Beta2}, {"Eps", c.Eps}, {"Alpha", c.Alpha}, {"LRDecay", c.LRDecay},
		{"InitialAccumulator", c.InitialAccumulator}, {"WeightDecay", c.WeightDecay},
		{"ClipNorm", c.ClipNorm}, {"ClipValue", c.ClipValue}} {
		if err := finite(f.name, f.v); err != nil {
			return c, err
		}
		if f.v < 0 {
			return c, fieldErr(f.name, "must be >= 0, got %g", f.v)
		}
	}
	isSGD, isAdam := false, false
	switch c.Name {
	case SGD, Momentum, Nesterov:
		isSGD = true
	case Adam, AdamW:
		isAdam = true
	case RMSprop, Adagrad:
	case "":
		return c, fieldErr("Name", "no optimizer given (want one of %s)", strings.Join(names, ", "))
	default:
		return c, fieldErr("Name", "unknown optimizer %q (want one of %s)", c.Name, strings.Join(names, ", "))
	}
	unused := func(field string, v float64) error {
		if v != 0 {
			return fieldErr(field, "is not used by %s (got %g)", c.Name, v)
		}
		return nil
	}
	check := func(errs ...error) error {
		for _, e := range errs {
			if e != nil {
				return e
			}
		}
		return nil
	}
	if c.LR == 0 {
		c.LR = 1e-3
		if c.Name == RMSprop || c.Name == Adagrad {
			c.LR = 1e-2
		}
	}
	if !isAdam {
		if err := check(unused("Beta1", c.Beta1), unused("Beta2", c.Beta2)); err != nil {
			return c, err
		}
		if c.EpsMode != "" {
			return c, fieldErr("EpsMode", "only applies to adam and adamw (optimizer %s)", c.Name)
		}
	}
	if !isSGD {
		if err := unused("Dampening", c.Dampening); err != nil {
			return c, err
		}
	}
	if c.Name != RMSprop {
		if err := unused("Alpha", c.Alpha); err != nil {
			return c, err
		}
		if c.Centered {
			return c, fieldErr("Centered", "only applies to rmsprop (optimizer %s)", c.Name)
		}
	}
	if c.Name != Adagrad {
		if err := check(unused("LRDecay", c.LRDecay), unused("InitialAccumulator", c.InitialAccumulator)); err != nil {
			return c, err
		}
	}
	switch c.Name {
	case SGD:
		if c.Eps != 0 {
			return c, unused("Eps", c.Eps)
		}
	case Momentum, Nesterov:
		if c.Eps != 0 {
			return c, unused("Eps", c.Eps)
		}
		if c.Momentum == 0 {
			c.Momentum = 0.9
		}
	case Adam, AdamW:
		if err := unused("Momentum", c.Momentum); err != nil {
			return c, err
		}
		if c.Beta1 == 0 && c.Beta2 == 0 {
			c.Beta1, c.Beta2 = 0.9, 0.999
		}
		if c.Beta1 >= 1 {
			return c, fieldErr("Beta1", "must be in [0, 1), got %g", c.Beta1)
		}
		if c.Beta2 >= 1 {
			return c, fieldErr("Beta2", "must be in [0, 1), got %g", c.Beta2)
		}
		switch c.EpsMode {
		case "":
			c.EpsMode = EpsPyTorch
		case EpsPyTorch, EpsKeras:
		default:
			return c, fieldErr("EpsMode", "unknown mode %q (want %q or %q)", c.EpsMode, EpsPyTorch, EpsKeras)
		}
		if c.Eps == 0 {
			c.Eps = 1e-8
			if c.EpsMode == EpsKeras {
				c.Eps = 1e-7
			}
		}
	case RMSprop:
		if c.Alpha == 0 {
			c.Alpha = 0.99
		}
		if c.Alpha > 1 {
			return c, fieldErr("Alpha", "must be in [0, 1], got %g", c.Alpha)
		}
		if c.Eps == 0 {
			c.Eps = 1e-8
		}
	case Adagrad:
		if err := unused("Momentum", c.Momentum); err != nil {
			return c, err
		}
		if c.Eps == 0 {
			c.Eps = 1e-10
		}
	}
	if isSGD {
		if c.Dampening > 1 {
			return c, fieldErr("Dampening", "must be in [0, 1], got %g", c.Dampening)
		}
		if c.Name == Nesterov && c.Dampening != 0 {
			return c, fieldErr("Dampening", "must be 0 for nesterov (as in PyTorch), got %g", c.Dampening)
		}
		if c.Name == SGD && c.Dampening != 0 && c.Momentum == 0 {
			return c, fieldErr("Dampening", "needs Momentum > 0")
		}
	}
	switch c.DecayMode {
	case DecayDefault:
		c.DecayMode = DecayL2
		if c.Name == AdamW {
			c.DecayMode = DecayDecoupled
		}
	case DecayL2:
		if c.Name == AdamW {
			return c, fieldErr("DecayMode", "adamw decays decoupled by definition; use adam for L2")
		}
	case DecayDecoupled:
	default:
		return c, fieldErr("DecayMode", "unknown mode %q (want %q or %q)", c.DecayMode, DecayL2, DecayDecoupled)
	}
	for i, g := range c.Groups {
		field := fmt.Sprintf("Groups[%d]", i)
		if g.Name != "" {
			field = fmt.Sprintf("Groups[%d] (%s)", i, g.Name)
		}
		if len(g.Patterns) == 0 && len(g.Kinds) == 0 {
			return c, fieldErr(field, "needs Patterns or Kinds to say which parameters it holds")
		}
		for _, p := range g.Patterns {
			if p == "" {
				return c, fieldErr(field+".Patterns", "has an empty pattern")
			}
		}
		for _, k := range g.Kinds {
			if k < Weight || k > Norm {
				return c, fieldErr(field+".Kinds", "unknown kind %d", int(k))
			}
		}
		if err := finite(field+".LRScale", g.LRScale); err != nil {
			return c, err
		}
		if g.LRScale < 0 {
			return c, fieldErr(field+".LRScale", "must be >= 0, got %g", g.LRScale)
		}
		if g.WeightDecay != nil {
			if err := finite(field+".WeightDecay", *g.WeightDecay); err != nil {
				return c, err
			}
			if *g.WeightDecay < 0 {
				return c, fieldErr(field+".WeightDecay", "must be >= 0, got %g", *g.WeightDecay)
			}
		}
	}
	c.Groups = append([]Group(nil), c.Groups...)
	if c.Schedule.Base == 0 {
		c.Schedule.Base = c.LR
	}
	if err := c.Schedule.Validate(); err != nil {
		return c, err
	}
	return c, nil
}

// Slots returns the names of the state slots the normalized config keeps
// per parameter, in input order.
func (c Config) Slots() []string {
	switch c.Name {
	case SGD, Momentum, Nesterov:
		if c.Momentum != 0 {
			return []string{"momentum"}
		}
	case Adam, AdamW:
		return []string{"m", "v"}
	case RMSprop:
		s := []string{"square_avg"}
		if c.Momentum > 0 {
			s = append(s, "momentum")
		}
		if c.Centered {
			s = append(s, "grad_avg")
		}
		return s
	case Adagrad:
		return []string{"sum"}
	}
	return nil
}

// Setting is what a parameter resolves to: its learning-rate multiplier,
// its weight decay and the group that set them ("" when none did).
type Setting struct {
	LRScale     float64
	WeightDecay float64
	Group       string
}

// Resolve applies the groups and the bias/norm rule to one parameter of a
// normalized config.
func (c Config) Resolve(p Param) Setting {
	s := Setting{LRScale: 1, WeightDecay: c.WeightDecay}
	if (p.Kind == Bias || p.Kind == Norm) && !c.DecayBiasNorm {
		s.WeightDecay = 0
	}
	for i, g := range c.Groups {
		if !g.matches(p) {
			continue
		}
		s.Group = g.Name
		if s.Group == "" {
			s.Group = fmt.Sprintf("Groups[%d]", i)
		}
		if g.LRScale != 0 {
			s.LRScale = g.LRScale
		}
		if g.WeightDecay != nil {
			s.WeightDecay = *g.WeightDecay
		}
		break
	}
	return s
}

func (g *Group) matches(p Param) bool {
	if len(g.Kinds) > 0 {
		ok := false
		for _, k := range g.Kinds {
			ok = ok || k == p.Kind
		}
		if !ok {
			return false
		}
	}
	if len(g.Patterns) == 0 {
		return true
	}
	for _, pat := range g.Patterns {
		if Glob(pat, p.Name) {
			return true
		}
	}
	return false
}

// Glob reports whether name matches pattern, where '*' matches any run of
// characters (including none) and '?' any single character; all other
// characters match themselves.
func Glob(pattern, name string) bool {
	// Iterative matching with backtracking to the last star: linear in
	// practice, never exponential.
	p, n := []rune(pattern), []rune(name)
	pi, ni := 0, 0
	star, mark := -1, 0
	for ni < len(n) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == n[ni]):
			pi++
			ni++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, ni
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			ni = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
