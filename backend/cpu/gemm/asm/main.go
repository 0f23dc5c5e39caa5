// Command asm generates the amd64 assembly of package gemm with avo
// (github.com/mmcloughlin/avo): the float32 micro-kernels for AVX-512 and
// AVX2+FMA, the B packers, and CPUID. Run it through
// `go generate` in package gemm; the .s file and its Go stubs are
// committed, so building gotrain needs neither avo nor this module.
//
// The micro-kernel contract (both instruction sets, and the Go kernel of
// the generic path) is one sequential chain of fused multiply-adds per
// element of C, in k order, started from zero or from C itself:
//
//	acc = (flags&1 != 0) ? C[r][j] : 0
//	for p := 0; p < k; p++ { acc = fma(A(r, p), Bp[p][j], acc) }
//	acc += biasRow[r] (biasRow != nil); acc += biasCol[j] (biasCol != nil)
//	acc = max(acc, 0) with flags&2 (NaN stays NaN, -0 becomes +0)
//	C[r][j] = acc
//
// A(r, p) is read at a + r*rsA + p*ksA (elements), so A may be row-major,
// transposed or packed; Bp is packed: k rows of NR floats. Splitting k into
// blocks (a later block starting from the C an earlier one stored) gives
// the same bits, and so do all instruction sets.
package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// isa describes one instruction set's micro-kernel: mr rows of C by nv
// vectors of vw floats.
type isa struct {
	name   string
	vw     int // floats per vector
	mr, nv int
	unroll int
	vec    func() reg.VecVirtual
}

var (
	avx512 = isa{name: "AVX512", vw: 16, mr: 8, nv: 3, unroll: 2, vec: ZMM}
	avx2   = isa{name: "AVX2", vw: 8, mr: 4, nv: 3, unroll: 2, vec: YMM}
)

// zero clears v: VPXORD on ZMM registers (VXORPS there needs AVX512DQ),
// VXORPS on YMM.
func (is isa) zero(v reg.VecVirtual) {
	if is.vw == 16 {
		VPXORD(v, v, v)
		return
	}
	VXORPS(v, v, v)
}

func main() {
	ConstraintExpr("amd64")
	kernel(avx512)
	kernel(avx2)
	// The direct convolution's kernels: full tiles of nv vectors, and
	// narrower ones for the last columns.
	for _, is := range []isa{avx512, avx2} {
		for nv := is.nv; nv >= 1; nv-- {
			n := is
			n.nv = nv
			convKernel(n, is.nv)
		}
	}
	splitCols()
	copyPlanes()
	packRuns(avx512)
	packRuns(avx2)
	packBT(avx512)
	packBT(avx2)
	packBN(avx512)
	packBN(avx2)
	cpuid()
	Generate()
}

func kernel(is isa) {
	nr := is.vw * is.nv
	TEXT("kernel"+is.name, NOSPLIT, "func(k int, a *float32, rsA, ksA int, b *float32, c *float32, ldc int, flags int, biasRow, biasCol *float32)")
	Pragma("noescape")
	Doc(fmt.Sprintf("kernel%s computes a %dx%d tile of C (see the package doc's contract).", is.name, is.mr, nr))

	k := Load(Param("k"), GP64())
	a0 := Load(Param("a"), GP64())
	rs := Load(Param("rsA"), GP64())
	SHLQ(U8(2), rs)
	ks := Load(Param("ksA"), GP64())
	SHLQ(U8(2), ks)
	b := Load(Param("b"), GP64())

	// The rows' addresses: base registers that move by ks each step.
	bases, rows := rowAddrs(is, a0, rs)
	acc := newAcc(is)

	startAcc(is, acc, "zero"+is.name, "body"+is.name)

	step := func(disp int) {
		bv := make([]reg.VecVirtual, is.nv)
		for q := range bv {
			bv[q] = is.vec()
			VMOVUPS(Mem{Base: b, Disp: disp + 4*is.vw*q}, bv[q])
		}
		for r := 0; r < is.mr; r++ {
			t := is.vec()
			VBROADCASTSS(rows[r], t)
			for q := 0; q < is.nv; q++ {
				VFMADD231PS(bv[q], t, acc[r][q])
			}
		}
		for _, base := range bases {
			ADDQ(ks, base)
		}
	}

	Comment(fmt.Sprintf("The k loop, %d steps at a time, then one at a time.", is.unroll))
	CMPQ(k, U32(is.unroll))
	JL(LabelRef("tail" + is.name))
	Label("loop" + is.name)
	for u := 0; u < is.unroll; u++ {
		step(4 * nr * u)
	}
	ADDQ(U32(4*nr*is.unroll), b)
	SUBQ(U32(is.unroll), k)
	CMPQ(k, U32(is.unroll))
	JGE(LabelRef("loop" + is.name))
	Label("tail" + is.name)
	TESTQ(k, k)
	JZ(LabelRef("epilogue" + is.name))
	Label("tailloop" + is.name)
	step(0)
	ADDQ(U32(4*nr), b)
	DECQ(k)
	JNZ(LabelRef("tailloop" + is.name))

	Label("epilogue" + is.name)
	Comment("Bias per row, then per column.")
	biasRowAcc(is, acc, "nobiasrow"+is.name)
	bc := Load(Param("biasCol"), GP64())
	TESTQ(bc, bc)
	JZ(LabelRef("nobiascol" + is.name))
	for q := 0; q < is.nv; q++ {
		t := is.vec()
		VMOVUPS(Mem{Base: bc, Disp: 4 * is.vw * q}, t)
		for r := 0; r < is.mr; r++ {
			VADDPS(t, acc[r][q], acc[r][q])
		}
	}
	Label("nobiascol" + is.name)
	reluAcc(is, acc, "store"+is.name)
	c := Load(Param("c"), GP64())
	ldc := Load(Param("ldc"), GP64())
	SHLQ(U8(2), ldc)
	storeAcc(is, acc, c, ldc)
	VZEROUPPER()
	RET()
}

