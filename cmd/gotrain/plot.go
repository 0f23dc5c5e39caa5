package main

import (
	"fmt"
	"image/color"
	"io"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/gotrain/gotrain/internal/atomicfile"
	"github.com/gotrain/gotrain/train"
)

// plotCurves draws training against validation loss (left) and accuracy
// (right) per epoch, so the overfitting gap is visible, and writes the PNG
// atomically.
func plotCurves(path string, history []train.Logs) error {
	if len(history) == 0 {
		return nil
	}
	panel := func(title, key string) (*plot.Plot, error) {
		p := plot.New()
		p.Title.Text = title
		p.X.Label.Text = "epoch"
		p.Legend.Top = true
		for i, k := range []string{key, "val_" + key} {
			var pts plotter.XYs
			for e, l := range history {
				if v, ok := l[k]; ok {
					pts = append(pts, plotter.XY{X: float64(e + 1), Y: v})
				}
			}
			if len(pts) == 0 {
				continue
			}
			line, points, err := plotter.NewLinePoints(pts)
			if err != nil {
				return nil, err
			}
			c := color.RGBA{R: 31, G: 119, B: 180, A: 255}
			name := "training"
			if i == 1 {
				c, name = color.RGBA{R: 214, G: 39, B: 40, A: 255}, "validation"
			}
			line.Color, points.Color = c, c
			p.Add(line, points)
			p.Legend.Add(name, line)
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
	img := vgimg.New(12*vg.Inch, 4.5*vg.Inch)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Inch / 4, PadY: vg.Inch / 8, PadTop: vg.Inch / 8, PadBottom: vg.Inch / 8, PadLeft: vg.Inch / 8, PadRight: vg.Inch / 8}
	canvases := plot.Align([][]*plot.Plot{{lossPlot, accPlot}}, tiles, dc)
	lossPlot.Draw(canvases[0][0])
	accPlot.Draw(canvases[0][1])
	return atomicfile.Write(path, func(w io.Writer) error {
		if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(w); err != nil {
			return fmt.Errorf("learning curves: %w", err)
		}
		return nil
	})
}
