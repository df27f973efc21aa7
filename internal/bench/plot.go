package bench

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// series is one line of the plot: a latency in ms per offered rate (NaN or
// <= 0: no point).
type series struct {
	Name  string
	Color color.RGBA
	Ms    []float64
}

// plotData is what the PNG shows: latency against offered rate, on a log
// scale, with the floor as a horizontal line.
type plotData struct {
	Rates   []float64
	Series  []series
	FloorMs float64 // fsync p50 + loopback p50; 0: none
}

// Plot geometry, in pixels.
const (
	plotW, plotH                       = 1000, 560
	marginL, marginR, marginT, marginB = 80, 270, 50, 60 // the legend goes right of the axes
)

var (
	colorAxis  = color.RGBA{40, 40, 40, 255}
	colorGrid  = color.RGBA{225, 225, 225, 255}
	colorFloor = color.RGBA{120, 120, 120, 255}
)

// encodePlot draws d and writes it as a PNG.
func encodePlot(w io.Writer, d plotData) error {
	return png.Encode(w, drawPlot(d))
}

// drawPlot renders d on a white canvas of plotW x plotH.
func drawPlot(d plotData) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, plotW, plotH))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	lo, hi := yRange(d)
	// Rates span decades (50 to 4,000): a log scale keeps the low ones apart.
	minRate, maxRate := math.Inf(1), 1.0
	for _, r := range d.Rates {
		minRate, maxRate = min(minRate, r), max(maxRate, r)
	}
	xlo, xhi := math.Log10(min(minRate, maxRate)/1.25), math.Log10(maxRate*1.25)
	x := func(rate float64) int {
		return marginL + int((math.Log10(rate)-xlo)/(xhi-xlo)*float64(plotW-marginL-marginR))
	}
	y := func(v float64) int {
		f := (math.Log10(v) - math.Log10(lo)) / (math.Log10(hi) - math.Log10(lo))
		return plotH - marginB - int(f*float64(plotH-marginT-marginB))
	}
	// Decades: grid lines and labels.
	for v := lo; v <= hi*1.0001; v *= 10 {
		yy := y(v)
		line(img, marginL, yy, plotW-marginR, yy, colorGrid, 1, false)
		label := fmt.Sprintf("%g", v)
		text(img, marginL-8-7*len(label), yy+4, label, colorAxis)
	}
	labelEnd := math.MinInt // a label that would overlap the one before is left out
	for _, r := range d.Rates {
		xx := x(r)
		line(img, xx, marginT, xx, plotH-marginB, colorGrid, 1, false)
		label := fmt.Sprintf("%g", r)
		if left := xx - 7*len(label)/2; left > labelEnd+6 {
			text(img, left, plotH-marginB+18, label, colorAxis)
			labelEnd = left + 7*len(label)
		}
	}
	line(img, marginL, plotH-marginB, plotW-marginR, plotH-marginB, colorAxis, 1, false)
	line(img, marginL, marginT, marginL, plotH-marginB, colorAxis, 1, false)
	text(img, (plotW-7*len(xLabel))/2, plotH-16, xLabel, colorAxis)
	text(img, 10, marginT-20, yLabel, colorAxis)
	if d.FloorMs > 0 {
		yy := y(max(d.FloorMs, lo))
		line(img, marginL, yy, plotW-marginR, yy, colorFloor, 2, true)
	}
	for _, s := range d.Series {
		drawSeries(img, d.Rates, s, x, y, lo)
	}
	legend(img, d)
	return img
}

const (
	xLabel = "offered rate (messages/s, log scale, open loop)"
	yLabel = "latency (ms, log scale)"
)

// drawSeries draws one series as a polyline with a square at each point.
func drawSeries(img *image.RGBA, rates []float64, s series, x func(float64) int, y func(float64) int, lo float64) {
	px, py, have := 0, 0, false
	for i, v := range s.Ms {
		if i >= len(rates) || math.IsNaN(v) || v <= 0 {
			have = false
			continue
		}
		cx, cy := x(rates[i]), y(max(v, lo))
		if have {
			line(img, px, py, cx, cy, s.Color, 2, false)
		}
		fill(img, image.Rect(cx-3, cy-3, cx+4, cy+4), s.Color)
		px, py, have = cx, cy, true
	}
}

// legend names each series and the floor right of the axes, where no
// data can hide it.
func legend(img *image.RGBA, d plotData) {
	type entry struct {
		name   string
		c      color.RGBA
		dashed bool
	}
	var es []entry
	for _, s := range d.Series {
		es = append(es, entry{s.Name, s.Color, false})
	}
	if d.FloorMs > 0 {
		es = append(es, entry{"floor (fsync + loopback p50)", colorFloor, true})
	}
	width := 0
	for _, e := range es {
		width = max(width, 7*len(e.name))
	}
	x0, y0 := plotW-marginR+24, marginT+8
	box := image.Rect(x0-8, y0-8, x0+width+44, y0+len(es)*18+2)
	fill(img, box, color.RGBA{255, 255, 255, 255})
	outline(img, box, colorAxis)
	for i, e := range es {
		yy := y0 + i*18 + 6
		line(img, x0, yy, x0+28, yy, e.c, 2, e.dashed)
		text(img, x0+36, yy+4, e.name, colorAxis)
	}
}

// yRange returns decade bounds around every value to draw.
func yRange(d plotData) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	see := func(v float64) {
		if v > 0 && !math.IsNaN(v) && !math.IsInf(v, 0) {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	for _, s := range d.Series {
		for _, v := range s.Ms {
			see(v)
		}
	}
	see(d.FloorMs)
	if math.IsInf(lo, 1) {
		return 0.1, 100
	}
	lo = math.Pow(10, math.Floor(math.Log10(max(lo, 1e-3))))
	hi = math.Pow(10, math.Ceil(math.Log10(hi)))
	if hi <= lo {
		hi = lo * 10
	}
	return lo, hi
}

// line draws from (x0,y0) to (x1,y1), width pixels thick, dashed or not
// (Bresenham).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA, width int, dashed bool) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for n := 0; ; n++ {
		if !dashed || (n/8)%2 == 0 {
			fill(img, image.Rect(x0, y0, x0+width, y0+width), c)
		}
		if x0 == x1 && y0 == y1 {
			return
		}
		if e2 := 2 * e; e2 >= dy {
			e += dy
			x0 += sx
		} else {
			e += dx
			y0 += sy
		}
	}
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	draw.Draw(img, r.Intersect(img.Bounds()), image.NewUniform(c), image.Point{}, draw.Src)
}

func outline(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	line(img, r.Min.X, r.Min.Y, r.Max.X, r.Min.Y, c, 1, false)
	line(img, r.Min.X, r.Max.Y, r.Max.X, r.Max.Y, c, 1, false)
	line(img, r.Min.X, r.Min.Y, r.Min.X, r.Max.Y, c, 1, false)
	line(img, r.Max.X, r.Min.Y, r.Max.X, r.Max.Y, c, 1, false)
}

// text writes s with its baseline at (x, y) in the 7x13 bitmap font.
func text(img *image.RGBA, x, y int, s string, c color.RGBA) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v < 0:
		return -1
	case v > 0:
		return 1
	}
	return 0
}
