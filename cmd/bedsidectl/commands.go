package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"unicode"

	"github.com/bedside/bedside/clientsdk"
	"github.com/bedside/bedside/hub/wire"
)

func (e *env) initCmd(ctx context.Context, args []string) error {
	fs := e.flags("init", "--server URL --token TOKEN [--insecure] [--user-key FILE | --new-user-key]")
	server := fs.String("server", "", "hub base `URL`, such as https://hub.example.org")
	token := fs.String("token", "", "bearer `token` (default $BEDSIDE_TOKEN)")
	insecure := fs.Bool("insecure", false,
		"allow a plain http:// URL to a host that is not loopback; the token then crosses the network in clear")
	userKey := fs.String("user-key", "", "the user key `file` exported on another device of this user")
	newKey := fs.Bool("new-user-key", false,
		"start the user's keys over (every other device lost); contacts see a changed safety number")
	if _, err := e.parse(fs, args, 0); err != nil {
		return err
	}
	if *userKey != "" && *newKey {
		return e.usageError("init takes --user-key or --new-user-key, not both")
	}
	if *token == "" {
		*token = e.getenv("BEDSIDE_TOKEN")
	}
	if *server == "" || *token == "" {
		return e.usageError("init needs --server and --token")
	}

	p := profile{Server: *server, Token: *token, Insecure: *insecure}
	c, err := e.openWith(ctx, p)
	if err != nil {
		return err
	}
	defer c.Close()
	d, err := e.register(ctx, c, *userKey, *newKey)
	if err != nil {
		return err
	}
	if err := saveProfile(e.profile, p); err != nil {
		return fmt.Errorf("save profile: %w", err)
	}
	fmt.Fprintf(e.stdout, "user %s\ndevice %s\nfingerprint %s\n", d.User, c.DeviceID(), c.Fingerprint())
	return nil
}

// register registers the device, with the user key from keyFile, or a new
// user key when replace is set.
func (e *env) register(ctx context.Context, c *clientsdk.Client, keyFile string, replace bool) (wire.Device, error) {
	if replace {
		return c.ReplaceUserKey(ctx)
	}
	if keyFile != "" {
		b, err := readSecretFile(keyFile)
		if err != nil {
			return wire.Device{}, err
		}
		if err := c.ImportUserKey(ctx, b); err != nil {
			return wire.Device{}, err
		}
	}
	d, err := c.Register(ctx)
	if errors.Is(err, clientsdk.ErrNoUserKey) {
		return wire.Device{}, fmt.Errorf("%w\n(run `bedsidectl user-key export FILE` on another device of this user "+
			"and `bedsidectl init ... --user-key FILE` here, or --new-user-key if every other device is lost)", err)
	}
	return d, err
}

// readSecretFile reads a key file that must be readable by its owner only.
func readSecretFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s has mode %v: a key file must be readable by its owner only (chmod 600)",
			path, fi.Mode().Perm())
	}
	return os.ReadFile(path)
}

