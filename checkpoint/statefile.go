package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"

	"github.com/gotrain/gotrain/internal/atomicfile"
	"github.com/gotrain/gotrain/tensor"
	"github.com/gotrain/gotrain/train"
)

// A training-state file holds a train.State: everything needed to continue
// training bit for bit where it stopped. Its layout, all integers
// little-endian:
//
//	offset size
//	 0     12   magic "GOTRAINCKPT\x00"
//	12      4   format version (FormatVersion)
//	16      8   payload size in bytes (compressed)
//	24      8   body size in bytes (uncompressed)
//	32      4   CRC-32C of the payload
//	36      4   CRC-32C of bytes 0..35 (the header itself)
//	40      -   payload: the body, zstd-compressed
//
// The body is the State in the binary encoding of codec.go, fields in a fixed
// order and maps in sorted key order, so the same State gives the same file.
// Version 2 appends the data hash and the epoch in progress (its position in
// samples and its running sums) to version 1's fields; version 1 files are
// still read, without them (see train.PartialEpoch for how such a state
// resumes mid-epoch).
// Reading checks, in order: the magic, the version, the header checksum, the
// file size, the payload checksum, then decodes; each failure has its own
// error (ErrNotCheckpoint, ErrVersion, ErrCorrupt, ErrTruncated), and a state
// of another model is refused with ErrOtherModel.

// Magic opens every training-state file.
const Magic = "GOTRAINCKPT\x00"

// FormatVersion is the training-state format this package writes; it reads
// versions 1 to FormatVersion.
const FormatVersion uint32 = 2

const headerSize = 40

