package cpu

import (
	"context"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// TestPrivateMemory checks the devices of a backend made with
// PrivateMemory: an executable refuses a buffer of another device, Copy
// moves data between devices, and shared memory (the default) accepts any
// device's buffer.
func TestPrivateMemory(t *testing.T) {
	b := graph.NewBuilder("relu", 17)
	b.Input("x", tensor.Float32, graph.D(3))
	b.Op("Relu", "x").Named("y")
	b.Output("y")
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	x := tensor.MustFromSlice([]float32{-1, 2, -3}, 3)
	for _, private := range []bool{false, true} {
		be := New(Options{Devices: 2, PrivateMemory: private})
		if be.SharedMemory() == private {
			t.Errorf("private memory %v: SharedMemory() = %v", private, be.SharedMemory())
		}
		d0, d1 := be.Devices()[0], be.Devices()[1]
		exe, err := be.Compile(m, d0, backend.CompileOptions{})
		if err != nil {
			t.Fatal(err)
		}
		other, err := be.Upload(x, d1)
		if err != nil {
			t.Fatal(err)
		}
		_, err = exe.Run(context.Background(), map[string]backend.Buffer{"x": other})
		switch {
		case private && (err == nil || !strings.Contains(err.Error(), `input "x"`) || !strings.Contains(err.Error(), "cpu:1") || !strings.Contains(err.Error(), "do not share memory")):
			t.Errorf("private memory: a buffer of device 1 fed to device 0: error %v", err)
		case !private && err != nil:
			t.Errorf("shared memory: a buffer of device 1 fed to device 0: %v", err)
		}
		// Copy to device 0, then run there.
		here, err := be.Upload(tensor.New(tensor.Float32, 3), d0)
		if err != nil {
			t.Fatal(err)
		}
		if err := be.Copy(here, other); err != nil {
			t.Fatal(err)
		}
		out, err := exe.Run(context.Background(), map[string]backend.Buffer{"x": here})
		if err != nil {
			t.Fatal(err)
		}
		y, err := be.Download(out["y"])
		if err != nil {
			t.Fatal(err)
		}
		if got := y.Float32s(); got[0] != 0 || got[1] != 2 || got[2] != 0 {
			t.Errorf("relu of the copied buffer: %v", got)
		}
		wrong, err := be.Upload(tensor.New(tensor.Float32, 4), d0)
		if err != nil {
			t.Fatal(err)
		}
		if err := be.Copy(wrong, other); err == nil || !strings.Contains(err.Error(), "[3]") {
			t.Errorf("copy of a [3] buffer into a [4] one: error %v", err)
		}
	}
}

func TestPrivateOption(t *testing.T) {
	for _, c := range []struct {
		opts   map[string]string
		shared bool
		err    string
	}{
		{map[string]string{"devices": "2", "private": "1"}, false, ""},
		{map[string]string{"private": "0"}, true, ""},
		{map[string]string{}, true, ""},
		{map[string]string{"private": "yes"}, false, `private="yes": expected 0 or 1`},
	} {
		b, err := backend.Open("cpu", c.opts)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%v: error %v, want one containing %q", c.opts, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v: %v", c.opts, err)
		}
		if got := b.(*Backend).SharedMemory(); got != c.shared {
			t.Errorf("%v: SharedMemory() = %v", c.opts, got)
		}
	}
}
