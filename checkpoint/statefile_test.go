package checkpoint

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/gotrain/gotrain/internal/atomicfile"
	"github.com/gotrain/gotrain/tensor"
	"github.com/gotrain/gotrain/train"
)

// sampleState has every kind of field, and floats whose bits a sloppy
// encoding would lose: -0, NaN with a payload, denormals, ±Inf.
func sampleState() *train.State {
	w := tensor.MustFromSlice([]float32{1.5, float32(math.Copysign(0, -1)), math.Float32frombits(0x7fc00123), math.SmallestNonzeroFloat32, float32(math.Inf(-1)), 3}, 2, 3)
	half, _ := tensor.FromRaw16(tensor.Float16, []uint16{0x3c00, 0x8000, 0x7e01}, 3)
	return &train.State{
		Epoch: 3, Step: 1234, BatchInEpoch: 17, LRScale: 0.1 * 0.1,
		Weights: map[string]*tensor.Tensor{
			"conv.weight":    w,
			"bn.running_var": tensor.MustFromSlice([]float64{1e-300, math.MaxFloat64}, 2),
			"bn.num_batches": tensor.Scalar(int64(-7)),
			"half":           half,
			"mask":           tensor.MustFromSlice([]bool{true, false, true}, 3),
			"empty":          tensor.New(tensor.Float32, 0, 4),
		},
		OptState: map[string]*tensor.Tensor{
			"conv.weight.m": tensor.MustFromSlice([]float32{1, 2, 3, 4, 5, 6}, 2, 3),
			"ints":          tensor.MustFromSlice([]int32{-1, math.MaxInt32}, 2),
			"names":         tensor.MustFromSlice([]string{"a", "", "ünï"}, 3),
		},
		RNG:       map[string][]byte{"shuffle": {1, 2, 3}, "dropout": {}},
		Extra:     map[string][]byte{"EarlyStopping(val_loss)": {4, 5}},
		Config:    []byte(`{"epochs":10,"lr":0.01}`),
		ModelHash: "0123456789abcdef",
		History:   []train.Logs{{"loss": 0.5, "val_loss": math.NaN()}, {"loss": 0.25}},
		Partial:   &train.PartialEpoch{Samples: 17 * 32, Counted: 17 * 32, Loss: 0.1 + 0.2, Correct: 301},
		DataHash:  "fedcba9876543210",
	}
}

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := sampleState()
	p1, p2 := filepath.Join(dir, "a.ckpt"), filepath.Join(dir, "b.ckpt")
	if err := SaveState(p1, s); err != nil {
		t.Fatal(err)
	}
	got, err := LoadState(p1, s.ModelHash)
	if err != nil {
		t.Fatal(err)
	}
	if err := DiffStates(s, got); err != nil {
		t.Fatalf("round trip differs: %v", err)
	}
	if string(got.Config) != string(s.Config) || got.OptState["names"].Data().([]string)[2] != "ünï" {
		t.Errorf("config %q / strings %q lost", got.Config, got.OptState["names"].Data())
	}
	// Same state, same bytes: files can be compared and deduplicated.
	if err := SaveState(p2, got); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(p1)
	b, _ := os.ReadFile(p2)
	if !bytes.Equal(a, b) {
		t.Error("saving the loaded state gives different bytes")
	}
	// DiffStates must see a one-bit change.
	got.Weights["conv.weight"].Float32s()[0] = math.Nextafter32(1.5, 2)
	if err := DiffStates(s, got); err == nil || !strings.Contains(err.Error(), `"conv.weight" element 0`) {
		t.Errorf("DiffStates after a one-ulp change: %v", err)
	}
	got, _ = LoadState(p1, "")
	got.Partial.Loss = math.Nextafter(got.Partial.Loss, 1)
	if err := DiffStates(s, got); err == nil || !strings.Contains(err.Error(), "loss sum") {
		t.Errorf("DiffStates after a one-ulp change of the epoch's loss sum: %v", err)
	}
	got.Partial = nil
	if err := DiffStates(s, got); err == nil || !strings.Contains(err.Error(), "epoch in progress") {
		t.Errorf("DiffStates without the epoch in progress: %v", err)
	}
}

// rewriteFile re-encodes a state file's body with edit applied and the
// header's version set to version, with valid sizes and checksums.
func rewriteFile(t *testing.T, data []byte, version uint32, edit func([]byte) []byte) []byte {
	t.Helper()
	zr, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	body, err := zr.DecodeAll(data[headerSize:], nil)
	if err != nil {
		t.Fatal(err)
	}
	body = edit(body)
	zw, _ := zstd.NewWriter(nil)
	payload := zw.EncodeAll(body, nil)
	zw.Close()
	hdr := append([]byte{}, data[:headerSize]...)
	le := binary.LittleEndian
	le.PutUint32(hdr[12:], version)
	le.PutUint64(hdr[16:], uint64(len(payload)))
	le.PutUint64(hdr[24:], uint64(len(body)))
	le.PutUint32(hdr[32:], crc32.Checksum(payload, castagnoli))
	le.PutUint32(hdr[36:], crc32.Checksum(hdr[:36], castagnoli))
	return append(hdr, payload...)
}

