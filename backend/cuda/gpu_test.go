//go:build cuda && cgo

package cuda_test

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/backend/cuda"
	"github.com/gotrain/gotrain/tensor"
)

// The GPU as a test device. Each stream call runs inside Device.Do (the
// context current on a locked thread), as an executor's run will.

var (
	gpuOnce sync.Once
	gpuBE   *cuda.Backend
	gpuErr  error
)

func openGPU(t *testing.T) (*cuda.Backend, string) {
	gpuOnce.Do(func() { gpuBE, gpuErr = cuda.Open(cuda.Options{Devices: 1}) })
	if gpuErr != nil {
		if requireGPU() {
			t.Fatalf("GOTRAIN_REQUIRE_GPU=1 but no GPU: %v", gpuErr)
		}
		if !errors.Is(gpuErr, cuda.ErrNoDevice) {
			t.Fatalf("opening the CUDA backend failed, and not for want of a device: %v", gpuErr)
		}
		return nil, gpuErr.Error()
	}
	return gpuBE, ""
}

type gpuDev struct{ d *cuda.Device }

func (g gpuDev) Launch(f *cuda.Func, grid, block cuda.Dim3, shared int, args []cuda.Arg) error {
	return g.d.Do(func(s cuda.Stream) error { return s.Launch(f, grid, block, shared, args) })
}
func (g gpuDev) Gemm(m *cuda.Gemm) error {
	return g.d.Do(func(s cuda.Stream) error { return s.Gemm(m) })
}
func (g gpuDev) Memset32(p cuda.Ptr, v uint32, n int) error {
	return g.d.Do(func(s cuda.Stream) error { return s.Memset32(p, v, n) })
}
func (g gpuDev) Copy(dst, src cuda.Ptr, n int64) error {
	return g.d.Do(func(s cuda.Stream) error { return s.Copy(dst, src, n) })
}
func (g gpuDev) Alloc(n int64) cuda.Ptr     { return g.d.Alloc(n) }
func (g gpuDev) Free(p cuda.Ptr)            { g.d.Free(p) }
func (g gpuDev) Write(p cuda.Ptr, b []byte) { g.d.Write(p, b) }
func (g gpuDev) Read(p cuda.Ptr, b []byte)  { g.d.Read(p, b) }

// TolFloor: the device's double-precision exp, log, tanh, erf and pow are
// not glibc's or Go's; where they differ in the last bit of a double the
// float32 result may round the other way. Comparisons the emulator makes
// exactly allow one float32 ulp on the GPU.
func (g gpuDev) TolFloor() float64 { return 1.2e-7 }

func init() {
	devGetters = append(devGetters, func(t *testing.T) (namedDev, string) {
		b, why := openGPU(t)
		if b == nil {
			return namedDev{}, why
		}
		return namedDev{"gpu", gpuDev{b.Devices()[0].(*cuda.Device)}}, ""
	})
}

func init() {
	backendGetters = append(backendGetters, func(t *testing.T) (namedBackend, string) {
		b, why := openGPU(t)
		if b == nil {
			return namedBackend{}, why
		}
		return namedBackend{"gpu", func(t *testing.T, o openOptions) *cuda.Backend {
			// Devices beyond the GPUs are further streams of GPU 0.
			b, err := cuda.Open(cuda.Options{Devices: o.devices, GPUs: 1, NoGraphs: o.noGraphs})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			return b
		}}, ""
	})
}

func gpuOrSkip(t *testing.T) *cuda.Backend {
	b, why := openGPU(t)
	if b == nil {
		t.Skipf("no GPU: %s", why)
	}
	return b
}

