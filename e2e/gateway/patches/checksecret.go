// Copied into Traefik's pkg/middlewares/auth by e2e/gateway/build.sh.
//
// Traefik v3.7.13 uses a fork of github.com/abbot/go-http-auth (github.com/containous/go-http-auth)
// that the Go module proxy refuses to serve; build.sh builds against upstream abbot v0.4.0
// instead, which has no exported CheckSecret. This is the fork's CheckSecret: an htpasswd
// secret is bcrypt ("$2a$", "$2b$", "$2x$", "$2y$"), SHA-1 ("{SHA}") or, by default, MD5-crypt
// ("$apr1$..." / "$1$..."). A plain-text secret matches nothing, as in the fork.

package auth

import (
	"bytes"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"strings"

	goauth "github.com/abbot/go-http-auth"
	"golang.org/x/crypto/bcrypt"
)

func nonstopCheckSecret(password, secret string) bool {
	for _, prefix := range []string{"$2a$", "$2b$", "$2x$", "$2y$"} {
		if strings.HasPrefix(secret, prefix) {
			return bcrypt.CompareHashAndPassword([]byte(secret), []byte(password)) == nil
		}
	}

	if strings.HasPrefix(secret, "{SHA}") {
		sum := sha1.Sum([]byte(password))
		want := base64.StdEncoding.EncodeToString(sum[:])

		return subtle.ConstantTimeCompare([]byte(secret[len("{SHA}"):]), []byte(want)) == 1
	}

	parts := bytes.SplitN([]byte(secret), []byte("$"), 4)
	if len(parts) != 4 {
		return false
	}

	magic := []byte("$" + string(parts[1]) + "$")

	return subtle.ConstantTimeCompare([]byte(secret), goauth.MD5Crypt([]byte(password), parts[2], magic)) == 1
}
