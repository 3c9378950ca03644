package clientsdk

// dirSyncUnsupported reports whether err only says that directories cannot
// be synced here: Windows refuses to flush a directory handle, and there the
// rename itself is as durable as the platform makes it.
func dirSyncUnsupported(err error) bool { return err != nil }
