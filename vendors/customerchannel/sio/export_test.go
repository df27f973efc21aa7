package sio

// skippedFrames reports how many frames a client ignored.
func skippedFrames(c Client) int64 {
	switch c := c.(type) {
	case *eio3Client:
		return c.skipped.Load()
	case *eio4Client:
		return c.skipped.Load()
	}
	return -1
}

// bufferPeaks reports the most events and bytes a client's buffer has held.
func bufferPeaks(c Client) (int, int64) {
	switch c := c.(type) {
	case *eio3Client:
		return c.peaks()
	case *eio4Client:
		return c.peaks()
	}
	return -1, -1
}
