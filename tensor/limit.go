package tensor

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/dustin/go-humanize"
)

// The memory limit.
//
// Every allocation whose size comes from input (a file's header, a model's
// dims, a flag) is checked before it is made: by its reader, against what
// the input can hold (a file's declared element count against its byte
// size), and here, against a process-wide memory limit, so that a small
// hostile file ends in an error instead of the runtime's out-of-memory
// crash. The limit bounds each allocation, not their sum.
//
// It defaults to half the machine's memory (MemTotal in /proc/meminfo, or
// the cgroup's memory.max when that is lower), or to 8 GiB where neither can
// be read. The environment variable GOTRAIN_MAX_MEMORY ("8GiB", "512MB",
// "2000000000") replaces the default, and SetMemoryLimit (the CLI's
// --max-memory flag) replaces both.

// MemoryLimitEnv is the environment variable that sets the memory limit.
const MemoryLimitEnv = "GOTRAIN_MAX_MEMORY"

// fallbackMemoryLimit is the limit when the machine's memory cannot be read.
const fallbackMemoryLimit = 8 << 30

// ErrMemoryLimit is matched (errors.Is) by every *LimitError.
var ErrMemoryLimit = errors.New("over the memory limit")

// LimitError reports an allocation refused because it would exceed the
// memory limit, or because its size overflows.
type LimitError struct {
	What  string // what was to be allocated: "tensor float32[100000 100000]", "entry x.npy", ...
	Bytes int64  // its size in bytes; -1 when the size overflows an int64
	Limit int64  // the limit in force
	// Setting names the invalid GOTRAIN_MAX_MEMORY value when that is why
	// nothing can be allocated.
	Setting string
}

func (e *LimitError) Error() string {
	if e.Setting != "" {
		return fmt.Sprintf("%s: cannot check the size against the memory limit: %s", e.What, e.Setting)
	}
	if e.Bytes < 0 {
		return fmt.Sprintf("%s: the size overflows (more than %s); the memory limit is %s", e.What, humanize.IBytes(math.MaxInt64), humanize.IBytes(uint64(e.Limit)))
	}
	return fmt.Sprintf("%s: needs %s (%d bytes), over the memory limit of %s (raise it with %s or --max-memory)",
		e.What, humanize.IBytes(uint64(e.Bytes)), e.Bytes, humanize.IBytes(uint64(e.Limit)), MemoryLimitEnv)
}

// Is makes errors.Is(err, ErrMemoryLimit) true.
func (e *LimitError) Is(target error) bool { return target == ErrMemoryLimit }

var limitState struct {
	sync.Mutex
	set      int64 // from SetMemoryLimit; 0: not set
	resolved bool  // def and envErr hold the default
	def      int64
	envErr   string
}

// MemoryLimit returns the byte limit every input-sized allocation is
// checked against.
func MemoryLimit() int64 {
	l, _ := memoryLimit()
	return l
}

// MemoryLimitErr reports a set but invalid GOTRAIN_MAX_MEMORY (unless
// SetMemoryLimit has replaced it), or nil.
func MemoryLimitErr() error {
	if _, e := memoryLimit(); e != "" {
		return errors.New(e)
	}
	return nil
}

func memoryLimit() (int64, string) {
	limitState.Lock()
	defer limitState.Unlock()
	if limitState.set > 0 {
		return limitState.set, ""
	}
	if !limitState.resolved {
		limitState.def, limitState.envErr = defaultMemoryLimit()
		limitState.resolved = true
	}
	return limitState.def, limitState.envErr
}

// SetMemoryLimit sets the limit to n bytes and returns the previous one;
// n <= 0 restores the default (GOTRAIN_MAX_MEMORY, else half the memory).
func SetMemoryLimit(n int64) int64 {
	prev := MemoryLimit()
	limitState.Lock()
	limitState.set = max(n, 0)
	limitState.resolved = false // read the environment again
	limitState.Unlock()
	return prev
}

// SetMemoryLimitString parses a size ("8GiB", "512MB", "1e9") and sets the
// limit to it. The error names the value and the forms accepted.
func SetMemoryLimitString(s string) error {
	n, err := ParseBytes(s)
	if err != nil {
		return err
	}
	SetMemoryLimit(n)
	return nil
}

