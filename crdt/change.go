package crdt

import (
	"bytes"
	"encoding/hex"
	"fmt"
)

// ID identifies a change: BLAKE3-256(ChangeDomain || canonical encoding).
type ID [32]byte

// Author is an author's Ed25519 public key (32 bytes).
type Author [32]byte

// ZeroID is the all-zero ID, used as Prev of an author's first change.
var ZeroID ID

// IsZero reports whether id is all zeros.
func (id ID) IsZero() bool { return id == ZeroID }

// String returns the full lowercase hex form of id.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 8 hex digits of id, for logs and golden files.
func (id ID) Short() string { return hex.EncodeToString(id[:4]) }

// Compare orders IDs bytewise.
func (id ID) Compare(o ID) int { return bytes.Compare(id[:], o[:]) }

// String returns the full lowercase hex form of a.
func (a Author) String() string { return hex.EncodeToString(a[:]) }

// Short returns the first 8 hex digits of a.
func (a Author) Short() string { return hex.EncodeToString(a[:4]) }

// Compare orders authors bytewise.
func (a Author) Compare(o Author) int { return bytes.Compare(a[:], o[:]) }

// ParseID parses the 64-digit hex form of an ID.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 64 {
		return id, fmt.Errorf("crdt: bad change ID %q: want 64 hex digits", s)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("crdt: bad change ID %q: %w", s, err)
	}
	return id, nil
}

// Change is a run of ops by one author: the unit of signing, hashing, gossip
// and storage. Op i of the change has the op ID (Author, Seq+i) and the
// Lamport time Lamport+i.
//
// A Change is treated as immutable once it has been encoded, hashed or
// handed to a Doc; callers must not modify it (or its slices) afterwards.
type Change struct {
	Doc     string // document ID (arbitrary bytes, at most MaxDocIDLen)
	Author  Author // Ed25519 public key of the author
	Seq     uint64 // sequence number of the first op; an author's first change has Seq 1
	Lamport uint64 // Lamport time of the first op; at least 1
	Prev    ID     // ID of the author's previous change; ZeroID iff Seq == 1
	Parents []ID   // heads the author had seen: sorted, no duplicates, at most MaxParents
	Time    int64  // wall-clock hint in Unix milliseconds; never used for ordering
	Ops     []Op   // at least one op, at most MaxOps

	// frozen: see Freeze.
	frozen bool
	// id is c's ID once a Graph holds c or FreezeWithID recorded it (zero
	// before): the graph reads it from here rather than keeping a copy per
	// node, which in a simulation, where every replica holds the same
	// shared changes, is 32 bytes per change per replica saved and a read
	// that hits the cache.
	id ID
}

// FreezeWithID is Freeze, and records id as c's ID (the caller vouches
// for it, as for [Graph.Add]): a graph that adds the shared c then keeps
// no copy of its ID.
func (c *Change) FreezeWithID(id ID) {
	c.id = id
	c.frozen = true
}

// Freeze marks c as shared between documents: no Doc writes to it, not
// even to replace its names and row keys by equal strings the Doc already
// holds (which [Doc.Apply] otherwise does to keep one copy of each), so
// several Docs, on several goroutines, may apply and read the same c. A
// Doc keeps its own copies of names it already had, and c keeps its
// strings. Freeze must be called before c is shared; it cannot be undone.
func (c *Change) Freeze() { c.frozen = true }

// Frozen reports whether [Change.Freeze] was called on c.
func (c *Change) Frozen() bool { return c.frozen }

// LastSeq returns the sequence number of the change's last op.
func (c *Change) LastSeq() uint64 { return c.Seq + uint64(len(c.Ops)) - 1 }

// LastLamport returns the Lamport time of the change's last op.
func (c *Change) LastLamport() uint64 { return c.Lamport + uint64(len(c.Ops)) - 1 }

// ID computes the change's ID by encoding it. It returns an error if the
// change is not valid (see Validate).
func (c *Change) ID() (ID, error) {
	b, err := c.Encode()
	if err != nil {
		return ID{}, err
	}
	return HashChange(b), nil
}

// MustID is like ID but panics on an invalid change. For tests and for
// changes built by this package.
func (c *Change) MustID() ID {
	id, err := c.ID()
	if err != nil {
		panic(err)
	}
	return id
}
