package relay

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // HMAC-SHA1 is what the TURN REST scheme specifies.
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Credentials are time-limited TURN credentials in the shared-secret "TURN
// REST API" scheme (draft-uberti-behave-turn-rest-00) that browsers and coturn
// understand: Username is "<expiry unix seconds>:<user>" and Password is
// base64(HMAC-SHA1(secret, Username)).
type Credentials struct {
	Username string
	Password string
	Expires  time.Time
}

// IssueCredentials returns credentials for user valid for ttl from now. user
// must not contain ':'.
func IssueCredentials(
	secret []byte, user string, ttl time.Duration, now time.Time,
) (Credentials, error) {
	if user == "" || strings.ContainsRune(user, ':') {
		return Credentials{}, fmt.Errorf("%w: user %q", ErrCredentials, user)
	}
	expires := now.Add(ttl).Truncate(time.Second)
	username := strconv.FormatInt(expires.Unix(), 10) + ":" + user
	password := restPassword(secret, username)
	return Credentials{Username: username, Password: password, Expires: expires}, nil
}

// parseUsername checks the expiry of a TURN REST username and returns its user
// part. It does not check the password: the TURN message integrity does.
func parseUsername(username string, now time.Time) (string, error) {
	expiry, user, ok := strings.Cut(username, ":")
	if !ok || user == "" {
		return "", fmt.Errorf("%w: malformed username", ErrCredentials)
	}
	unix, err := strconv.ParseInt(expiry, 10, 64)
	if err != nil {
		return "", fmt.Errorf("%w: malformed expiry: %w", ErrCredentials, err)
	}
	if now.Unix() >= unix {
		return "", fmt.Errorf("%w: expired", ErrCredentials)
	}
	return user, nil
}

func restPassword(secret []byte, username string) string {
	mac := hmac.New(sha1.New, secret)
	mac.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
