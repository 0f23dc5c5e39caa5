package cudalib

// This file keeps the package non-empty when cgo is off; loading the
// libraries needs cgo (cudalib.go).
