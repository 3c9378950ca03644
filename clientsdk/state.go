package clientsdk

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// cursorState is the stored form of the listener's cursors: for each session,
// the last seq delivered to the application. Device names the identity the
// cursors belong to, so cursors left by an earlier identity in the same store
// are not trusted.
type cursorState struct {
	Version int               `json:"version"`
	Device  string            `json:"device"`
	Cursors map[string]uint64 `json:"cursors"`
}

const (
	cursorStateVersion = 1
	maxSessionIDLen    = 256
)

func encodeCursors(device string, cursors map[string]uint64) ([]byte, error) {
	b, err := json.Marshal(cursorState{Version: cursorStateVersion, Device: device, Cursors: cursors})
	if err != nil {
		return nil, fmt.Errorf("clientsdk: encode cursors: %w", err)
	}
	return b, nil
}

// decodeCursors decodes a stored cursor state. The store is the device's own,
// but a file can be truncated or edited, so everything is checked. It
// returns the device the cursors belong to.
func decodeCursors(b []byte) (device string, cursors map[string]uint64, err error) {
	var st cursorState
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return "", nil, fmt.Errorf("%w: cursors: %w", ErrCorrupt, err)
	}
	if dec.More() {
		return "", nil, fmt.Errorf("%w: cursors: trailing data", ErrCorrupt)
	}
	if st.Version != cursorStateVersion {
		return "", nil, fmt.Errorf("%w: cursors: version %d, want %d",
			ErrCorrupt, st.Version, cursorStateVersion)
	}
	if st.Device == "" {
		return "", nil, fmt.Errorf("%w: cursors: no device", ErrCorrupt)
	}
	for sid := range st.Cursors {
		if sid == "" || len(sid) > maxSessionIDLen {
			return "", nil, fmt.Errorf("%w: cursors: bad session id %q", ErrCorrupt, sid)
		}
	}
	if st.Cursors == nil {
		st.Cursors = map[string]uint64{}
	}
	return st.Device, st.Cursors, nil
}
