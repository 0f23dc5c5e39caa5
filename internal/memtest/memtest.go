// Package memtest helps tests show that input asking for a huge allocation
// is refused with an error before anything large is allocated: it runs the
// code under a small memory limit (tensor.SetMemoryLimit) and measures what
// the process allocated meanwhile (runtime.MemStats.TotalAlloc), so a test
// fails if the allocation happened, even if it then succeeded.
package memtest

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"runtime"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/tensor"
)

// Limit is the memory limit the checks run under: small, so that what a
// hostile input asks for is far above it, and large enough for the
// legitimate work around it.
const Limit = 64 << 20

// Slack is what a refused input may allocate in all while it is read
// (headers, buffers that grow with the data actually present, the parsed
// model), far below the gigabytes the reported inputs asked for.
const Slack = 4 * Limit

// Refused runs fn under the memory limit Limit and fails t unless fn
// returns an error, the error holds every want string (with no want, it
// must be a *tensor.LimitError), and the process allocated less than Slack
// bytes meanwhile. It returns the error. Tests calling it must not run in
// parallel with others, whose allocations would count.
func Refused(t testing.TB, fn func() error, want ...string) error {
	t.Helper()
	prev := tensor.SetMemoryLimit(Limit)
	defer tensor.SetMemoryLimit(prev)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	err := fn()
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	switch {
	case err == nil:
		t.Errorf("no error; want one refusing the input")
	case len(want) == 0 && !errors.Is(err, tensor.ErrMemoryLimit):
		t.Errorf("error %q is not a memory-limit error", err)
	}
	if err != nil {
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not mention %q", err, w)
			}
		}
	}
	if allocated > Slack {
		t.Errorf("allocated %d bytes while refusing the input; at most %d expected", allocated, Slack)
	}
	return err
}

// DeflatedZeros returns a raw deflate stream of prefix followed by n zero
// bytes, with the CRC-32 (IEEE) of that content, built without holding the
// content: a few kilobytes per megabyte of zeros, so a test can make a
// gigabyte bomb in a few milliseconds.
func DeflatedZeros(prefix []byte, n int64) (stream []byte, crc uint32) {
	const chunk = 1 << 20
	zeros := make([]byte, chunk)
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestSpeed)
	first := min(n, chunk)
	w.Write(prefix)
	w.Write(zeros[:first])
	w.Flush() // ends the blocks on a byte boundary, so they can be repeated
	crc = crc32.Update(crc32.ChecksumIEEE(prefix), crc32.IEEETable, zeros[:first])
	head := append([]byte{}, buf.Bytes()...)
	buf.Reset()
	// After 1 MiB of zeros the window holds only zeros, so the blocks that
	// encode the next megabyte are valid after any number of megabytes.
	var rep []byte
	if n >= first+chunk {
		w.Write(zeros)
		w.Flush()
		rep = append([]byte{}, buf.Bytes()...)
		buf.Reset()
	}
	reps := (n - first) / chunk
	rest := (n - first) % chunk
	out := append([]byte{}, head...)
	for range reps {
		out = append(out, rep...)
		crc = crc32.Update(crc, crc32.IEEETable, zeros)
	}
	w.Write(zeros[:rest])
	w.Close()
	crc = crc32.Update(crc, crc32.IEEETable, zeros[:rest])
	return append(out, buf.Bytes()...), crc
}

// Zip returns an archive of one deflated entry whose header declares size
// bytes uncompressed (true or not) and the given CRC.
func Zip(name string, stream []byte, size uint64, crc uint32) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, err := zw.CreateRaw(&zip.FileHeader{Name: name, Method: zip.Deflate, CRC32: crc,
		CompressedSize64: uint64(len(stream)), UncompressedSize64: size})
	if err != nil {
		panic(err)
	}
	w.Write(stream)
	zw.Close()
	return b.Bytes()
}

// Gzip returns a gzip stream of prefix followed by n zero bytes, built as
// DeflatedZeros does.
func Gzip(prefix []byte, n int64) []byte {
	stream, crc := DeflatedZeros(prefix, n)
	var b bytes.Buffer
	b.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}) // magic, deflate, no flags, no time, unknown OS
	b.Write(stream)
	var tail [8]byte
	binary.LittleEndian.PutUint32(tail[:4], crc)
	binary.LittleEndian.PutUint32(tail[4:], uint32(int64(len(prefix))+n))
	b.Write(tail[:])
	return b.Bytes()
}
