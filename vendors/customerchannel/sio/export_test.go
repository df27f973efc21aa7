package sio

// skippedFrames reports how many frames an EIO3 client ignored.
func skippedFrames(c Client) int64 {
	if c3, ok := c.(*eio3Client); ok {
		return c3.skipped.Load()
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