// userKeyCmd exports the user key to a file, for another device of the user.
func (e *env) userKeyCmd(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "export" {
		return e.usageError("user-key needs export FILE")
	}
	fs := e.flags("user-key export", "FILE")
	pos, err := e.parse(fs, args[1:], 1)
	if err != nil {
		return err
	}
	return e.withClient(ctx, func(c *clientsdk.Client) error {
		b, err := c.ExportUserKey(ctx)
		if err != nil {
			return err
		}
		f, err := os.OpenFile(pos[0], os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if _, err := f.Write(b); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
}

// verifyCmd prints the safety number of this user and another, the QR
// payload, and the other user's trusted devices. A changed user key is
// shown and fails the command until --accept.
func (e *env) verifyCmd(ctx context.Context, args []string) error {
	fs := e.flags("verify", "[--accept [--expect DIGITS]] USER")
	accept := fs.Bool("accept", false, "trust the user's new key, after comparing the new safety number")
	expect := fs.String("expect", "", "with --accept: the `digits` compared; accept only if they are still shown")
	pos, err := e.parse(fs, args, 1)
	if err != nil {
		return err
	}
	user := pos[0]
	return e.withClient(ctx, func(c *clientsdk.Client) error {
		sn, err := c.Safety(ctx, user)
		if err != nil {
			return err
		}
		e.printSafety(sn)
		if *expect != "" && strings.ReplaceAll(*expect, " ", "") != strings.ReplaceAll(sn.Number, " ", "") {
			return fmt.Errorf("%w: the safety number shown now is not the one given with --expect; nothing accepted",
				clientsdk.ErrKeyChanged)
		}
		if sn.Changed && *accept {
			// The key accepted is the one whose number was just printed.
			if err := c.AcceptUserKey(ctx, sn); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "accepted the new key of %s\n", printable(user))
			sn.Changed = false
		}
		if sn.Changed {
			return fmt.Errorf("%w: the user key of %s is not the one first seen: compare the safety number above "+
				"with %s by a channel you trust, then run `bedsidectl verify --accept --expect DIGITS %s`",
				clientsdk.ErrKeyChanged, printable(user), printable(user), printable(user))
		}
		devs, err := c.Devices(ctx, user)
		if err != nil {
			return err
		}
		for _, d := range devs {
			fmt.Fprintf(e.stdout, "device %s %s\n", d.ID, d.Fingerprint)
		}
		return nil
	})
}

// printSafety writes the safety number in three lines of four groups, and
// the QR payload in hex.
func (e *env) printSafety(sn clientsdk.SafetyNumber) {
	groups := strings.Fields(sn.Number)
	fmt.Fprintf(e.stdout, "safety number with %s:\n", printable(sn.User))
	for i := 0; i < len(groups); i += 4 {
		fmt.Fprintf(e.stdout, "  %s\n", strings.Join(groups[i:min(i+4, len(groups))], " "))
	}
	fmt.Fprintf(e.stdout, "qr %s\n", hex.EncodeToString(sn.QR))
}

func (e *env) consentCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return e.usageError("consent needs grant, withdraw or list")
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "grant":
		fs := e.flags("consent grant",
			"[--scope chat|video|reporting] [--policy-version V] [--policy-file F] [--for PATIENT]")
		scope := fs.String("scope", wire.ScopeChat, "what the consent covers: chat, video or reporting")
		policy := fs.String("policy-version", "1", "version of the consent text the patient was shown")
		policyFile := fs.String("policy-file", "", "the consent `text` the patient was shown; its SHA-256 is recorded")
		forUser := fs.String("for", "", "staff: the `patient` whose consent you record")
		if _, err := e.parse(fs, args, 0); err != nil {
			return err
		}
		req := wire.ConsentRequest{Scope: *scope, PolicyVersion: *policy, User: *forUser}
		if *policyFile != "" {
			text, err := os.ReadFile(*policyFile)
			if err != nil {
				return err
			}
			req.PolicyHash = clientsdk.PolicyHash(string(text))
		}
		return e.withClient(ctx, func(c *clientsdk.Client) error {
			rec, err := c.RecordConsent(ctx, req)
			if err == nil {
				fmt.Fprintln(e.stdout, rec.ID)
			}
			return err
		})
	case "withdraw":
		pos, err := e.parse(e.flags("consent withdraw", "ID"), args, 1)
		if err != nil {
			return err
		}
		return e.withClient(ctx, func(c *clientsdk.Client) error {
			rec, err := c.WithdrawConsent(ctx, pos[0])
			if err == nil {
				fmt.Fprintln(e.stdout, rec.ID)
			}
			return err
		})
	case "list":
		if _, err := e.parse(e.flags("consent list", ""), args, 0); err != nil {
			return err
		}
		return e.withClient(ctx, func(c *clientsdk.Client) error {
			recs, err := c.Consents(ctx)
			for _, r := range recs {
				fmt.Fprintln(e.stdout, consentLine(r))
			}
			return err
		})
	}
	return e.usageError("unknown consent command %q", sub)
}

