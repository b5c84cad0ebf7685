package bft_test

import (
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/convergenode/convergenode/bft"
	"github.com/convergenode/convergenode/crdt"
)

// A writer signs a change; a replica runs both stages and applies it.
func Example() {
	key := ed25519.NewKeyFromSeed(make([]byte, 32))
	author := bft.AuthorOf(key.Public().(ed25519.PublicKey))
	now := time.Unix(0, 0)

	// The writer's side: make, sign and apply a local change.
	mine := crdt.NewDoc(crdt.DocOptions{ID: "notes", Author: author})
	env, _, err := bft.NewGate(bft.DefaultGateConfig(), mine).Propose(key,
		[]crdt.Op{crdt.Insert("notes", "n1", map[string]crdt.Value{"text": crdt.String("hi")})}, now)
	if err != nil {
		panic(err)
	}
	wire := env.Encode()

	// A replica: stage 1 (e.g. in a gossipsub validator), then stage 2.
	doc := crdt.NewDoc(crdt.DocOptions{ID: "notes"})
	gate := bft.NewGate(bft.DefaultGateConfig(), doc)
	checked, rej := bft.CheckStateless(doc.ID(), wire)
	if rej != nil {
		fmt.Println("reject:", rej.Reason, "penalize:", rej.Penalize())
		return
	}
	res := gate.Receive("peer-1", checked, now)
	fmt.Println("accepted:", len(res.Accepted), "same state:", doc.StateHash() == mine.StateHash())

	// Tampered bytes are refused by stage 1, and the sender is penalised.
	wire[len(wire)-1] ^= 1
	_, rej = bft.CheckStateless(doc.ID(), wire)
	fmt.Println("reject:", rej.Reason, "penalize:", rej.Penalize())
	// Output:
	// accepted: 1 same state: true
	// reject: bad-signature penalize: true
}