// convKernel generates the direct convolution's micro-kernel: the
// contract of kernel, with A the weights (row r at a + r*rsA, its k steps
// contiguous) and B read straight from the image, never packed. Step
// k = ci*len(taps) + t reads B(k, j) at b + ci*ldb + taps[t] + j
// (elements): plane ci, moved by the tap's offset. Over a stride-1
// image laid out with rows of the padded input's width, the columns j
// are output positions and taps[t] is where tap t's window starts, so
// the chain of each output is the one im2col's product would run, in
// the same order (channel, then tap).
//
// full is the path's widest nv; narrower kernels get the width in their
// names (convAVX512x16).
func convKernel(is isa, full int) {
	nr := is.vw * is.nv
	suffix := is.name
	if is.nv != full {
		suffix = fmt.Sprintf("%sx%d", is.name, nr)
	}
	TEXT("conv"+suffix, NOSPLIT, "func(cin int, taps *int64, ntap int, a *float32, rsA int, b *float32, ldb int, c *float32, ldc int, flags int, biasRow *float32)")
	Pragma("noescape")
	Doc(fmt.Sprintf("conv%s computes a %dx%d tile of a direct convolution (see asm/main.go).", suffix, is.mr, nr))
	name := func(l string) string { return "conv" + l + suffix }

	cin := Load(Param("cin"), GP64())
	a0 := Load(Param("a"), GP64())
	rs := Load(Param("rsA"), GP64())
	SHLQ(U8(2), rs)
	b := Load(Param("b"), GP64())
	ldb := Load(Param("ldb"), GP64())
	SHLQ(U8(2), ldb)

	bases, rows := rowAddrs(is, a0, rs)
	acc := newAcc(is)
	startAcc(is, acc, name("zero"), name("body"))
	TESTQ(cin, cin)
	JZ(LabelRef(name("epilogue")))
	Comment("For each input channel, each tap: B from the image at the tap's offset.")
	Label(name("chan"))
	tp := Load(Param("taps"), GP64())
	nt := Load(Param("ntap"), GP64())
	Label(name("tap"))
	off := GP64()
	MOVQ(Mem{Base: tp}, off)
	bv := make([]reg.VecVirtual, is.nv)
	for q := range bv {
		bv[q] = is.vec()
		VMOVUPS(Mem{Base: b, Index: off, Scale: 4, Disp: 4 * is.vw * q}, bv[q])
	}
	for r := 0; r < is.mr; r++ {
		t := is.vec()
		VBROADCASTSS(rows[r], t)
		for q := 0; q < is.nv; q++ {
			VFMADD231PS(bv[q], t, acc[r][q])
		}
	}
	for _, base := range bases {
		ADDQ(U8(4), base)
	}
	ADDQ(U8(8), tp)
	DECQ(nt)
	JNZ(LabelRef(name("tap")))
	ADDQ(ldb, b)
	DECQ(cin)
	JNZ(LabelRef(name("chan")))

	Label(name("epilogue"))
	Comment("Bias per row.")
	biasRowAcc(is, acc, name("nobias"))
	reluAcc(is, acc, name("store"))
	c := Load(Param("c"), GP64())
	ldc := Load(Param("ldc"), GP64())
	SHLQ(U8(2), ldc)
	Comment("With flags&4, C = max(C, v) as Go's max computes it.")
	flags3 := Load(Param("flags"), GP64())
	TESTQ(U32(4), flags3)
	JZ(LabelRef(name("plain")))
	{
		cm := GP64()
		MOVQ(c, cm)
		zero := is.vec()
		is.zero(zero)
		for r := 0; r < is.mr; r++ {
			for q := 0; q < is.nv; q++ {
				old := is.vec()
				VMOVUPS(Mem{Base: cm, Disp: 4 * is.vw * q}, old)
				goMax(is, old, acc[r][q], zero)
			}
			if r+1 < is.mr {
				ADDQ(ldc, cm)
			}
		}
	}
	Label(name("plain"))
	storeAcc(is, acc, c, ldc)
	VZEROUPPER()
	RET()
}

