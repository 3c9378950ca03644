// Command idlews is a benchmark peer: the least a coder/websocket server can
// do per connection (accept, then one goroutine reading). Bedside's memory per
// idle connection is reported as a ratio to this, measured the same way.
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"

	"github.com/coder/websocket"
)

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf(`{"msg":"listening","addr":%q}`+"\n", ln.Addr().String())
	http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	}))
}
