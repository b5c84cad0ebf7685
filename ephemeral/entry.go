package ephemeral

import (
	"strconv"
	"time"

	"github.com/convergenode/convergenode/crdt"
)

// Entry is one live value in the store.
type Entry struct {
	Namespace string
	Key       string
	Author    crdt.Author // the writer (and, in an owned namespace, the owner)
	Value     crdt.Value
	Time      Timestamp // HLC timestamp of the write: the LWW order
	Expires   time.Time // Renewed.Wall + TTL: when the entry goes unless renewed
	Renewed   Timestamp // time of the newest batch that carried this write (heartbeats renew it)
}

// Update is one change carried by a [Batch]: a set, or a delete (a
// tombstone, which wins over older sets and then expires like an entry).
type Update struct {
	Namespace string
	Key       string
	Time      Timestamp  // when the author made the change (heartbeats keep it); at most the batch's Time
	Delete    bool       // tombstone; Value must be null
	Value     crdt.Value // the new value of a set
}

// EventKind says what happened to an entry.
type EventKind uint8

// The event kinds.
const (
	EventSet    EventKind = iota + 1 // an entry was created or changed
	EventDelete                      // an entry was deleted by a writer
	EventExpire                      // an entry's TTL ran out without a heartbeat
	EventRemove                      // the entry's author left (Store.RemoveAuthor)
)

// String returns the kind's name: "set", "delete", "expire" or "remove".
func (k EventKind) String() string {
	switch k {
	case EventSet:
		return "set"
	case EventDelete:
		return "delete"
	case EventExpire:
		return "expire"
	case EventRemove:
		return "remove"
	}
	return "event(" + strconv.Itoa(int(k)) + ")"
}

// Event reports a change to the visible contents of the store. For
// EventDelete, EventExpire and EventRemove, Value is the value that went away
// and Author its writer; for EventDelete, Time is the tombstone's time.
type Event struct {
	Kind      EventKind
	Namespace string
	Key       string
	Author    crdt.Author
	Value     crdt.Value
	Time      Timestamp
}

// String formats e on one line, for logs and golden files.
func (e Event) String() string {
	return e.Kind.String() + " " + e.Namespace + "/" + e.Key + " by " + e.Author.Short() +
		" = " + e.Value.String() + " @" + e.Time.String()
}

// record is the stored state of one slot: the winning write so far.
type record struct {
	author  crdt.Author
	time    Timestamp // LWW order
	renewed Timestamp // newest batch time carrying this write (or time, while unflushed)
	deleted bool
	value   crdt.Value
	batch   *Batch // newest signed batch that carried this write; nil while local and unflushed
}

// sameWrite reports whether r and o are the same write (a heartbeat of it).
func (r *record) sameWrite(o *record) bool {
	return r.time == o.time && r.author == o.author && r.deleted == o.deleted && r.value == o.value
}

// lwwCompare orders two writes to one slot: by time, then author, then
// tombstone after set, then value. It is a total order, so every replica
// keeps the same winner whatever the delivery order.
func lwwCompare(at Timestamp, aa crdt.Author, adel bool, av crdt.Value,
	bt Timestamp, ba crdt.Author, bdel bool, bv crdt.Value) int {
	if c := at.Compare(bt); c != 0 {
		return c
	}
	if c := aa.Compare(ba); c != 0 {
		return c
	}
	if adel != bdel {
		if adel {
			return 1
		}
		return -1
	}
	return av.Compare(bv)
}
