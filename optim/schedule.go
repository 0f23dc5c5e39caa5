package optim

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ScheduleKind names a learning-rate schedule.
type ScheduleKind string

// Schedule kinds.
const (
	Constant    ScheduleKind = "constant" // Base throughout
	StepDecay   ScheduleKind = "step"     // Base * Gamma^floor(u/Size)
	Exponential ScheduleKind = "exp"      // Base * Gamma^u
	Cosine      ScheduleKind = "cosine"   // Min + (Base-Min)*(1+cos(pi*progress))/2
)

// Schedule is the learning rate as a pure function of the optimizer step
// and the epoch, times a scale that callbacks set (ReduceLROnPlateau).
//
// Every kind may begin with a linear warm-up: for the first Warmup steps the
// rate is multiplied by (t+1)/Warmup, where t is the number of updates
// already done, so it climbs to the schedule's value at step Warmup.
// Step and exponential decay count epochs (u = epoch) unless PerStep is set
// (u = t). Cosine decays over the steps after the warm-up: progress is
// (t-Warmup)/(Total-Warmup), held at 1 after Total, so the rate reaches Min
// at step Total; Total counts the warm-up steps too. A cosine schedule whose
// Total is 0 stays at Base after the warm-up: the trainer sets Total from
// its epochs and steps per epoch with SetTotal.
type Schedule struct {
	Kind ScheduleKind `json:"kind,omitempty"` // "" is Constant
	// Base is the peak rate; Config.Normalized sets it to Config.LR when 0.
	Base    float64 `json:"base,omitempty"`
	Size    int64   `json:"size,omitempty"`  // step decay: epochs (or steps) between decays
	Gamma   float64 `json:"gamma,omitempty"` // step and exp: the decay factor
	PerStep bool    `json:"per_step,omitempty"`
	Warmup  int64   `json:"warmup,omitempty"` // linear warm-up steps
	Total   int64   `json:"total,omitempty"`  // cosine: steps in all, warm-up included
	Min     float64 `json:"min,omitempty"`    // cosine: the final rate
	// Scale multiplies the scheduled rate; callbacks lower it on a plateau.
	// 0 means 1.
	Scale float64 `json:"scale,omitempty"`
}

// LR is the learning rate of the next update, after t updates done, in
// 0-based epoch epoch. The update's own step input is t+1.
func (s *Schedule) LR(t int64, epoch int) float64 {
	if t < 0 {
		t = 0
	}
	if epoch < 0 {
		epoch = 0
	}
	u := float64(epoch)
	if s.PerStep {
		u = float64(t)
	}
	lr := s.Base
	switch s.Kind {
	case StepDecay:
		if s.Size > 0 {
			lr *= math.Pow(s.Gamma, math.Floor(u/float64(s.Size)))
		}
	case Exponential:
		lr *= math.Pow(s.Gamma, u)
	case Cosine:
		if s.Total > s.Warmup && t >= s.Warmup {
			progress := min(1, float64(t-s.Warmup)/float64(s.Total-s.Warmup))
			lr = s.Min + (s.Base-s.Min)*(1+math.Cos(math.Pi*progress))/2
		}
	}
	if s.Warmup > 0 && t < s.Warmup {
		lr *= float64(t+1) / float64(s.Warmup)
	}
	return lr * s.ScaleFactor()
}

// ScaleFactor is Scale, with 0 read as 1.
func (s *Schedule) ScaleFactor() float64 {
	if s.Scale == 0 {
		return 1
	}
	return s.Scale
}

// SetScale sets the factor callbacks apply on top of the schedule.
func (s *Schedule) SetScale(f float64) error {
	if !(f > 0) || math.IsInf(f, 0) {
		return fmt.Errorf("optim: learning-rate scale must be positive and finite, got %g", f)
	}
	s.Scale = f
	return nil
}

// SetTotal gives a cosine schedule its length in steps when the spec did
// not (total=...). It reports whether it changed anything.
func (s *Schedule) SetTotal(steps int64) bool {
	if s.Kind != Cosine || s.Total != 0 || steps <= 0 {
		return false
	}
	s.Total = steps
	return true
}

// Validate checks the schedule's fields for its kind.
func (s *Schedule) Validate() error {
	e := func(field, format string, args ...any) error {
		return fieldErr("Schedule."+field, format, args...)
	}
	if math.IsNaN(s.Base) || math.IsInf(s.Base, 0) || s.Base < 0 {
		return e("Base", "must be finite and >= 0, got %g", s.Base)
	}
	if s.Warmup < 0 {
		return e("Warmup", "must be >= 0, got %d", s.Warmup)
	}
	if math.IsNaN(s.Scale) || math.IsInf(s.Scale, 0) || s.Scale < 0 {
		return e("Scale", "must be finite and >= 0, got %g", s.Scale)
	}
	gamma := func() error {
		if !(s.Gamma > 0) || math.IsInf(s.Gamma, 0) {
			return e("Gamma", "must be positive and finite, got %g", s.Gamma)
		}
		return nil
	}
	switch s.Kind {
	case "", Constant:
	case StepDecay:
		if s.Size < 1 {
			return e("Size", "must be >= 1, got %d", s.Size)
		}
		return gamma()
	case Exponential:
		return gamma()
	case Cosine:
		if s.Total < 0 {
			return e("Total", "must be >= 0, got %d", s.Total)
		}
		if s.Total != 0 && s.Total <= s.Warmup {
			return e("Total", "(%d steps) must exceed Warmup (%d steps)", s.Total, s.Warmup)
		}
		if math.IsNaN(s.Min) || s.Min < 0 || s.Min > s.Base {
			return e("Min", "must be in [0, Base=%g], got %g", s.Base, s.Min)
		}
	default:
		return e("Kind", "unknown schedule %q (want constant, step, exp or cosine)", s.Kind)
	}
	return nil
}