// rowAddrs returns the registers that hold the rows of A (to move by
// the k step) and the addresses of the mr rows: row r at a0 + r*rs bytes.
func rowAddrs(is isa, a0, rs reg.Register) ([]reg.Register, []Mem) {
	rs3 := GP64()
	LEAQ(Mem{Base: rs, Index: rs, Scale: 2}, rs3)
	switch is.mr {
	case 4:
		return []reg.Register{a0}, []Mem{{Base: a0}, {Base: a0, Index: rs, Scale: 1}, {Base: a0, Index: rs, Scale: 2}, {Base: a0, Index: rs3, Scale: 1}}
	case 8:
		a3 := GP64()
		LEAQ(Mem{Base: a0, Index: rs3, Scale: 1}, a3)
		return []reg.Register{a0, a3}, []Mem{
			{Base: a0}, {Base: a0, Index: rs, Scale: 1}, {Base: a0, Index: rs, Scale: 2}, {Base: a3},
			{Base: a0, Index: rs, Scale: 4}, {Base: a3, Index: rs, Scale: 2}, {Base: a3, Index: rs3, Scale: 1}, {Base: a3, Index: rs, Scale: 4},
		}
	}
	panic("unsupported mr")
}

// newAcc allocates the tile's accumulators, mr rows of nv vectors.
func newAcc(is isa) [][]reg.VecVirtual {
	acc := make([][]reg.VecVirtual, is.mr)
	for r := range acc {
		acc[r] = make([]reg.VecVirtual, is.nv)
		for q := range acc[r] {
			acc[r][q] = is.vec()
		}
	}
	return acc
}

// startAcc loads the tile of C into acc (flags&1) or clears acc, then
// goes on at label body.
func startAcc(is isa, acc [][]reg.VecVirtual, zero, body string) {
	Comment("Start from C (flags&1) or from zero.")
	flags := Load(Param("flags"), GP64())
	TESTQ(U32(1), flags)
	JZ(LabelRef(zero))
	c := Load(Param("c"), GP64())
	ldc := Load(Param("ldc"), GP64())
	SHLQ(U8(2), ldc)
	for r := 0; r < is.mr; r++ {
		for q := 0; q < is.nv; q++ {
			VMOVUPS(Mem{Base: c, Disp: 4 * is.vw * q}, acc[r][q])
		}
		if r+1 < is.mr {
			ADDQ(ldc, c)
		}
	}
	JMP(LabelRef(body))
	Label(zero)
	for r := range acc {
		for q := range acc[r] {
			is.zero(acc[r][q])
		}
	}
	Label(body)
}

// biasRowAcc adds biasRow[r] to row r of the tile (biasRow != nil), then
// goes on at label done.
func biasRowAcc(is isa, acc [][]reg.VecVirtual, done string) {
	br := Load(Param("biasRow"), GP64())
	TESTQ(br, br)
	JZ(LabelRef(done))
	for r := 0; r < is.mr; r++ {
		t := is.vec()
		VBROADCASTSS(Mem{Base: br, Disp: 4 * r}, t)
		for q := 0; q < is.nv; q++ {
			VADDPS(t, acc[r][q], acc[r][q])
		}
	}
	Label(done)
}

// reluAcc applies ReLU to the tile (flags&2), then goes on at label done.
func reluAcc(is isa, acc [][]reg.VecVirtual, done string) {
	Comment("ReLU as max(0, v) + 0: max returns v when v is NaN or -0, and -0 + 0 is +0.")
	flags := Load(Param("flags"), GP64())
	TESTQ(U32(2), flags)
	JZ(LabelRef(done))
	zero := is.vec()
	is.zero(zero)
	for r := range acc {
		for q := range acc[r] {
			VMAXPS(acc[r][q], zero, acc[r][q])
			VADDPS(zero, acc[r][q], acc[r][q])
		}
	}
	Label(done)
}

// storeAcc stores the tile to C at c, rows ldc bytes apart (c moves).
func storeAcc(is isa, acc [][]reg.VecVirtual, c, ldc reg.Register) {
	for r := 0; r < is.mr; r++ {
		for q := 0; q < is.nv; q++ {
			VMOVUPS(acc[r][q], Mem{Base: c, Disp: 4 * is.vw * q})
		}
		if r+1 < is.mr {
			ADDQ(ldc, c)
		}
	}
}

// goMax sets y to Go's max(x, y): y when y is NaN or y > x, else x; and
// when both are zeros, the AND of their bits (+0 unless both are -0).
// zero holds 0.0; x is clobbered.
func goMax(is isa, x, y, zero reg.VecVirtual) {
	if is.vw == 16 {
		// Merge-masked moves read their destination: r starts as x.
		r := is.vec()
		VMOVAPS(x, r)
		VCMPPS(U8(3), y, y, reg.K1)    // y unordered (NaN)
		VCMPPS(U8(0x1e), x, y, reg.K2) // y > x
		KORW(reg.K1, reg.K2, reg.K1)
		VMOVAPS(y, reg.K1, r) // K1 ? y : x
		both := is.vec()
		VPORD(x, y, both)
		VCMPPS(U8(0), zero, both, reg.K2) // x|y == 0: both are zeros
		VPANDD(x, y, x)
		VMOVAPS(x, reg.K2, r)
		VMOVAPS(r, y)
		return
	}
	m := is.vec()
	VCMPPS(U8(3), y, y, m)
	b := is.vec()
	VCMPPS(U8(0x1e), x, y, b)
	VORPS(m, b, m)
	VORPS(x, y, b)
	VCMPPS(U8(0), zero, b, b) // both zeros
	VBLENDVPS(m, y, x, m)     // m ? y : x
	VANDPS(x, y, x)
	VBLENDVPS(b, x, m, y) // b ? x&y : m
}

