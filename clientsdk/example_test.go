package clientsdk_test

import (
	"context"
	"fmt"
	"os"

	"github.com/bedside/bedside/clientsdk"
)

// A device opens its key store, registers once, sends, and listens.
func Example() {
	ctx := context.Background()
	ks, err := clientsdk.FileKeyStore(os.Getenv("BEDSIDE_PROFILE"))
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := clientsdk.Open(ctx, clientsdk.Config{
		ServerURL: os.Getenv("BEDSIDE_SERVER"),
		Token:     os.Getenv("BEDSIDE_TOKEN"),
		KeyStore:  ks,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	if _, err := c.Register(ctx); err != nil {
		fmt.Println(err)
		return
	}
	s, err := c.CreateSession(ctx, "patient-42")
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := c.Send(ctx, s.ID, []byte("Your results are in.")); err != nil {
		fmt.Println(err)
		return
	}
	err = c.Listen(ctx, func(ev clientsdk.Event) {
		if ev.Kind == clientsdk.EventMessage && ev.Message.Err == nil {
			fmt.Printf("%d %s %s\n", ev.Message.Seq, ev.Message.SenderUser, ev.Message.Plaintext)
		}
	})
	if err != nil {
		fmt.Println(err)
	}
}
