package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/ztedge/ztedge/internal/metricsrelay"
)

// metricsRelay runs `jwt-auth metrics-relay`: a sidecar of the Ambassador pod that gives
// Prometheus Envoy's statistics on a port of its own, so that no scraper needs Emissary's admin
// port (internal/metricsrelay says why). It ships in the jwt-auth image: the edge runs no second
// image of ours.
func metricsRelay(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("metrics-relay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", ":9103", "address serving GET /metrics")
	upstream := fs.String("upstream", metricsrelay.EnvoyStats, "Envoy's Prometheus statistics (its loopback admin listener)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	srv := metricsrelay.Server(*listen, metricsrelay.New(*upstream, log), log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("metrics relay listening", slog.String("addr", *listen), slog.String("upstream", *upstream))
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	if err := srv.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