// consentLine is ID KIND SCOPE ACTIVE|- POLICY|WITHDRAWS TIME.
func consentLine(r wire.Consent) string {
	state := "-"
	if r.Kind == wire.ConsentGrant {
		state = map[bool]string{true: "active", false: "withdrawn"}[r.Active]
	}
	ref := r.PolicyVersion
	if r.Withdraws != "" {
		ref = r.Withdraws
	}
	at := r.At.UTC().Format("2006-01-02T15:04:05Z")
	return strings.Join([]string{r.ID, r.Kind, r.Scope, state, orDash(ref), at}, " ")
}

func (e *env) sessionCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return e.usageError("session needs create, add, accept, close or list")
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "create":
		fs := e.flags("session create", "--with USER [--with USER...]")
		var with listFlag
		fs.Var(&with, "with", "a `user` to chat with (repeatable)")
		if _, err := e.parse(fs, args, 0); err != nil {
			return err
		}
		if len(with) == 0 {
			return e.usageError("session create needs --with USER")
		}
		return e.withClient(ctx, func(c *clientsdk.Client) error {
			s, err := c.CreateSession(ctx, with...)
			if err == nil {
				fmt.Fprintln(e.stdout, s.ID)
			}
			return err
		})
	case "add":
		pos, err := e.parse(e.flags("session add", "SESSION USER"), args, 2)
		if err != nil {
			return err
		}
		return e.withClient(ctx, func(c *clientsdk.Client) error {
			s, err := c.AddMember(ctx, pos[0], pos[1])
			if err == nil {
				fmt.Fprintln(e.stdout, s.ID)
			}
			return err
		})
	case "accept":
		pos, err := e.parse(e.flags("session accept", "SESSION USER"), args, 2)
		if err != nil {
			return err
		}
		return e.withClient(ctx, func(c *clientsdk.Client) error {
			return c.AcceptMembers(ctx, pos[0], pos[1])
		})
	case "close":
		pos, err := e.parse(e.flags("session close", "SESSION"), args, 1)
		if err != nil {
			return err
		}
		return e.withClient(ctx, func(c *clientsdk.Client) error {
			s, err := c.CloseSession(ctx, pos[0])
			if err == nil {
				fmt.Fprintln(e.stdout, s.ID, s.State)
			}
			return err
		})
	case "list":
		if _, err := e.parse(e.flags("session list", ""), args, 0); err != nil {
			return err
		}
		return e.withClient(ctx, func(c *clientsdk.Client) error {
			list, err := c.Sessions(ctx)
			for _, s := range list {
				var members []string
				for _, m := range s.Members {
					members = append(members, fmt.Sprintf("%s:%d", m.User, m.ReadSeq))
				}
				fmt.Fprintf(e.stdout, "%s %s %d %s\n", s.ID, s.State, s.HeadSeq, strings.Join(members, ","))
			}
			return err
		})
	}
	return e.usageError("unknown session command %q", sub)
}

func (e *env) sendCmd(ctx context.Context, args []string) error {
	pos, err := e.parse(e.flags("send", "SESSION TEXT"), args, 2)
	if err != nil {
		return err
	}
	return e.withClient(ctx, func(c *clientsdk.Client) error {
		out, err := c.Seal(ctx, pos[0], []byte(pos[1]))
		if errors.Is(err, clientsdk.ErrNewMember) {
			return fmt.Errorf("%w\n(nothing sent; once you know who joined, run `bedsidectl session accept %s USER`)",
				err, printable(pos[0]))
		}
		if err != nil {
			return err
		}
		for _, s := range out.Skipped {
			fmt.Fprintf(e.stderr, "bedsidectl: not sealed for %s\n", printable(s))
		}
		ack, err := c.Deliver(ctx, out)
		if err == nil {
			fmt.Fprintln(e.stdout, ack.Seq)
		}
		return err
	})
}

func (e *env) historyCmd(ctx context.Context, args []string) error {
	pos, err := e.parse(e.flags("history", "SESSION"), args, 1)
	if err != nil {
		return err
	}
	return e.withClient(ctx, func(c *clientsdk.Client) error {
		var after uint64
		for {
			page, err := c.History(ctx, pos[0], after, 0)
			if err != nil || len(page) == 0 {
				return err
			}
			for _, m := range page {
				e.printMessage(m)
			}
			after = page[len(page)-1].Seq
		}
	})
}

