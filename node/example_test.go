package node_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/convergenode/convergenode/crdt"
	"github.com/convergenode/convergenode/node"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Embed a node, write a row and read it back.
func ExampleNew() {
	ctx := context.Background()
	cfg := node.DefaultTestConfig() // loopback, in-memory store; use DefaultConfig(dir) for a real node
	n, err := node.New(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()

	doc, err := n.Doc(ctx, "todos")
	if err != nil {
		log.Fatal(err)
	}
	// Insert returns once the change is signed and durable; it is then
	// gossiped to the document's peers.
	if err := doc.Insert(ctx, "items", "1", node.Cols{"title": "buy milk", "done": false}); err != nil {
		log.Fatal(err)
	}
	row, _ := doc.Get("items", "1")
	title, _ := row.Col("title")
	fmt.Println(row.Key, title)
	// Output: 1 "buy milk"
}

// Several ops in one transaction become one signed change.
func ExampleDoc_Change() {
	ctx := context.Background()
	n, err := node.New(ctx, node.DefaultTestConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()
	doc, _ := n.Doc(ctx, "todos")

	err = doc.Change(ctx, func(tx *node.Tx) error {
		tx.Insert("items", "1", node.Cols{"title": "milk"})
		tx.Insert("items", "2", node.Cols{"title": "eggs"})
		tx.Update("items", "1", "done", true)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	before := doc.Heads()
	doc.Delete(ctx, "items", "2")

	fmt.Println("changes:", doc.Len())
	fmt.Println("rows now:", len(doc.Scan("items")))
	old, _ := doc.At(before) // time travel
	fmt.Println("rows before the delete:", len(old.Scan("items")))
	// Output:
	// changes: 2
	// rows now: 1
	// rows before the delete: 2
}

// Two nodes on loopback: a write on one reaches the other, which sees it
// through Subscribe.
func ExampleDoc_Subscribe() {
	ctx := context.Background()
	a, err := node.New(ctx, node.DefaultTestConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	b, err := node.New(ctx, node.DefaultTestConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	da, _ := a.Doc(ctx, "chat")
	db, _ := b.Doc(ctx, "chat")

	got := make(chan crdt.ChangeEvent, 1)
	cancel := db.Subscribe(func(ev crdt.ChangeEvent) { got <- ev }) // must not block
	defer cancel()

	if err := b.Connect(ctx, peer.AddrInfo{ID: a.ID(), Addrs: a.Host().Addrs()}); err != nil {
		log.Fatal(err)
	}
	da.Insert(ctx, "messages", "m1", node.Cols{"text": "hello"})

	select {
	case ev := <-got:
		fmt.Println(ev.Rows[0].Table, ev.Rows[0].Key, ev.Rows[0].Kind)
	case <-time.After(10 * time.Second):
		fmt.Println("timeout")
	}
	// Output: messages m1 inserted
}
