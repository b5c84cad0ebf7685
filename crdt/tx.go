package crdt

// Tx collects the ops of one local transaction: [Doc.Change] turns them
// into a single change (one hash, one signature). Reads through a Tx see the
// document as it was before the transaction; the transaction's own writes
// become visible when Change returns.
type Tx struct {
	d   *Doc
	ops []Op
}

// Insert adds an insert (or replace) of a row.
func (tx *Tx) Insert(table, row string, cols map[string]Value) {
	tx.ops = append(tx.ops, Insert(table, row, cols))
}

// Update adds an update of one column of a row.
func (tx *Tx) Update(table, row, col string, v Value) {
	tx.ops = append(tx.ops, Update(table, row, col, v))
}

// Delete adds a delete of a row.
func (tx *Tx) Delete(table, row string) {
	tx.ops = append(tx.ops, Delete(table, row))
}

// Add adds ops built elsewhere.
func (tx *Tx) Add(ops ...Op) {
	tx.ops = append(tx.ops, ops...)
}

// Len returns the number of ops collected so far.
func (tx *Tx) Len() int { return len(tx.ops) }

// Get reads a row as it was before the transaction.
func (tx *Tx) Get(table, row string) (Row, bool) { return tx.d.Get(table, row) }

// Change runs fn and makes the ops it collected into one local change,
// applied before Change returns. If fn returns an error, nothing is applied
// and the error is returned. If fn collects no ops, Change returns a nil
// change, the zero ID and no error. The change is invalid (and refused with
// an error wrapping ErrTooLarge or ErrInvalid) if it breaks a protocol limit,
// such as more than MaxOps ops.
func (d *Doc) Change(fn func(tx *Tx) error) (*Change, ID, error) {
	tx := &Tx{d: d}
	if err := fn(tx); err != nil {
		return nil, ID{}, err
	}
	if len(tx.ops) == 0 {
		return nil, ID{}, nil
	}
	return d.commit(tx.ops)
}
