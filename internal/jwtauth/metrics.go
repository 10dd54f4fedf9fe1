package jwtauth

import (
	"net/http"
	"regexp"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const (
	endpointCheck = "check"
	endpointToken = "token"
)

// metrics uses its own registry so several Servers (tests) can coexist.
// Label values come from fixed sets; the hot path looks counters up in
// maps built at start instead of calling WithLabelValues per request.
type metrics struct {
	reg       *prometheus.Registry
	decisions *prometheus.CounterVec
	allow     map[string]prometheus.Counter
	deny      map[string]prometheus.Counter
	grants    *prometheus.CounterVec
	minted    *prometheus.CounterVec
	latency   map[string]prometheus.Observer
	keys      prometheus.Gauge
	reloads   *prometheus.CounterVec
}

var (
	allowReasons = []string{reasonAllowToken, reasonAllowClientCert}
	denyReasons  = []string{
		reasonMissingCredentials, reasonBadAuthorization, reasonTokenTooLarge, reasonMalformed,
		reasonBadSignature, reasonUnknownKID, reasonExpired, reasonNotYetValid, reasonBadIssuer,
		reasonBadAudience, reasonMissingClaim, reasonInvalidClaims, reasonBadPath, reasonPathNotAllowed,
		reasonOriginNotAllowed, reasonBadClientCert, reasonUntrustedCert, reasonExpiredCert,
		reasonClientNotAllowed, reasonForeignCertHeader, reasonCertNotCurrent, reasonNonCanonicalSig, reasonLifetimeTooLong,
	}
	grantLabels = []string{GrantPassword, GrantClientCert, GrantTokenExchange, "other", ""}
)

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jwt_auth_decisions_total",
			Help: "ext_authz check decisions by result (allow/deny) and reason.",
		}, []string{"result", "reason"}),
		grants: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jwt_auth_token_requests_total",
			Help: "POST /token requests by grant type and result (issued/refused).",
		}, []string{"grant", "result"}),
		minted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jwt_auth_tokens_minted_total",
			Help: "Access tokens minted by grant type.",
		}, []string{"grant"}),
		keys: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "jwt_auth_signing_keys",
			Help: "Verification keys currently loaded.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jwt_auth_key_reloads_total",
			Help: "Signing-key directory reloads by result (changed/unchanged/error).",
		}, []string{"result"}),
		allow:   map[string]prometheus.Counter{},
		deny:    map[string]prometheus.Counter{},
		latency: map[string]prometheus.Observer{},
	}
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "jwt_auth_request_duration_seconds",
		Help:    "Handling time of /auth checks and /token requests.",
		Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .05, .25, 1},
	}, []string{"endpoint"})
	for _, r := range allowReasons {
		m.allow[r] = m.decisions.WithLabelValues("allow", r)
	}
	for _, r := range denyReasons {
		m.deny[r] = m.decisions.WithLabelValues("deny", r)
	}
	for _, g := range grantLabels {
		m.grants.WithLabelValues(g, "issued")
		m.grants.WithLabelValues(g, "refused")
	}
	for _, g := range grantLabels[:3] {
		m.minted.WithLabelValues(g)
	}
	for _, e := range []string{endpointCheck, endpointToken} {
		m.latency[e] = latency.WithLabelValues(e)
	}
	m.reg.MustRegister(m.decisions, m.grants, m.minted, latency, m.keys, m.reloads,
		// go_gc_heap_live_bytes: the heap the last GC kept, the figure
		// that shows whether client input can make us hold memory.
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
			collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/live:bytes$`)})), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) decision(allowed bool, reason string) {
	tbl := m.deny
	if allowed {
		tbl = m.allow
	}
	if c := tbl[reason]; c != nil {
		c.Inc()
		return
	}
	res := "deny"
	if allowed {
		res = "allow"
	}
	m.decisions.WithLabelValues(res, reason).Inc() // unknown reason: still counted
}

func (m *metrics) grantResult(grant string, issued bool) {
	res := "refused"
	if issued {
		res = "issued"
		m.minted.WithLabelValues(grant).Inc()
	}
	m.grants.WithLabelValues(grant, res).Inc()
}

func (m *metrics) observe(endpoint string, d time.Duration) {
	m.latency[endpoint].Observe(d.Seconds())
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
