package jwtauth

import (
	"net/http"
	"regexp"
	"strings"
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
	// refusals and throttled count /token refusals (the login path, never
	// the check path); clientCANotAfter is when the first certificate of
	// the --client-ca bundle expires.
	refusals         *prometheus.CounterVec
	throttled        *prometheus.CounterVec
	clientCANotAfter prometheus.Gauge
}

var (
	allowReasons = []string{reasonAllowToken, reasonAllowClientCert}
	denyReasons  = []string{
		reasonMissingCredentials, reasonBadAuthorization, reasonTokenTooLarge, reasonMalformed,
		reasonBadSignature, reasonUnknownKID, reasonExpired, reasonNotYetValid, reasonBadIssuer,
		reasonBadAudience, reasonMissingClaim, reasonInvalidClaims, reasonBadPath, reasonPathNotAllowed,
		reasonOriginNotAllowed, reasonBadClientCert, reasonUntrustedCert, reasonExpiredCert,
		reasonClientNotAllowed, reasonForeignCertHeader, reasonCertNotCurrent, reasonNonCanonicalSig, reasonLifetimeTooLong,
		reasonDuplicateCertHeader, reasonCertHeaderComma, reasonMultipleLeafCerts,
	}
	grantLabels = []string{GrantPassword, GrantClientCert, GrantTokenExchange, "other", ""}
	// throttleLimits are the label values of jwt_auth_login_throttled_total.
	throttleLimits = []string{throttleSource, throttleUsername, throttleBusy}
)

const (
	throttleSource   = "source"
	throttleUsername = "username"
	throttleBusy     = "busy"
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
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jwt_auth_token_refusals_total",
			Help: "POST /token refusals by reason (bad_credentials, throttled, busy, bad_request, the client-certificate reasons, ...).",
		}, []string{"reason"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jwt_auth_login_throttled_total",
			Help: "POST /token attempts refused by login throttling, by limit: source (per address), username, busy (password hashing at capacity).",
		}, []string{"limit"}),
		clientCANotAfter: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "jwt_auth_client_ca_not_after_timestamp_seconds",
			Help: "Expiry (Unix time) of the first certificate of the --client-ca bundle to expire; 0 without client certificates.",
		}),
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
	for _, r := range []string{"changed", "unchanged", "error"} {
		m.reloads.WithLabelValues(r)
	}
	for _, l := range throttleLimits {
		m.throttled.WithLabelValues(l)
	}
	for _, r := range []string{"bad_credentials", "throttled", "busy", reasonOverloaded} {
		m.refusals.WithLabelValues(r)
	}
	m.reg.MustRegister(m.decisions, m.grants, m.minted, latency, m.keys, m.reloads, m.refusals, m.throttled, m.clientCANotAfter,
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

// refused counts a /token refusal; the reasons come from a fixed set in the code.
func (m *metrics) refused(reason string) { m.refusals.WithLabelValues(reason).Inc() }

func (m *metrics) throttle(limit string) { m.throttled.WithLabelValues(limit).Inc() }

// MetricType is the Prometheus type of one metric family jwt-auth exports.
type MetricType string

// MetricNames lists every metric family jwt-auth's /metrics serves, read from the registry
// itself (the alerts and dashboard are checked against it), with its type.
func MetricNames() (map[string]MetricType, error) {
	fams, err := newMetrics().reg.Gather()
	if err != nil {
		return nil, err
	}
	out := map[string]MetricType{}
	for _, f := range fams {
		out[f.GetName()] = MetricType(strings.ToLower(f.GetType().String()))
	}
	return out, nil
}

func (m *metrics) observe(endpoint string, d time.Duration) {
	m.latency[endpoint].Observe(d.Seconds())
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
