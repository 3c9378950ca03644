// Package clientsdk is the Go client of a Bedside hub.
//
// It exists so that no application has to get end-to-end encryption right on
// its own: the SDK keeps the device's private keys and its ratchet state
// (scheme v1 of package e2ee, docs/e2ee.md), seals every message for every
// trusted device of every member before it leaves the device, opens what
// arrives, and keeps what it sent and opened in its archive, since each
// message key opens only once. A device is trusted when its user's
// long-term key signed it into the user's device list and the hub lists it
// with the same keys; user keys and device keys are pinned on first sight,
// so a server swapping keys is noticed (ErrKeyChanged, safety numbers)
// rather than trusted. Register sets a device up: prekeys, and the device
// on its user's signed list; a user's later devices import the user key
// from the first (ExportUserKey, ImportUserKey). It also carries the delivery
// rules of the protocol to the application: sends are retried with the same
// client message id until the hub acknowledges them, and a listener delivers
// each session's messages in sequence order, once each, across reconnects and
// process restarts.
//
// The same code builds natively and for WebAssembly (GOOS=js GOARCH=wasm),
// where HTTP goes through the browser's fetch and the WebSocket through the
// browser's WebSocket. It returns errors and never logs.
//
// A typical client:
//
//	ks, err := clientsdk.FileKeyStore(dir)
//	...
//	c, err := clientsdk.Open(ctx, clientsdk.Config{ServerURL: url, Token: token, KeyStore: ks})
//	...
//	defer c.Close()
//	if _, err := c.Register(ctx); err != nil { ... }
//	ack, err := c.Send(ctx, sessionID, []byte("hello"))
//	...
//	err = c.Listen(ctx, func(ev clientsdk.Event) { ... })
//
// Lock order: Client.mu is the only mutex the client holds while calling
// other code, and it is never held across network calls, key store calls or
// calls into the application. The key store's UpdateDevice lock (which
// serialises every change to the ratchet state, across processes too) is
// held across the network calls that claim bundles for a new session, and
// is taken before Client.mu, never after.
package clientsdk
