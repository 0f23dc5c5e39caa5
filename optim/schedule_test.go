package optim

import (
	"math"
	"strings"
	"testing"
)

func TestScheduleLR(t *testing.T) {
	const base = 0.1
	cases := []struct {
		name  string
		s     Schedule
		t     int64
		epoch int
		want  float64
	}{
		{"constant", Schedule{Base: base}, 1000, 7, base},
		{"step_before_first_decay", Schedule{Kind: StepDecay, Base: base, Size: 10, Gamma: 0.1}, 0, 9, base},
		{"step_after_two_decays", Schedule{Kind: StepDecay, Base: base, Size: 10, Gamma: 0.1}, 0, 25, base * 0.1 * 0.1},
		{"step_per_step", Schedule{Kind: StepDecay, Base: base, Size: 100, Gamma: 0.5, PerStep: true}, 250, 0, base * 0.25},
		{"exp_per_epoch", Schedule{Kind: Exponential, Base: base, Gamma: 0.95}, 12345, 3, base * 0.95 * 0.95 * 0.95},
		{"exp_per_step", Schedule{Kind: Exponential, Base: base, Gamma: 0.99, PerStep: true}, 2, 5, base * 0.99 * 0.99},
		// Warm-up: (t+1)/Warmup of the rate.
		{"cosine_warmup_first", Schedule{Kind: Cosine, Base: base, Warmup: 10, Total: 110}, 0, 0, base / 10},
		{"cosine_warmup_mid", Schedule{Kind: Cosine, Base: base, Warmup: 10, Total: 110}, 4, 0, base * 5 / 10},
		{"cosine_peak", Schedule{Kind: Cosine, Base: base, Warmup: 10, Total: 110}, 10, 0, base},
		// Halfway through the decay: cos(pi/2) = 0, the mean of Base and Min.
		{"cosine_half", Schedule{Kind: Cosine, Base: base, Warmup: 10, Total: 110, Min: 0.02}, 60, 0, (base + 0.02) / 2},
		{"cosine_end", Schedule{Kind: Cosine, Base: base, Warmup: 10, Total: 110, Min: 0.02}, 110, 0, 0.02},
		{"cosine_after_end", Schedule{Kind: Cosine, Base: base, Total: 100, Min: 0.02}, 500, 0, 0.02},
		{"cosine_no_total", Schedule{Kind: Cosine, Base: base, Warmup: 4}, 50, 0, base},
		{"warmup_on_step_decay", Schedule{Kind: StepDecay, Base: base, Size: 1, Gamma: 0.5, Warmup: 4}, 1, 1, base * 0.5 * 2 / 4},
		{"scale", Schedule{Kind: StepDecay, Base: base, Size: 10, Gamma: 0.1, Scale: 0.5}, 0, 10, base * 0.1 * 0.5},
	}
	for _, tc := range cases {
		if got := tc.s.LR(tc.t, tc.epoch); math.Abs(got-tc.want) > 1e-15 {
			t.Errorf("%s: LR(%d, %d) = %.17g, want %.17g", tc.name, tc.t, tc.epoch, got, tc.want)
		}
	}
}

func TestScheduleCosineMonotone(t *testing.T) {
	s := Schedule{Kind: Cosine, Base: 1, Warmup: 5, Total: 50, Min: 0.1}
	prev := 0.0
	for step := int64(0); step < 60; step++ {
		lr := s.LR(step, 0)
		// Warm-up rises to Base at step 4 (5/5); the cosine starts at Base
		// at step 5, falls until step 50 and stays at Min after.
		rising, falling := step < 5, step > 5 && step <= 50
		if rising && lr <= prev || falling && lr >= prev || !rising && !falling && lr != prev {
			t.Fatalf("LR(%d) = %g after %g: warm-up must rise and the cosine fall", step, lr, prev)
		}
		if lr < 0.1-1e-15 || lr > 1 {
			t.Fatalf("LR(%d) = %g is outside [Min, Base]", step, lr)
		}
		prev = lr
	}
}

