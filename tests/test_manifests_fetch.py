"""`kfstack manifests`: the pinned manifests trees fetched once into the cache, through a mirror.

./scripts/setup fetches them on a machine with network so the render, simulated-cluster and
upgrade tests run there; the stand-in release pages serve the archive at its upstream URL.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.cli import main
from infra.toolchain import release
from infra.versions import load_versions
from tests.toolchain_standins import ReleaseSite, serve

pytestmark = pytest.mark.usefixtures("isolated_cache")  # tests/conftest.py
RELEASE = "v1.11.0"


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ReleaseSite]:
    with serve(ReleaseSite(tmp_path / "site")) as served:
        monkeypatch.setenv(release.MIRROR_ENV, served.base_url)
        monkeypatch.delenv("KFSTACK_MANIFESTS", raising=False)
        yield served


def archive(*dirs: str) -> bytes:
    """A tag archive as GitHub packs one: everything under one top directory."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in dirs:
            data = f"# {name}\n".encode()
            info = tarfile.TarInfo(f"manifests-1.11.0/{name}/kustomization.yaml")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_fetch_once_through_the_mirror_then_path_finds_it(site: ReleaseSite,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    url = load_versions().release(RELEASE).archive_url
    site.put(url, archive("common", "applications"))
    assert main(["manifests", "path", RELEASE]) == 1  # nothing cached yet
    assert main(["manifests", "fetch", RELEASE]) == 0
    fetched = [r for r in site.requests if r.endswith(url.removeprefix("https:/"))]
    assert len(fetched) == 1, site.requests

    assert main(["manifests", "fetch", RELEASE]) == 0  # a second run downloads nothing
    assert len(site.requests) == len(fetched)
    capsys.readouterr()
    assert main(["manifests", "path", RELEASE]) == 0
    tree = capsys.readouterr().out.strip()
    assert tree.endswith(f"/manifests/{RELEASE}")
    assert (Path(tree) / "common" / "kustomization.yaml").read_text() == "# common\n"


def test_an_archive_that_is_not_a_manifests_tree_is_refused_and_not_cached(
        site: ReleaseSite, capsys: pytest.CaptureFixture[str]) -> None:
    site.put(load_versions().release(RELEASE).archive_url, archive("docs"))
    assert main(["manifests", "fetch", RELEASE]) == 1
    assert "missing common/, applications/" in capsys.readouterr().err
    assert main(["manifests", "path", RELEASE]) == 1


def test_an_unreachable_host_names_the_offline_fix(site: ReleaseSite, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["manifests", "fetch", RELEASE]) == 1  # the mirror has no such file: 404
    err = capsys.readouterr().err
    assert "could not download" in err and "KFSTACK_MANIFESTS" in err


@pytest.mark.parametrize("python", ["with the data filter", "3.11.2, without it"])
def test_members_outside_the_tree_are_refused(python: str, site: ReleaseSite, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Debian 12's Python 3.11.2 has no `filter` argument (the fresh container's fetch failed with a
    TypeError); there the same rule is applied by hand: a good tree unpacks, an escaping member not."""
    if python.startswith("3.11.2"):
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    url = load_versions().release(RELEASE).archive_url
    good = archive("common", "applications")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(good)) as src, tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for member in src.getmembers():
            tar.addfile(member, src.extractfile(member))
        escape = tarfile.TarInfo("manifests-1.11.0/../../escaped")
        escape.size = 1
        tar.addfile(escape, io.BytesIO(b"x"))
    site.put(url, buffer.getvalue())
    assert main(["manifests", "fetch", RELEASE]) == 1
    assert "nothing was cached" in capsys.readouterr().err
    assert main(["manifests", "path", RELEASE]) == 1

    site.put(url, good)
    assert main(["manifests", "fetch", RELEASE]) == 0
