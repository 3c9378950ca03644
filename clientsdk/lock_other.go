//go:build !unix

package clientsdk

// lockFile has no cross-process lock to take here (WebAssembly in a
// browser or Node, Windows): UpdateDevice is serialised within the process
// only.
//
// TODO: Windows could use LockFileEx; until then, run one process per key
// store directory there.
func lockFile(string) (func(), error) { return func() {}, nil }