func TestScheduleScaleAndTotal(t *testing.T) {
	s := Schedule{Kind: Cosine, Base: 1, Min: 0}
	if err := s.SetScale(0); err == nil {
		t.Error("SetScale(0) succeeded")
	}
	if err := s.SetScale(0.25); err != nil || s.LR(0, 0) != 0.25 {
		t.Errorf("after SetScale(0.25): err %v, LR %g", err, s.LR(0, 0))
	}
	if !s.SetTotal(100) || s.Total != 100 {
		t.Errorf("SetTotal on a cosine without total: Total %d", s.Total)
	}
	if s.SetTotal(200) || s.Total != 100 {
		t.Errorf("SetTotal replaced a given total: Total %d", s.Total)
	}
}

func TestParseSchedule(t *testing.T) {
	cases := []struct {
		spec string
		want Schedule
	}{
		{"", Schedule{Kind: Constant}},
		{"constant", Schedule{Kind: Constant}},
		{"constant:warmup=100", Schedule{Kind: Constant, Warmup: 100}},
		{"step:size=10,gamma=0.1", Schedule{Kind: StepDecay, Size: 10, Gamma: 0.1}},
		{"step:size=3", Schedule{Kind: StepDecay, Size: 3, Gamma: 0.1}},
		{"STEP: size = 1000 , gamma=0.5, unit=step", Schedule{Kind: StepDecay, Size: 1000, Gamma: 0.5, PerStep: true}},
		{"exp:gamma=0.95", Schedule{Kind: Exponential, Gamma: 0.95}},
		{"exponential:gamma=0.999,unit=step,warmup=5", Schedule{Kind: Exponential, Gamma: 0.999, PerStep: true, Warmup: 5}},
		{"cosine", Schedule{Kind: Cosine}},
		{"cosine:warmup=500,min=1e-5", Schedule{Kind: Cosine, Warmup: 500, Min: 1e-5}},
		{"cosine:warmup=500,total=10000,min=0", Schedule{Kind: Cosine, Warmup: 500, Total: 10000}},
	}
	for _, tc := range cases {
		got, err := ParseSchedule(tc.spec)
		if err != nil {
			t.Errorf("%q: %v", tc.spec, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%q parsed to %+v, want %+v", tc.spec, got, tc.want)
		}
		// String writes a spec that parses back to the same schedule.
		again, err := ParseSchedule(got.String())
		if err != nil || again != got {
			t.Errorf("%q: String() = %q parses to %+v (%v)", tc.spec, got.String(), again, err)
		}
	}
}

func TestParseScheduleErrors(t *testing.T) {
	cases := []struct{ spec, want string }{
		{"linear", `unknown kind "linear"`},
		{"step", "key size is required"},
		{"step:gamma=0.5", "key size is required"},
		{"step:size=0", "key size: want a positive integer"},
		{"step:size=ten", `key size: want a positive integer, got "ten"`},
		{"step:size=10,gamma=-1", "key gamma: want a positive number"},
		{"step:size=10,unit=week", "key unit: want epoch or step"},
		{"step:size=10,min=0.1", `unknown key "min" for step (want size, gamma, unit, warmup)`},
		{"exp", "key gamma is required"},
		{"exp:gamma=abc", "key gamma: want a positive number"},
		{"cosine:warmup=-5", "key warmup: want a non-negative integer"},
		{"cosine:min=-1", "key min: want a non-negative number"},
		{"cosine:warmup=100,total=50", "key total (50) must exceed warmup (100)"},
		{"cosine:warmup", `"warmup" is not key=value`},
		{"cosine:warmup=1,warmup=2", `key "warmup" given twice`},
		{"constant:gamma=0.1", `unknown key "gamma" for constant`},
	}
	for _, tc := range cases {
		_, err := ParseSchedule(tc.spec)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.spec) {
			t.Errorf("%q: error %v; want one naming the spec and containing %q", tc.spec, err, tc.want)
		}
	}
}
