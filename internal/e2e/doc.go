// Package e2e holds Bedside's end-to-end tests: they build the real bedside
// and bedsidectl binaries, start the server on a free loopback port with a
// temporary data directory, and drive it as clinics and apps would.
package e2e
