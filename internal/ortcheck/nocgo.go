//go:build !cgo

package ortcheck

import (
	"errors"
	"testing"

	"github.com/gotrain/gotrain/tensor"
)

var errNoCgo = errors.New("ONNX Runtime needs cgo")

// Require skips the test: this build has no cgo to load the library
// with, which is a build configuration, not a missing requirement.
func Require(t testing.TB) {
	t.Helper()
	t.Skip("ONNX Runtime needs cgo: this is a CGO_ENABLED=0 build")
}

// Init fails without cgo.
func Init() error { return errNoCgo }

// Run fails without cgo.
func Run(string, map[string]*tensor.Tensor, []string, []string) (map[string]*tensor.Tensor, error) {
	return nil, errNoCgo
}

// Session is unavailable without cgo.
type Session struct{}

// NewSession fails without cgo.
func NewSession(string, string, string, []int, int) (*Session, error) { return nil, errNoCgo }

// Run fails without cgo.
func (*Session) Run() error { return errNoCgo }

// Close does nothing.
func (*Session) Close() {}