// scheduleKeys lists the keys each kind accepts in a spec.
var scheduleKeys = map[ScheduleKind][]string{
	Constant:    {"warmup"},
	StepDecay:   {"size", "gamma", "unit", "warmup"},
	Exponential: {"gamma", "unit", "warmup"},
	Cosine:      {"warmup", "total", "min"},
}

// ParseSchedule reads a schedule spec as the command line writes it:
//
//	constant[:warmup=N]
//	step:size=N[,gamma=0.1][,unit=epoch|step][,warmup=N]
//	exp:gamma=G[,unit=epoch|step][,warmup=N]
//	cosine[:warmup=N][,total=N][,min=LR]
//
// An empty spec is constant. Step decay defaults to gamma 0.1; the unit
// defaults to epoch. The base rate is not part of the spec (it is the
// optimizer's LR). Errors name the spec and the key at fault.
func ParseSchedule(spec string) (Schedule, error) {
	var s Schedule
	kindStr, rest, hasKeys := strings.Cut(strings.TrimSpace(spec), ":")
	kind := ScheduleKind(strings.ToLower(strings.TrimSpace(kindStr)))
	switch kind {
	case "", Constant:
		kind = Constant
	case "exponential":
		kind = Exponential
	case StepDecay, Exponential, Cosine:
	default:
		return s, fmt.Errorf("schedule %q: unknown kind %q (want constant, step, exp or cosine)", spec, kindStr)
	}
	s.Kind = kind
	if kind == StepDecay {
		s.Gamma = 0.1
	}
	seen := map[string]bool{}
	if hasKeys && strings.TrimSpace(rest) != "" {
		for _, kv := range strings.Split(rest, ",") {
			key, val, ok := strings.Cut(kv, "=")
			key, val = strings.ToLower(strings.TrimSpace(key)), strings.TrimSpace(val)
			if !ok || key == "" {
				return s, fmt.Errorf("schedule %q: %q is not key=value", spec, kv)
			}
			if !contains(scheduleKeys[kind], key) {
				return s, fmt.Errorf("schedule %q: unknown key %q for %s (want %s)", spec, key, kind, strings.Join(scheduleKeys[kind], ", "))
			}
			if seen[key] {
				return s, fmt.Errorf("schedule %q: key %q given twice", spec, key)
			}
			seen[key] = true
			bad := func(want string) error {
				return fmt.Errorf("schedule %q: key %s: want %s, got %q", spec, key, want, val)
			}
			switch key {
			case "size", "warmup", "total":
				n, err := strconv.ParseInt(val, 10, 64)
				lowest := int64(0)
				if key == "size" {
					lowest = 1
				}
				if err != nil || n < lowest {
					if lowest == 1 {
						return s, bad("a positive integer")
					}
					return s, bad("a non-negative integer")
				}
				switch key {
				case "size":
					s.Size = n
				case "warmup":
					s.Warmup = n
				case "total":
					s.Total = n
				}
			case "gamma":
				f, err := strconv.ParseFloat(val, 64)
				if err != nil || !(f > 0) || math.IsInf(f, 0) {
					return s, bad("a positive number")
				}
				s.Gamma = f
			case "min":
				f, err := strconv.ParseFloat(val, 64)
				if err != nil || !(f >= 0) || math.IsInf(f, 0) {
					return s, bad("a non-negative number")
				}
				s.Min = f
			case "unit":
				switch strings.ToLower(val) {
				case "epoch":
					s.PerStep = false
				case "step":
					s.PerStep = true
				default:
					return s, bad("epoch or step")
				}
			}
		}
	}
	if kind == StepDecay && !seen["size"] {
		return s, fmt.Errorf("schedule %q: key size is required for step decay", spec)
	}
	if kind == Exponential && !seen["gamma"] {
		return s, fmt.Errorf("schedule %q: key gamma is required for exp decay", spec)
	}
	if kind == Cosine && s.Total != 0 && s.Total <= s.Warmup {
		return s, fmt.Errorf("schedule %q: key total (%d) must exceed warmup (%d)", spec, s.Total, s.Warmup)
	}
	return s, nil
}

// String writes the schedule as a spec ParseSchedule reads back (Base and
// Scale are not part of it).
func (s Schedule) String() string {
	kind := s.Kind
	if kind == "" {
		kind = Constant
	}
	var kv []string
	add := func(k, v string) { kv = append(kv, k+"="+v) }
	num := func(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
	switch kind {
	case StepDecay:
		add("size", strconv.FormatInt(s.Size, 10))
		add("gamma", num(s.Gamma))
	case Exponential:
		add("gamma", num(s.Gamma))
	case Cosine:
		if s.Total != 0 {
			add("total", strconv.FormatInt(s.Total, 10))
		}
		if s.Min != 0 {
			add("min", num(s.Min))
		}
	}
	if (kind == StepDecay || kind == Exponential) && s.PerStep {
		add("unit", "step")
	}
	if s.Warmup != 0 {
		add("warmup", strconv.FormatInt(s.Warmup, 10))
	}
	if len(kv) == 0 {
		return string(kind)
	}
	return string(kind) + ":" + strings.Join(kv, ",")
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
