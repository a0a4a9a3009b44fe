"""T3 here: the recipe images built by `kfstack nodeimage components` do what their pods need.

The stand-in gateway's nginx starts as user 101 from a config mounted at /etc/kfstack-gateway with
only /tmp writable, and answers; KServe's Python image runs the sklearn server's module and the
storage initializer as upstream's user 1000, and places a model directory. NOT RUN (skipped with
the reason) where no container runtime can run, or the images cannot be built here (no root and
debootstrap, or no KServe source copy).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from infra.runtime import docker
from smoke_tests.process import free_port
from smoke_tests.run import run
from smoke_tests.wait import wait_until
from tests.live_fixtures import container_runtime  # noqa: F401 - a fixture

pytestmark = [pytest.mark.live, pytest.mark.slow]
GATEWAY = "kfstack/standin-gateway:nginx-1.22"
SKLEARN = "kserve/sklearnserver:v0.15.2"
INITIALIZER = "kserve/storage-initializer:v0.15.2"


def _quiet(_line: str) -> None:
    return None


@pytest.fixture(scope="module")
def built(container_runtime: docker.RuntimeState) -> Iterator[str]:  # noqa: F811 - the shared fixture
    from infra.nodeimage.build import NodeImageError
    from infra.nodeimage.components import build_component_images
    from infra.toolchain.model import ToolchainError

    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        pytest.skip("NOT RUN: the recipe images' Debian base needs root and debootstrap")
    try:
        build_component_images([GATEWAY, SKLEARN, INITIALIZER], say=_quiet)
    except (NodeImageError, ToolchainError) as exc:
        pytest.skip(f"NOT RUN: the recipe images cannot be built here: {exc}")
    cli = shutil.which("docker")
    assert cli is not None
    yield cli


def test_the_standin_gateway_runs_nginx_as_101_from_a_mounted_config(built: str, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "nginx.conf").write_text(
        "pid /tmp/nginx.pid;\nevents {}\nhttp {\n"
        "  client_body_temp_path /tmp/body; proxy_temp_path /tmp/proxy; fastcgi_temp_path /tmp/fastcgi;\n"
        "  uwsgi_temp_path /tmp/uwsgi; scgi_temp_path /tmp/scgi;\n"
        "  server { listen 8080; location / { return 200 'gateway up\\n'; } }\n}\n")
    port = free_port()
    name = f"kfstack-gw-test-{os.getpid()}"
    run([built, "run", "-d", "--name", name, "--read-only", "--tmpfs", "/tmp", "-p", f"127.0.0.1:{port}:8080",
         "-v", f"{conf}:/etc/kfstack-gateway:ro", GATEWAY], timeout=120)
    try:
        def answers() -> tuple[bool, str]:
            try:
                resp = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
            except requests.ConnectionError as exc:
                return False, str(exc)
            return resp.status_code == 200, resp.text

        assert wait_until(answers, timeout=60, interval=0.5, what="the gateway's nginx") == "gateway up\n"
        # The owners of the container's processes, nginx's master and workers (and this shell) included.
        owners = run([built, "exec", "--user", "0", name, "sh", "-c",
                      "for p in /proc/[0-9]*; do [ \"$(cat $p/comm)\" = nginx ] && stat -c %u $p; done; true"],
                     timeout=60).stdout.split()
        assert len(owners) >= 2 and set(owners) == {"101"}, owners
    finally:
        run([built, "rm", "-f", name], timeout=120, check=False)


def test_kserves_python_images_run_as_1000_and_initialize_storage(built: str, tmp_path: Path) -> None:
    out = run([built, "run", "--rm", "--entrypoint", "python3", SKLEARN, "-c",
               "import os, sklearnserver, kserve, sklearn; print(os.getuid(), kserve.__version__ if "
               "hasattr(kserve, '__version__') else '', sklearn.__version__)"], timeout=300).stdout.split()
    assert out[0] == "1000" and out[-1].startswith("1.5.")
    models = tmp_path / "models"
    (models / "src").mkdir(parents=True)
    (models / "src" / "model.joblib").write_bytes(b"not really a model")
    (models / "dest").mkdir()
    os.chmod(models / "dest", 0o777)
    run([built, "run", "--rm", "-v", f"{models}:/mnt", INITIALIZER, "/mnt/src", "/mnt/dest"], timeout=300)
    placed = models / "dest" / "model.joblib"  # a local source is linked, as KServe does for pvc:// models
    assert os.readlink(placed) == "/mnt/src/model.joblib"
    assert placed.lstat().st_uid == 1000
