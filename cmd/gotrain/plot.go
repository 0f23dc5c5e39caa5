package main

import (
	"fmt"
	"image/color"
	"io"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/gotrain/gotrain/internal/atomicfile"
	"github.com/gotrain/gotrain/train"
)

// The figures put their legend in a column right of the panels, so it never
// covers a curve, whatever shape the curves take.
const legendWidth = 3.2 * vg.Inch

var (
	trainColor = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	valColor   = color.RGBA{R: 214, G: 39, B: 40, A: 255}
	bestColor  = color.RGBA{R: 44, G: 160, B: 44, A: 255}
	stopColor  = color.RGBA{R: 90, G: 90, B: 90, A: 255}
)

// curveMarks are the epochs plotCurves marks with vertical lines (1-based;
// 0 for none).
type curveMarks struct {
	Monitor string // the metric Best is the lowest of
	Best    int    // the best epoch
	Stop    int    // the epoch early stopping ended training at
}

// series is one metric's values by epoch (1-based), skipping epochs
// without it.
func series(history []train.Logs, key string) plotter.XYs {
	var pts plotter.XYs
	for e, l := range history {
		if v, ok := l[key]; ok && !math.IsNaN(v) && !math.IsInf(v, 0) {
			pts = append(pts, plotter.XY{X: float64(e + 1), Y: v})
		}
	}
	return pts
}

// yRange is the smallest and largest Y of some series.
func yRange(all ...plotter.XYs) (lo, hi float64, ok bool) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, s := range all {
		for _, p := range s {
			lo, hi = math.Min(lo, p.Y), math.Max(hi, p.Y)
		}
	}
	return lo, hi, lo <= hi
}

// vline is a vertical line at x from lo to hi, dashed as given.
func vline(x, lo, hi float64, c color.Color, dashes ...vg.Length) (*plotter.Line, error) {
	l, err := plotter.NewLine(plotter.XYs{{X: x, Y: lo}, {X: x, Y: hi}})
	if err != nil {
		return nil, err
	}
	l.Color, l.Width, l.Dashes = c, vg.Points(1.5), dashes
	return l, nil
}

// plotCurves draws training against validation loss (left) and accuracy
// (right) per epoch, so the overfitting gap is visible, marks the best
// epoch and the early-stopping point, and writes the PNG atomically.
func plotCurves(path string, history []train.Logs, marks curveMarks) error {
	if len(history) == 0 {
		return nil
	}
	leg := plot.NewLegend()
	legendDone := map[string]bool{}
	addLegend := func(name string, t plot.Thumbnailer) {
		if !legendDone[name] {
			legendDone[name] = true
			leg.Add(name, t)
		}
	}
	panel := func(title, key string) (*plot.Plot, error) {
		p := plot.New()
		p.Title.Text = title
		p.X.Label.Text = "epoch"
		p.X.Tick.Marker = epochTicks{}
		tr, va := series(history, key), series(history, "val_"+key)
		for i, pts := range []plotter.XYs{tr, va} {
			if len(pts) == 0 {
				continue
			}
			line, points, err := plotter.NewLinePoints(pts)
			if err != nil {
				return nil, err
			}
			c, name := trainColor, "training"
			if i == 1 {
				c, name = valColor, "validation"
			}
			line.Color, points.Color = c, c
			p.Add(line, points)
			addLegend(name, line)
		}
		lo, hi, ok := yRange(tr, va)
		if !ok {
			return p, nil
		}
		if marks.Best > 0 {
			l, err := vline(float64(marks.Best), lo, hi, bestColor, vg.Points(6), vg.Points(3))
			if err != nil {
				return nil, err
			}
			p.Add(l)
			name := fmt.Sprintf("best epoch %d", marks.Best)
			if v, ok := history[marks.Best-1][marks.Monitor]; ok {
				name += fmt.Sprintf(" (%s %s)", marks.Monitor, num(v))
			}
			addLegend(name, l)
		}
		if marks.Stop > 0 {
			l, err := vline(float64(marks.Stop), lo, hi, stopColor, vg.Points(2), vg.Points(2))
			if err != nil {
				return nil, err
			}
			p.Add(l)
			addLegend(fmt.Sprintf("early stopping (epoch %d)", marks.Stop), l)
		}
		return p, nil
	}
	lossPlot, err := panel("loss", "loss")
	if err != nil {
		return err
	}
	accPlot, err := panel("accuracy", "accuracy")
	if err != nil {
		return err
	}
	return writeFigure(path, []*plot.Plot{lossPlot, accPlot}, leg, "learning curves")
}

