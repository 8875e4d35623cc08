// Command app is the test workload of nonstop's end-to-end tests: an HTTP server that answers
// every path with its version and whose readiness, error rate and shutdown are chosen per
// revision through the environment, so a test can roll out a good or a bad release.
//
//	VERSION        the version it reports (body and X-Version header); default "v0"
//	READY          always (default) | never | after=<seconds>: when /ready answers 200
//	ERROR_RATE     0..1: this share of the requests to other paths gets a 500, deterministically
//	               (request n fails when floor(n*rate) > floor((n-1)*rate): 0.25 = every 4th)
//	DRAIN_SECONDS  on SIGTERM: /ready turns 503 at once, requests are still served this long,
//	               then the server shuts down gracefully; default 5
//	ADDR           listen address; default ":8080"
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

type config struct {
	version   string
	pod       string
	ready     string // always | never | after
	readyIn   time.Duration
	errorRate float64
	drain     time.Duration
	addr      string
}

func getenv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func parseConfig(getenv func(string, string) string) (config, error) {
	c := config{version: getenv("VERSION", "v0"), addr: getenv("ADDR", ":8080")}
	switch r := getenv("READY", "always"); {
	case r == "always" || r == "never":
		c.ready = r
	case strings.HasPrefix(r, "after="):
		s, err := strconv.ParseFloat(strings.TrimPrefix(r, "after="), 64)
		if err != nil || s < 0 || math.IsInf(s, 0) {
			return c, fmt.Errorf("READY=%q: want always, never or after=<seconds>", r)
		}
		c.ready, c.readyIn = "after", time.Duration(s*float64(time.Second))
	default:
		return c, fmt.Errorf("READY=%q: want always, never or after=<seconds>", r)
	}
	rate, err := strconv.ParseFloat(getenv("ERROR_RATE", "0"), 64)
	if err != nil || rate < 0 || rate > 1 {
		return c, fmt.Errorf("ERROR_RATE=%q: want a number from 0 to 1", getenv("ERROR_RATE", "0"))
	}
	c.errorRate = rate
	drain, err := strconv.ParseFloat(getenv("DRAIN_SECONDS", "5"), 64)
	if err != nil || drain < 0 || math.IsInf(drain, 0) {
		return c, fmt.Errorf("DRAIN_SECONDS=%q: want a number of seconds >= 0", getenv("DRAIN_SECONDS", "5"))
	}
	c.drain = time.Duration(drain * float64(time.Second))
	return c, nil
}

type app struct {
	config
	started  time.Time
	now      func() time.Time
	requests atomic.Uint64 // requests to the application paths (not /ready, /healthz)
	errors   atomic.Uint64
	draining atomic.Bool
}

func newApp(c config, now func() time.Time) *app {
	return &app{config: c, started: now(), now: now}
}

func (a *app) isReady() bool {
	if a.draining.Load() {
		return false
	}
	switch a.ready {
	case "never":
		return false
	case "after":
		return a.now().Sub(a.started) >= a.readyIn
	}
	return true
}

// fails tells whether the n-th request (from 1) is one of the injected errors.
func (a *app) fails(n uint64) bool {
	return math.Floor(float64(n)*a.errorRate) > math.Floor(float64(n-1)*a.errorRate)
}

func (a *app) reply(w http.ResponseWriter, code int, body map[string]string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Version", a.version)
	w.Header().Set("X-Pod", a.pod)
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		a.reply(w, http.StatusOK, map[string]string{"status": "ok", "version": a.version, "pod": a.pod})
	})
	mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {
		if a.isReady() {
			a.reply(w, http.StatusOK, map[string]string{"status": "ready", "version": a.version, "pod": a.pod})
			return
		}
		status := "not ready"
		if a.draining.Load() {
			status = "draining"
		}
		a.reply(w, http.StatusServiceUnavailable, map[string]string{"status": status, "version": a.version, "pod": a.pod})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		if a.fails(a.requests.Add(1)) {
			a.errors.Add(1)
			a.reply(w, http.StatusInternalServerError, map[string]string{"version": a.version, "pod": a.pod, "error": "injected"})
			return
		}
		a.reply(w, http.StatusOK, map[string]string{"version": a.version, "pod": a.pod})
	})
	return mux
}

func main() {
	c, err := parseConfig(getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "app:", err)
		os.Exit(2)
	}
	c.pod, _ = os.Hostname()
	a := newApp(c, time.Now)
	srv := &http.Server{Addr: c.addr, Handler: a.routes(), ReadHeaderTimeout: 10 * time.Second}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	failed := make(chan error, 1)
	go func() { failed <- srv.ListenAndServe() }()
	fmt.Printf("app start version=%s pod=%s addr=%s ready=%s error_rate=%g drain=%s\n",
		c.version, c.pod, c.addr, getenv("READY", "always"), c.errorRate, c.drain)

	select {
	case err := <-failed:
		fmt.Printf("app stop version=%s pod=%s error=%q\n", c.version, c.pod, err)
		os.Exit(1)
	case sig := <-stop:
		// Leave the endpoints first (readiness fails), keep serving what still comes during the
		// drain, and ask keep-alive clients to reconnect elsewhere; then shut down gracefully.
		a.draining.Store(true)
		srv.SetKeepAlivesEnabled(false)
		fmt.Printf("app stopping version=%s pod=%s signal=%s drain=%s\n", c.version, c.pod, sig, c.drain)
		time.Sleep(c.drain)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := srv.Shutdown(ctx)
		cancel()
		code, detail := 0, ""
		if err != nil {
			code, detail = 1, fmt.Sprintf(" shutdown=%q", err)
		}
		fmt.Printf("app stop version=%s pod=%s requests=%d errors=%d%s\n", c.version, c.pod, a.requests.Load(), a.errors.Load(), detail)
		os.Exit(code)
	}
}
