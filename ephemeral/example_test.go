package ephemeral_test

import (
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/ephemeral"
)

func Example() {
	key := func(b byte) ed25519.PrivateKey {
		seed := make([]byte, ed25519.SeedSize)
		seed[0] = b
		return ed25519.NewKeyFromSeed(seed)
	}
	alice, _ := ephemeral.NewStore(ephemeral.Config{Doc: "doc-1", Key: key(1)})
	bob, _ := ephemeral.NewStore(ephemeral.Config{Doc: "doc-1", Key: key(2)})
	bob.Watch(func(e ephemeral.Event) { fmt.Println("bob sees", e.Kind, e.Namespace+"/"+e.Key, e.Value) })

	now := time.Unix(1_700_000_000, 0)
	_ = alice.Set("cursor", "pos", crdt.Int(42), now)
	batches, _ := alice.Tick(now) // the driver broadcasts these
	for _, b := range batches {
		data, _ := b.Encode()
		got, err := ephemeral.DecodeBatch(data)
		if err != nil {
			panic(err)
		}
		if _, err := bob.Merge(got, now); err != nil {
			panic(err)
		}
	}
	// Alice goes silent: her entry expires after the 30 s TTL.
	bob.Tick(now.Add(30 * time.Second))
	// Output:
	// bob sees set cursor/pos 42
	// bob sees expire cursor/pos 42
}