func (e *env) listenCmd(ctx context.Context, args []string) error {
	if _, err := e.parse(e.flags("listen", ""), args, 0); err != nil {
		return err
	}
	return e.withClient(ctx, func(c *clientsdk.Client) error {
		return c.Listen(ctx, func(ev clientsdk.Event) {
			switch ev.Kind {
			case clientsdk.EventMessage:
				e.printMessage(*ev.Message)
			case clientsdk.EventGap:
				fmt.Fprintf(e.stderr, "bedsidectl: session %s: messages %d to %d are gone\n",
					ev.SessionID, ev.Gap.After+1, ev.Gap.Next-1)
			case clientsdk.EventError:
				fmt.Fprintf(e.stderr, "bedsidectl: session %s: %v\n", ev.SessionID, ev.Err)
			case clientsdk.EventSession:
				fmt.Fprintf(e.stderr, "bedsidectl: session %s: %s %s\n",
					ev.SessionID, ev.Session.Reason, printable(ev.Session.User))
			case clientsdk.EventReceipt:
				fmt.Fprintf(e.stderr, "bedsidectl: session %s: %s read up to %d\n",
					ev.SessionID, printable(ev.Receipt.User), ev.Receipt.ReadSeq)
			case clientsdk.EventDisconnected:
				fmt.Fprintf(e.stderr, "bedsidectl: disconnected (%v); reconnecting\n", ev.Err)
			case clientsdk.EventDevice:
				e.printDeviceEvent(ev.Device)
			}
		})
	})
}

func (e *env) readCmd(ctx context.Context, args []string) error {
	pos, err := e.parse(e.flags("read", "SESSION SEQ"), args, 2)
	if err != nil {
		return err
	}
	seq, err := strconv.ParseUint(pos[1], 10, 64)
	if err != nil {
		return e.usageError("SEQ must be a number, not %q", pos[1])
	}
	return e.withClient(ctx, func(c *clientsdk.Client) error {
		r, err := c.MarkRead(ctx, pos[0], seq)
		if err == nil {
			fmt.Fprintln(e.stdout, r.ReadSeq)
		}
		return err
	})
}

// withClient opens the profile's client, runs fn and closes the client.
func (e *env) withClient(ctx context.Context, fn func(*clientsdk.Client) error) error {
	c, err := e.openClient(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(c)
}

// printDeviceEvent tells, on stderr, of a contact's device or key change.
func (e *env) printDeviceEvent(d *wire.DeviceEvent) {
	user := printable(d.User)
	switch {
	case d.KeyChanged:
		fmt.Fprintf(e.stderr, "bedsidectl: %s has a new user key: compare safety numbers (bedsidectl verify %s)\n",
			user, user)
	case d.Removed:
		fmt.Fprintf(e.stderr, "bedsidectl: %s removed device %s\n", user, printable(d.Device))
	case d.Device != "":
		fmt.Fprintf(e.stderr, "bedsidectl: %s added device %s\n", user, printable(d.Device))
	default:
		fmt.Fprintf(e.stderr, "bedsidectl: %s published device list version %d\n", user, d.ListVersion)
	}
}

// printMessage writes SEQ SENDERUSER TEXT, one line, to stdout. A message
// that did not open is reported on stderr in its place.
func (e *env) printMessage(m clientsdk.Message) {
	if m.Err != nil {
		fmt.Fprintf(e.stderr, "bedsidectl: message %d from %s: %v\n", m.Seq, printable(m.SenderUser), m.Err)
		return
	}
	fmt.Fprintf(e.stdout, "%d %s %s\n", m.Seq, printable(m.SenderUser), printable(string(m.Plaintext)))
}

// printable escapes what a peer could use to break the one-line format or
// to send escape sequences to the terminal: control and non-printing
// characters become Go escapes such as \n and \x1b.
func printable(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == ' ' || unicode.IsPrint(r):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// listFlag collects a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}