// splitCols generates splitColsAVX512, which splits rows of an image into
// their even and odd columns, for the direct convolution's pooled form:
// rows holds three int32 per row, the offsets (elements) of the row in src
// and of where its even and its odd columns go in dst; each row has w
// elements. Sixteen outputs of each kind at a time, through lane masks
// (nothing is read or written past a row).
func splitCols() {
	TEXT("splitColsAVX512", NOSPLIT, "func(dst, src *float32, rows *int32, n, w int)")
	Pragma("noescape")
	Doc("splitColsAVX512 writes the even and odd columns of n rows of w elements to where rows says (see asm/main.go).")
	dst := Load(Param("dst"), GP64())
	src := Load(Param("src"), GP64())
	rows := Load(Param("rows"), GP64())
	n := Load(Param("n"), GP64())
	w := Load(Param("w"), GP64())
	idx := GLOBL("splitColsIndex", RODATA|NOPTR)
	for i := 0; i < 32; i++ {
		// Lanes 0-15: the even columns of 32; lanes 16-31: the odd.
		DATA(4*i, U32(uint32(2*(i%16)+i/16)))
	}
	ev, od := ZMM(), ZMM()
	VMOVDQU32(idx, ev)
	VMOVDQU32(idx.Offset(64), od)
	ones := GP32()
	MOVL(U32(0xffffffff), ones)
	TESTQ(n, n)
	JZ(LabelRef("splitdone"))
	Label("splitrow")
	s, de, do := GP64(), GP64(), GP64()
	MOVLQSX(Mem{Base: rows}, s)
	LEAQ(Mem{Base: src, Index: s, Scale: 4}, s)
	MOVLQSX(Mem{Base: rows, Disp: 4}, de)
	LEAQ(Mem{Base: dst, Index: de, Scale: 4}, de)
	MOVLQSX(Mem{Base: rows, Disp: 8}, do)
	LEAQ(Mem{Base: dst, Index: do, Scale: 4}, do)
	left := GP64()
	MOVQ(w, left)
	// The rows are read in order, the image usually from memory (the
	// layer before wrote the whole batch): ask for the lines ahead.
	PREFETCHT0(Mem{Base: s, Disp: 1024})
	PREFETCHT0(Mem{Base: s, Disp: 1088})
	Label("splitblock")
	// Masks: lo = min(left, 16) lanes, hi = min(max(left-16, 0), 16),
	// even outputs ceil(min(left, 32)/2), odd floor(min(left, 32)/2).
	t := GP64()
	MOVQ(left, t)
	CMPQ(t, U32(32))
	JLE(LabelRef("splitclamp"))
	MOVQ(U32(32), t)
	Label("splitclamp")
	k, m := GP64(), GP32()
	MOVQ(t, k)
	CMPQ(k, U32(16))
	JLE(LabelRef("splitlo"))
	MOVQ(U32(16), k)
	Label("splitlo")
	BZHIL(k.As32(), ones, m)
	KMOVW(m, reg.K1)
	MOVQ(t, k)
	SUBQ(U32(16), k)
	JGE(LabelRef("splithi"))
	XORQ(k, k)
	Label("splithi")
	BZHIL(k.As32(), ones, m)
	KMOVW(m, reg.K2)
	MOVQ(t, k)
	INCQ(k)
	SHRQ(U8(1), k)
	BZHIL(k.As32(), ones, m)
	KMOVW(m, reg.K3)
	MOVQ(t, k)
	SHRQ(U8(1), k)
	BZHIL(k.As32(), ones, m)
	KMOVW(m, reg.K4)
	a, b := ZMM(), ZMM()
	VMOVUPS_Z(Mem{Base: s}, reg.K1, a)
	VMOVUPS_Z(Mem{Base: s, Disp: 64}, reg.K2, b)
	e, o := ZMM(), ZMM()
	VMOVAPS(ev, e)
	VPERMI2PS(b, a, e)
	VMOVAPS(od, o)
	VPERMI2PS(b, a, o)
	VMOVUPS(e, reg.K3, Mem{Base: de})
	VMOVUPS(o, reg.K4, Mem{Base: do})
	ADDQ(U32(128), s)
	ADDQ(U32(64), de)
	ADDQ(U32(64), do)
	SUBQ(U32(32), left)
	JG(LabelRef("splitblock"))
	ADDQ(U8(12), rows)
	DECQ(n)
	JNZ(LabelRef("splitrow"))
	Label("splitdone")
	VZEROUPPER()
	RET()
}

