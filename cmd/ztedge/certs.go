package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ztedge/ztedge/components"
	"github.com/ztedge/ztedge/stacks"
)

const certsHelp = `
Lists every certificate and signing key the stack manages — its CAs, Ambassador's server and
upstream certificates, each backend's and trusted client's certificate, the ACM certificate and
jwt-auth's signing keys — with the expiry and the next renewal, from the stack's outputs (what
the last up recorded; run refresh first to see ACM renewals). No certificate or key is printed.

Exit status 1 when something has expired or is past its renewal point (an up would re-issue it),
or, with --warn-days N, expires within N days: the renewal workflow runs it after up.
` + deployEnv

// errCertsNeedAttention is returned after the table when an entry is expired or due.
var errCertsNeedAttention = errors.New("certificates need attention")

func runCerts(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("certs", certsHelp, "  ztedge certs --stack prod\n  ztedge certs --stack prod --warn-days 30 --json", stderr)
	stack := fs.String("stack", "", "stack to read (required)")
	dir := fs.String("dir", "", "project directory with Pulumi.yaml (default: found upward from the working directory)")
	warnDays := fs.Int("warn-days", 0, "also fail when anything expires within this many days")
	asJSON := fs.Bool("json", false, "print the entries as JSON")
	install := installFlag(fs, stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := requireStack(*stack); err != nil {
		return err
	}
	if *warnDays < 0 {
		return usageError{fmt.Errorf("--warn-days %d: use 0 or more days", *warnDays)}
	}
	out, err := stacks.Outputs(ctx, *stack, stacks.AutoOptions{Dir: *dir, InstallCLI: install()})
	if err != nil {
		return classify(err)
	}
	certs, err := certificatesOutput(out["certificates"].Value)
	if err != nil {
		return err
	}
	return writeCerts(stdout, certs, time.Now().UTC(), time.Duration(*warnDays)*24*time.Hour, *asJSON)
}

// certificatesOutput decodes the `certificates` stack output.
func certificatesOutput(v any) ([]components.ManagedCertificate, error) {
	if v == nil {
		return nil, errors.New("the stack has no `certificates` output: run `ztedge up` with this version of ztedge first")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var certs []components.ManagedCertificate
	if err := json.Unmarshal(b, &certs); err != nil {
		return nil, fmt.Errorf("the `certificates` output is not a list of certificates: %w", err)
	}
	return certs, nil
}

// certStatus is what an entry needs: ok, due (past its renewal point: an up re-issues it), soon
// (expires within the warning window) or expired.
func certStatus(c components.ManagedCertificate, now time.Time, warn time.Duration) string {
	end, err := time.Parse(time.RFC3339, c.NotAfter)
	if err != nil {
		return "ok" // a signing key: no expiry
	}
	renew, _ := time.Parse(time.RFC3339, c.RenewAfter)
	switch {
	case !now.Before(end):
		return "EXPIRED"
	case c.RenewedBy == components.RenewedByUp && (c.ReadyForRenewal || !renew.IsZero() && !now.Before(renew)):
		return "due"
	case warn > 0 && end.Sub(now) <= warn:
		return "soon"
	}
	return "ok"
}

// renewal says in words who renews an entry and when.
func renewal(c components.ManagedCertificate) string {
	switch c.RenewedBy {
	case components.RenewedByACM:
		return "ACM renews it automatically"
	case components.RenewedByRotation:
		return "no expiry; phase " + c.Phase + ", rotate with authSigningKeys"
	}
	if c.RenewAfter == "" {
		return "ztedge up"
	}
	return "first `ztedge up` after " + displayTime(c.RenewAfter)
}

func displayTime(rfc3339 string) string {
	t, err := time.Parse(time.RFC3339, rfc3339)
	if err != nil {
		return rfc3339
	}
	return t.UTC().Format("2006-01-02 15:04")
}

func writeCerts(w io.Writer, certs []components.ManagedCertificate, now time.Time, warn time.Duration, asJSON bool) error {
	// Soonest expiry first; keys (no expiry) last.
	sort.SliceStable(certs, func(i, j int) bool {
		a, b := certs[i].NotAfter, certs[j].NotAfter
		return a != "" && (b == "" || a < b)
	})
	attention := 0
	type row struct {
		components.ManagedCertificate
		Status string `json:"status"`
	}
	rows := make([]row, len(certs))
	for i, c := range certs {
		rows[i] = row{c, certStatus(c, now, warn)}
		if rows[i].Status != "ok" {
			attention++
		}
	}
	if asJSON {
		b, err := json.MarshalIndent(rows, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s\n", b)
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tKIND\tEXPIRES (UTC)\tLEFT\tSTATUS\tRENEWAL")
		for _, r := range rows {
			expires, left := "-", "-"
			if end, err := time.Parse(time.RFC3339, r.NotAfter); err == nil {
				expires, left = displayTime(r.NotAfter), daysLeft(end.Sub(now))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Kind, expires, left, r.Status, renewal(r.ManagedCertificate))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if attention > 0 {
		return fmt.Errorf("%w: %d of %d expired, due for renewal or expiring soon (STATUS column): run `ztedge up`, and see the README's day-2 section",
			errCertsNeedAttention, attention, len(rows))
	}
	return nil
}

func daysLeft(d time.Duration) string {
	if d <= 0 {
		return "0d"
	}
	days := int(d.Hours() / 24)
	if days == 0 {
		return strings.TrimSuffix(d.Round(time.Hour).String(), "0m0s")
	}
	return fmt.Sprintf("%dd", days)
}