// TestTransfers: upload, download, overwrite and device-to-device copy of
// every dtype the kernels use, and of an empty tensor; plain and through
// pinned staging.
func TestTransfers(t *testing.T) {
	gpu := gpuOrSkip(t)
	pinned, err := cuda.Open(cuda.Options{Devices: 1, Pinned: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pinned.Close()
	for _, b := range []*cuda.Backend{gpu, pinned} {
		d := b.Devices()[0]
		for _, x := range []*tensor.Tensor{
			randF32(rng(9), 3, 5), randInt(rng(9), 100, 7), tensor.MustFromSlice([]bool{true, false, true}, 3),
			tensor.New(tensor.Float32, 0, 4), tensor.MustFromSlice([]float64{1.5, -2}, 2), tensor.MustFromSlice([]int32{7, -8, 9}, 3),
			randF32(rng(3), 1000, 1000),
		} {
			buf, err := b.Upload(x, d)
			if err != nil {
				t.Fatal(err)
			}
			got, err := b.Download(buf)
			if err != nil {
				t.Fatal(err)
			}
			compare(t, "round trip "+x.DType().String(), x, got, 0)
			y := x.Clone()
			for i := range y.Float32s() {
				y.Float32s()[i] += 1
			}
			if err := b.Overwrite(buf, y); err != nil {
				t.Fatal(err)
			}
			buf2, err := b.NewBuffer(x.DType(), x.Shape(), d)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Copy(buf2, buf); err != nil {
				t.Fatal(err)
			}
			if got, err = b.Download(buf2); err != nil {
				t.Fatal(err)
			}
			compare(t, "overwrite and copy "+x.DType().String(), y, got, 0)
			if err := b.Overwrite(buf, randF32(rng(1), 2, 2)); err == nil || !strings.Contains(err.Error(), "overwrite of a") {
				t.Fatalf("overwrite with another shape: error %v", err)
			}
			buf.(*cuda.Buffer).Free()
			buf2.Free()
			if _, err := b.Download(buf); err == nil {
				t.Fatal("download of a freed buffer: no error")
			}
		}
	}
	if _, err := backend.Open("cuda", map[string]string{"math": "fast"}); err == nil || !strings.Contains(err.Error(), `math="fast"`) {
		t.Fatalf("bad option: error %v", err)
	}
}

// TestDeviceAllocator: a repeated "step" of uploads and frees allocates
// device memory only the first time.
func TestDeviceAllocator(t *testing.T) {
	b := gpuOrSkip(t)
	d := b.Devices()[0].(*cuda.Device)
	step := func() {
		var bufs []*cuda.Buffer
		for _, n := range []int{1, 100, 4096, 1 << 20} {
			buf, err := b.NewBuffer(tensor.Float32, []int{n}, d)
			if err != nil {
				t.Fatal(err)
			}
			bufs = append(bufs, buf)
		}
		for _, buf := range bufs {
			buf.Free()
		}
	}
	step()
	before := d.Stats().RawAllocs
	for i := 0; i < 10; i++ {
		step()
	}
	if after := d.Stats().RawAllocs; after != before {
		t.Fatalf("%d device allocations after warm-up, want 0", after-before)
	}
	if err := d.Trim(); err != nil {
		t.Fatal(err)
	}
	if s := d.Stats(); s.Cached != 0 {
		t.Fatalf("after Trim %d bytes cached", s.Cached)
	}
}

// TestMathModes: the default mode matches the CPU's product to float32
// rounding of the sums; TF32 is looser (inputs rounded to 10 mantissa bits)
// but close.
func TestMathModes(t *testing.T) {
	gpuOrSkip(t)
	r := rng(11)
	c := &kcase{name: "Gemm", op: "Gemm", in: []*tensor.Tensor{randF32(r, 64, 256), randF32(r, 256, 32)}, tol: gemmTol}
	for _, mode := range []struct {
		math string
		tol  float64
	}{{"default", gemmTol}, {"pedantic", gemmTol}, {"tf32", 2e-2}} {
		b, err := cuda.Open(cuda.Options{Devices: 1, Math: mode.math})
		if err != nil {
			t.Fatal(err)
		}
		c.tol = mode.tol
		check(t, gpuDevNoFloor{gpuDev{b.Devices()[0].(*cuda.Device)}}, c)
		b.Close()
	}
}

type gpuDevNoFloor struct{ gpuDev }

func (gpuDevNoFloor) TolFloor() float64 { return 0 }
