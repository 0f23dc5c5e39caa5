package graph

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gotrain/gotrain/internal/testenv"
)

// FuzzLoadBytes feeds arbitrary bytes to the loader: it may refuse them but
// must never panic or hang, and whatever it accepts must save.
func FuzzLoadBytes(f *testing.F) {
	var seeds []string
	for _, name := range []string{"cnn", "mlp"} {
		p, _ := goldenModel(f, name)
		seeds = append(seeds, p)
	}
	nodeTests := filepath.Join(debianTests, "node")
	if d, ok := testenv.Shared(f, "onnx-node-tests/v1.22.0"); ok {
		nodeTests = d
	}
	for _, test := range []string{"test_if", "test_loop11", "test_conv_with_strides_padding", "test_constant", "test_gemm_default_vector_bias", "test_sequence_insert_at_back"} {
		seeds = append(seeds, filepath.Join(nodeTests, test, "model.onnx"))
	}
	for _, path := range seeds {
		data, err := os.ReadFile(path)
		if err != nil {
			continue // a node test this suite lacks: the other seeds remain
		}
		f.Add(data)
		f.Add(data[:len(data)/2])
		flipped := append([]byte{}, data...)
		flipped[len(flipped)/3] ^= 0x40
		f.Add(flipped)
	}
	if data, err := goModel().Marshal(); err == nil {
		f.Add(data)
	}
	f.Add([]byte{})
	f.Add([]byte("\x08\x07\x3a\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := LoadBytes(data, "")
		if err != nil {
			return
		}
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("loaded but cannot save: %v", err)
		}
		if _, err := LoadBytes(out, ""); err != nil {
			t.Fatalf("saved model does not load: %v", err)
		}
	})
}
