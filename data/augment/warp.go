package augment

import "math"

// affine maps an output pixel (r, c) to its source position:
//
//	y = a*r + b*c + e   (row)
//	x = d*r + f*c + g   (column)
type affine struct{ a, b, e, d, f, g float64 }

// snap rounds v to an integer when it is within 1e-12 of one, so that
// right angles and whole-pixel moves sample exactly on the grid.
func snap(v float64) float64 {
	if r := math.Round(v); math.Abs(v-r) < 1e-12 {
		return r
	}
	return v
}

// matrix composes the geometric choices of p into one affine map; ok is
// false when the map is the identity. In centred coordinates, the output
// position goes through the crop offset, the flips, the zoom, the shear
// (Keras' matrix), the shift and the rotation, in that order, to reach the
// source position.
func (a *Augmenter) matrix(p Params) (affine, bool) {
	if !a.geo {
		return affine{}, false
	}
	// L = Rot * Shear * Zoom * Flip, a 2x2 matrix on (row, col).
	zy, zx := p.ZoomY, p.ZoomX
	if zy == 0 {
		zy = 1
	}
	if zx == 0 {
		zx = 1
	}
	if p.FlipV {
		zy = -zy
	}
	if p.FlipH {
		zx = -zx
	}
	sh := p.Shear * math.Pi / 180
	// Shear * Zoom * Flip = [[zy, -sin(sh)*zx], [0, cos(sh)*zx]].
	m00, m01, m10, m11 := zy, -math.Sin(sh)*zx, 0.0, math.Cos(sh)*zx
	th := p.Rotation * math.Pi / 180
	cs, sn := math.Cos(th), math.Sin(th)
	// Rot = [[cos, sin], [-sin, cos]]: counter-clockwise on screen.
	l00 := snap(cs*m00 + sn*m10)
	l01 := snap(cs*m01 + sn*m11)
	l10 := snap(-sn*m00 + cs*m10)
	l11 := snap(-sn*m01 + cs*m11)
	// Translation: o - L*(o + crop) - Rot*shift.
	oy, ox := float64(a.shape.H-1)/2, float64(a.shape.W-1)/2
	py, px := oy+float64(p.CropY), ox+float64(p.CropX)
	ty := oy - (l00*py + l01*px) - snap(cs*p.ShiftY+sn*p.ShiftX)
	tx := ox - (l10*py + l11*px) - snap(-sn*p.ShiftY+cs*p.ShiftX)
	m := affine{a: l00, b: l01, e: snap(ty), d: l10, f: l11, g: snap(tx)}
	if m == (affine{a: 1, f: 1}) {
		return m, false
	}
	return m, true
}

// index maps a tap position i, which may lie outside [0, n), to a valid
// index under the fill mode (constant is handled by the caller).
func index(i, n int, mode FillMode) int {
	if i >= 0 && i < n {
		return i
	}
	switch mode {
	case Reflect: // half-sample symmetric: period 2n, ...cba|abc...
		p := 2 * n
		i %= p
		if i < 0 {
			i += p
		}
		if i >= n {
			i = p - 1 - i
		}
		return i
	case Wrap:
		i %= n
		if i < 0 {
			i += n
		}
		return i
	}
	return min(max(i, 0), n-1) // nearest, and constant inside the image
}

// constEps tolerates rounding at the image edge in the constant mode.
const constEps = 1e-9

// tapsAt returns the source offsets (in pixels, row-major) of the four
// bilinear taps around (y, x) and their weights; inside is false when the
// constant mode puts (y, x) outside the image.
func tapsAt(y, x float64, h, w int, mode FillMode) (o [4]int, wt [4]float32, inside bool) {
	if mode == Constant && (y < -constEps || y > float64(h-1)+constEps || x < -constEps || x > float64(w-1)+constEps) {
		return o, wt, false
	}
	fy, fx := math.Floor(y), math.Floor(x)
	dy, dx := float32(y-fy), float32(x-fx)
	iy, ix := int(fy), int(fx)
	y0, y1 := index(iy, h, mode), index(iy+1, h, mode)
	x0, x1 := index(ix, w, mode), index(ix+1, w, mode)
	o = [4]int{y0*w + x0, y0*w + x1, y1*w + x0, y1*w + x1}
	wt = [4]float32{(1 - dy) * (1 - dx), (1 - dy) * dx, dy * (1 - dx), dy * dx}
	return o, wt, true
}

