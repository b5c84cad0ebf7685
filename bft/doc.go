// Package bft is the Byzantine-fault-tolerant gate of convergenode: every
// change a replica receives passes through it before it touches a
// crdt.Doc, and it never makes two honest replicas disagree.
//
// # Overview
//
// A change is signed by its author with Ed25519 over its 32-byte ID (the
// BLAKE3 hash of its canonical encoding, see crdt.HashChange). [Sign]
// makes an [Envelope] (change, ID, signature, canonical bytes); its wire
// form is defined at [Envelope] and decoded strictly by [DecodeEnvelope].
// An envelope made by either keeps its wire form, the change bytes inside
// it ([Envelope.Wire], [Envelope.Wired]), so a holder of many envelopes
// keeps one buffer per change.
//
// The gate runs cheap checks before expensive ones, and stores nothing
// before the signature has been verified:
//
//  1. Stage 1, [CheckStateless]: size, canonical decoding, document ID,
//     ID recomputed, signature. It depends only on the bytes, so every
//     honest node decides the same; its rejections are penalised
//     ([Reason.Penalize]) and a gossipsub validator returns Reject.
//  2. Stage 2, [Gate.Receive], per document: duplicates are dropped;
//     a change with missing parents waits in a bounded causal buffer
//     (quotas per sending peer, per author and in total, a TTL, the
//     largest holder evicted first) and the gate reports the missing
//     hashes and the peer to fetch them from; a change whose parents are
//     present is checked against its causal past only (lamport, seq/prev
//     chain, writer set) and applied to the document with crdt.Doc.Apply,
//     and the changes it unblocks follow in causal order. Stage 2
//     rejections are never penalised (a gossipsub validator returns
//     Ignore).
//  3. Equivocation: two validly signed changes by one author with
//     overlapping seq ranges (or the same prev) are both delivered to the
//     document, which merges them like concurrent changes; the gate makes
//     an [EquivocationProof] that anyone can verify and keeps it. It never
//     keeps "the first one seen": replicas see forks in different orders.
//
// # Verification rule
//
// A signature is valid exactly when the Go standard library's
// crypto/ed25519.Verify(author, id[:], sig) returns true ([Verify]). This
// is the protocol rule, pinned so every node decides the same. Its
// behaviour (Go 1.26, RFC 8032 with these specifics):
//
//   - the check is cofactorless: [S]B = R + [k]A, decided by encoding
//     [S]B - [k]A and comparing it bytewise with R (so a non-canonical R
//     never verifies);
//   - S must be canonical (S < L), so a valid signature cannot be made
//     into another by adding L;
//   - A (the author key) may be any 32 bytes that decode to a curve point,
//     including non-canonical encodings and small-order points. A
//     small-order key is owned by no one (anyone can sign for it); the
//     gate treats it like any other author, so such an "author" is just an
//     anonymous writer and proofs against it mean nothing. Documents that
//     need accountable authors use a writer set.
//
// Signature malleability does not matter for identity: the gate, the
// document and the network identify a change by its ID, not by its
// envelope bytes.
//
// A [SigCache] (passed to [CheckStatelessCached], set in
// [GateConfig.SigCache], shared by a node's validators and replicas) does
// not change this rule. It stores only successes, keyed by the exact
// 128 bytes (author key, change ID, signature), so a hit only records an
// earlier successful ed25519.Verify of exactly the same key, message and
// signature, whose answer is deterministic; anything else, including a
// triple that differs in one bit, is verified afresh. With or without a
// cache, and whatever it holds, every check returns what [Verify] returns.
// An [EnvCache] (replica.Config.EnvCache; one per simulation in sim) goes
// one step further for stage 1 as a whole: it answers a check of bytes
// identical to ones it accepted before, for the same document, with the
// same shared, immutable envelope (its change frozen with its ID, see
// crdt.Change.FreezeWithID), so many gates keep one decoded copy of a
// change, and their graphs no copy of its ID.
// It stores successes only and gives CheckStatelessCached's verdict for
// every input.
//
// # Causal validity
//
// A change c whose parents are all present is valid when, judged only by
// its causal past (the same on every node that has those parents):
//
//   - c.Lamport == 1 + max(p.LastLamport() for p in c.Parents), or 1 when
//     c has no parents;
//   - c.Seq == 1 with a zero Prev, or Prev is a change by c.Author with
//     Prev.LastSeq()+1 == c.Seq and Prev is in c's causal past (an
//     ancestor of, or equal to, one of c's parents);
//   - if the document has a writer set, c.Author is in it as of c's causal
//     past (see below).
//
// # Writer set
//
// A document is open (anyone may write) unless [GateConfig.Writers] is
// non-empty; then only writers may write. The genesis set is
// GateConfig.Writers and is part of the document's identity: every
// replica must be configured with the same set. The set changes only
// through signed changes, by ops on the reserved table [WritersTable]
// whose row key is the lowercase hex of an author key (64 digits; other
// rows are ignored): an Insert or Update adds the key, a Delete removes
// it. As only writers' changes are accepted, only writers can change the
// set.
//
// The writer set "as of" a change's causal past is: the genesis set, then
// for each key, the winning _writers op on that key among all changes in
// the causal past, where op i of change x is ordered by (x.Lamport+i,
// x.Author, x.Seq+i, x's ID), the document's own total order (last writer
// wins). A change's own ops never authorise itself. In an open document
// the _writers table is plain data. Consequence: a change concurrent with
// a writer's removal is still accepted (its past does not contain the
// removal), and every node decides the same.
//
// # Determinism and concurrency
//
// The gate does no I/O, starts no goroutines, never reads the clock (time
// is an argument) and has no randomness; its outputs are in a stable
// order. [CheckStateless], [Verify], [DecodeEnvelope], [DecodeProof] and
// [EquivocationProof.Verify] are pure and safe for concurrent use. A
// [SigCache] and an [EnvCache] are safe for concurrent use (a mutex; their
// contents affect only speed and memory, never a result). A [Gate] is not: the caller serialises
// calls to it and to its document.
//
// # Usage
//
//	g := bft.NewGate(bft.DefaultGateConfig(), doc)
//	// for each message from peer p on the document's topic:
//	env, rej := bft.CheckStateless(doc.ID(), msg) // gossipsub validator
//	if rej != nil { penalise(p, rej.Reason); return }
//	res := g.Receive(p, env, now)
//	persistAndForward(res.Accepted)               // already applied to doc
//	if len(res.Missing) > 0 { fetch(res.From, res.Missing) }
//	for _, pr := range res.Proofs { gossipEvidence(pr.Encode()) }
//	// periodically:
//	dropped := g.Tick(now)
package bft
