package clientsdk

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/bedside/bedside/e2ee"
	"github.com/bedside/bedside/hub/wire"
)

// TestAcceptedKeySurvivesAListener: a listener and a command share a key
// store; the command accepts a contact's new user key; the listener's
// next save must not put the old pin back, and the listener trusts the
// new key from then on.
func TestAcceptedKeySurvivesAListener(t *testing.T) {
	ctx := context.Background()
	dh := newDeviceHub()
	kh := &keyHub{deviceHub: dh}
	srv := serve(t, kh)
	ks, err := FileKeyStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	listener, clinician := openOn(t, ks, srv), peer(t, srv.URL)
	dh.join(t, listener, "pat")
	dh.join(t, clinician, "doc")
	if _, err := listener.Devices(ctx, "doc"); err != nil { // pins doc's first key
		t.Fatal(err)
	}

	fresh, _ := e2ee.NewUserKey("doc", nil)
	current := signedFor(t, fresh, dh.lists["doc"].Version+1, clinician.id.Public())
	kh.serve = func(user string) (wire.SignedDeviceList, bool) { return current, user == "doc" }
	command := openOn(t, ks, srv)
	sn, err := command.Safety(ctx, "doc")
	if err != nil || !sn.Changed {
		t.Fatalf("Safety = %+v, %v; want a changed key", sn, err)
	}
	if err := command.AcceptUserKey(ctx, sn); err != nil {
		t.Fatal(err)
	}

	if err := listener.saveState(ctx); err != nil { // as after each message it delivers
		t.Fatal(err)
	}
	listener.forgetDevices("doc")
	if _, err := listener.Devices(ctx, "doc"); err != nil {
		t.Fatalf("the listener after the command accepted the new key: %v", err)
	}
	if _, err := openOn(t, ks, srv).Devices(ctx, "doc"); err != nil {
		t.Fatalf("a later run after the listener saved: %v", err)
	}
}

// TestAcceptMembersBeforeFirstSeal: a member who never sealed in a session
// accepts a newcomer; its first seal then includes everyone listed.
func TestAcceptMembersBeforeFirstSeal(t *testing.T) {
	ctx := context.Background()
	dh := newDeviceHub()
	srv := serve(t, dh)
	patient, clinician, nurse := peer(t, srv.URL), peer(t, srv.URL), peer(t, srv.URL)
	dh.join(t, patient, "pat")
	dh.join(t, clinician, "doc")
	dh.join(t, nurse, "nurse")
	dh.members = []string{"pat", "doc", "nurse"}
	if err := patient.AcceptMembers(ctx, "s", "nurse"); err != nil {
		t.Fatal(err)
	}
	out, err := patient.Seal(ctx, "s", []byte("hello all"))
	if err != nil {
		t.Fatalf("first Seal after accepting the newcomer: %v", err)
	}
	if len(out.Request.Recipients) != 2 {
		t.Fatalf("sealed for %d devices, want the clinician's and the nurse's", len(out.Request.Recipients))
	}
}

// TestImportUserKeyRefusesAnother: a device keeps the user key it has.
func TestImportUserKeyRefusesAnother(t *testing.T) {
	ctx := context.Background()
	dh := newDeviceHub()
	srv := serve(t, dh)
	patient := peer(t, srv.URL)
	dh.join(t, patient, "pat")

	same, err := patient.ExportUserKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := patient.ImportUserKey(ctx, same); err != nil {
		t.Fatalf("importing the key the device holds: %v", err)
	}
	for _, user := range []string{"pat", "mallory"} {
		other, _ := e2ee.NewUserKey(user, nil)
		b, _ := other.MarshalBinary()
		if err := patient.ImportUserKey(ctx, b); !errors.Is(err, ErrConfig) {
			t.Errorf("importing another key of %s: %v, want ErrConfig", user, err)
		}
	}
	fresh := peer(t, srv.URL)
	if err := fresh.initDevice(ctx, "doc"); err != nil {
		t.Fatal(err)
	}
	if err := fresh.ImportUserKey(ctx, same); !errors.Is(err, ErrConfig) {
		t.Errorf("importing pat's key on a device of doc: %v, want ErrConfig", err)
	}
}

// serve runs h on a loopback test server until the test ends.
func serve(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		srv.Client().CloseIdleConnections()
	})
	return srv
}
