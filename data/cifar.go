package data

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

const cifarPixels = 3 * 32 * 32

// LoadCIFAR10 reads CIFAR-10 binary batch files (data_batch_1.bin, ...,
// test_batch.bin): records of one label byte and 3072 pixel bytes (the
// red, green and blue 32x32 planes). The dataset is NCHW, 10 classes.
func LoadCIFAR10(files ...string) (*Dataset, error) { return loadCIFAR(files, 1, 0, 10) }

// LoadCIFAR100 reads CIFAR-100 binary files (train.bin, test.bin): records
// of a coarse label byte, a fine label byte and 3072 pixel bytes. fine
// selects the 100 fine labels; otherwise the 20 coarse ones.
func LoadCIFAR100(fine bool, files ...string) (*Dataset, error) {
	if fine {
		return loadCIFAR(files, 2, 1, 100)
	}
	return loadCIFAR(files, 2, 0, 20)
}

func loadCIFAR(files []string, labelBytes, labelAt, classes int) (*Dataset, error) {
	if len(files) == 0 {
		return nil, fmt.Errorf("data: CIFAR: no files given")
	}
	rec := labelBytes + cifarPixels
	var x []float32
	var y []int64
	for _, path := range files {
		r, _, closeFn, err := openMaybeGzip(path)
		if err != nil {
			return nil, err
		}
		buf, err := io.ReadAll(r)
		closeFn()
		if err != nil {
			return nil, fmt.Errorf("data: %s: %v", path, err)
		}
		if len(buf) == 0 || len(buf)%rec != 0 {
			return nil, fmt.Errorf("data: %s: %d bytes is not a whole number of %d-byte CIFAR records (%d label byte(s) + 3072 pixels): wrong format or truncated",
				path, len(buf), rec, labelBytes)
		}
		for off := 0; off < len(buf); off += rec {
			lab := int64(buf[off+labelAt])
			if lab >= int64(classes) {
				return nil, fmt.Errorf("data: %s: record %d has label %d: expected [0, %d) (is this a CIFAR-%d file?)",
					path, off/rec, lab, classes, map[int]int{10: 10, 20: 100, 100: 100}[classes])
			}
			y = append(y, lab)
			for _, v := range buf[off+labelBytes : off+rec] {
				x = append(x, float32(v))
			}
		}
	}
	d, err := NewDataset(x, y, len(y), 3, 32, 32, NCHW, classes, strings.Join(files, ","))
	if err != nil {
		return nil, err
	}
	d.Raw = RawBytes
	return d, nil
}

// LoadCIFARDir reads the train and test sets from a directory of CIFAR
// binary files: CIFAR-10's data_batch_1..5.bin and test_batch.bin (with
// class names from batches.meta.txt), or CIFAR-100's train.bin and
// test.bin (fine labels, names from fine_label_names.txt).
func LoadCIFARDir(dir string) (train, test *Dataset, err error) {
	exists := func(name string) bool { _, err := os.Stat(filepath.Join(dir, name)); return err == nil }
	names := func(file string, want int) []string {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			return nil
		}
		var out []string
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				out = append(out, l)
			}
		}
		if len(out) != want {
			return nil
		}
		return out
	}
	switch {
	case exists("data_batch_1.bin"):
		var files []string
		for i := 1; i <= 5; i++ {
			if f := filepath.Join(dir, fmt.Sprintf("data_batch_%d.bin", i)); exists(filepath.Base(f)) {
				files = append(files, f)
			}
		}
		if train, err = LoadCIFAR10(files...); err != nil {
			return nil, nil, err
		}
		if exists("test_batch.bin") {
			if test, err = LoadCIFAR10(filepath.Join(dir, "test_batch.bin")); err != nil {
				return nil, nil, err
			}
		}
		train.Names = names("batches.meta.txt", 10)
		if test != nil {
			test.Names = train.Names
		}
	case exists("train.bin"):
		if train, err = LoadCIFAR100(true, filepath.Join(dir, "train.bin")); err != nil {
			return nil, nil, err
		}
		if exists("test.bin") {
			if test, err = LoadCIFAR100(true, filepath.Join(dir, "test.bin")); err != nil {
				return nil, nil, err
			}
		}
		train.Names = names("fine_label_names.txt", 100)
		if test != nil {
			test.Names = train.Names
		}
	default:
		return nil, nil, fmt.Errorf("data: %s: no CIFAR binary files: expected data_batch_1.bin (CIFAR-10) or train.bin (CIFAR-100)", dir)
	}
	return train, test, nil
}