// copyPlanes generates copyPlanesAVX512, a strided copy of planes of rows
// (the direct convolution's output, computed on the input's wider grid,
// into Y): row r of plane p, w elements, goes from src + p*sp + r*sr to
// dst + p*dp + r*dr (elements). Sixteen elements at a time, the last
// ones of a row through a lane mask.
func copyPlanes() {
	TEXT("copyPlanesAVX512", NOSPLIT, "func(dst, src *float32, planes, rows, w, sp, sr, dp, dr int)")
	Pragma("noescape")
	Doc("copyPlanesAVX512 copies planes of rows of w elements between strides (see asm/main.go).")
	dst := Load(Param("dst"), GP64())
	src := Load(Param("src"), GP64())
	planes := Load(Param("planes"), GP64())
	w := Load(Param("w"), GP64())
	ones := GP32()
	MOVL(U32(0xffffffff), ones)
	// The last piece's mask: w%16 lanes, or 16.
	tail := GP64()
	MOVQ(w, tail)
	DECQ(tail)
	ANDQ(U32(15), tail)
	INCQ(tail)
	m := GP32()
	BZHIL(tail.As32(), ones, m)
	KMOVW(m, reg.K1)
	TESTQ(planes, planes)
	JZ(LabelRef("cpdone"))
	Label("cpplane")
	s, d := GP64(), GP64()
	MOVQ(src, s)
	MOVQ(dst, d)
	rows := Load(Param("rows"), GP64())
	TESTQ(rows, rows)
	JZ(LabelRef("cpnextplane"))
	Label("cprow")
	left, o := GP64(), GP64()
	MOVQ(w, left)
	XORQ(o, o)
	Label("cppiece")
	v := ZMM()
	CMPQ(left, U32(16))
	JLE(LabelRef("cplast"))
	VMOVUPS(Mem{Base: s, Index: o, Scale: 4}, v)
	VMOVUPS(v, Mem{Base: d, Index: o, Scale: 4})
	ADDQ(U32(16), o)
	SUBQ(U32(16), left)
	JMP(LabelRef("cppiece"))
	Label("cplast")
	VMOVUPS_Z(Mem{Base: s, Index: o, Scale: 4}, reg.K1, v)
	VMOVUPS(v, reg.K1, Mem{Base: d, Index: o, Scale: 4})
	sr, dr := Load(Param("sr"), GP64()), Load(Param("dr"), GP64())
	LEAQ(Mem{Base: s, Index: sr, Scale: 4}, s)
	LEAQ(Mem{Base: d, Index: dr, Scale: 4}, d)
	DECQ(rows)
	JNZ(LabelRef("cprow"))
	Label("cpnextplane")
	sp, dp := Load(Param("sp"), GP64()), Load(Param("dp"), GP64())
	LEAQ(Mem{Base: src, Index: sp, Scale: 4}, src)
	LEAQ(Mem{Base: dst, Index: dp, Scale: 4}, dst)
	DECQ(planes)
	JNZ(LabelRef("cpplane"))
	Label("cpdone")
	VZEROUPPER()
	RET()
}

// packRuns writes kc rows of a panel of B whose elements are runs of an
// image (a convolution's input read through its window), from tables the
// caller builds and checks: row p reads at src + rows[2p] (elements) the
// pieces first[rows[2p+1]] .. first[rows[2p+1]+1]-1 of pieces, each three
// int32: the column in the row, the offset from the row's source, and the
// lanes (AVX-512: a bit mask; AVX2: the byte offset of its lane mask in
// the sliding table, 4*(8-lanes)). Columns no piece covers are left as
// they are (the caller clears the panel first). A piece is loaded through
// its mask, lanes beyond it zero, and stored whole: the zeros land on
// padding, on columns a later piece of the row writes, or on the start of
// the next row, written after it (masked stores are slow on some CPUs),
// so up to one vector past the last row is written too: the caller leaves
// room there.
func packRuns(is isa) {
	nr := is.vw * is.nv
	TEXT("packRuns"+is.name, NOSPLIT, "func(dst, src *float32, rows, first, pieces *int32, kc int)")
	Pragma("noescape")
	Doc(fmt.Sprintf("packRuns%s copies image runs into kc rows of a %d-wide panel (see asm/main.go).", is.name, nr))
	dst := Load(Param("dst"), GP64())
	src := Load(Param("src"), GP64())
	rows := Load(Param("rows"), GP64())
	first := Load(Param("first"), GP64())
	pieces := Load(Param("pieces"), GP64())
	kc := Load(Param("kc"), GP64())
	var tab reg.GPVirtual
	if is.vw == 8 {
		tab = GP64()
		LEAQ(laneMask(), tab)
	}
	TESTQ(kc, kc)
	JZ(LabelRef("rdone" + is.name))
	Label("row" + is.name)
	s := GP64()
	MOVLQSX(Mem{Base: rows}, s)
	LEAQ(Mem{Base: src, Index: s, Scale: 4}, s)
	kid := GP64()
	MOVLQSX(Mem{Base: rows, Disp: 4}, kid)
	p, pe := GP64(), GP64()
	MOVLQSX(Mem{Base: first, Index: kid, Scale: 4}, p)
	MOVLQSX(Mem{Base: first, Index: kid, Scale: 4, Disp: 4}, pe)
	// p and pe become pointers into pieces (12 bytes each).
	LEAQ(Mem{Base: p, Index: p, Scale: 2}, p)
	LEAQ(Mem{Base: pieces, Index: p, Scale: 4}, p)
	LEAQ(Mem{Base: pe, Index: pe, Scale: 2}, pe)
	LEAQ(Mem{Base: pieces, Index: pe, Scale: 4}, pe)
	CMPQ(p, pe)
	JGE(LabelRef("next" + is.name))
	Label("piece" + is.name)
	do, so, m := GP64(), GP64(), GP64()
	MOVLQSX(Mem{Base: p}, do)
	MOVLQSX(Mem{Base: p, Disp: 4}, so)
	MOVLQSX(Mem{Base: p, Disp: 8}, m)
	v := is.vec()
	if is.vw == 16 {
		KMOVW(m.As32(), reg.K1)
		VMOVUPS_Z(Mem{Base: s, Index: so, Scale: 4}, reg.K1, v)
		VMOVUPS(v, Mem{Base: dst, Index: do, Scale: 4})
	} else {
		mask := is.vec()
		VMOVDQU(Mem{Base: tab, Index: m, Scale: 1}, mask)
		VMASKMOVPS(Mem{Base: s, Index: so, Scale: 4}, mask, v)
		VMOVUPS(v, Mem{Base: dst, Index: do, Scale: 4})
	}
	ADDQ(U8(12), p)
	CMPQ(p, pe)
	JL(LabelRef("piece" + is.name))
	Label("next" + is.name)
	ADDQ(U8(8), rows)
	ADDQ(U32(4*nr), dst)
	DECQ(kc)
	JNZ(LabelRef("row" + is.name))
	Label("rdone" + is.name)
	VZEROUPPER()
	RET()
}

