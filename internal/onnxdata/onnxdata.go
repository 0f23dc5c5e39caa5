// Package onnxdata says where ONNX's backend test suites are installed on
// the system, for the conformance runner (backend/conformance, `gotrain
// conformance`) and the tests (internal/testenv), which find them there
// and nowhere else.
package onnxdata

// Debian is where Debian's libonnx-testdata installs ONNX 1.12's backend
// test suites, one folder each: node, pytorch-converted, pytorch-operator
// and simple (`make deps` installs the package).
const Debian = "/usr/share/libonnx-testdata/data"
