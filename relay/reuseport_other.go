//go:build !unix

package relay

// reusePort reports whether several UDP sockets can share one port.
const reusePort = false
