package checkpoint

import (
	"fmt"

	"github.com/gotrain/gotrain/train"
)

// Setting keeps a setting of the run that is not a weight (the input scale,
// say) in the training state, and refuses to resume a state made with
// another value: the weights were trained for that value, and continuing
// with another would silently change what the model sees.
type Setting struct {
	train.NopCallback
	Key   string // the name in the state: "setting.<Key>"
	Value string
	Hint  string // how to resume with the state's value: a format with one %s, the state's value (e.g. "resume with --scale %s")
}

// Name implements train.StatefulCallback.
func (s *Setting) Name() string { return "setting." + s.Key }

// MarshalState implements train.StatefulCallback.
func (s *Setting) MarshalState() ([]byte, error) { return []byte(s.Value), nil }

// UnmarshalState implements train.StatefulCallback: it fails when the state
// holds another value.
func (s *Setting) UnmarshalState(b []byte) error {
	if string(b) == s.Value {
		return nil
	}
	msg := fmt.Sprintf("the training state was made with %s %s, this run has %s", s.Key, b, s.Value)
	if s.Hint != "" {
		msg += " (" + fmt.Sprintf(s.Hint, b) + ")"
	}
	return fmt.Errorf("%s", msg)
}
