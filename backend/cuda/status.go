package cuda

// The status words of a device's plans live in one allocation (the arena),
// so that a synchronisation reads every pending plan's words with one
// device-to-host copy instead of one per plan. A plan whose words do not
// fit any more gets an allocation of its own.

// arenaWords is the arena's size in 32-bit words.
const arenaWords = 4096

type statusArena struct {
	base Ptr
	high int      // words handed out from the start of the arena
	free [][2]int // returned ranges: first word, count
	host []byte   // where a synchronisation reads words [0, high)
}

// takeStatus returns n zeroed words from the arena (inside Do), or false
// when they do not fit.
func (d *Device) takeStatus(n int) (Ptr, int, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	a := &d.arena
	if a.base == 0 {
		p, err := d.alloc.alloc(4 * arenaWords)
		if err != nil {
			return 0, 0, false, err
		}
		a.base, a.host = p, make([]byte, 4*arenaWords)
	}
	off := -1
	for i, r := range a.free {
		if r[1] >= n {
			off = r[0]
			if r[1] == n {
				a.free = append(a.free[:i], a.free[i+1:]...)
			} else {
				a.free[i] = [2]int{r[0] + n, r[1] - n}
			}
			break
		}
	}
	if off < 0 {
		if a.high+n > arenaWords {
			return 0, 0, false, nil
		}
		off, a.high = a.high, a.high+n
	}
	p := a.base + Ptr(4*off)
	if err := d.hw.Memset32(p, 0, n); err != nil {
		return 0, 0, false, err
	}
	return p, off, true, nil
}

// releaseStatus returns words to the arena (any goroutine).
func (d *Device) releaseStatus(off, n int) {
	d.mu.Lock()
	d.arena.free = append(d.arena.free, [2]int{off, n})
	d.mu.Unlock()
}

// readArena copies the arena's words in use to the host (inside Do, the
// stream waited for) and returns them.
func (d *Device) readArena() ([]byte, error) {
	d.mu.Lock()
	a := d.arena
	d.mu.Unlock()
	if a.base == 0 || a.high == 0 {
		return nil, nil
	}
	buf := a.host[:4*a.high]
	return buf, d.hw.Read(buf, a.base)
}
