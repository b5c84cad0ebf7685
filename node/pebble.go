package node

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// PebbleStorage is the default Storage: a Pebble database (pure Go, crash
// safe). Every Append is one batch; a synced one fsyncs the write-ahead
// log, which also makes every earlier unsynced batch durable.
//
// Keys:
//
//	'l' uvarint(len(doc)) doc uint64be(index)  -> envelope
//	'm' uvarint(len(doc)) doc                  -> uint64be(next index)
type PebbleStorage struct {
	db *pebble.DB

	mu   sync.Mutex
	next map[string]uint64 // next log index per document, loaded lazily
}

var _ Storage = (*PebbleStorage)(nil)

// OpenPebble opens (or creates) a Pebble store in dir. With fs nil it
// uses the operating system's file system; tests may pass a vfs.MemFS.
func OpenPebble(dir string, fs vfs.FS) (*PebbleStorage, error) {
	opts := &pebble.Options{Logger: quietLogger{}}
	if fs != nil {
		opts.FS = fs
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("node: open store %s: %w", dir, err)
	}
	return &PebbleStorage{db: db, next: map[string]uint64{}}, nil
}

func docKey(kind byte, doc string, extra int) []byte {
	k := make([]byte, 0, 1+binary.MaxVarintLen64+len(doc)+extra)
	k = append(k, kind)
	k = binary.AppendUvarint(k, uint64(len(doc)))
	return append(k, doc...)
}

func logKey(doc string, i uint64) []byte {
	return binary.BigEndian.AppendUint64(docKey('l', doc, 8), i)
}

// nextLocked returns the next log index of doc. The caller holds s.mu.
func (s *PebbleStorage) nextLocked(doc string) (uint64, error) {
	if n, ok := s.next[doc]; ok {
		return n, nil
	}
	v, closer, err := s.db.Get(docKey('m', doc, 0))
	if err == pebble.ErrNotFound {
		s.next[doc] = 0
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("node: store: read %q meta: %w", doc, err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("node: store: corrupt %q meta (%d bytes)", doc, len(v))
	}
	n := binary.BigEndian.Uint64(v)
	s.next[doc] = n
	return n, nil
}

// locked runs fn under the store's lock with the database open; a store
// closed before or during fn gives ErrClosed.
func (s *PebbleStorage) locked(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil { // pebble panics on use after Close
			err = ErrClosed
		}
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return ErrClosed
	}
	return fn()
}

// Append implements Storage.
func (s *PebbleStorage) Append(doc string, envs [][]byte, sync bool) error {
	if len(envs) == 0 {
		return nil
	}
	return s.locked(func() error { return s.appendLocked(doc, envs, sync) })
}

func (s *PebbleStorage) appendLocked(doc string, envs [][]byte, sync bool) error {
	n, err := s.nextLocked(doc)
	if err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	for i, e := range envs {
		if err := b.Set(logKey(doc, n+uint64(i)), e, nil); err != nil {
			return fmt.Errorf("node: store: append to %q: %w", doc, err)
		}
	}
	n += uint64(len(envs))
	if err := b.Set(docKey('m', doc, 0), binary.BigEndian.AppendUint64(nil, n), nil); err != nil {
		return fmt.Errorf("node: store: append to %q: %w", doc, err)
	}
	wo := pebble.NoSync
	if sync {
		wo = pebble.Sync
	}
	if err := b.Commit(wo); err != nil {
		return fmt.Errorf("node: store: append to %q: %w", doc, err)
	}
	s.next[doc] = n
	return nil
}

// Load implements Storage.
func (s *PebbleStorage) Load(doc string, fn func(env []byte) error) error {
	s.mu.Lock()
	db := s.db
	s.mu.Unlock()
	if db == nil {
		return ErrClosed
	}
	lo := docKey('l', doc, 0)
	hi := append(docKey('l', doc, 0), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return fmt.Errorf("node: store: load %q: %w", doc, err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		if len(it.Key()) != len(lo)+8 {
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return fmt.Errorf("node: store: load %q: %w", doc, err)
		}
		if err := fn(v); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("node: store: load %q: %w", doc, err)
	}
	return nil
}

// Count implements Storage.
func (s *PebbleStorage) Count(doc string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return 0, ErrClosed
	}
	n, err := s.nextLocked(doc)
	return int(n), err
}

// Docs implements Storage.
func (s *PebbleStorage) Docs() ([]string, error) {
	s.mu.Lock()
	db := s.db
	s.mu.Unlock()
	if db == nil {
		return nil, ErrClosed
	}
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{'m'}, UpperBound: []byte{'n'}})
	if err != nil {
		return nil, fmt.Errorf("node: store: list docs: %w", err)
	}
	var out []string
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()[1:]
		l, n := binary.Uvarint(k)
		if n <= 0 || uint64(len(k)-n) != l {
			it.Close()
			return nil, fmt.Errorf("node: store: corrupt meta key %x", it.Key())
		}
		out = append(out, string(k[n:]))
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("node: store: list docs: %w", err)
	}
	slices.Sort(out)
	return out, nil
}

// Close implements Storage.
func (s *PebbleStorage) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return ErrClosed
	}
	err := s.db.Close()
	s.db = nil
	if err != nil {
		return fmt.Errorf("node: store: close: %w", err)
	}
	return nil
}

// quietLogger drops Pebble's informational logs; errors still reach the
// caller through return values.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
