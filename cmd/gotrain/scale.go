package main

import (
	"fmt"
	"io"

	"github.com/gotrain/gotrain/checkpoint"
	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// The input scale (--scale; data.ParseScale lists its forms). Training
// resolves it once, from the training data when it is auto, applies it to
// the training, validation and test data, prints it, and stores it in the
// training state and in the exported models' metadata
// (checkpoint.MetaInputScale). eval, predict and run apply --scale when
// given, else the model's stored scale, else auto by what they read.

const scaleUsage = "input scale: auto (8-bit pixels 1/255, digits 1/16, float arrays as they are), none, 1/D or 255, or a factor in (0, 1]"

// runScale is a training run's input scale.
type runScale struct {
	spec  data.Scale // as given: maybe auto
	scale data.Scale // resolved
	why   string
}

// newRunScale parses --scale and resolves it for the training data.
func newRunScale(flagValue string, trainSet *data.Dataset) (*runScale, error) {
	spec, err := data.ParseScale(flagValue)
	if err != nil {
		return nil, usagef("--scale: %v", err)
	}
	s, why, err := spec.Resolve(trainSet)
	if err != nil {
		return nil, usagef("--scale: %v", err)
	}
	return &runScale{spec: spec, scale: s, why: why}, nil
}

// apply scales d (nil: nothing) as the training data. With --scale auto, d
// must be of the same kind as the training data, or the one scale the
// model records would not describe both.
func (r *runScale) apply(d *data.Dataset) error {
	if d == nil {
		return nil
	}
	s, _, err := r.spec.Resolve(d)
	if err == nil && s != r.scale {
		err = fmt.Errorf("%s holds %s (auto scale %s) but the training data's scale is %s (%s)", d.Source, d.Raw, s, r.scale, r.why)
	}
	if err != nil {
		return usagef("--scale %s: %v; give one scale for both with --scale", r.spec, err)
	}
	d.Apply(r.scale)
	return nil
}

// String is the line training prints.
func (r *runScale) String() string { return fmt.Sprintf("input scale: %s (%s)", r.scale, r.why) }

// setting keeps the scale in the training state, so a resume with another
// scale is refused.
func (r *runScale) setting() *checkpoint.Setting {
	return &checkpoint.Setting{Key: "input_scale", Value: r.scale.String(), Hint: "resume with --scale %s"}
}

// checkScaleFlag checks eval's, predict's and run's --scale ("": none
// given) before any work.
func checkScaleFlag(v string) error {
	if v == "" {
		return nil
	}
	if _, err := data.ParseScale(v); err != nil {
		return usagef("--scale: %v", err)
	}
	return nil
}

// modelScale is the scale eval, predict and run apply: --scale when given,
// else the model's stored scale, else auto. It says where it came from.
func modelScale(flagValue string, m *graph.Model) (data.Scale, string, error) {
	if flagValue != "" {
		s, err := data.ParseScale(flagValue)
		if err != nil {
			return s, "", usagef("--scale: %v", err)
		}
		return s, "--scale", nil
	}
	if v, ok := m.Metadata[checkpoint.MetaInputScale]; ok {
		s, err := data.ParseScale(v)
		if err != nil || s.Auto() {
			return s, "", fmt.Errorf("the model's metadata %s is %q: expected a resolved scale (%v); give --scale", checkpoint.MetaInputScale, v, err)
		}
		return s, "the model's " + checkpoint.MetaInputScale, nil
	}
	return data.ScaleAuto, "the model records none", nil
}

// scaleDataset applies the eval scale to d and prints it.
func scaleDataset(flagValue string, m *graph.Model, d *data.Dataset, stdout io.Writer) error {
	spec, from, err := modelScale(flagValue, m)
	if err != nil {
		return err
	}
	s, why, err := spec.Resolve(d)
	if err != nil {
		return usagef("--scale: %v", err)
	}
	if spec.Auto() {
		from += "; " + why
	}
	fmt.Fprintf(stdout, "input scale: %s (%s)\n", s, from)
	if note := scaleNote(spec, flagValue, d.Raw); note != "" {
		fmt.Fprintf(stdout, "note: %s: %s\n", d.Source, note)
	}
	d.Apply(s)
	return nil
}

// scaleNote warns when the model's stored scale is not what auto would
// pick for data of kind raw (a model trained on 8-bit pixels, given float
// data): the stored scale is applied, as it says, but the data may be in
// other units than the training data's.
func scaleNote(s data.Scale, flagValue string, raw data.RawKind) string {
	if flagValue != "" || s.Auto() {
		return ""
	}
	a, _, err := data.ScaleAuto.ForRaw(raw)
	if err != nil || a == s {
		return ""
	}
	return fmt.Sprintf("it holds %s, which auto would scale by %s; the model's %s is applied (give --scale to change it)", raw, a, s)
}

// scaleTensor multiplies a float32 tensor by the scale, in place; raw
// tells an auto scale what the values are.
func scaleTensor(s data.Scale, raw data.RawKind, t *tensor.Tensor) error {
	s, _, err := s.ForRaw(raw)
	if err != nil {
		return err
	}
	if f := s.Factor(); f != 1 {
		x := t.Float32s()
		for i := range x {
			x[i] *= f
		}
	}
	return nil
}

// scaleRunInput applies --scale, else the model's stored scale, to run's
// first input; without either, run feeds its arrays as they are.
func scaleRunInput(flagValue string, m *graph.Model, feeds map[string]*tensor.Tensor, stdout io.Writer) error {
	s, from, err := modelScale(flagValue, m)
	if err != nil || (s.Auto() && flagValue == "") {
		return err
	}
	name := m.Graph.Inputs[0].Name
	t := feeds[name]
	if t.DType() != tensor.Float32 {
		if s.Auto() || s.Factor() == 1 {
			return nil
		}
		return fmt.Errorf("input scale %s (%s): input %q is %v; a scale applies to float32 inputs", s, from, name, t.DType())
	}
	r, why, err := s.ForRaw(data.RawFloat)
	if err != nil {
		return err
	}
	if s.Auto() {
		from += ", " + why
	}
	t = t.Clone()
	if err := scaleTensor(r, data.RawFloat, t); err != nil {
		return err
	}
	feeds[name] = t
	fmt.Fprintf(stdout, "input %q scaled by %s (%s)\n", name, r, from)
	return nil
}
