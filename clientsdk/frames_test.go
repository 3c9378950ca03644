package clientsdk

import (
	"errors"
	"testing"
)

func TestDecodeFrame(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"ready", `{"type":"ready","ready":{"connId":"c","user":"u","device":"d","heartbeatSeconds":20}}`, true},
		{"message", `{"type":"message","message":{"sessionId":"s","seq":1,"body":"AA=="}}`, true},
		{"gap", `{"type":"gap","gap":{"sessionId":"s","after":2,"next":5}}`, true},
		{"receipt", `{"type":"receipt","receipt":{"sessionId":"s","user":"u","readSeq":3}}`, true},
		{"session", `{"type":"session","session":{"sessionId":"s","reason":"created"}}`, true},
		{"ping", `{"type":"ping"}`, true},
		{"pong", `{"type":"pong"}`, true},
		{"sfu", `{"type":"sfu","id":"j1","sfu":{"sessionId":"s","callId":"c","kind":"joined"}}`, true},
		{"unknown type is tolerated", `{"type":"presence","whatever":1}`, true},

		{"not json", `hello`, false},
		{"array", `[1,2]`, false},
		{"no type", `{}`, false},
		{"trailing data", `{"type":"ping"}{"type":"ping"}`, false},
		{"ready without body", `{"type":"ready"}`, false},
		{"message without body", `{"type":"message"}`, false},
		{"message seq 0", `{"type":"message","message":{"sessionId":"s","seq":0}}`, false},
		{"message no session", `{"type":"message","message":{"seq":4}}`, false},
		{"message session mismatch", `{"type":"message","sessionId":"t","message":{"sessionId":"s","seq":4}}`, false},
		{"message bad base64", `{"type":"message","message":{"sessionId":"s","seq":1,"body":"!!"}}`, false},
		{"gap backwards", `{"type":"gap","gap":{"sessionId":"s","after":5,"next":5}}`, false},
		{"gap negative seq", `{"type":"gap","gap":{"sessionId":"s","after":-1,"next":5}}`, false},
		{"receipt without session", `{"type":"receipt","receipt":{"readSeq":3}}`, false},
		{"error without body", `{"type":"error"}`, false},
		{"sfu without body", `{"type":"sfu"}`, false},
		{"sfu without session", `{"type":"sfu","sfu":{"callId":"c","kind":"offer"}}`, false},
		{"sfu without kind", `{"type":"sfu","sfu":{"sessionId":"s","callId":"c"}}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeFrame([]byte(tt.in))
			if tt.ok && err != nil {
				t.Fatalf("decodeFrame(%s) = %v, want ok", tt.in, err)
			}
			if !tt.ok && !errors.Is(err, ErrProtocol) {
				t.Fatalf("decodeFrame(%s) = %v, want ErrProtocol", tt.in, err)
			}
		})
	}
}
