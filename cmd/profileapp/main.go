// Command profileapp serves the sample user-profile API used by the demo:
// a stand-in for a customer's app, with users u1 and u2 in memory.
package main

import (
	"flag"
	"log"
	"net/http"
	"time"

	"github.com/caddy-livefyre/caddy-livefyre/internal/sampleapp"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:3000", "address to listen on")
	flag.Parse()
	log.Printf("sample profile app listening on http://%s", *listen)
	app := sampleapp.New()
	app.Log = log.Default()
	srv := &http.Server{Addr: *listen, Handler: app, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
