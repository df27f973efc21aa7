package whosontest

// OnVisitorLine registers f to be called with each visitor line the server
// records (the chat's UID and the text), after it is recorded and before
// the operator answers it. f runs outside the server's locks but on the
// socket's reading goroutine, so a slow f delays that socket. Benchmarks use
// it to time a line's arrival.
func (s *Server) OnVisitorLine(f func(uid, text string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onLine = append(s.onLine, f)
}

// OnResume registers f to be called with the UID of each chat a Connect
// continues (see Resume in the package doc), once the connected event is
// queued. f runs as OnVisitorLine's hooks do. Benchmarks use it to time a
// restarted client's resumes.
func (s *Server) OnResume(f func(uid string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onResume = append(s.onResume, f)
}

// lineHooksLocked returns a call of every OnVisitorLine hook for one line,
// to run once Server.mu is released. The hook lists only grow, so the
// slices read under the lock stay valid after it.
func (s *Server) lineHooksLocked(uid, text string) func() {
	fs := s.onLine
	return func() {
		for _, f := range fs {
			f(uid, text)
		}
	}
}

// resumeHooksLocked is lineHooksLocked for OnResume.
func (s *Server) resumeHooksLocked(uid string) func() {
	fs := s.onResume
	return func() {
		for _, f := range fs {
			f(uid)
		}
	}
}
