package queue

import (
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// DueNow makes every Pending or Retrying job of network that is due later
// than now due now, without touching its attempts or errors, and returns
// how many it moved. It is for a fix that should take effect at once rather
// than after the backoff: a corrected network key, say, when every job of
// the network was held back after Livefyre refused the old one. It reads
// the network's job records and commits up to 256 changes per transaction,
// so an error may leave some moved; the count says how many.
func (q *Queue) DueNow(network string) (int, error) {
	if err := checkID("network", network); err != nil {
		return 0, err
	}
	if err := q.enter(); err != nil {
		return 0, err
	}
	defer q.mu.RUnlock()
	prefix := networkPrefix(prefixJob, network)
	from := prefix
	total := 0
	for from != nil {
		n := 0
		var next []byte
		err := q.write(func(t *tx) error {
			n, next = 0, nil
			now := q.now()
			refs, rest := jobRefs(t.txn, prefix, from, maxBatch)
			for _, r := range refs {
				old, err := t.get(r)
				if err != nil {
					return err
				}
				if (old.State != Pending && old.State != Retrying) || !old.Due.After(now) {
					continue
				}
				rec := *old
				rec.Due = now
				if err := t.put(r, old, &rec); err != nil {
					return err
				}
				t.wake = true
				n++
			}
			next = rest
			return nil
		})
		total += n
		if err != nil {
			return total, fmt.Errorf("queue: due now %q: %w", network, err)
		}
		from = next
	}
	return total, nil
}

// jobRefs returns the refs of up to max job records under prefix, from the
// key from on, and the key to continue from (nil when there are no more).
func jobRefs(txn *badger.Txn, prefix, from []byte, max int) ([]ref, []byte) {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	var refs []ref
	for it.Seek(from); it.Valid(); it.Next() {
		k := it.Item().KeyCopy(nil)
		if len(refs) == max {
			return refs, k
		}
		refs = append(refs, ref(k[len(prefixJob):]))
	}
	return refs, nil
}
