package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/gotrain/gotrain/internal/memtest"
	"github.com/gotrain/gotrain/tensor"
)

// stateFile frames a payload as a training-state file whose header
// declares a body of blen bytes, with valid checksums: what a file crafted
// to pass every check before the body is decoded looks like.
func stateFile(payload []byte, blen uint64) []byte {
	hdr := make([]byte, headerSize)
	copy(hdr, Magic)
	le := binary.LittleEndian
	le.PutUint32(hdr[12:], FormatVersion)
	le.PutUint64(hdr[16:], uint64(len(payload)))
	le.PutUint64(hdr[24:], blen)
	le.PutUint32(hdr[32:], crc32.Checksum(payload, castagnoli))
	le.PutUint32(hdr[36:], crc32.Checksum(hdr[:36], castagnoli))
	return append(hdr, payload...)
}

func zstdOf(t testing.TB, b []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(b, nil)
}

// stringsBody is a state body whose one weight is a tensor of n empty
// strings: n bytes that decode to n string headers of 16 bytes.
func stringsBody(n int) []byte {
	var b bytes.Buffer
	e := &encoder{w: &b}
	e.string("hash")
	e.uvarint(0)
	e.varint(0)
	e.uvarint(0)
	e.float64(1)
	e.bytes(nil)
	e.uvarint(1) // one weight
	e.string("names")
	e.uvarint(uint64(tensor.String))
	e.uvarint(1)
	e.uvarint(uint64(n))
	b.Write(make([]byte, n)) // n empty strings
	for range 3 {            // no optimizer state, RNG or extra
		e.uvarint(0)
	}
	e.uvarint(0) // no history
	return b.Bytes()
}

func TestLoadStateHugeDeclarations(t *testing.T) {
	dir := t.TempDir()
	small := zstdOf(t, []byte("tiny"))
	strs := stringsBody(8 << 20)
	cases := []struct {
		name string
		file []byte
		want []string // nil: a memory-limit error
	}{
		// The reported crasher: a 60-byte file whose header declares a
		// 1 TiB body, for which the buffer was allocated up front.
		{"body of 1 TiB", stateFile(small, 1<<40), nil},
		{"body of 1 GiB", stateFile(small, 1<<30), nil},
		{"body of 2^63", stateFile(small, 1<<63), []string{"not plausible"}},
		// A payload that inflates past the body its header declares and
		// the decoder's room for its window.
		{"payload inflating past the declared body", stateFile(zstdOf(t, make([]byte, 80<<20)), 1000), []string{"decompress"}},
		// 8 MB of body decoding to 128 MiB of string headers.
		{"strings", stateFile(zstdOf(t, strs), uint64(len(strs))), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, "state.ckpt")
			if err := os.WriteFile(p, c.file, 0o644); err != nil {
				t.Fatal(err)
			}
			err := memtest.Refused(t, func() error { _, err := LoadState(p, ""); return err }, append([]string{p}, c.want...)...)
			if c.want != nil && !errors.Is(err, ErrCorrupt) {
				t.Errorf("%v: want ErrCorrupt", err)
			}
		})
	}
	// The file itself is checked before it is read.
	p := filepath.Join(dir, "sparse.ckpt")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(1 << 30); err != nil {
		t.Skipf("cannot make a sparse file: %v", err)
	}
	memtest.Refused(t, func() error { _, err := LoadState(p, ""); return err })
}

// FuzzLoadState feeds arbitrary bytes to the state file parser under a
// small memory limit: it may refuse them but must never panic or allocate
// past the limit, and a state it reads must encode and decode to the same.
func FuzzLoadState(f *testing.F) {
	defer tensor.SetMemoryLimit(tensor.SetMemoryLimit(memtest.Limit))
	p := filepath.Join(f.TempDir(), "s.ckpt")
	if err := SaveState(p, sampleState()); err != nil {
		f.Fatal(err)
	}
	good, err := os.ReadFile(p)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	small := zstdOf(f, []byte("tiny"))
	f.Add(stateFile(small, 1<<40)) // the reported crasher
	f.Add(stateFile(zstdOf(f, make([]byte, 1<<20)), 1000))
	f.Add(stateFile(zstdOf(f, stringsBody(1000)), uint64(len(stringsBody(1000)))))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := parseState(data)
		if err != nil {
			return
		}
		var b bytes.Buffer
		e := &encoder{w: &b}
		encodeState(e, s)
		if e.err != nil {
			t.Fatalf("decoded a state that does not encode: %v", e.err)
		}
		d := &decoder{b: b.Bytes()}
		back := decodeStateVersion(d, FormatVersion)
		if d.err != nil {
			t.Fatalf("re-encoded state does not decode: %v", d.err)
		}
		if err := DiffStates(s, back); err != nil {
			t.Fatalf("re-encoded state differs: %v", err)
		}
	})
}
