package bft

import (
	"encoding/binary"
	"fmt"

	"github.com/convergenode/convergenode/crdt"
)

// ProofVersion is the first byte of an encoded equivocation proof.
const ProofVersion = 1

// MaxProofSize bounds an encoded proof: two envelopes and their lengths.
const MaxProofSize = 1 + 2*(3+MaxEnvelopeSize)

// EquivocationProof is self-verifying evidence that one author signed two
// conflicting changes for one document: two different changes whose seq
// ranges overlap, or that extend the same prev. Anyone can check it with
// [EquivocationProof.Verify] and nothing else: no document state is needed.
//
// A and B are ordered by ID (A.ID < B.ID), so a pair has exactly one proof
// and one encoding whichever order a node saw the changes in. The proof
// carries the two whole signed changes, because a change's ID (the signed
// message) is the hash of its whole encoding.
//
// The gate does not refuse an equivocating author's changes: both forks
// are delivered to the document and merged like concurrent changes, so
// honest replicas that see them in different orders still converge.
type EquivocationProof struct {
	A, B *Envelope
}

// NewProof returns the proof for two envelopes, ordering them by ID. It
// does not verify it (see [EquivocationProof.Verify]).
func NewProof(x, y *Envelope) *EquivocationProof {
	if y.ID.Compare(x.ID) < 0 {
		x, y = y, x
	}
	return &EquivocationProof{A: x, B: y}
}

// Author returns the equivocating author.
func (p *EquivocationProof) Author() crdt.Author { return p.A.Change.Author }

// Doc returns the document of the two changes.
func (p *EquivocationProof) Doc() string { return p.A.Change.Doc }

// Encode returns the canonical wire form of p:
//
//	version(1) = 1 | uvarint len(a) | a | uvarint len(b) | b
//
// where a and b are the encoded envelopes A and B (A.ID < B.ID).
func (p *EquivocationProof) Encode() []byte {
	dst := make([]byte, 0, 1+6+p.A.Size()+p.B.Size())
	dst = append(dst, ProofVersion)
	dst = binary.AppendUvarint(dst, uint64(p.A.Size()))
	dst = p.A.AppendEncode(dst)
	dst = binary.AppendUvarint(dst, uint64(p.B.Size()))
	return p.B.AppendEncode(dst)
}

// DecodeProof decodes a proof's wire form strictly (version, minimal
// lengths, canonical envelopes and changes, A.ID < B.ID, no trailing
// bytes). It does not verify the signatures or the conflict: call
// [EquivocationProof.Verify] before trusting it.
func DecodeProof(b []byte) (*EquivocationProof, error) {
	if len(b) > MaxProofSize {
		return nil, fmt.Errorf("%w: proof is %d bytes, limit %d", ErrTooLarge, len(b), MaxProofSize)
	}
	if len(b) < 1 || b[0] != ProofVersion {
		return nil, fmt.Errorf("%w: bad proof version", ErrBadEncoding)
	}
	off := 1
	var envs [2]*Envelope
	for i := range envs {
		n, k := binary.Uvarint(b[off:])
		if k <= 0 || k != uvarintLen(n) || n > uint64(len(b)-off-k) {
			return nil, fmt.Errorf("%w: bad proof envelope length", ErrBadEncoding)
		}
		off += k
		e, err := DecodeEnvelope(b[off : off+int(n)])
		if err != nil {
			return nil, fmt.Errorf("bft: decode proof: %w", err)
		}
		envs[i] = e
		off += int(n)
	}
	if off != len(b) {
		return nil, fmt.Errorf("%w: %d trailing bytes after proof", ErrBadEncoding, len(b)-off)
	}
	if envs[0].ID.Compare(envs[1].ID) >= 0 {
		return nil, fmt.Errorf("%w: proof envelopes not in ID order", ErrBadEncoding)
	}
	return &EquivocationProof{A: envs[0], B: envs[1]}, nil
}

// Verify checks the proof on its own: both IDs are the hashes of their
// changes, both signatures verify under the same author, the changes are
// for the same document, they differ, and they conflict ([Conflicts]).
func (p *EquivocationProof) Verify() error {
	if p == nil || p.A == nil || p.B == nil || p.A.Change == nil || p.B.Change == nil {
		return fmt.Errorf("%w: incomplete proof", ErrBadEncoding)
	}
	a, b := p.A.Change, p.B.Change
	if a.Author != b.Author {
		return fmt.Errorf("%w: different authors", ErrNotEquivocation)
	}
	if a.Doc != b.Doc {
		return fmt.Errorf("%w: different documents", ErrNotEquivocation)
	}
	if p.A.ID == p.B.ID {
		return fmt.Errorf("%w: the same change twice", ErrNotEquivocation)
	}
	if !Conflicts(a, b) {
		return fmt.Errorf("%w: seq ranges [%d,%d] and [%d,%d] are disjoint and prevs differ",
			ErrNotEquivocation, a.Seq, a.LastSeq(), b.Seq, b.LastSeq())
	}
	for _, e := range []*Envelope{p.A, p.B} {
		// Always recheck: a decoded proof is untrusted.
		if crdt.HashChange(e.Raw) != e.ID {
			return fmt.Errorf("bft: verify proof: %w (%s)", ErrBadID, e.ID.Short())
		}
		if !Verify(e.Change.Author, e.ID, &e.Sig) {
			return fmt.Errorf("bft: verify proof: %w (%s)", ErrBadSignature, e.ID.Short())
		}
	}
	return nil
}

// Conflicts reports whether two changes by one author conflict: their seq
// ranges [Seq, LastSeq] overlap or they extend the same prev. It compares
// headers only; the caller checks that they are different changes.
func Conflicts(a, b *crdt.Change) bool {
	if a.Author != b.Author {
		return false
	}
	return a.Prev == b.Prev || (a.Seq <= b.LastSeq() && b.Seq <= a.LastSeq())
}
