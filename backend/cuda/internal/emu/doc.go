package emu

// This file keeps the package non-empty when cgo is off; the emulator itself
// needs cgo (emu.go).
