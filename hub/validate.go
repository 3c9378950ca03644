package hub

import (
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/bedside/bedside/hub/auth"
	"github.com/bedside/bedside/hub/wire"
)

// idPattern is what device, session, consent and client message ids may look
// like: they appear in URLs and storage keys, so they stay plain.
// They start with a letter or digit, so that "." and ".." are never ids.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

const (
	keySize          = 32        // Ed25519 and X25519 public keys
	maxHeaderBytes   = 2048      // one recipient's key header: a v1 prekey header is 1276 at most
	maxSmallBody     = 16 << 10  // any request body but a send
	maxPolicyVersion = 64        // length of a consent's policy version
	jsonOverhead     = 256 << 10 // field names and base64 growth around a send's bytes

	maxConsentRecords = 1024 // consent records of one user, grants and withdrawals
	// maxPatientSessions bounds the open sessions a patient may be in when
	// opening another, so that no patient can flood a clinician.
	maxPatientSessions = 64
)

func validID(kind, s string) error {
	if !idPattern.MatchString(s) {
		return badRequest("%s must be 1-128 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit", kind)
	}
	return nil
}

func validUser(s string) error {
	if !auth.ValidUser(s) {
		return badRequest("user id must be 1-128 characters of A-Z a-z 0-9 . _ @ -, starting with a letter or digit")
	}
	return nil
}

// newID returns a fresh random id such as "s_5kq3…" (120 bits).
func newID(prefix string) string {
	b := make([]byte, 15)
	rand.Read(b) // never fails (crypto/rand)
	return prefix + "_" + base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").EncodeToString(b)
}

// decodeJSON reads one JSON value of at most limit bytes into v. Unknown
// fields are allowed so that newer clients can talk to older servers.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	body, err := readJSON(w, r, limit)
	if err != nil {
		return err
	}
	return decodeBody(body, v)
}

// decodeOptionalJSON is decodeJSON for calls whose body may be left out: an
// empty body leaves v as it is. Calls that take no body at all pass
// &struct{}{}, so that anything but {} is refused rather than ignored.
func decodeOptionalJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	body, err := readJSON(w, r, limit)
	if err != nil || len(bytes.TrimSpace(body)) == 0 {
		return err
	}
	return decodeBody(body, v)
}

// readJSON checks a request's Content-Type and reads its body, at most
// limit bytes.
func readJSON(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return nil, errorf(http.StatusUnsupportedMediaType, wire.CodeUnsupportedMedia,
				"Content-Type must be application/json")
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return nil, jsonError(err)
	}
	return body, nil
}

// decodeBody decodes one JSON object into v. A field the hub does not know
// is refused, not ignored, and so is a field given twice: a misspelt or
// repeated "dryRun" must not turn an erasure real.
func decodeBody(body []byte, v any) error {
	if err := uniqueKeys(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("request body holds more than one JSON value")
	}
	return nil
}

// uniqueKeys refuses a top-level object that names a field twice, which
// encoding/json would settle silently by taking the last.
func uniqueKeys(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil // not an object: Decode says what is wrong
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil
		}
		key, _ := t.(string)
		if seen[strings.ToLower(key)] {
			if len(key) > 64 || !utf8.ValidString(key) {
				return badRequest("a field is given twice")
			}
			return badRequest("field %q is given twice", key)
		}
		seen[strings.ToLower(key)] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil
		}
	}
	return nil
}

