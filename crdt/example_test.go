package crdt_test

import (
	"fmt"

	"github.com/convergenode/convergenode/crdt"
)

// exchange applies to dst every change of src that dst lacks, in causal
// order: what reconciliation does between two peers.
func exchange(dst, src *crdt.Doc) {
	for _, id := range src.Graph().Since(dst.Heads()) {
		if dst.Graph().Has(id) {
			continue
		}
		c, _ := src.Graph().Get(id)
		if _, err := dst.Apply(id, c); err != nil {
			panic(err)
		}
	}
}

func show(name string, d *crdt.Doc) {
	fmt.Printf("%s:", name)
	for _, r := range d.Scan("tasks") {
		fmt.Printf(" %s{", r.Key)
		for i, c := range r.Cols {
			if i > 0 {
				fmt.Print(" ")
			}
			fmt.Printf("%s=%s", c.Name, c.Value)
		}
		fmt.Print("}")
	}
	fmt.Println()
}

// Two replicas of one document diverge while offline, then converge by
// exchanging the changes they lack.
func Example() {
	alice := crdt.NewDoc(crdt.DocOptions{ID: "todo", Author: crdt.Author{1}})
	bob := crdt.NewDoc(crdt.DocOptions{ID: "todo", Author: crdt.Author{2}})

	alice.Insert("tasks", "milk", map[string]crdt.Value{"title": crdt.String("buy milk"), "done": crdt.Bool(false)})
	alice.Insert("tasks", "bread", map[string]crdt.Value{"title": crdt.String("buy bread")})
	exchange(bob, alice)

	// Offline: both edit.
	alice.Update("tasks", "milk", "done", crdt.Bool(true))
	alice.Delete("tasks", "bread")
	bob.Update("tasks", "milk", "title", crdt.String("buy oat milk"))
	bob.Update("tasks", "bread", "title", crdt.String("buy rye bread")) // concurrent with the delete
	bob.Insert("tasks", "eggs", map[string]crdt.Value{"title": crdt.String("buy eggs")})
	show("alice", alice)
	show("bob  ", bob)

	// Online again.
	exchange(alice, bob)
	exchange(bob, alice)
	show("alice", alice)
	show("bob  ", bob)
	fmt.Println("same state:", alice.StateHash() == bob.StateHash())
	// Output:
	// alice: milk{done=true title="buy milk"}
	// bob  : bread{title="buy rye bread"} eggs{title="buy eggs"} milk{done=false title="buy oat milk"}
	// alice: eggs{title="buy eggs"} milk{done=true title="buy oat milk"}
	// bob  : eggs{title="buy eggs"} milk{done=true title="buy oat milk"}
	// same state: true
}

// A transaction makes one change (one ID, one signature) from many ops.
func ExampleDoc_Change() {
	d := crdt.NewDoc(crdt.DocOptions{ID: "todo", Author: crdt.Author{1}})
	c, id, err := d.Change(func(tx *crdt.Tx) error {
		tx.Insert("tasks", "a", map[string]crdt.Value{"n": crdt.Int(1)})
		tx.Insert("tasks", "b", map[string]crdt.Value{"n": crdt.Int(2)})
		tx.Update("tasks", "a", "n", crdt.Int(3))
		return nil
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(len(c.Ops), "ops, seq", c.Seq, "lamport", c.Lamport, "heads are the change:", d.Heads().Equal(crdt.NewVersion(id)))
	show("doc", d)
	// Output:
	// 3 ops, seq 1 lamport 1 heads are the change: true
	// doc: a{n=3} b{n=2}
}

// Time travel: the state at an earlier version, and what changed since.
func ExampleDoc_At() {
	d := crdt.NewDoc(crdt.DocOptions{ID: "todo", Author: crdt.Author{1}})
	d.Insert("tasks", "a", map[string]crdt.Value{"n": crdt.Int(1)})
	v1 := d.Heads()
	d.Update("tasks", "a", "n", crdt.Int(2))
	d.Insert("tasks", "b", nil)
	d.Insert("tasks", "c", map[string]crdt.Value{"n": crdt.Int(7)})

	old, err := d.At(v1)
	if err != nil {
		panic(err)
	}
	show("then", old)
	show("now ", d)
	diff, _ := d.Diff(v1, d.Heads())
	for _, cd := range diff {
		fmt.Println(cd)
	}
	// Output:
	// then: a{n=1}
	// now : a{n=2} b{} c{n=7}
	// tasks/a.n: 1 -> 2
	// tasks/c.n: - -> 7
}

// Subscribers learn what every applied change did to rows.
func ExampleDoc_Subscribe() {
	d := crdt.NewDoc(crdt.DocOptions{ID: "todo", Author: crdt.Author{1}})
	cancel := d.Subscribe(func(ev crdt.ChangeEvent) {
		for _, rc := range ev.Rows {
			fmt.Println(rc.Kind, rc.Table, rc.Key, len(rc.Cols), "columns")
		}
	})
	defer cancel()
	d.Insert("tasks", "a", map[string]crdt.Value{"n": crdt.Int(1)})
	d.Update("tasks", "a", "m", crdt.Int(2))
	d.Update("tasks", "zzz", "m", crdt.Int(2)) // no such row: nothing happens
	d.Delete("tasks", "a")
	// Output:
	// inserted tasks a 1 columns
	// updated tasks a 2 columns
	// deleted tasks a 0 columns
}
