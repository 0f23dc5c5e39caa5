// Command asm generates the amd64 assembly of package gemm with avo
// (github.com/mmcloughlin/avo): the float32 micro-kernels for AVX-512 and
// AVX2+FMA, the transposing B packers, and CPUID. Run it through
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
	packBT(avx512)
	packBT(avx2)
	packRuns(avx512)
	packRuns(avx2)
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
	var bases []reg.Register
	var rows []Mem
	rs3 := GP64()
	LEAQ(Mem{Base: rs, Index: rs, Scale: 2}, rs3)
	switch is.mr {
	case 4:
		bases = []reg.Register{a0}
		rows = []Mem{{Base: a0}, {Base: a0, Index: rs, Scale: 1}, {Base: a0, Index: rs, Scale: 2}, {Base: a0, Index: rs3, Scale: 1}}
	case 8:
		a3 := GP64()
		LEAQ(Mem{Base: a0, Index: rs3, Scale: 1}, a3)
		bases = []reg.Register{a0, a3}
		rows = []Mem{
			{Base: a0}, {Base: a0, Index: rs, Scale: 1}, {Base: a0, Index: rs, Scale: 2}, {Base: a3},
			{Base: a0, Index: rs, Scale: 4}, {Base: a3, Index: rs, Scale: 2}, {Base: a3, Index: rs3, Scale: 1}, {Base: a3, Index: rs, Scale: 4},
		}
	default:
		panic("unsupported mr")
	}

	acc := make([][]reg.VecVirtual, is.mr)
	for r := range acc {
		acc[r] = make([]reg.VecVirtual, is.nv)
		for q := range acc[r] {
			acc[r][q] = is.vec()
		}
	}

	Comment("Start from C (flags&1) or from zero.")
	flags := Load(Param("flags"), GP64())
	TESTQ(U32(1), flags)
	JZ(LabelRef("zero" + is.name))
	{
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
		JMP(LabelRef("body" + is.name))
	}
	Label("zero" + is.name)
	for r := range acc {
		for q := range acc[r] {
			is.zero(acc[r][q])
		}
	}
	Label("body" + is.name)

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
	br := Load(Param("biasRow"), GP64())
	TESTQ(br, br)
	JZ(LabelRef("nobiasrow" + is.name))
	for r := 0; r < is.mr; r++ {
		t := is.vec()
		VBROADCASTSS(Mem{Base: br, Disp: 4 * r}, t)
		for q := 0; q < is.nv; q++ {
			VADDPS(t, acc[r][q], acc[r][q])
		}
	}
	Label("nobiasrow" + is.name)
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
	Comment("ReLU as max(0, v) + 0: max returns v when v is NaN or -0, and -0 + 0 is +0.")
	flags2 := Load(Param("flags"), GP64())
	TESTQ(U32(2), flags2)
	JZ(LabelRef("store" + is.name))
	zero := is.vec()
	is.zero(zero)
	for r := range acc {
		for q := range acc[r] {
			VMAXPS(acc[r][q], zero, acc[r][q])
			VADDPS(zero, acc[r][q], acc[r][q])
		}
	}
	Label("store" + is.name)
	c := Load(Param("c"), GP64())
	ldc := Load(Param("ldc"), GP64())
	SHLQ(U8(2), ldc)
	for r := 0; r < is.mr; r++ {
		for q := 0; q < is.nv; q++ {
			VMOVUPS(acc[r][q], Mem{Base: c, Disp: 4 * is.vw * q})
		}
		if r+1 < is.mr {
			ADDQ(ldc, c)
		}
	}
	VZEROUPPER()
	RET()
}

// packBT packs one full panel of a transposed B: dst[p*NR + j] =
// src[j*ld + p] for p < kc, j < NR, with one gather per vector.
func packBT(is isa) {
	nr := is.vw * is.nv
	TEXT("packBT"+is.name, NOSPLIT, "func(dst, src *float32, ld, kc int)")
	Pragma("noescape")
	Doc(fmt.Sprintf("packBT%s packs a %d-column panel of a transposed B: dst[p*%d+j] = src[j*ld+p] for p < kc.", is.name, nr, nr))
	dst := Load(Param("dst"), GP64())
	src := Load(Param("src"), GP64())
	ld := Load(Param("ld"), GP64())
	kc := Load(Param("kc"), GP64())
	TESTQ(kc, kc)
	JZ(LabelRef("done" + is.name))

	// idx = lane * ld (32-bit lanes), built by doubling: lanes 0..vw-1.
	idx := is.vec()
	ldv := is.vec()
	tmp := GP64()
	MOVQ(ld, tmp)
	VMOVQ(tmp, ldv.AsX())
	VPBROADCASTD(ldv.AsX(), ldv)
	iota := GLOBL(fmt.Sprintf("iota%s", is.name), RODATA|NOPTR)
	for i := 0; i < is.vw; i++ {
		DATA(4*i, U32(i))
	}
	VPMULLD(iota, ldv, idx)

	// bases[q] = src + q*vw*ld floats.
	bases := make([]reg.GPVirtual, is.nv)
	stride := GP64()
	MOVQ(ld, stride)
	SHLQ(U8(2+log2(is.vw)), stride) // vw*ld*4 bytes
	for q := range bases {
		bases[q] = GP64()
		if q == 0 {
			MOVQ(src, bases[q])
		} else {
			LEAQ(Mem{Base: bases[q-1], Index: stride, Scale: 1}, bases[q])
		}
	}
	Label("loop" + is.name)
	for q := 0; q < is.nv; q++ {
		v := is.vec()
		if is.vw == 16 {
			KXNORW(reg.K1, reg.K1, reg.K1)
			VGATHERDPS(Mem{Base: bases[q], Index: idx, Scale: 4}, reg.K1, v)
		} else {
			mask := is.vec()
			VPCMPEQD(mask, mask, mask)
			VGATHERDPS(mask, Mem{Base: bases[q], Index: idx, Scale: 4}, v)
		}
		VMOVUPS(v, Mem{Base: dst, Disp: 4 * is.vw * q})
		ADDQ(U8(4), bases[q])
	}
	ADDQ(U32(4*nr), dst)
	DECQ(kc)
	JNZ(LabelRef("loop" + is.name))
	Label("done" + is.name)
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
		lanes := GLOBL("laneMaskAVX2", RODATA|NOPTR)
		for i := 0; i < 16; i++ {
			v := uint32(0)
			if i < 8 {
				v = 0xffffffff
			}
			DATA(4*i, U32(v))
		}
		tab = GP64()
		LEAQ(lanes, tab)
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
