//go:build js

package clientsdk

import "testing"

// The integration tests (integration_test.go) start the bedside binary as a
// subprocess, which js/wasm cannot do, and Node gives Go no WebSocket; they
// run in the native test run only.
func TestIntegration(t *testing.T) {
	t.Skip("integration tests need the bedside binary as a subprocess, which js/wasm cannot run")
}