// A version-1 file (no data hash, no epoch in progress) still loads; a
// version-2 body in a file that says version 1 does not.
func TestLoadStateVersion1(t *testing.T) {
	dir := t.TempDir()
	s := sampleState()
	s.Partial, s.DataHash = nil, ""
	p := filepath.Join(dir, "v2.ckpt")
	if err := SaveState(p, s); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(p)
	// Version 2's additions for an empty hash and no epoch in progress are
	// two zero bytes at the end of the body.
	v1 := rewriteFile(t, data, 1, func(b []byte) []byte {
		if !bytes.HasSuffix(b, []byte{0, 0}) {
			t.Fatalf("the body does not end in version 2's two empty fields")
		}
		return b[:len(b)-2]
	})
	p1 := filepath.Join(dir, "v1.ckpt")
	os.WriteFile(p1, v1, 0o644)
	got, err := LoadState(p1, s.ModelHash)
	if err != nil {
		t.Fatal(err)
	}
	if err := DiffStates(s, got); err != nil {
		t.Fatalf("version 1 file: %v", err)
	}
	p2 := filepath.Join(dir, "v2-as-v1.ckpt")
	os.WriteFile(p2, rewriteFile(t, data, 1, func(b []byte) []byte { return b }), 0o644)
	if _, err := LoadState(p2, ""); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "2 bytes after the end") {
		t.Errorf("a version 2 body labelled version 1: %v", err)
	}
}

func TestLoadStateErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.ckpt")
	if err := SaveState(good, sampleState()); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(good)
	onnx, err := os.ReadFile(goldenCNN(t))
	if err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte{}, data...)) }
	all := []error{ErrNotCheckpoint, ErrTruncated, ErrCorrupt, ErrVersion, ErrOtherModel}
	tests := []struct {
		name   string
		data   []byte
		expect string // model hash LoadState expects
		want   error
		text   string
	}{
		{"cut in the payload", data[:len(data)-10], "", ErrTruncated, fmt.Sprintf("%d bytes, the header says %d", len(data)-10, len(data))},
		{"cut in the header", data[:20], "", ErrTruncated, "shorter than the 40-byte header"},
		{"cut in the magic", data[:5], "", ErrTruncated, "shorter"},
		{"empty", nil, "", ErrTruncated, "0 bytes"},
		{"payload byte flipped", mutate(func(b []byte) []byte { b[len(b)/2] ^= 0x10; return b }), "", ErrCorrupt, "payload checksum"},
		{"size field changed", mutate(func(b []byte) []byte { b[16]++; return b }), "", ErrCorrupt, "header checksum"},
		{"bytes appended", append(append([]byte{}, data...), 0, 0), "", ErrCorrupt, "2 bytes after the end"},
		{"newer version", mutate(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[12:], 3); return b }), "", ErrVersion, "format version 3, this gotrain reads versions 1 to 2"},
		{"an ONNX model", onnx, "", ErrNotCheckpoint, "expected \"GOTRAINCKPT\\x00\""},
		{"another model", data, "fedcba9876543210", ErrOtherModel, "model 0123456789abcdef, the model being trained is fedcba9876543210"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".ckpt")
			if err := os.WriteFile(p, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadState(p, tc.expect)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			for _, other := range all {
				if other != tc.want && errors.Is(err, other) {
					t.Errorf("error %v is also %v", err, other)
				}
			}
			if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), tc.text) {
				t.Errorf("error %q should name the file and contain %q", err, tc.text)
			}
		})
	}
	if _, err := LoadState(filepath.Join(dir, "missing.ckpt"), ""); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// The decoder must refuse damaged bodies without allocating what a damaged
// count asks for; the checksums are bypassed here to reach it.
func TestDecodeDamagedBody(t *testing.T) {
	var body bytesBuffer
	encodeState(&encoder{w: &body}, sampleState())
	for cut := 0; cut < len(body); cut += 7 {
		d := &decoder{b: body[:cut]}
		decodeStateVersion(d, FormatVersion)
		if d.err == nil {
			t.Fatalf("body cut at %d of %d decoded without error", cut, len(body))
		}
	}
	huge := &decoder{b: []byte{1, 2, 0xff, 0xff, 0xff, 0xff, 0x0f, 0xff, 0xff, 0xff, 0xff, 0x0f}}
	huge.tensor("x")
	if huge.err == nil {
		t.Fatal("a tensor of 2^64 elements was accepted")
	}
}

func TestFailedWriteKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.ckpt")
	if err := SaveState(path, sampleState()); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)

	bad := sampleState()
	bad.Weights["nil"] = nil
	if err := SaveState(path, bad); err == nil || !strings.Contains(err.Error(), `"nil"`) {
		t.Errorf("saving a nil tensor: %v", err)
	}
	errDisk := errors.New("disk full")
	err := atomicfile.Write(path, func(w io.Writer) error {
		w.Write(bytes.Repeat([]byte{7}, 3<<20)) // past the buffer, so the temp file has data
		return errDisk
	})
	if !errors.Is(err, errDisk) {
		t.Errorf("failing writer: %v", err)
	}
	if err := SaveState(filepath.Join(dir, "no-such-dir", "state.ckpt"), sampleState()); err == nil {
		t.Error("saving into a missing folder succeeded")
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("a failed write changed the existing file")
	}
	if got := listDir(t, dir); len(got) != 1 || got[0] != "state.ckpt" {
		t.Errorf("files after failed writes: %v (temporary files left?)", got)
	}
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(dir, 0o755)
		if err := SaveState(path, sampleState()); err == nil {
			t.Error("saving into a read-only folder succeeded")
		}
		after, _ := os.ReadFile(path)
		if !bytes.Equal(before, after) {
			t.Fatal("a failed write into a read-only folder changed the file")
		}
	}
}

func TestCheckWritable(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	tests := []struct {
		path string
		want string // "" for success
	}{
		{filepath.Join(dir, "best_model.onnx"), ""},
		{filepath.Join(dir, "missing", "best_model.onnx"), "does not exist"},
		{dir, "is a folder"},
		{filepath.Join(file, "x.onnx"), "is not a folder"},
		{"", "empty"},
	}
	for _, tc := range tests {
		err := CheckWritable(tc.path)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("CheckWritable(%q) = %v, want %q", tc.path, err, tc.want)
		}
	}
	if got := listDir(t, dir); len(got) != 1 {
		t.Errorf("CheckWritable left files: %v", got)
	}
	if os.Geteuid() != 0 {
		ro := filepath.Join(dir, "ro")
		os.Mkdir(ro, 0o555)
		if err := CheckWritable(filepath.Join(ro, "x")); err == nil || !strings.Contains(err.Error(), "not writable") {
			t.Errorf("read-only folder: %v", err)
		}
	}
}

// crashState is the state the crash child writes in round i: every element
// is derived from i, so a reader can tell a whole file from a mix of two.
func crashState(i int64, n int) *train.State {
	w := make([]float32, n)
	r := rand.New(rand.NewPCG(uint64(i), 1))
	for j := range w {
		w[j] = r.Float32()
	}
	return &train.State{Step: i, Weights: map[string]*tensor.Tensor{"w": tensor.MustFromSlice(w, n)}, ModelHash: "crash"}
}

const crashEnv = "GOTRAIN_CHECKPOINT_CRASH_CHILD"

// TestCrashChild is the child of TestSIGKILLDuringWrite: it writes big
// state files to the same path in a loop until it is killed.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("run by TestSIGKILLDuringWrite only")
	}
	start := time.Now().UnixNano()
	for i := start; ; i++ {
		if err := SaveState(path, crashState(i, 4<<20)); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("saved", i)
	}
}

// SIGKILL at random moments of a checkpoint write must leave the previous
// checkpoint whole and loadable, and whatever temporary file the killed
// writer left must not look like a checkpoint.
func TestSIGKILLDuringWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "state.ckpt")
	r := rand.New(rand.NewPCG(1, 2))
	killedMidWrite := 0
	const rounds = 6
	for round := 0; round < rounds; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
		cmd.Env = append(os.Environ(), crashEnv+"="+path)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(stdout)
		for lines.Scan() && !strings.HasPrefix(lines.Text(), "saved") {
			if strings.HasPrefix(lines.Text(), "error") {
				t.Fatal(lines.Text())
			}
		}
		go io.Copy(io.Discard, stdout)
		if round%2 == 0 {
			// Aim: kill while a temporary file is being written.
			waitForTemp(dir, 5*time.Second)
			time.Sleep(time.Duration(r.IntN(2000)) * time.Microsecond)
		} else {
			time.Sleep(time.Duration(r.IntN(400)) * time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()

		s, err := LoadState(path, "crash")
		if err != nil {
			t.Fatalf("round %d: the checkpoint after SIGKILL does not load: %v", round, err)
		}
		if err := DiffTensors("weight", crashState(s.Step, 4<<20).Weights, s.Weights); err != nil {
			t.Fatalf("round %d: the checkpoint of step %d is not whole: %v", round, s.Step, err)
		}
		matches, _ := filepath.Glob(filepath.Join(dir, "*.ckpt"))
		if len(matches) != 1 {
			t.Fatalf("round %d: *.ckpt matches %v", round, matches)
		}
		for _, name := range listDir(t, dir) {
			if name == "state.ckpt" {
				continue
			}
			if !atomicfile.IsTemp(name) {
				t.Fatalf("round %d: unexpected file %s", round, name)
			}
			killedMidWrite++
		}
	}
	t.Logf("%d of %d kills left a temporary file behind", killedMidWrite, rounds)
	if killedMidWrite == 0 {
		t.Error("no kill landed during a write; the test did not test what it should")
	}
}

func waitForTemp(dir string, limit time.Duration) {
	for end := time.Now().Add(limit); time.Now().Before(end); {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if atomicfile.IsTemp(e.Name()) {
				return
			}
		}
		time.Sleep(200 * time.Microsecond)
	}
}