// warpCHW resamples a channel-major image. Interior pixels take a fast path
// with no index mapping; the per-pixel weights are shared by the channels.
func warpCHW(dst, src []float32, s Shape, m *affine, mode FillMode, cval float32) {
	h, w, hw := s.H, s.W, s.H*s.W
	fh, fw := float64(h-1), float64(w-1)
	for r := range h {
		fr := float64(r)
		y0 := m.a*fr + m.e
		x0 := m.d*fr + m.g
		for c := range w {
			fc := float64(c)
			y := y0 + m.b*fc
			x := x0 + m.f*fc
			p := r*w + c
			if y >= 0 && x >= 0 && y < fh && x < fw {
				iy, ix := int(y), int(x)
				dy, dx := float32(y-float64(iy)), float32(x-float64(ix))
				w00, w01 := (1-dy)*(1-dx), (1-dy)*dx
				w10, w11 := dy*(1-dx), dy*dx
				o := iy*w + ix
				if s.C == 1 {
					sp := src[o : o+w+2]
					dst[p] = w00*sp[0] + w01*sp[1] + w10*sp[w] + w11*sp[w+1]
					continue
				}
				for q := p; q < len(dst); q, o = q+hw, o+hw {
					sp := src[o : o+w+2]
					dst[q] = w00*sp[0] + w01*sp[1] + w10*sp[w] + w11*sp[w+1]
				}
				continue
			}
			o, wt, inside := tapsAt(y, x, h, w, mode)
			for ch := 0; ch < s.C; ch++ {
				if !inside {
					dst[ch*hw+p] = cval
					continue
				}
				sp := src[ch*hw : (ch+1)*hw]
				dst[ch*hw+p] = wt[0]*sp[o[0]] + wt[1]*sp[o[1]] + wt[2]*sp[o[2]] + wt[3]*sp[o[3]]
			}
		}
	}
}

// warpHWC resamples a pixel-major image.
func warpHWC(dst, src []float32, s Shape, m *affine, mode FillMode, cval float32) {
	h, w, nc := s.H, s.W, s.C
	fh, fw := float64(h-1), float64(w-1)
	row := w * nc
	for r := range h {
		fr := float64(r)
		y0 := m.a*fr + m.e
		x0 := m.d*fr + m.g
		for c := range w {
			fc := float64(c)
			y := y0 + m.b*fc
			x := x0 + m.f*fc
			out := dst[(r*w+c)*nc : (r*w+c+1)*nc]
			if y >= 0 && x >= 0 && y < fh && x < fw {
				iy, ix := int(y), int(x)
				dy, dx := float32(y-float64(iy)), float32(x-float64(ix))
				w00, w01 := (1-dy)*(1-dx), (1-dy)*dx
				w10, w11 := dy*(1-dx), dy*dx
				o := (iy*w + ix) * nc
				a := src[o : o+2*nc]
				b := src[o+row : o+row+2*nc]
				for ch := range out {
					out[ch] = w00*a[ch] + w01*a[nc+ch] + w10*b[ch] + w11*b[nc+ch]
				}
				continue
			}
			o, wt, inside := tapsAt(y, x, h, w, mode)
			for ch := range out {
				if !inside {
					out[ch] = cval
					continue
				}
				out[ch] = wt[0]*src[o[0]*nc+ch] + wt[1]*src[o[1]*nc+ch] + wt[2]*src[o[2]*nc+ch] + wt[3]*src[o[3]*nc+ch]
			}
		}
	}
}