// packBT packs kc rows of a panel of a transposed B (stored n x k) by
// vw x vw transposes in registers (gathers are slower): each block of vw
// columns of the panel (rows of the stored matrix, ld apart) is read as
// vw vectors of vw consecutive k and turned into vw rows of the panel with
// unpacks and lane shuffles. Columns n..NR-1 of the panel are zero (their
// rows are not read), and a last block of kc%vw rows is read through a
// lane mask.
func packBT(is isa) {
	nr, vw := is.vw*is.nv, is.vw
	TEXT("packBT"+is.name, NOSPLIT, "func(dst, src *float32, ld, kc, n int)")
	Pragma("noescape")
	Doc(fmt.Sprintf("packBT%s packs kc rows of a %d-column panel of a transposed B, columns n..%d zero: dst[p*%d+j] = src[j*ld+p].", is.name, nr, nr-1, nr))
	dst := Load(Param("dst"), GP64())
	src := Load(Param("src"), GP64())
	ld4 := Load(Param("ld"), GP64())
	SHLQ(U8(2), ld4)
	kc := Load(Param("kc"), GP64())
	n := Load(Param("n"), GP64())
	ld12 := GP64()
	LEAQ(Mem{Base: ld4, Index: ld4, Scale: 2}, ld12)
	blk := GP64() // vw rows of the stored matrix, in bytes
	MOVQ(ld4, blk)
	SHLQ(U8(log2(vw)), blk)
	blocks := GP64()
	MOVQ(kc, blocks)
	SHRQ(U8(log2(vw)), blocks)
	ANDQ(U32(vw-1), kc) // kc is now the rows of the last, partial block
	name := func(l string) string { return l + is.name }

	// addr is row r of a block whose row 4*(r/4) is at g.
	addr := func(g reg.Register, r int) Mem {
		switch r % 4 {
		case 1:
			return Mem{Base: g, Index: ld4, Scale: 1}
		case 2:
			return Mem{Base: g, Index: ld4, Scale: 2}
		case 3:
			return Mem{Base: g, Index: ld12, Scale: 1}
		}
		return Mem{Base: g}
	}
	labels := 0
	// block packs vw rows of the panel. With lanes set (a register: the
	// AVX-512 mask bits, or the AVX2 mask's byte offset in tab, of the k
	// lanes to read), rows of the stored matrix at or beyond n read
	// nothing (an empty mask: no fault, zeros), and only the first rows
	// (a register) rows of the panel are stored.
	block := func(lanes, tab, rows reg.Register) {
		for q := 0; q < is.nv; q++ {
			g := GP64()
			MOVQ(src, g)
			for i := 0; i < q; i++ {
				ADDQ(blk, g)
			}
			loadRow := func(r int) reg.VecVirtual {
				if r > 0 && r%4 == 0 {
					LEAQ(Mem{Base: g, Index: ld4, Scale: 4}, g)
				}
				v := is.vec()
				switch {
				case lanes == nil:
					VMOVUPS(addr(g, r), v)
				case vw == 16:
					// A row at or beyond n reads nothing, from the
					// panel's first row: a masked load of an address
					// outside the matrix can take a slow assist (or a
					// TLB miss) even with every lane masked.
					t, a := GP32(), GP64()
					XORL(t, t)
					LEAQ(addr(g, r), a)
					CMPQ(n, U32(q*vw+r))
					CMOVLGT(lanes.(reg.GPVirtual).As32(), t)
					CMOVQLE(src, a)
					KMOVW(t, reg.K4)
					VMOVUPS_Z(Mem{Base: a}, reg.K4, v)
				default:
					t, a := GP64(), GP64()
					MOVQ(U32(32), t) // eight zero lanes
					LEAQ(addr(g, r), a)
					CMPQ(n, U32(q*vw+r))
					CMOVQGT(lanes, t)
					CMOVQLE(src, a)
					m := is.vec()
					VMOVDQU(Mem{Base: tab, Index: t, Scale: 1}, m)
					VMASKMOVPS(Mem{Base: a}, m, v)
				}
				return v
			}
			transpose(is, loadRow, func(i int, w reg.VecVirtual) {
				if rows == nil {
					VMOVUPS(w, Mem{Base: dst, Disp: 4 * (i*nr + q*vw)})
					return
				}
				labels++
				skip := fmt.Sprintf("%s_s%d", name("btt"), labels)
				CMPQ(rows, U32(i))
				JLE(LabelRef(skip))
				VMOVUPS(w, Mem{Base: dst, Disp: 4 * (i*nr + q*vw)})
				Label(skip)
			})
		}
	}

	var tab reg.GPVirtual
	lanes := GP64()
	if vw == 8 {
		tab = GP64()
		LEAQ(laneMask(), tab)
	}
	CMPQ(n, U32(nr))
	JL(LabelRef(name("bttpart")))
	Comment("A full panel.")
	TESTQ(blocks, blocks)
	JZ(LabelRef(name("btttail")))
	Label(name("bttfull"))
	block(nil, nil, nil)
	ADDQ(U32(4*vw), src)
	ADDQ(U32(4*vw*nr), dst)
	DECQ(blocks)
	JNZ(LabelRef(name("bttfull")))
	JMP(LabelRef(name("btttail")))

	Comment("An edge panel: columns n and beyond are zero.")
	Label(name("bttpart"))
	if vw == 16 {
		MOVQ(U32(0xffff), lanes)
	} else {
		XORQ(lanes, lanes)
	}
	all := GP64()
	MOVQ(U32(vw), all)
	TESTQ(blocks, blocks)
	JZ(LabelRef(name("btttail")))
	Label(name("bttpartloop"))
	block(lanes, tab, all)
	ADDQ(U32(4*vw), src)
	ADDQ(U32(4*vw*nr), dst)
	DECQ(blocks)
	JNZ(LabelRef(name("bttpartloop")))

	Comment("The last kc%vw rows, read through a lane mask.")
	Label(name("btttail"))
	TESTQ(kc, kc)
	JZ(LabelRef(name("bttdone")))
	if vw == 16 {
		bits := GP64()
		LEAQ(laneBits(), bits)
		MOVWQZX(Mem{Base: bits, Index: kc, Scale: 2}, lanes)
	} else {
		MOVQ(U32(8), lanes)
		SUBQ(kc, lanes)
		SHLQ(U8(2), lanes)
	}
	block(lanes, tab, kc)
	Label(name("bttdone"))
	VZEROUPPER()
	RET()
}