// jsonError words a decoding error without echoing what the client sent.
func jsonError(err error) error {
	var (
		tooBig *http.MaxBytesError
		typ    *json.UnmarshalTypeError
		syn    *json.SyntaxError
	)
	switch {
	case errors.As(err, &tooBig):
		return errorf(http.StatusRequestEntityTooLarge, wire.CodeTooLarge,
			"request body over %d bytes", tooBig.Limit)
	case errors.As(err, &typ) && typ.Field == "":
		return badRequest("request body must be a JSON object")
	case errors.As(err, &typ):
		return badRequest("field %q must be %s", typ.Field, jsonKind(typ.Type))
	case errors.As(err, &syn):
		return badRequest("malformed JSON at offset %d", syn.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("request body is empty or cut short")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.TrimPrefix(err.Error(), "json: unknown field ")
		if len(name) > 66 || !utf8.ValidString(name) {
			return badRequest("unknown field in the request body")
		}
		return badRequest("unknown field %s", name)
	}
	return badRequest("malformed JSON: %s", err.Error())
}

// jsonKind names what a Go type looks like in JSON, for error messages that
// speak the client's language rather than ours.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an unsigned integer"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "base64 text"
		}
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "another type"
}

// validateSend checks a send's shape and size; it touches no storage.
func (h *Hub) validateSend(req *wire.SendRequest) error {
	if err := validID("clientMsgId", req.ClientMsgID); err != nil {
		return err
	}
	if err := validID("senderDevice", req.SenderDevice); err != nil {
		return err
	}
	if len(req.Body) == 0 {
		return badRequest("body is empty")
	}
	// No recipients is fine: a group message under a sender key that every
	// device already holds needs no key header (docs/e2ee.md).
	if len(req.Recipients) > h.cfg.MaxRecipients {
		return errorf(http.StatusBadRequest, wire.CodeTooManyRecipients,
			"%d recipients, at most %d", len(req.Recipients), h.cfg.MaxRecipients)
	}
	size := len(req.Body)
	for dev, hdr := range req.Recipients {
		if err := validID("recipient device", dev); err != nil {
			return err
		}
		if len(hdr) == 0 || len(hdr) > maxHeaderBytes {
			return badRequest("each recipient header must be 1-%d bytes", maxHeaderBytes)
		}
		size += len(hdr)
	}
	if size > h.cfg.MaxEnvelopeBytes {
		return errorf(http.StatusRequestEntityTooLarge, wire.CodeTooLarge,
			"envelope of %d bytes, at most %d", size, h.cfg.MaxEnvelopeBytes)
	}
	return nil
}

// sendBodyLimit bounds the JSON of a send: base64 grows bytes by 4/3.
func (h *Hub) sendBodyLimit() int64 {
	return int64(h.cfg.MaxEnvelopeBytes)*4/3 + jsonOverhead
}

// queryUint reads an optional unsigned query parameter.
func queryUint(r *http.Request, name string, def uint64) (uint64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, badRequest("query parameter %s must be an unsigned integer", name)
	}
	return v, nil
}

// validConsentRequest checks a consent's scope, policy version and hash.
func validConsentRequest(req *wire.ConsentRequest) error {
	switch req.Scope {
	case wire.ScopeChat, wire.ScopeVideo, wire.ScopeReporting:
	default:
		return badRequest("scope must be %q, %q or %q", wire.ScopeChat, wire.ScopeVideo, wire.ScopeReporting)
	}
	if err := validPolicyVersion(req.PolicyVersion); err != nil {
		return err
	}
	if req.PolicyHash != "" && !hashPattern.MatchString(req.PolicyHash) {
		return badRequest("policyHash must be the 64 lowercase hex digits of a SHA-256")
	}
	if req.Device != "" {
		return validID("device", req.Device)
	}
	return nil
}

var hashPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// queryLimit reads the page size of a listing: 1-historyMax, default
// historyPage.
func queryLimit(r *http.Request) (uint64, error) {
	limit, err := queryUint(r, "limit", historyPage)
	if err != nil {
		return 0, err
	}
	if limit < 1 || limit > historyMax {
		return 0, badRequest("limit must be 1-%d", historyMax)
	}
	return limit, nil
}

func validPolicyVersion(s string) error {
	if s == "" || len(s) > maxPolicyVersion {
		return badRequest("policyVersion must be 1-%d characters", maxPolicyVersion)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return badRequest("policyVersion holds a control character")
		}
	}
	return nil
}
