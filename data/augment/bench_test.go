package augment

import (
	"testing"
	"time"
)

// benchSpec is a typical recipe: small rotations, shifts and zoom, and
// horizontal flips.
const benchSpec = "rotation=15,shift=0.1,zoom=0.1,hflip"

func benchAugment(b *testing.B, s Shape, spec string) {
	c, err := ParseSpec(spec)
	if err != nil {
		b.Fatal(err)
	}
	a, err := New(c, s)
	if err != nil {
		b.Fatal(err)
	}
	const n = 64 // distinct source images, cycled
	x := make([]float32, n*s.Size())
	for i := range x {
		x[i] = float32(i % 255)
	}
	dst := make([]float32, s.Size())
	sz := s.Size()
	b.ReportAllocs()
	start := time.Now()
	i := 0
	for b.Loop() {
		k := i % n
		if err := a.Apply(dst, x[k*sz:(k+1)*sz], 0, i); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(i)/time.Since(start).Seconds(), "images/s")
}

// The benchmarks run on one goroutine, so images/s is per core.

func BenchmarkAugment28x28x1(b *testing.B) { benchAugment(b, Shape{C: 1, H: 28, W: 28}, benchSpec) }

func BenchmarkAugment32x32x3(b *testing.B) { benchAugment(b, Shape{C: 3, H: 32, W: 32}, benchSpec) }

func BenchmarkAugment32x32x3HWC(b *testing.B) {
	benchAugment(b, Shape{C: 3, H: 32, W: 32, ChannelsLast: true}, benchSpec)
}

// The CIFAR recipe: random crop with padding, flips and cutout.
func BenchmarkAugment32x32x3Crop(b *testing.B) {
	benchAugment(b, Shape{C: 3, H: 32, W: 32}, "crop=4,hflip,cutout=8")
}
