package sio

// skippedFrames reports how many frames an EIO3 client ignored.
func skippedFrames(c Client) int64 {
	if c3, ok := c.(*eio3Client); ok {
		return c3.skipped.Load()
	}
	return -1
}