// packBN packs kc rows of a panel of a row-major B: dst[p*NR+j] =
// src[p*ld+j] for j < n, zero for j >= n (columns not read).
func packBN(is isa) {
	nr, vw := is.vw*is.nv, is.vw
	TEXT("packBN"+is.name, NOSPLIT, "func(dst, src *float32, ld, kc, n int)")
	Pragma("noescape")
	Doc(fmt.Sprintf("packBN%s packs kc rows of a %d-column panel of a row-major B, columns n..%d zero: dst[p*%d+j] = src[p*ld+j].", is.name, nr, nr-1, nr))
	dst := Load(Param("dst"), GP64())
	src := Load(Param("src"), GP64())
	ld4 := Load(Param("ld"), GP64())
	SHLQ(U8(2), ld4)
	kc := Load(Param("kc"), GP64())
	n := Load(Param("n"), GP64())
	name := func(l string) string { return l + is.name }
	TESTQ(kc, kc)
	JZ(LabelRef(name("bndone")))
	CMPQ(n, U32(nr))
	JL(LabelRef(name("bnpart")))
	Label(name("bnfull"))
	for q := 0; q < is.nv; q++ {
		v := is.vec()
		VMOVUPS(Mem{Base: src, Disp: 4 * vw * q}, v)
		VMOVUPS(v, Mem{Base: dst, Disp: 4 * vw * q})
	}
	ADDQ(ld4, src)
	ADDQ(U32(4*nr), dst)
	DECQ(kc)
	JNZ(LabelRef(name("bnfull")))
	JMP(LabelRef(name("bndone")))

	Comment("An edge panel: vector q reads min(max(n - q*vw, 0), vw) lanes.")
	Label(name("bnpart"))
	tab := GP64()
	var masks []reg.Register
	if vw == 16 {
		LEAQ(laneBits(), tab)
	} else {
		LEAQ(laneMask(), tab)
	}
	// A vector with no lanes to read reads nothing from the row's start
	// rather than from beyond the matrix (see packBT).
	var offs []reg.Register
	for q := 0; q < is.nv; q++ {
		l := GP64()
		MOVQ(n, l)
		if q > 0 {
			SUBQ(U32(q*vw), l)
		}
		z := GP64()
		XORQ(z, z)
		CMPQ(l, z)
		CMOVQLT(z, l)
		off := GP64()
		MOVQ(U32(4*vw*q), off)
		CMPQ(l, z)
		CMOVQEQ(z, off)
		offs = append(offs, off)
		top := GP64()
		MOVQ(U32(vw), top)
		CMPQ(l, top)
		CMOVQGT(top, l)
		if vw == 16 {
			k := []reg.Register{reg.K1, reg.K2, reg.K3}[q]
			KMOVW(Mem{Base: tab, Index: l, Scale: 2}, k)
			masks = append(masks, k)
		} else {
			// The mask of l lanes is at byte 4*(8-l).
			SUBQ(l, top)
			m := is.vec()
			VMOVDQU(Mem{Base: tab, Index: top, Scale: 4}, m)
			masks = append(masks, m)
		}
	}
	Label(name("bnpartloop"))
	for q := 0; q < is.nv; q++ {
		v := is.vec()
		if vw == 16 {
			VMOVUPS_Z(Mem{Base: src, Index: offs[q], Scale: 1}, masks[q], v)
		} else {
			VMASKMOVPS(Mem{Base: src, Index: offs[q], Scale: 1}, masks[q], v)
		}
		VMOVUPS(v, Mem{Base: dst, Disp: 4 * vw * q})
	}
	ADDQ(ld4, src)
	ADDQ(U32(4*nr), dst)
	DECQ(kc)
	JNZ(LabelRef(name("bnpartloop")))
	Label(name("bndone"))
	VZEROUPPER()
	RET()
}