// ParseBytes reads a positive byte size: a number with an optional unit,
// binary (KiB, MiB, GiB, TiB: powers of 1024) or decimal (kB, MB, GB, TB,
// or K, M, G, T: powers of 1000), case-insensitive, with or without a space.
func ParseBytes(s string) (int64, error) {
	bad := func(why string) error {
		return fmt.Errorf("memory size %q: %s; expected a positive size such as 8GiB, 512MiB or 2000000000", s, why)
	}
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, bad("empty")
	}
	var n uint64
	if f, err := strconv.ParseFloat(t, 64); err == nil { // a plain number of bytes, 1e9 included
		if !(f >= 1) || f >= math.MaxInt64 {
			return 0, bad("out of range")
		}
		n = uint64(f)
	} else {
		v, err := humanize.ParseBytes(t)
		if err != nil {
			return 0, bad("not a size")
		}
		n = v
	}
	if n == 0 || n > math.MaxInt64 {
		return 0, bad("out of range")
	}
	return int64(n), nil
}

// defaultMemoryLimit is GOTRAIN_MAX_MEMORY when set, else half the memory;
// a set but invalid variable is reported, so that checks fail loudly
// instead of using a limit the user did not choose.
func defaultMemoryLimit() (int64, string) {
	if v, ok := os.LookupEnv(MemoryLimitEnv); ok {
		n, err := ParseBytes(v)
		if err != nil {
			return fallbackMemoryLimit, fmt.Sprintf("%s: %v", MemoryLimitEnv, err)
		}
		return n, ""
	}
	total := machineMemory()
	if total <= 0 {
		return fallbackMemoryLimit, ""
	}
	return total / 2, ""
}

// machineMemory is MemTotal, or the cgroup (v2) memory.max when lower; 0
// when neither can be read.
func machineMemory() int64 {
	var total int64
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) >= 2 && fields[0] == "MemTotal:" {
				kb, err := strconv.ParseInt(fields[1], 10, 64)
				if err == nil && kb > 0 && kb < math.MaxInt64/1024 {
					total = kb * 1024
				}
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && v > 0 && (total == 0 || v < total) {
			total = v
		}
	}
	return total
}

// CheckAlloc reports an error unless count elements of size bytes each fit
// under the memory limit; what names the allocation in the error. It is
// the check every input-sized make goes through.
func CheckAlloc(what string, count, size int64) error {
	if count < 0 || size < 0 {
		return fmt.Errorf("%s: negative size (%d elements of %d bytes)", what, count, size)
	}
	limit, envErr := memoryLimit()
	if envErr != "" {
		return &LimitError{What: what, Limit: limit, Setting: envErr}
	}
	hi, lo := bits.Mul64(uint64(count), uint64(size))
	if hi != 0 || lo > math.MaxInt64 {
		return &LimitError{What: what, Bytes: -1, Limit: limit}
	}
	if int64(lo) > limit {
		return &LimitError{What: what, Bytes: int64(lo), Limit: limit}
	}
	return nil
}

// MulDims multiplies dims, reporting ok false when one is negative or the
// product overflows an int64.
func MulDims[T int | int64](dims []T) (n int64, ok bool) {
	n = 1
	for _, d := range dims {
		if d < 0 {
			return 0, false
		}
		hi, lo := bits.Mul64(uint64(n), uint64(d))
		if hi != 0 || lo > math.MaxInt64 {
			return 0, false
		}
		n = int64(lo)
	}
	return n, true
}

// ElemBytes is the memory one element of dt takes in a Tensor: its size,
// or a string header for strings.
func ElemBytes(dt DType) int64 {
	if dt == String {
		return 16
	}
	return int64(dt.Size())
}

// CheckShape checks that a tensor of dtype dt and this shape can be
// allocated: no negative dim, no overflow, within the memory limit. what
// names it in the error ("" for "tensor dtype[dims]").
func CheckShape(what string, dt DType, shape []int) error {
	if what == "" {
		what = fmt.Sprintf("tensor %v%v", dt, shape)
	}
	n, ok := MulDims(shape)
	if !ok {
		for _, d := range shape {
			if d < 0 {
				return fmt.Errorf("%s: negative dimension in shape %v", what, shape)
			}
		}
		limit, _ := memoryLimit()
		return &LimitError{What: what, Bytes: -1, Limit: limit}
	}
	return CheckAlloc(what, n, ElemBytes(dt))
}