// writeFigure lays the panels out side by side with the legend in a
// column to their right, and writes the PNG atomically.
func writeFigure(path string, panels []*plot.Plot, leg plot.Legend, what string) error {
	img := vgimg.New(5.5*vg.Length(len(panels))*vg.Inch+legendWidth, 4.5*vg.Inch)
	dc := draw.New(img)
	width := dc.Max.X - dc.Min.X
	left := draw.Crop(dc, 0, -legendWidth, 0, 0)
	right := draw.Crop(dc, width-legendWidth, 0, 0, 0)
	tiles := draw.Tiles{Rows: 1, Cols: len(panels), PadX: vg.Inch / 4, PadY: vg.Inch / 8, PadTop: vg.Inch / 8, PadBottom: vg.Inch / 8, PadLeft: vg.Inch / 8, PadRight: vg.Inch / 8}
	canvases := plot.Align([][]*plot.Plot{panels}, tiles, left)
	for i, p := range panels {
		p.Draw(canvases[0][i])
	}
	leg.Top, leg.Left = true, true
	leg.XOffs, leg.YOffs = vg.Inch/8, -vg.Inch/2
	leg.ThumbnailWidth = vg.Inch / 2
	leg.Padding = vg.Points(5)
	leg.Draw(right)
	return atomicfile.Write(path, func(w io.Writer) error {
		if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(w); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
}

// compareRun is one run of `gotrain compare`: its label and history.
type compareRun struct {
	Label   string
	History []train.Logs
}

// plotCompare draws the validation loss (left) and accuracy (right) of
// several runs, one colour each, with each run's best validation loss
// circled, and writes the PNG atomically.
func plotCompare(path string, runs []compareRun) error {
	leg := plot.NewLegend()
	panel := func(title, key string) (*plot.Plot, error) {
		p := plot.New()
		p.Title.Text = title
		p.X.Label.Text = "epoch"
		p.X.Tick.Marker = epochTicks{}
		for i, r := range runs {
			pts := series(r.History, key)
			if len(pts) == 0 {
				continue
			}
			line, points, err := plotter.NewLinePoints(pts)
			if err != nil {
				return nil, err
			}
			c := plotutil.Color(i)
			line.Color, points.Color = c, c
			line.Dashes = plotutil.Dashes(i / 7) // colours repeat after 7 runs; dashes tell them apart
			points.Radius = vg.Points(1.5)
			p.Add(line, points)
			if key == "val_loss" {
				leg.Add(r.Label, line)
				best := 0
				for j := range pts {
					if pts[j].Y < pts[best].Y {
						best = j
					}
				}
				s, err := plotter.NewScatter(plotter.XYs{pts[best]})
				if err != nil {
					return nil, err
				}
				s.Color, s.Shape, s.Radius = c, draw.RingGlyph{}, vg.Points(5)
				p.Add(s)
			}
		}
		return p, nil
	}
	lossPlot, err := panel("validation loss (best circled)", "val_loss")
	if err != nil {
		return err
	}
	accPlot, err := panel("validation accuracy", "val_accuracy")
	if err != nil {
		return err
	}
	return writeFigure(path, []*plot.Plot{lossPlot, accPlot}, leg, "comparison")
}

// epochTicks labels whole epochs only, at most about ten, 1, 2 or 5
// times a power of ten apart.
type epochTicks struct{}

func (epochTicks) Ticks(lo, hi float64) []plot.Tick {
	step := 1.0
	for (hi-lo)/step > 10 {
		switch m := step / math.Pow(10, math.Floor(math.Log10(step))); m {
		case 1:
			step *= 2
		case 2:
			step *= 2.5
		default:
			step *= 2
		}
	}
	var out []plot.Tick
	for x := math.Ceil(lo/step) * step; x <= hi; x += step {
		out = append(out, plot.Tick{Value: x, Label: fmt.Sprintf("%.0f", x)})
	}
	return out
}
