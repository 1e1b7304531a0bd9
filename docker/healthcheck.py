"""Container health probe: GET a path on the local gunicorn; exit 0 on HTTP 200, 1 otherwise.

Used by the image HEALTHCHECK (/healthz) and by compose for the web service (/readyz). Stdlib only.
Django rejects requests whose Host is not in ALLOWED_HOSTS, so the probe sends the first
configured host; it also says the request came over HTTPS so a TLS redirect cannot answer it.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def probe_host() -> str:
    hosts = [host.strip() for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",") if host.strip()]
    host = hosts[0] if hosts else "localhost"
    if host == "*":
        return "localhost"
    # ".example.com" allows any subdomain.
    return f"healthcheck{host}" if host.startswith(".") else host


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else "/healthz"
    port = os.environ.get("PORT", "8000")
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        headers={"Host": probe_host(), "X-Forwarded-Proto": "https"},
    )
    try:
        with urllib.request.urlopen(request, timeout=4) as response:
            return 0 if response.status == 200 else 1
    except urllib.error.HTTPError as exc:
        print(f"{path}: HTTP {exc.code}: {exc.read(500).decode(errors='replace')}", file=sys.stderr)
    except OSError as exc:
        print(f"{path}: {exc}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
