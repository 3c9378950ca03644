package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"time"

	"github.com/bedside/bedside/hub"
	"github.com/bedside/bedside/hub/auth"
	"github.com/bedside/bedside/hub/wire"
	"github.com/bedside/bedside/storage/audit"
	"github.com/bedside/bedside/storage/boltstore"
	"github.com/bedside/bedside/storage/report"
)

// reportCmd runs `bedside report`: the de-identified usage report, built
// offline from the data directory with the columns the configuration's
// reports section names, or asked of the running hub with --server, which
// uses its own. Either way the read is audited.
func reportCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, f := adminFlags("bedside report", stderr)
	from := fs.String("from", "", "first ISO `week`, e.g. 2026-W01 (default: 12 weeks before --to)")
	to := fs.String("to", "", "last ISO `week` (default: the last week that has ended)")
	format := fs.String("format", "json", "json or csv")
	server := fs.String("server", "", "ask the running hub at `URL` (e.g. http://127.0.0.1:8080) instead")
	token := fs.String("token", "", "with --server, an auditor or admin `token` to ask with "+
		"(env BEDSIDE_TOKEN; default: one minted with the data directory's token.key)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 || (*format != "json" && *format != "csv") || (*token != "" && *server == "") {
		fmt.Fprintln(stderr, "usage: bedside report [--from WEEK] [--to WEEK] [--format json|csv] "+
			"[--server URL [--token TOKEN]] [--data DIR | --config FILE]")
		return errUsage
	}
	cfg, err := loadConfig(fs, f, getenv)
	if err != nil {
		return err
	}
	if *server != "" {
		tok := cmp.Or(*token, getenv("BEDSIDE_TOKEN"))
		return fetchReport(ctx, cfg, *server, tok, *from, *to, *format, stdout)
	}

	now := time.Now()
	first, last, err := report.ParseRange(*from, *to, now)
	if err != nil {
		return err
	}
	store, err := boltstore.Open(filepath.Join(cfg.Data, dbFile), boltstore.Options{})
	if errors.Is(err, boltstore.ErrLocked) {
		return fmt.Errorf("%w: the server is running; ask it with --server http://%s", err, cfg.Listen)
	}
	if err != nil {
		return err
	}
	defer store.Close()

	rep, err := hub.UsageReport(ctx, store, cfg.Reports, first, last, now)
	rec := audit.Record{Time: now, Actor: "bedside", Role: "system", Action: "report.read",
		Target: fmt.Sprintf("usage:%v..%v", first, last), Outcome: audit.OK}
	if err != nil {
		rec.Outcome = "failed"
	}
	if aerr := store.AppendAudit(ctx, []audit.Record{rec}); aerr != nil || err != nil {
		return errors.Join(err, aerr)
	}
	return writeReport(stdout, *format, rep)
}

func writeReport(w io.Writer, format string, rep wire.UsageReport) error {
	if format == "csv" {
		return hub.WriteUsageCSV(w, rep)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// fetchReport asks the running hub for the report with token, or, if
// empty, a short-lived auditor token minted from the key in the data
// directory.
func fetchReport(ctx context.Context, cfg config, server, token, from, to, format string,
	stdout io.Writer) error {
	if token == "" {
		key, err := auth.LoadKey(filepath.Join(cfg.Data, keyFile))
		if err != nil {
			return fmt.Errorf("%w (give an auditor token with --token or BEDSIDE_TOKEN)", err)
		}
		if token, err = auth.Mint(key, "bedside-report", "auditor", 5*time.Minute, time.Now()); err != nil {
			return err
		}
	}
	q := url.Values{"format": {format}}
	for name, v := range map[string]string{"from": from, "to": to} {
		if v != "" {
			q.Set(name, v)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, server+"/v1/reports/usage?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reach the hub: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("the hub answered %d: %s", resp.StatusCode, b)
	}
	if format == "csv" {
		_, err = io.Copy(stdout, resp.Body)
		return err
	}
	var rep wire.UsageReport
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		return fmt.Errorf("read the report: %w", err)
	}
	return writeReport(stdout, format, rep)
}
