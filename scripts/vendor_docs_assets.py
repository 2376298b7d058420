"""Fetch the API explorer's JavaScript and CSS into app/static/docs/ (``make docs-assets``).

The docs pages must work on networks without access to public CDNs, so the service serves
Swagger UI and ReDoc itself. This script downloads the pinned npm releases, keeps only the files
the pages load (and the licences), and records each file's sha256 in VENDORED.json, which a
test checks against the files.

One patch is applied: ReDoc always shows a "by Redocly" badge whose image it loads from
cdn.redoc.ly; the page's Content-Security-Policy would block it (and report an error on every
load), so the badge gets an empty inline image instead. VENDORED.json records the patch and the
upstream file's sha256 beside the patched one.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
import urllib.request
from pathlib import Path

TARGET = Path(__file__).parents[1] / "app" / "static" / "docs"
PACKAGES = {
    "swagger-ui": (
        "swagger-ui-dist",
        "5.35.0",
        ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "LICENSE", "NOTICE"),
    ),
    "redoc": ("redoc", "2.5.4", ("bundles/redoc.standalone.js", "LICENSE")),
}
EMPTY_IMAGE = "data:image/svg+xml,%3Csvg xmlns=%27http://www.w3.org/2000/svg%27/%3E"
# (file, upstream text, replacement, why)
PATCHES = (
    (
        "redoc.standalone.js",
        'src:"https://cdn.redoc.ly/redoc/logo-mini.svg"',
        f'src:"{EMPTY_IMAGE}"',
        "the Redocly badge's image from cdn.redoc.ly replaced by an empty inline image",
    ),
)


def patched(name: str, data: bytes) -> tuple[bytes, list[str]]:
    """``data`` with the patches for file ``name``, and what they changed."""
    applied = []
    for file, upstream, replacement, why in PATCHES:
        if file != name:
            continue
        if data.count(upstream.encode()) != 1:
            raise SystemExit(f"{name}: the text to patch ({upstream}) is not there once")
        data = data.replace(upstream.encode(), replacement.encode())
        applied.append(why)
    return data, applied


def fetch(name: str, version: str) -> tarfile.TarFile:
    url = f"https://registry.npmjs.org/{name}/-/{name}-{version}.tgz"
    with urllib.request.urlopen(url, timeout=60) as response:
        return tarfile.open(fileobj=io.BytesIO(response.read()), mode="r:gz")


def main() -> int:
    manifest: dict[str, dict[str, object]] = {}
    for directory, (package, version, files) in PACKAGES.items():
        archive = fetch(package, version)
        written, upstream, patches = {}, {}, []
        for member_name in files:
            member = archive.extractfile(f"package/{member_name}")
            if member is None:
                raise SystemExit(f"{package}@{version} has no {member_name}")
            path = TARGET / directory / Path(member_name).name
            original = member.read()
            data, applied = patched(path.name, original)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            written[path.name] = hashlib.sha256(data).hexdigest()
            if applied:
                upstream[path.name] = hashlib.sha256(original).hexdigest()
                patches += [f"{path.name}: {why}" for why in applied]
        manifest[directory] = {"package": package, "version": version, "files": written}
        if patches:
            manifest[directory] |= {"patches": patches, "upstream_sha256": upstream}
    (TARGET / "VENDORED.json").write_text(json.dumps(manifest, indent=2) + "\n")
    sys.stdout.write(f"wrote {TARGET}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