// Errors of LoadState, wrapped with the file name and details; test with errors.Is.
var (
	ErrNotCheckpoint = errors.New("not a gotrain training-state file")
	ErrTruncated     = errors.New("training-state file is truncated")
	ErrCorrupt       = errors.New("training-state file is corrupted")
	ErrVersion       = errors.New("unsupported training-state format version")
	ErrOtherModel    = errors.New("training state belongs to another model")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// SaveState writes s to path atomically: a crash or a failed write leaves any
// previous file at path intact.
func SaveState(path string, s *train.State) error {
	if s == nil {
		return fmt.Errorf("save state %s: nil state", path)
	}
	var payload bytes.Buffer
	zw, err := zstd.NewWriter(&payload, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		return fmt.Errorf("save state %s: %w", path, err)
	}
	cw := &countWriter{w: zw}
	enc := &encoder{w: cw}
	encodeState(enc, s)
	if enc.err != nil {
		zw.Close()
		return fmt.Errorf("save state %s: %w", path, enc.err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("save state %s: compress: %w", path, err)
	}
	hdr := make([]byte, headerSize)
	copy(hdr, Magic)
	le := binary.LittleEndian
	le.PutUint32(hdr[12:], FormatVersion)
	le.PutUint64(hdr[16:], uint64(payload.Len()))
	le.PutUint64(hdr[24:], uint64(cw.n))
	le.PutUint32(hdr[32:], crc32.Checksum(payload.Bytes(), castagnoli))
	le.PutUint32(hdr[36:], crc32.Checksum(hdr[:36], castagnoli))
	return atomicfile.Write(path, func(w io.Writer) error {
		if _, err := w.Write(hdr); err != nil {
			return err
		}
		_, err := w.Write(payload.Bytes())
		return err
	})
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func encodeState(e *encoder, s *train.State) {
	e.string(s.ModelHash)
	e.uvarint(uint64(max(s.Epoch, 0)))
	e.varint(s.Step)
	e.uvarint(uint64(max(s.BatchInEpoch, 0)))
	e.float64(s.LRScale)
	e.bytes(s.Config)
	e.tensorMap(s.Weights)
	e.tensorMap(s.OptState)
	e.bytesMap(s.RNG)
	e.bytesMap(s.Extra)
	e.uvarint(uint64(len(s.History)))
	for _, l := range s.History {
		e.floatMap(l)
	}
	// Version 2.
	e.string(s.DataHash)
	e.bool(s.Partial != nil)
	if p := s.Partial; p != nil {
		e.varint(p.Samples)
		e.varint(p.Counted)
		e.float64(p.Loss)
		e.float64(p.Correct)
	}
}

func decodeStateVersion(d *decoder, version uint32) *train.State {
	s := &train.State{}
	s.ModelHash = d.string()
	s.Epoch = int(d.uvarint())
	s.Step = d.varint()
	s.BatchInEpoch = int(d.uvarint())
	s.LRScale = d.float64()
	s.Config = d.bytes()
	s.Weights = d.tensorMap()
	s.OptState = d.tensorMap()
	s.RNG = d.bytesMap()
	s.Extra = d.bytesMap()
	n := d.length(1)
	for i := 0; i < n && d.err == nil; i++ {
		s.History = append(s.History, train.Logs(d.floatMap()))
	}
	if version >= 2 {
		s.DataHash = d.string()
		if d.bool() {
			s.Partial = &train.PartialEpoch{Samples: d.varint(), Counted: d.varint(), Loss: d.float64(), Correct: d.float64()}
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d bytes after the end of the state", len(d.b))
	}
	return s
}

// LoadState reads a training-state file. When expectModelHash is not empty,
// a state whose ModelHash differs is refused with ErrOtherModel. Every other
// failure is one of ErrNotCheckpoint, ErrTruncated, ErrCorrupt or ErrVersion,
// wrapped with the file name and what was found.
func LoadState(path string, expectModelHash string) (*train.State, error) {
	data, err := readStateFile(path)
	if err != nil {
		return nil, err
	}
	s, err := parseState(data)
	if err != nil {
		return nil, fmt.Errorf("load state %s: %w", path, err)
	}
	if expectModelHash != "" && s.ModelHash != expectModelHash {
		return nil, fmt.Errorf("load state %s: %w: the file was written for model %s, the model being trained is %s",
			path, ErrOtherModel, s.ModelHash, expectModelHash)
	}
	return s, nil
}

// readStateFile reads the file after checking its size against the memory
// limit.
func readStateFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load state: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("load state: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("load state %s: not a regular file", path)
	}
	if err := tensor.CheckAlloc(fmt.Sprintf("load state %s: a %d-byte file", path, st.Size()), st.Size(), 1); err != nil {
		return nil, err
	}
	data := make([]byte, st.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("load state %s: %w", path, err)
	}
	return data, nil
}

// ParseState reads a training state from a state file's bytes, as
// LoadState reads the file; name says where they came from in errors. It
// serves states that reach a process by other means than its own file
// system, such as worker 0's broadcast in a multi-worker run.
func ParseState(data []byte, name string) (*train.State, error) {
	s, err := parseState(data)
	if err != nil {
		return nil, fmt.Errorf("load state %s: %w", name, err)
	}
	return s, nil
}

func parseState(data []byte) (*train.State, error) {
	n := min(len(data), len(Magic))
	if string(data[:n]) != Magic[:n] {
		return nil, fmt.Errorf("%w: its first bytes are %q, expected %q", ErrNotCheckpoint, data[:n], Magic)
	}
	if len(data) < headerSize {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrTruncated, len(data), headerSize)
	}
	le := binary.LittleEndian
	version := le.Uint32(data[12:])
	if version < 1 || version > FormatVersion {
		return nil, fmt.Errorf("%w: the file has format version %d, this gotrain reads versions 1 to %d", ErrVersion, version, FormatVersion)
	}
	if got, want := crc32.Checksum(data[:36], castagnoli), le.Uint32(data[36:]); got != want {
		return nil, fmt.Errorf("%w: header checksum %08x, expected %08x", ErrCorrupt, got, want)
	}
	plen, blen, pcrc := le.Uint64(data[16:]), le.Uint64(data[24:]), le.Uint32(data[32:])
	have := uint64(len(data) - headerSize)
	if have < plen {
		return nil, fmt.Errorf("%w: %d bytes, the header says %d", ErrTruncated, len(data), plen+headerSize)
	}
	if have > plen {
		return nil, fmt.Errorf("%w: %d bytes after the end of the payload", ErrCorrupt, have-plen)
	}
	payload := data[headerSize:]
	if got := crc32.Checksum(payload, castagnoli); got != pcrc {
		return nil, fmt.Errorf("%w: payload checksum %08x, expected %08x", ErrCorrupt, got, pcrc)
	}
	// The body size is checksummed but not trusted: a header can declare
	// any size, so it is checked against the memory limit (the decoded
	// body is held while the tensors are decoded from it) before the buffer
	// is allocated, and the decoder refuses to produce more than it.
	if blen > 1<<62 {
		return nil, fmt.Errorf("%w: body size %d is not plausible", ErrCorrupt, blen)
	}
	if err := tensor.CheckAlloc(fmt.Sprintf("the header declares a body of %d bytes", blen), int64(blen), 2); err != nil {
		return nil, err
	}
	// The decoder's limit is the body size plus room for the encoder's
	// window, which a small body does not fill.
	zr, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(blen+64<<20))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	body, err := zr.DecodeAll(payload, make([]byte, 0, blen))
	if err != nil {
		return nil, fmt.Errorf("%w: decompress: %v", ErrCorrupt, err)
	}
	if uint64(len(body)) != blen {
		return nil, fmt.Errorf("%w: body is %d bytes, the header says %d", ErrCorrupt, len(body), blen)
	}
	d := &decoder{b: body}
	s := decodeStateVersion(d, version)
	if d.err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, d.err)
	}
	return s, nil
}
