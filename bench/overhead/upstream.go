package main

import (
	"flag"
	"io"
	"log"
	"net/http"
	"time"
)

// The app's answer to GET /api/users/{id} is the same ~200 bytes as in
// integration/pull_bench_test.go, with the id between these two halves.
// Ids in the benchmark are [A-Za-z0-9-], which need no JSON escaping.
const (
	profileHead = `{"id":"`
	profileTail = `","name":"Ursula One","email":"u1@example.org","avatar":"https://cdn.example.org/a/u1/v1.png","bio":"Writes about urban transit.","tags":["subscriber"]}`
)

// upstreamHandler is the smallest app worth putting behind the sidecar, so
// that what is measured is Caddy and the plugin, not the app: GET
// /api/users/{id} answers a profile, any other method on it (the profile
// update) reads the body and answers 200 with a short JSON body.
func upstreamHandler() http.Handler {
	updated := []byte(`{"ok":true}`)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, profileHead+r.PathValue("id")+profileTail)
	})
	mux.HandleFunc("/api/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(updated)
	})
	return mux
}

// runUpstream is the "upstream" subcommand: the app, as its own process.
func runUpstream(args []string) {
	fs := flag.NewFlagSet("upstream", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:18130", "address to listen on (loopback)")
	_ = fs.Parse(args)
	srv := &http.Server{Addr: *listen, Handler: upstreamHandler(), ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
