//go:build !windows

package clientsdk

// dirSyncUnsupported reports whether err only says that directories cannot
// be synced here. On Unix, and in Node's fs under js/wasm, they can, so no
// error is excused.
func dirSyncUnsupported(err error) bool { return false }
