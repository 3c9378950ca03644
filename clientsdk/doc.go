// Package clientsdk is the Go client of a Bedside hub.
//
// It exists so that no application has to get end-to-end encryption right on
// its own: the SDK keeps the device's private keys, seals every message for
// every device of every member before it leaves the device, opens what
// arrives, and pins each peer device's keys on first sight so that a server
// swapping keys is noticed rather than trusted. It also carries the delivery
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
// calls into the application.
package clientsdk
