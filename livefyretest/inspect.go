package livefyretest

import (
	"io"
	"net/http"
	"strings"
)

// inspectionRoutes serves /_emulator/: JSON views of the emulator's state and
// a few controls, for people running the demo with curl. They are not part of
// Livefyre's API. The mux answers unknown paths 404 and wrong methods 405.
func (e *Emulator) inspectionRoutes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_emulator/template", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"template": e.Template()})
	})
	// Studio registration: the same checks as POST /, without a token.
	mux.HandleFunc("PUT /_emulator/template", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
		if err != nil || len(body) > maxRequestBody {
			writeError(w, http.StatusBadRequest, "unreadable or oversized body")
			return
		}
		template := strings.TrimSpace(string(body))
		if err := e.checkTemplate(template); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		e.SetTemplate(template)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /_emulator/profiles", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, e.Profiles())
	})
	mux.HandleFunc("GET /_emulator/profiles/{id}", func(w http.ResponseWriter, r *http.Request) {
		p, ok := e.Profile(r.PathValue("id"))
		if !ok {
			writeError(w, http.StatusNotFound, "no profile stored for this user")
			return
		}
		writeJSON(w, http.StatusOK, p)
	})
	mux.HandleFunc("GET /_emulator/pings", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, nonNil(e.Pings()))
	})
	mux.HandleFunc("GET /_emulator/pulls", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, nonNil(e.Pulls()))
	})
	mux.HandleFunc("POST /_emulator/pulls/{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := e.RequestPull(r.PathValue("id")); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("POST /_emulator/reset", func(w http.ResponseWriter, r *http.Request) {
		e.Reset()
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

// nonNil makes an empty log encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
