//go:build !cgo

package ortcheck

import (
	"errors"

	"github.com/gotrain/gotrain/tensor"
)

var errNoCgo = errors.New("ONNX Runtime needs cgo")

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
