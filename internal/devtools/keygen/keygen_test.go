package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEnsureKeyPair(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".dev")
	priv, pub := filepath.Join(dir, "signing.pem"), filepath.Join(dir, "verification.pem")
	read := func(p string) string {
		t.Helper()
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	madeKey, wrotePub, err := EnsureKeyPair(priv, pub)
	if err != nil || !madeKey || !wrotePub {
		t.Fatalf("first run: made key %v, wrote public key %v, %v", madeKey, wrotePub, err)
	}
	st, err := os.Stat(priv)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %v, want 0600", st.Mode().Perm())
	}
	first, firstPub := read(priv), read(pub)
	block, _ := pem.Decode([]byte(firstPub))
	if block == nil || block.Type != "PUBLIC KEY" {
		t.Fatalf("public key file: %q", firstPub)
	}
	if _, err := x509.ParsePKIXPublicKey(block.Bytes); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name     string
		before   func()
		wrotePub bool
	}{
		{"both present: nothing to do", func() {}, false},
		{"public key missing: derived again", func() { os.Remove(pub) }, true},
		{"public key of another key: rewritten", func() { writeFile(t, pub, otherPublicKey(t)) }, true},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			s.before()
			madeKey, wrotePub, err := EnsureKeyPair(priv, pub)
			if err != nil || madeKey || wrotePub != s.wrotePub {
				t.Fatalf("made key %v, wrote public key %v, %v; want false, %v", madeKey, wrotePub, err, s.wrotePub)
			}
			if read(priv) != first {
				t.Error("the private key was replaced")
			}
			if read(pub) != firstPub {
				t.Error("the public key is not the private key's")
			}
		})
	}

	t.Run("private key unreadable as a key: error, file kept", func(t *testing.T) {
		bad := writeFile(t, filepath.Join(t.TempDir(), "bad.pem"), "junk")
		_, _, err := EnsureKeyPair(bad, filepath.Join(t.TempDir(), "pub.pem"))
		if err == nil || !strings.Contains(err.Error(), bad+": no PEM block") {
			t.Errorf("got %v", err)
		}
		if read(bad) != "junk" {
			t.Error("the bad file was replaced")
		}
	})
	t.Run("a public key where the private key should be", func(t *testing.T) {
		_, _, err := EnsureKeyPair(pub, filepath.Join(t.TempDir(), "pub.pem"))
		if err == nil || !strings.Contains(err.Error(), `PEM block "PUBLIC KEY": want a private key`) {
			t.Errorf("got %v", err)
		}
	})
}

// otherPublicKey is the PEM public key of a fresh key pair.
func otherPublicKey(t *testing.T) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
