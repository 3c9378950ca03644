package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/bedside/bedside/clientsdk"
)

// profile is what init saves beside the keys: where the hub is and the
// token to show it. It holds a secret and is written with mode 0600.
// Insecure records init's --insecure: plain http to a host that is not
// loopback is allowed.
type profile struct {
	Server   string `json:"server"`
	Token    string `json:"token"`
	Insecure bool   `json:"insecure,omitempty"`
}

const profileFile = "profile.json"

// errNoProfile says that init has not been run for a profile.
var errNoProfile = errors.New("no profile here; run bedsidectl init first")

// errProfileMode says that profile.json, which holds the token, may be read
// by others.
var errProfileMode = errors.New("profile holds the token but group or others may read it")

// loadProfile reads profile.json, refusing one that group or others may
// read, as the key store refuses such an identity.key.
func loadProfile(dir string) (profile, error) {
	path := filepath.Join(dir, profileFile)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return profile{}, fmt.Errorf("%s: %w", dir, errNoProfile)
	}
	if err != nil {
		return profile{}, err
	}
	defer f.Close()

	fi, err := f.Stat()
	if err != nil {
		return profile{}, err
	}
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return profile{}, fmt.Errorf("%s has mode %v: %w; run chmod 600 %s",
			path, perm, errProfileMode, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxProfileBytes+1))
	if err != nil {
		return profile{}, err
	}
	if len(b) > maxProfileBytes {
		return profile{}, fmt.Errorf("%s is corrupt: larger than %d bytes", profileFile, maxProfileBytes)
	}
	return decodeProfile(b)
}

// maxProfileBytes bounds what loadProfile reads.
const maxProfileBytes = 1 << 20

// decodeProfile decodes profile.json, which a user may have edited.
func decodeProfile(b []byte) (profile, error) {
	var p profile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return profile{}, fmt.Errorf("%s is corrupt: %w", profileFile, err)
	}
	if p.Server == "" || p.Token == "" {
		return profile{}, fmt.Errorf("%s is corrupt: server or token missing", profileFile)
	}
	return p, nil
}

// saveProfile writes profile.json with mode 0600, replacing it atomically:
// a temporary file in the same directory, synced, then renamed.
func saveProfile(dir string, p profile) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+profileFile+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, werr := f.Write(append(b, '\n'))
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return err
	}
	return os.Rename(f.Name(), filepath.Join(dir, profileFile))
}

// openClient opens the SDK client of a saved profile.
func (e *env) openClient(ctx context.Context) (*clientsdk.Client, error) {
	p, err := loadProfile(e.profile)
	if err != nil {
		return nil, err
	}
	return e.openWith(ctx, p)
}

func (e *env) openWith(ctx context.Context, p profile) (*clientsdk.Client, error) {
	ks, err := clientsdk.FileKeyStore(e.profile)
	if err != nil {
		return nil, err
	}
	return clientsdk.Open(ctx, clientsdk.Config{
		ServerURL:         p.Server,
		Token:             p.Token,
		KeyStore:          ks,
		AllowInsecureHTTP: p.Insecure,
	})
}
