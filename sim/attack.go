package sim

// attackWith runs one attack of behaviour b from p.
func (s *Sim) attackWith(p *peer, b Behaviour) {
	switch b {
	case BehaviourFloodInvalid:
		for k := 0; k < p.byz.b.Flood; k++ {
			s.publish(p, TopicChanges, s.garbage(64+s.rng.IntN(256)))
		}
	}
}

// lie corrupts a reconciliation message.
func (s *Sim) lie(p *peer, data []byte) []byte {
	c := append([]byte(nil), data...)
	if len(c) > 0 {
		c[s.rng.IntN(len(c))] ^= 0x5a
	}
	return c
}
