package node

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/convergenode/convergenode/crdt"
	lcrypto "github.com/libp2p/go-libp2p/core/crypto"
	cryptopb "github.com/libp2p/go-libp2p/core/crypto/pb"
	"github.com/libp2p/go-libp2p/core/peer"
)

// GenerateKey returns a new Ed25519 private key from crypto/rand.
func GenerateKey() (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("node: generate key: %w", err)
	}
	return priv, nil
}

// WriteKey writes key to path as a PKCS#8 PEM block with mode 0600. It
// refuses to overwrite an existing file.
func WriteKey(path string, key ed25519.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("node: encode key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("node: write key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("node: write key: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return fmt.Errorf("node: write key %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("node: write key %s: %w", path, err)
	}
	return f.Close()
}

// ReadKey reads an Ed25519 private key written by WriteKey. It refuses a key
// file that other users can read.
func ReadKey(path string) (ed25519.PrivateKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("node: read key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("node: key file %s has mode %v: want 0600", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("node: read key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("node: key file %s: no PEM PRIVATE KEY block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("node: key file %s: %w", path, err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("node: key file %s: %T is not an Ed25519 key", path, k)
	}
	return ek, nil
}

// PeerID returns the libp2p peer ID of key: the identity of the node on the
// network, derived from the same key that signs its changes.
func PeerID(key ed25519.PrivateKey) (peer.ID, error) {
	lk, err := libp2pKey(key)
	if err != nil {
		return "", err
	}
	return peer.IDFromPrivateKey(lk)
}

func libp2pKey(key ed25519.PrivateKey) (lcrypto.PrivKey, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, errors.New("node: key is not an Ed25519 private key")
	}
	lk, err := lcrypto.UnmarshalEd25519PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("node: key: %w", err)
	}
	return lk, nil
}

// authorPeer returns the peer ID of a change author (hex public key).
func authorPeer(hexKey string) (peer.ID, error) {
	b, err := hex.DecodeString(hexKey)
	if err != nil {
		return "", err
	}
	pk, err := lcrypto.UnmarshalEd25519PublicKey(b)
	if err != nil {
		return "", err
	}
	return peer.IDFromPublicKey(pk)
}

// peerAuthor returns the change author (Ed25519 public key) behind a peer
// ID string; ok is false for IDs that do not embed an Ed25519 key.
func peerAuthor(p string) (a crdt.Author, ok bool) {
	id, err := peer.Decode(p)
	if err != nil {
		return a, false
	}
	pk, err := id.ExtractPublicKey()
	if err != nil || pk.Type() != cryptopb.KeyType_Ed25519 {
		return a, false
	}
	raw, err := pk.Raw()
	if err != nil || len(raw) != len(a) {
		return a, false
	}
	copy(a[:], raw)
	return a, true
}
