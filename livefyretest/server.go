package livefyretest

import (
	"net"
	"net/http/httptest"
)

// Server is an Emulator listening on a loopback port, for tests. It is an
// httptest.Server serving the emulator, so it behaves like one: NewServer
// picks a free 127.0.0.1 port and Close waits for requests in progress.
type Server struct {
	*Emulator
	// URL is the base URL, http://127.0.0.1:port with no trailing slash; use
	// it as the quill URL of the code under test.
	URL string
	// Listener is the server's listener.
	Listener net.Listener

	hs *httptest.Server
}

// NewServer starts an emulator on a free loopback port. Like
// httptest.NewServer, it panics if no port can be had. The caller should
// Close it.
func NewServer(cfg Config) *Server {
	emu := New(cfg)
	hs := httptest.NewServer(emu)
	return &Server{Emulator: emu, URL: hs.URL, Listener: hs.Listener, hs: hs}
}

// Close stops the pull workers, then stops listening and waits for requests
// in progress to finish. Pings delayed by SetPingLatency are answered 503
// rather than waited for.
func (s *Server) Close() {
	s.Emulator.Close()
	s.hs.Close()
}