var laneMaskRef, laneBitsRef *Mem

// laneMask is a table of eight all-ones int32 then eight zeros: the eight
// lanes at byte offset 4*(8-l) hold an AVX2 mask of the first l lanes.
func laneMask() Mem {
	if laneMaskRef == nil {
		m := GLOBL("laneMaskAVX2", RODATA|NOPTR)
		for i := 0; i < 16; i++ {
			v := uint32(0)
			if i < 8 {
				v = 0xffffffff
			}
			DATA(4*i, U32(v))
		}
		laneMaskRef = &m
	}
	return *laneMaskRef
}

// laneBits is a table of 17 uint16: entry l has the low l bits set (an
// AVX-512 mask of the first l lanes).
func laneBits() Mem {
	if laneBitsRef == nil {
		m := GLOBL("laneBits", RODATA|NOPTR)
		for i := 0; i <= 16; i++ {
			DATA(2*i, U16(uint16(1<<i-1)))
		}
		laneBitsRef = &m
	}
	return *laneBitsRef
}

// transpose transposes a vw x vw block: it reads the rows through load,
// in order, and hands each column to store.
func transpose(is isa, load func(r int) reg.VecVirtual, store func(i int, w reg.VecVirtual)) {
	vw := is.vw
	// Unpack pairs of rows, then pairs of pairs: u[g][c] holds, in 128-bit
	// lane l, elements c+4l of rows 4g..4g+3.
	u := make([][4]reg.VecVirtual, vw/4)
	for g := range u {
		var t [4]reg.VecVirtual
		for h := 0; h < 2; h++ {
			a, b := load(4*g+2*h), load(4*g+2*h+1)
			t[2*h], t[2*h+1] = is.vec(), is.vec()
			VUNPCKLPS(b, a, t[2*h])
			VUNPCKHPS(b, a, t[2*h+1])
		}
		for c := range u[g] {
			u[g][c] = is.vec()
		}
		VUNPCKLPD(t[2], t[0], u[g][0])
		VUNPCKHPD(t[2], t[0], u[g][1])
		VUNPCKLPD(t[3], t[1], u[g][2])
		VUNPCKHPD(t[3], t[1], u[g][3])
	}
	if vw == 8 {
		for h := 0; h < 2; h++ {
			for c := 0; c < 4; c++ {
				w := is.vec()
				VPERM2F128(U8(0x20+0x11*h), u[1][c], u[0][c], w)
				store(4*h+c, w)
			}
		}
		return
	}
	// Columns c, c+4, c+8, c+12 come from u[0..3][c].
	for c := 0; c < 4; c++ {
		s := [4]reg.VecVirtual{is.vec(), is.vec(), is.vec(), is.vec()}
		VSHUFF32X4(U8(0x44), u[1][c], u[0][c], s[0])
		VSHUFF32X4(U8(0xEE), u[1][c], u[0][c], s[1])
		VSHUFF32X4(U8(0x44), u[3][c], u[2][c], s[2])
		VSHUFF32X4(U8(0xEE), u[3][c], u[2][c], s[3])
		for l := 0; l < 4; l++ {
			w := is.vec()
			imm := U8(0x88)
			if l%2 == 1 {
				imm = U8(0xDD)
			}
			VSHUFF32X4(imm, s[2+l/2], s[l/2], w)
			store(c+4*l, w)
		}
	}
}

func log2(n int) int {
	l := 0
	for n > 1 {
		n >>= 1
		l++
	}
	return l
}

func cpuid() {
	TEXT("cpuid", NOSPLIT, "func(leaf, sub uint32) (a, b, c, d uint32)")
	Doc("cpuid executes CPUID with EAX=leaf and ECX=sub.")
	Load(Param("leaf"), reg.EAX)
	Load(Param("sub"), reg.ECX)
	CPUID()
	Store(reg.EAX, Return("a"))
	Store(reg.EBX, Return("b"))
	Store(reg.ECX, Return("c"))
	Store(reg.EDX, Return("d"))
	RET()
}
