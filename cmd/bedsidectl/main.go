// Command bedsidectl is the reference client of a Bedside hub: a thin
// command line over package clientsdk, for trying a hub out, scripting it
// and testing it end to end. Messages are sealed and opened on this machine;
// the hub sees ciphertext only.
//
// Usage:
//
//	bedsidectl [--profile DIR] [--timeout D] COMMAND [ARGS]
//
//	init --server URL --token TOKEN [--insecure] [--user-key FILE | --new-user-key]
//	                                     create keys, save the profile, register the device;
//	                                     --insecure allows http:// to a host that is not loopback;
//	                                     a user's later devices need the user key of the first
//	user-key export FILE                 write the user key (a secret, mode 0600) for a new device
//	verify [--accept [--expect DIGITS]] USER
//	                                     the safety number to compare with USER, its QR payload and
//	                                     USER's devices; fails on a changed key until --accept, which
//	                                     trusts the key of the number it prints (or only if DIGITS)
//	consent grant [--scope chat|video|reporting] [--policy-version V] [--policy-file F] [--for PATIENT]
//	consent withdraw ID
//	consent list
//	session create --with USER [--with USER...]   prints the session id
//	session add SESSION USER             add a member; they get messages from now on
//	session accept SESSION USER          seal for a member someone else added (send refuses until then)
//	session close SESSION                make it read-only (prints ID STATE)
//	session list                         ID STATE HEADSEQ USER:READSEQ,...
//	send SESSION TEXT                    prints the seq
//	history SESSION                      one line per message: SEQ SENDERUSER TEXT
//	listen                               the same lines as messages arrive, until SIGINT/SIGTERM;
//	                                     session events and receipts go to stderr
//	read SESSION SEQ                     move the read cursor
//	call [--duration D] [--relay-only] [--loopback] SESSION
//	                                     check this device's path to the hub alone: synthetic VP8
//	                                     and Opus through the hub's SFU and back (echo); prints
//	                                     packets, loss, jitter, RTT and the path (sfu direct or
//	                                     sfu via turn) of what came back
//	call --p2p [--duration D] [--relay-only] [--loopback] SESSION
//	                                     a peer-to-peer test call to the session's other members,
//	                                     one of which runs call --answer; the path reads direct
//	                                     or turn
//	call --answer [--relay-only] [--loopback] SESSION
//	                                     wait for a --p2p call in SESSION, answer it with the same
//	                                     synthetic media until the caller hangs up
//
// The profile directory (default from BEDSIDE_PROFILE) holds the device's
// private keys, the listener's cursors and profile.json with the server URL
// and token, all readable by the owner only; a profile.json that group or
// others may read is refused. The token may also come from BEDSIDE_TOKEN at
// init. Errors go to stderr with exit status 1, usage errors with 2.
// Neither the token nor any key is ever printed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// errUsage marks a command line that does not parse; its message has been
// printed already.
var errUsage = errors.New("usage")

// env is what one invocation runs with.
type env struct {
	profile string
	timeout time.Duration
	getenv  func(string) string
	stdout  io.Writer
	stderr  io.Writer
}

const usage = `usage: bedsidectl [--profile DIR] [--timeout D] COMMAND [ARGS]

commands:
  init --server URL --token TOKEN [--insecure] [--user-key FILE | --new-user-key]
  user-key export FILE
  verify [--accept [--expect DIGITS]] USER
  consent grant [--scope S] [--policy-version V] [--policy-file F] [--for PATIENT] | consent withdraw ID | consent list
  session create --with USER [--with USER...] | session add SESSION USER | session accept SESSION USER
  session close SESSION | session list
  send SESSION TEXT
  history SESSION
  listen
  read SESSION SEQ
  call [--duration D] [--relay-only] [--loopback] [--p2p | --answer] SESSION

--profile defaults to $BEDSIDE_PROFILE; --token to $BEDSIDE_TOKEN.
`

// run executes one command line and returns the exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	e := env{getenv: getenv, stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("bedsidectl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	fs.StringVar(&e.profile, "profile", getenv("BEDSIDE_PROFILE"), "profile `directory`")
	fs.DurationVar(&e.timeout, "timeout", 30*time.Second,
		"give up on a command (not listen or call) after `duration`")
	if err := fs.Parse(args); err != nil {
		return exitCode(stderr, errUsage)
	}
	if fs.NArg() == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	if e.profile == "" {
		fmt.Fprintln(stderr, "bedsidectl: --profile or BEDSIDE_PROFILE is required")
		return 2
	}

	cmd, rest := fs.Arg(0), fs.Args()[1:]
	if cmd != "listen" && cmd != "call" && e.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.timeout)
		defer cancel()
	}
	return exitCode(stderr, e.dispatch(ctx, cmd, rest))
}

func (e *env) dispatch(ctx context.Context, cmd string, args []string) error {
	switch cmd {
	case "init":
		return e.initCmd(ctx, args)
	case "consent":
		return e.consentCmd(ctx, args)
	case "session":
		return e.sessionCmd(ctx, args)
	case "send":
		return e.sendCmd(ctx, args)
	case "history":
		return e.historyCmd(ctx, args)
	case "listen":
		return e.listenCmd(ctx, args)
	case "read":
		return e.readCmd(ctx, args)
	case "verify":
		return e.verifyCmd(ctx, args)
	case "user-key":
		return e.userKeyCmd(ctx, args)
	case "call":
		return e.callCmd(ctx, args)
	}
	return e.usageError("unknown command %q", cmd)
}

// usageError prints a usage complaint and returns errUsage.
func (e *env) usageError(format string, args ...any) error {
	fmt.Fprintf(e.stderr, "bedsidectl: "+format+"\n", args...)
	return errUsage
}

func exitCode(stderr io.Writer, err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintf(stderr, "bedsidectl: %v\n", err)
	return 1
}

// flags returns a flag set for a subcommand that prints its usage line.
func (e *env) flags(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: bedsidectl %s %s\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args into fs and checks the number of positional arguments.
func (e *env) parse(fs *flag.FlagSet, args []string, positional int) ([]string, error) {
	if err := fs.Parse(args); err != nil {
		return nil, errUsage
	}
	if fs.NArg() != positional {
		e.argCount(fs, positional)
		fs.Usage()
		return nil, errUsage
	}
	return fs.Args(), nil
}

// argCount says what is wrong with the positional arguments of fs: Go's
// flag package stops at the first of them, so a flag after one is taken as
// one more argument.
func (e *env) argCount(fs *flag.FlagSet, want int) {
	hint := ""
	for _, a := range fs.Args() {
		if strings.HasPrefix(a, "-") {
			hint = fmt.Sprintf(" (%s: flags go before the arguments)", a)
			break
		}
	}
	fmt.Fprintf(e.stderr, "bedsidectl: %s takes %d argument(s), got %d%s\n",
		fs.Name(), want, fs.NArg(), hint)
}
