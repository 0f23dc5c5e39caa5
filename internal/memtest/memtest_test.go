package memtest

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"hash/crc32"
	"io"
	"testing"
)

func TestZerosStreams(t *testing.T) {
	for _, n := range []int64{0, 5, 1 << 20, 1<<20 + 7, 3<<20 + 3} {
		s, crc := DeflatedZeros([]byte("hdr"), n)
		b, err := io.ReadAll(flate.NewReader(bytes.NewReader(s)))
		if err != nil || int64(len(b)) != n+3 || string(b[:3]) != "hdr" || crc32.ChecksumIEEE(b) != crc {
			t.Fatalf("n=%d: %d bytes, %v; CRC %08x, want %08x", n, len(b), err, crc, crc32.ChecksumIEEE(b))
		}
		if bytes.ContainsFunc(b[3:], func(r rune) bool { return r != 0 }) {
			t.Fatalf("n=%d: not all zeros after the prefix", n)
		}
		g, err := gzip.NewReader(bytes.NewReader(Gzip([]byte("hdr"), n)))
		if err != nil {
			t.Fatal(err)
		}
		if b2, err := io.ReadAll(g); err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("n=%d: gzip stream: %d bytes, %v", n, len(b2), err)
		}
	}
}
