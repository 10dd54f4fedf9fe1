package components

// Backend is one upstream service published through the edge (an element of ztedge:backends).
type Backend struct {
	// Name is a DNS label; it names the Mapping, the backend's certificate and its policies.
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// Service is the Kubernetes Service name (default: Name). Ambassador calls https://<service>.<namespace>:<port>.
	Service string `json:"service,omitempty"`
	Port    int    `json:"port"`
	// Prefix is the URL path prefix routed to the backend, e.g. /api/orders/.
	Prefix string `json:"prefix"`
	// PodSelector selects the backend's pods for its NetworkPolicies (default: app=<name>).
	PodSelector map[string]string `json:"podSelector,omitempty"`

	Origins     []string `json:"origins,omitempty"` // CORS origins (https://app.example.com); empty: no CORS
	Methods     []string `json:"methods,omitempty"` // CORS methods (default GET, POST)
	Headers     []string `json:"headers,omitempty"` // CORS request headers (default Authorization, Content-Type)
	Credentials bool     `json:"credentials,omitempty"`

	TimeoutMs      int             `json:"timeoutMs,omitempty"` // default 15000
	RateLimit      *RateLimit      `json:"rateLimit,omitempty"`
	CircuitBreaker *CircuitBreaker `json:"circuitBreaker,omitempty"`
	Retries        *Retries        `json:"retries,omitempty"`
}

// RateLimit caps requests per client (per X-User-ID or source address) to one backend.
type RateLimit struct {
	RequestsPerUnit int    `json:"requestsPerUnit"`
	Unit            string `json:"unit"` // second, minute, hour
}

// CircuitBreaker bounds what Ambassador sends to one backend (Envoy circuit breakers).
type CircuitBreaker struct {
	MaxConnections     int `json:"maxConnections,omitempty"`
	MaxPendingRequests int `json:"maxPendingRequests,omitempty"`
	MaxRequests        int `json:"maxRequests,omitempty"`
	MaxRetries         int `json:"maxRetries,omitempty"`
}

// Retries is the Mapping retry policy.
type Retries struct {
	RetryOn         string `json:"retryOn"` // e.g. "5xx", "gateway-error", "connect-failure"
	NumRetries      int    `json:"numRetries"`
	PerTryTimeoutMs int    `json:"perTryTimeoutMs,omitempty"`
}

// TrustedClient is an application that authenticates with a client certificate issued by the
// stack's CA (an element of ztedge:trustedClients). Its certificate subject CN is Name.
type TrustedClient struct {
	Name        string   `json:"name"`
	Permissions []string `json:"permissions,omitempty"`
	Services    []string `json:"services"` // path prefixes it may call
	Origins     []string `json:"origins,omitempty"`
}

// ServiceName is the backend's Kubernetes Service name.
func (b Backend) ServiceName() string {
	if b.Service != "" {
		return b.Service
	}
	return b.Name
}

// Selector is the label selector of the backend's pods.
func (b Backend) Selector() map[string]string {
	if len(b.PodSelector) > 0 {
		return b.PodSelector
	}
	return map[string]string{"app": b.Name}
}
