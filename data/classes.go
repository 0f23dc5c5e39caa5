package data

import (
	"fmt"
	"strconv"
)

// LabelFile names where the labels came from, for messages.
func (d *Dataset) LabelFile() string {
	if d.LabelSource != "" {
		return d.LabelSource
	}
	return d.Source
}

// SetClasses sets the class count to n when the labels do not name it (a
// data set that uses only some of a model's classes: labels 0..4 of 10).
// Every label must be in [0, n); the first that is not is an error naming
// the dataset and the sample. Class names, when known, are kept and the
// new classes named by their number.
func (d *Dataset) SetClasses(n int) error {
	if n < 1 {
		return fmt.Errorf("data: %s: %d classes: expected at least 1", d.Source, n)
	}
	for i, y := range d.Labels() {
		if y < 0 || y >= int64(n) {
			return fmt.Errorf("data: %s: label %d of sample %d is out of range for %d classes [0, %d)", d.LabelFile(), y, i, n, n)
		}
	}
	if d.Names != nil {
		names := make([]string, n)
		copy(names, d.Names)
		for k := len(d.Names); k < n; k++ {
			names[k] = strconv.Itoa(k)
		}
		d.Names = names
	}
	d.Classes = n
	return nil
}

// FirstLabelFrom returns the index of the first sample whose label is n or
// more (or negative), and -1 when there is none.
func (d *Dataset) FirstLabelFrom(n int64) int {
	for i, y := range d.Labels() {
		if y < 0 || y >= n {
			return i
		}
	}
	return -1
}
