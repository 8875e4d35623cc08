package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func env(m map[string]string) func(string, string) string {
	return func(k, def string) string {
		if v, ok := m[k]; ok {
			return v
		}
		return def
	}
}

func get(t *testing.T, h http.Handler, path string) (int, map[string]string, http.Header) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("%s: body %q is not JSON: %v", path, rec.Body.String(), err)
	}
	return rec.Code, body, rec.Header()
}

func TestVersionOnEveryPath(t *testing.T) {
	c, err := parseConfig(env(map[string]string{"VERSION": "v2"}))
	if err != nil {
		t.Fatal(err)
	}
	c.pod = "web-1"
	h := newApp(c, time.Now).routes()
	for _, p := range []string{"/", "/any/path"} {
		code, body, hdr := get(t, h, p)
		if code != 200 || body["version"] != "v2" || body["pod"] != "web-1" || hdr.Get("X-Version") != "v2" {
			t.Errorf("%s: got %d %v X-Version=%q", p, code, body, hdr.Get("X-Version"))
		}
	}
}

func TestErrorRateIsDeterministic(t *testing.T) {
	c, _ := parseConfig(env(map[string]string{"ERROR_RATE": "0.25"}))
	h := newApp(c, time.Now).routes()
	var failed []int
	for n := 1; n <= 12; n++ {
		if code, _, _ := get(t, h, "/"); code == 500 {
			failed = append(failed, n)
		}
		get(t, h, "/ready") // probes do not count
	}
	if len(failed) != 3 || failed[0] != 4 || failed[1] != 8 || failed[2] != 12 {
		t.Errorf("ERROR_RATE=0.25: failed requests %v, want [4 8 12]", failed)
	}
}

func TestReadiness(t *testing.T) {
	clock := time.Unix(1000, 0)
	now := func() time.Time { return clock }
	for _, tc := range []struct {
		ready string
		at    time.Duration
		want  int
	}{
		{"always", 0, 200}, {"never", time.Hour, 503}, {"after=2.5", 2 * time.Second, 503}, {"after=2.5", 3 * time.Second, 200},
	} {
		c, err := parseConfig(env(map[string]string{"READY": tc.ready}))
		if err != nil {
			t.Fatal(err)
		}
		clock = time.Unix(1000, 0)
		a := newApp(c, now)
		clock = clock.Add(tc.at)
		if code, _, _ := get(t, a.routes(), "/ready"); code != tc.want {
			t.Errorf("READY=%s at +%s: /ready %d, want %d", tc.ready, tc.at, code, tc.want)
		}
		if code, _, _ := get(t, a.routes(), "/healthz"); code != 200 {
			t.Errorf("READY=%s: /healthz %d, want 200", tc.ready, code)
		}
	}
}

func TestDrainingIsUnreadyButServes(t *testing.T) {
	c, _ := parseConfig(env(nil))
	a := newApp(c, time.Now)
	a.draining.Store(true)
	if code, body, _ := get(t, a.routes(), "/ready"); code != 503 || body["status"] != "draining" {
		t.Errorf("draining: /ready %d %v, want 503 draining", code, body)
	}
	if code, _, _ := get(t, a.routes(), "/"); code != 200 {
		t.Errorf("draining: / %d, want 200", code)
	}
}

func TestBadConfig(t *testing.T) {
	for _, m := range []map[string]string{{"READY": "soon"}, {"READY": "after=x"}, {"ERROR_RATE": "2"}, {"DRAIN_SECONDS": "-1"}} {
		if _, err := parseConfig(env(m)); err == nil {
			t.Errorf("%v: no error", m)
		}
	}
}
