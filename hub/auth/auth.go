// Package auth mints and checks the bearer tokens that identify Bedside users.
//
// A token is a JWT signed with HMAC-SHA256 under a key kept beside the data
// (token.key, mode 0600). It carries the user id (sub), the role and the
// expiry (exp), and may carry the user's report attributes (region,
// bucket; see docs/reports.md). `bedside token` mints one for testing and administration; a
// clinic's own login service mints the same tokens with the same key, so the
// hub never needs to know its users' passwords.
package auth

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Leeway is how far apart the clocks of the token minter and the hub may be.
const Leeway = 30 * time.Second

// KeySize is the length of a token-signing key in bytes.
const KeySize = 32

// Errors returned by this package.
var (
	ErrInvalidToken = errors.New("auth: invalid token")
	ErrExpired      = errors.New("auth: token expired")
	ErrBadClaims    = errors.New("auth: bad claims")
	ErrKeyFile      = errors.New("auth: bad key file")
)

var (
	// userPattern is what a user id may look like: it appears in URLs and
	// storage keys, so keep it plain.
	userPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$`)
	roles       = map[string]bool{"patient": true, "clinician": true, "admin": true, "auditor": true}
	// labelPattern is what a report attribute may look like: a short
	// label of the clinic's, shown as a column of reports.
	labelPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,31}$`)
	// reservedLabels name columns of every report.
	reservedLabels = map[string]bool{"other": true, "unknown": true, "total": true}
)

// ValidLabel reports whether s may be a region or bucket: 1-32 of a-z 0-9
// . _ -, starting with a letter or digit, and none of "other", "unknown"
// and "total".
func ValidLabel(s string) bool { return labelPattern.MatchString(s) && !reservedLabels[s] }

// ValidUser reports whether s is an acceptable user id.
func ValidUser(s string) bool { return userPattern.MatchString(s) }

// ValidRole reports whether s is one of the roles a token may carry.
func ValidRole(s string) bool { return roles[s] }

// Claims is what a valid token says.
type Claims struct {
	User    string
	Role    string
	Expires time.Time
	Issued  time.Time // zero when the token has no iat
	// Region and Bucket are the user's report attributes, empty when the
	// token does not carry them.
	Region, Bucket string
}

type jwtClaims struct {
	Role   string `json:"role"`
	Region string `json:"region,omitempty"`
	Bucket string `json:"bucket,omitempty"`
	jwt.RegisteredClaims
}

// An Option adds an optional claim to a token Mint signs.
type Option func(*jwtClaims)

// WithRegion sets the token's region claim, a ValidLabel.
func WithRegion(label string) Option { return func(c *jwtClaims) { c.Region = label } }

// WithBucket sets the token's bucket claim, a ValidLabel.
func WithBucket(label string) Option { return func(c *jwtClaims) { c.Bucket = label } }

// Mint signs a token for user with role that expires after ttl.
func Mint(key []byte, user, role string, ttl time.Duration, now time.Time, opts ...Option) (string, error) {
	if !ValidUser(user) {
		return "", fmt.Errorf("%w: user id %q", ErrBadClaims, user)
	}
	if !ValidRole(role) {
		return "", fmt.Errorf("%w: role %q", ErrBadClaims, role)
	}
	if ttl <= 0 {
		return "", fmt.Errorf("%w: ttl must be positive", ErrBadClaims)
	}
	c := jwtClaims{
		Role: role,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   user,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	for _, o := range opts {
		o(&c)
	}
	if err := checkLabels(c); err != nil {
		return "", err
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(key)
}

// Verify checks a token's signature, expiry and claims.
func Verify(key []byte, token string, now time.Time) (Claims, error) {
	var c jwtClaims
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithLeeway(Leeway),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), // an iat in the future would outlive a revocation
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	_, err := p.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return key, nil })
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return Claims{}, fmt.Errorf("%w: %w", ErrExpired, err)
	case err != nil:
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if !ValidUser(c.Subject) || !ValidRole(c.Role) {
		return Claims{}, fmt.Errorf("%w: sub %q role %q", ErrBadClaims, c.Subject, c.Role)
	}
	if err := checkLabels(c); err != nil {
		return Claims{}, err
	}
	out := Claims{User: c.Subject, Role: c.Role, Expires: c.ExpiresAt.Time, Region: c.Region, Bucket: c.Bucket}
	if c.IssuedAt != nil {
		out.Issued = c.IssuedAt.Time
	}
	return out, nil
}

// checkLabels refuses region and bucket claims that are present but not a
// ValidLabel: a clinic's login service that sends one has a bug to fix, and
// a report must not show it.
func checkLabels(c jwtClaims) error {
	for name, l := range map[string]string{"region": c.Region, "bucket": c.Bucket} {
		if l != "" && !ValidLabel(l) {
			return fmt.Errorf("%w: %s claim is not a label of 1-32 of a-z 0-9 . _ -", ErrBadClaims, name)
		}
	}
	return nil
}

// LoadKey reads the signing key at path. A key other users can read is
// refused: whoever reads it can mint any token.
func LoadKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: read key: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("auth: read key: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %v; it must be readable by its owner only (chmod 600)",
			ErrKeyFile, path, info.Mode().Perm())
	}
	key, err := io.ReadAll(io.LimitReader(f, KeySize+1))
	if err != nil {
		return nil, fmt.Errorf("auth: read key: %w", err)
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("%w: %s holds %d bytes, want %d", ErrKeyFile, path, len(key), KeySize)
	}
	return key, nil
}

// LoadOrCreateKey reads the signing key at path, creating it (mode 0600,
// written atomically) when it does not exist yet. created reports whether
// it was made now.
func LoadOrCreateKey(path string) (key []byte, created bool, err error) {
	key, err = LoadKey(path)
	if !errors.Is(err, os.ErrNotExist) {
		return key, false, err
	}

	key = make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, false, fmt.Errorf("auth: generate key: %w", err)
	}
	err = writeFileAtomic(path, key)
	if errors.Is(err, os.ErrExist) {
		// Another process created it first: use theirs.
		return LoadOrCreateKey(path)
	}
	if err != nil {
		return nil, false, err
	}
	return key, true, nil
}

// writeFileAtomic writes data to path through a synced temporary file and a
// rename, so a crash leaves either no key or the whole key.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("auth: make key dir: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("auth: write key: %w", err)
	}
	defer os.Remove(f.Name()) // a no-op after the rename

	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("auth: write key: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("auth: write key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("auth: write key: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("auth: write key: %w", err)
	}
	// Link, not rename: two processes racing to create the key must not
	// overwrite each other's, or tokens minted by the loser would not verify.
	if err := os.Link(f.Name(), path); err != nil {
		return fmt.Errorf("auth: install key: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
