package hub

import "context"

// RecordCallForTest counts a call of a session through the hub's hook, as
// the calls work will.
func RecordCallForTest(h *Hub, ctx context.Context, session string) error {
	return h.recordCall(ctx, session)
}
