package node

import (
	"errors"
	"slices"
	"sync"
)

// Storage is the node's durable log of accepted changes: for each document,
// the encoded envelopes in the order the replica asked to persist them.
//
// The node calls Append from one goroutine per document; different
// documents may call concurrently. Implementations must be safe for that.
// A non-nil error from Append is fatal for the document: the node stops
// acknowledging writes to it and reports the error.
type Storage interface {
	// Append stores envs at the end of doc's log. With sync it returns
	// only once they (and every earlier append) would survive a machine
	// crash (fsync); without, once they would survive a process crash.
	// It may block.
	Append(doc string, envs [][]byte, sync bool) error
	// Load calls fn with every envelope of doc in log order. fn must not
	// retain env after it returns.
	Load(doc string, fn func(env []byte) error) error
	// Count returns the number of envelopes stored for doc.
	Count(doc string) (int, error)
	// Docs returns the documents that have a log, sorted.
	Docs() ([]string, error)
	// Close releases the store. Calls after Close return ErrClosed.
	Close() error
}

// ErrClosed is returned by a Storage after Close.
var ErrClosed = errors.New("node: storage closed")

// MemStorage is an in-memory Storage for tests, examples and embedders that
// do not need durability. Its zero value is not usable; use NewMemStorage.
type MemStorage struct {
	mu     sync.Mutex
	logs   map[string][][]byte
	snaps  map[string][]byte // see SnapshotStorage (snapshot.go)
	closed bool
}

var _ Storage = (*MemStorage)(nil)

// NewMemStorage returns an empty in-memory store.
func NewMemStorage() *MemStorage {
	return &MemStorage{logs: map[string][][]byte{}, snaps: map[string][]byte{}}
}

// Append implements Storage. It copies envs.
func (m *MemStorage) Append(doc string, envs [][]byte, _ bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	for _, e := range envs {
		m.logs[doc] = append(m.logs[doc], slices.Clone(e))
	}
	return nil
}

// Load implements Storage.
func (m *MemStorage) Load(doc string, fn func(env []byte) error) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	log := m.logs[doc]
	m.mu.Unlock()
	for _, e := range log {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// Count implements Storage.
func (m *MemStorage) Count(doc string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, ErrClosed
	}
	return len(m.logs[doc]), nil
}

// Docs implements Storage.
func (m *MemStorage) Docs() ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	var out []string
	for d := range m.logs {
		out = append(out, d)
	}
	slices.Sort(out)
	return out, nil
}

// Close implements Storage. The logs are kept, so a MemStorage can be
// reopened with Reopen to simulate a restart.
func (m *MemStorage) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

// Reopen returns a new MemStorage holding the same logs, as a restarted
// process would find them on disk.
func (m *MemStorage) Reopen() *MemStorage {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := NewMemStorage()
	for d, l := range m.logs {
		n.logs[d] = slices.Clone(l)
	}
	for d, s := range m.snaps {
		n.snaps[d] = s
	}
	return n
}
