package data

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gotrain/gotrain/tensor"
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
	c := &cifarReader{labelBytes: labelBytes, labelAt: labelAt, classes: classes}
	for _, path := range files {
		r, size, closeFn, err := openMaybeGzip(path)
		if err != nil {
			return nil, err
		}
		err = c.read(r, size, path)
		closeFn()
		if err != nil {
			return nil, err
		}
	}
	d, err := NewDataset(c.x, c.y, len(c.y), 3, 32, 32, NCHW, classes, strings.Join(files, ","))
	if err != nil {
		return nil, err
	}
	d.Raw = RawBytes
	return d, nil
}

// cifarReader gathers the records of CIFAR files.
type cifarReader struct {
	labelBytes, labelAt, classes int
	x                            []float32
	y                            []int64
}

// read adds the records of one file (size bytes, or -1 when compressed).
func (c *cifarReader) read(r io.Reader, size int64, path string) error {
	rec := c.labelBytes + cifarPixels
	if size >= 0 && (size == 0 || size%int64(rec) != 0) {
		return cifarSizeError(path, size, rec, c.labelBytes)
	}
	buf, err := readCIFARFile(r, size, rec, len(c.y), path)
	if err != nil {
		return err
	}
	if len(buf) == 0 || len(buf)%rec != 0 {
		return cifarSizeError(path, int64(len(buf)), rec, c.labelBytes)
	}
	if c.x == nil {
		// One file is the common case; more files grow x as they come.
		c.x = make([]float32, 0, len(buf)/rec*cifarPixels)
	}
	for off := 0; off < len(buf); off += rec {
		lab := int64(buf[off+c.labelAt])
		if lab >= int64(c.classes) {
			return fmt.Errorf("data: %s: record %d has label %d: expected [0, %d) (is this a CIFAR-%d file?)",
				path, off/rec, lab, c.classes, map[int]int{10: 10, 20: 100, 100: 100}[c.classes])
		}
		c.y = append(c.y, lab)
		for _, v := range buf[off+c.labelBytes : off+rec] {
			c.x = append(c.x, float32(v))
		}
	}
	return nil
}

func cifarSizeError(path string, size int64, rec, labelBytes int) error {
	return fmt.Errorf("data: %s: %d bytes is not a whole number of %d-byte CIFAR records (%d label byte(s) + 3072 pixels): wrong format or truncated",
		path, size, rec, labelBytes)
}

// readCIFARFile reads one CIFAR file (size bytes, or -1 when compressed)
// after checking that its records, with the before samples already read,
// fit under the memory limit as float32 pixels; a compressed file is read
// through that bound, so that one that inflates past it fails cleanly.
func readCIFARFile(r io.Reader, size int64, rec, before int, path string) ([]byte, error) {
	// Per record: its bytes, its pixels as float32 and its label.
	perRec := int64(rec + 4*cifarPixels + 8)
	if size >= 0 {
		if err := tensor.CheckAlloc(fmt.Sprintf("data: %s: %d CIFAR records", path, size/int64(rec)), size/int64(rec)+int64(before), perRec); err != nil {
			return nil, err
		}
		buf := make([]byte, size)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, fmt.Errorf("data: %s: %v", path, err)
		}
		return buf, nil
	}
	limit := max(tensor.MemoryLimit()/perRec-int64(before), 0) * int64(rec)
	buf, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("data: %s: %v", path, err)
	}
	if int64(len(buf)) > limit {
		return nil, tensor.CheckAlloc(fmt.Sprintf("data: %s: more than %d CIFAR records (compressed)", path, limit/int64(rec)), limit/int64(rec)+1+int64(before), perRec)
	}
	return buf, nil
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
