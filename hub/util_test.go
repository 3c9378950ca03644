package hub_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

func jsonDecode(r io.Reader, out any) error { return json.NewDecoder(r).Decode(out) }

func bufCopy(b *strings.Builder, resp *http.Response) { io.Copy(b, resp.Body) }
