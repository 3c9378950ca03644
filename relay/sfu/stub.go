// Package sfu is a placeholder with the agreed API; the real one replaces it.
package sfu

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
)

type Config struct {
	UDP             string
	PublicIPs       []netip.Addr
	MaxParticipants int
	MaxRooms        int
}

type SFU struct{}

func New(ctx context.Context, cfg Config, logger *slog.Logger) (*SFU, error) { return &SFU{}, nil }
func (s *SFU) Addr() netip.AddrPort                                            { return netip.AddrPort{} }
func (s *SFU) Close() error                                                    { return nil }
func (s *SFU) Rooms() int                                                      { return 0 }
func (s *SFU) Participants(room string) int                                    { return 0 }

type Member struct{ User, Device string }
type Event struct {
	Kind    string
	SDP     string
	Rev     uint64
	Streams map[string]Stream
	Reason  string
}
type Stream struct{ User, Device string }
type Peer struct{}

func (s *SFU) Join(room string, who Member, echo bool, sink func(Event)) (*Peer, error) {
	return &Peer{}, nil
}
func (p *Peer) Publish(ctx context.Context, offer string) (string, error) { return "", nil }
func (p *Peer) Answer(rev uint64, sdp string) error                       { return nil }
func (p *Peer) SetLayer(publisherDevice, layer string) error              { return nil }
func (p *Peer) Leave()                                                    {}
func (s *SFU) Remove(room, device, reason string)                         {}
func (s *SFU) CloseRoom(room, reason string)                              {}

var (
	ErrRoomFull, ErrTooManyRooms, ErrJoined, ErrBadSDP, ErrStaleAnswer = errors.New("a"), errors.New("b"),
		errors.New("c"), errors.New("d"), errors.New("e")
	ErrUnknownPublisher, ErrBadLayer, ErrClosed, ErrConfig = errors.New("f"), errors.New("g"),
		errors.New("h"), errors.New("i")
)
