"""Patches Traefik's module source so that it builds from the Go module proxy alone.

usage: python3 apply.py SRC_DIR   (run by e2e/gateway/build.sh on a fresh copy)

Each edit replaces one exact piece of text; if that text is missing (another Traefik
version), it stops with a `nonstop-cluster:` line instead of building something else.
"""

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (file, old text, new text): each old text must occur exactly once.
EDITS = [
    # The proxy answers 403 for ~15 DNS-provider modules that lego/v5/providers/dns
    # imports: ACME DNS-01 is disabled (HTTP-01 and TLS-ALPN-01 are untouched).
    (
        "pkg/provider/acme/provider.go",
        '\t"github.com/go-acme/lego/v5/providers/dns"\n',
        "",
    ),
    (
        "pkg/provider/acme/provider.go",
        "provider, err = dns.NewDNSChallengeProviderByName(p.DNSChallenge.Provider)",
        'provider, err = nil, fmt.Errorf("ACME DNS-01 challenge provider %q unavailable: '
        'DNS providers are left out of this build (nonstop e2e)", p.DNSChallenge.Provider)',
    ),
    # Upstream abbot/go-http-auth v0.4.0 instead of the containous fork (403 on the proxy).
    (
        "pkg/middlewares/auth/basic_auth.go",
        "checkSecret:       goauth.CheckSecret,",
        "checkSecret:       nonstopCheckSecret,",
    ),
    (
        "pkg/middlewares/auth/digest_auth.go",
        "d.auth.RequireAuthStale(rw, req)",
        "d.auth.RequireAuth(rw, req)",
    ),
]

# (file under this directory, destination in the source tree)
COPIES = [
    ("dynamic-ext/go.mod", "pkg/config/dynamic/ext/go.mod"),
    ("dynamic-ext/ext.go", "pkg/config/dynamic/ext/ext.go"),
    ("checksecret.go", "pkg/middlewares/auth/nonstop_checksecret.go"),
]


def die(message: str) -> None:
    sys.exit(f"nonstop-cluster: {message}")


def main() -> None:
    if len(sys.argv) != 2:
        die("usage: apply.py TRAEFIK_SOURCE_DIR")
    src = Path(sys.argv[1])
    for name, old, new in EDITS:
        path = src / name
        text = path.read_text()
        count = text.count(old)
        if count != 1:
            die(
                f"patching Traefik: expected the text {old.strip()!r} once in {name}, found it {count} times: the Traefik version no longer matches e2e/gateway/patches/apply.py; update the patches."
            )
        path.write_text(text.replace(old, new))
    for name, dest in COPIES:
        target = src / dest
        if target.exists():
            die(
                f"patching Traefik: {dest} already exists in the module source: this Traefik version may no longer need e2e/gateway/patches/{name}; check and update the patches."
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(HERE / name, target)


if __name__ == "__main__":
    main()
