package bench

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"testing"
)

func TestPlotPNG(t *testing.T) {
	d := plotData{
		Rates: []float64{250, 1000, 2000},
		Series: []series{
			{Name: "ack p50", Color: color.RGBA{31, 119, 180, 255}, Ms: []float64{1.2, 1.8, 40}},
			{Name: "ack p99", Color: color.RGBA{214, 39, 40, 255}, Ms: []float64{5, 30, math.NaN()}},
		},
		FloorMs: 0.2,
	}
	var buf bytes.Buffer
	if err := encodePlot(&buf, d); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatalf("the PNG does not decode: %v", err)
	}
	if got := img.Bounds(); got != image.Rect(0, 0, plotW, plotH) {
		t.Errorf("size %v, want %dx%d", got, plotW, plotH)
	}
	// Each series' colour is on the canvas (its line and points), as is the text.
	for _, c := range []color.RGBA{d.Series[0].Color, d.Series[1].Color, colorFloor, colorAxis} {
		if n := count(img, c); n < 50 {
			t.Errorf("colour %v: %d pixels, want a drawn line", c, n)
		}
	}
}

func TestYRange(t *testing.T) {
	for _, tc := range []struct {
		d      plotData
		lo, hi float64
	}{
		{plotData{Series: []series{{Ms: []float64{1.2, 40}}}, FloorMs: 0.2}, 0.1, 100},
		{plotData{Series: []series{{Ms: []float64{5, 5}}}}, 1, 10},
		{plotData{}, 0.1, 100},
	} {
		lo, hi := yRange(tc.d)
		if math.Abs(lo-tc.lo) > 1e-12 || math.Abs(hi-tc.hi) > 1e-9 {
			t.Errorf("yRange = %v..%v, want %v..%v", lo, hi, tc.lo, tc.hi)
		}
	}
}

// count returns how many pixels of img are exactly c.
func count(img image.Image, c color.RGBA) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bb, a := img.At(x, y).RGBA()
			if uint8(r>>8) == c.R && uint8(g>>8) == c.G && uint8(bb>>8) == c.B && uint8(a>>8) == c.A {
				n++
			}
		}
	}
	return n
}
