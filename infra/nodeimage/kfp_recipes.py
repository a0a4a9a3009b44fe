"""Kubeflow Pipelines' recipe images ([image_recipes.*] in versions.toml): Debian images by `docker build`.

What a v2 run needs beside the static binaries on minimal roots ([component_images] with `binary`):
the API server (cgo, so glibc), the persistence agent (its command expands variables in a shell),
SeaweedFS (its postStart hook runs sh, seq and wget), and the stand-ins under upstream's names:
MariaDB for mysql:8.4, the project's ML Metadata server, the profile hook's Python, and the sample
pipelines' component runtime. Each image is keyed by its base, Dockerfile and every file it copies.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

from infra.nodeimage.build import Build, docker_cli, image_key, replacing
from infra.nodeimage.recipes import HOST_CA, Recipe, RecipeError, context_dir, docker_build, load_recipes
from infra.nodeimage.steps import digest, file_digest
from infra.toolchain import gobuild, store
from infra.toolchain.model import ToolchainError, load_toolchain
from infra.versions import load_versions
from smoke_tests.run import run

KFP_DIR = Path(__file__).resolve().parent.parent / "kfp"
Files = Mapping[str, "Path | str"]  # context path -> a file to copy, or the text to write
Builder = Callable[[Build, tuple[str, str], Recipe, str], None]


def recipe_binaries(recipe: Recipe) -> dict[str, str]:
    """Image path -> toolchain binary, for recipes that copy Go binaries built by the toolchain."""
    table = recipe.table.get("binaries", {})
    if not isinstance(table, dict) or not all(str(k).startswith("/") for k in table):
        raise RecipeError(f"image_recipes.{recipe.name}.binaries must map absolute image paths to binaries")
    return {str(k): str(v) for k, v in table.items()}


def _binary_file(binary: str) -> Path:
    path = store.bin_dir(load_toolchain().tool_for_binary(binary)) / binary
    if not path.is_file():
        raise RecipeError(f"{binary} is not installed: `kfstack tools install "
                          f"{load_toolchain().tool_for_binary(binary).name}`")
    return path


def _apt(packages: list[str]) -> str:
    if not packages:
        return ""
    return ("RUN apt-get update -qq \\\n"
            f" && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends {' '.join(packages)}"
            " >/dev/null \\\n && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin\n")


def _copy_binaries(recipe: Recipe) -> tuple[str, dict[str, Path]]:
    """COPY lines for the recipe's toolchain binaries, and the context files they read."""
    lines, files = [], {}
    for index, (dest, binary) in enumerate(sorted(recipe_binaries(recipe).items())):
        files[f"bin{index}"] = _binary_file(binary)
        lines.append(f"COPY bin{index} {dest}\n")
    return "".join(lines), files


def _user(uid: str, name: str, home: str = "/nonexistent") -> str:
    """A numeric user (and group) unless the base already has that uid."""
    return (f"RUN (getent group {uid} || groupadd -g {uid} {name}) \\\n"
            f" && (getent passwd {uid} || useradd -r -u {uid} -g {uid} -d {home} -s /usr/sbin/nologin {name})\n")


def _venv(venv: str, install: str, *, check: bool = True) -> str:
    """A venv whose pip uses the host's CA bundle (copied as build/ca.crt) and records what it got;
    `check`: `pip check` must pass (not for a package installed without its dependencies)."""
    pip = (f"PIP_CERT=/etc/kfstack-build/ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180 "
           f"{venv}/bin/pip install -q --no-cache-dir")
    steps = " \\\n && ".join(line.format(pip=pip) for line in install.strip().splitlines())
    return (f"COPY build/ /etc/kfstack-build/\nRUN python3 -m venv {venv} \\\n && {steps} \\\n"
            + (f" && {venv}/bin/pip check" if check else "") +
            f" && {venv}/bin/pip freeze > /etc/kfstack-build/installed.txt\n")


def _with_ca(files: dict[str, Path | str]) -> dict[str, Path | str]:
    files["build/ca.crt"] = HOST_CA if HOST_CA.is_file() else ""
    return files


def _build_image(build: Build, base: tuple[str, str], ref: str, dockerfile: str, files: Files,
                 check: Callable[[], None] | None = None) -> None:
    """docker build of `dockerfile` (FROM {base}) with `files`, keyed by all of them; `check` then
    looks at the new image (and removes it when it is not what the pins say)."""
    text = dockerfile.replace("{base}", base[0])
    key = digest({"base": base[1], "dockerfile": text, "ref": ref, "layout": 1,
                  "files": {name: file_digest(src) if isinstance(src, Path) else digest({"text": src})
                            for name, src in files.items()}})

    def make() -> None:
        with context_dir() as tmp:
            context = Path(tmp)
            (context / "Dockerfile").write_text(text)
            for name, src in files.items():
                dest = context / name
                dest.parent.mkdir(parents=True, exist_ok=True)
                if isinstance(src, Path):
                    shutil.copyfile(src, dest)
                else:
                    dest.write_text(src)
                executable = dest.read_bytes()[:2] == b"#!" or (isinstance(src, Path) and src.stat().st_mode & 0o111)
                dest.chmod(0o755 if executable else 0o644)  # COPY keeps the mode
            docker_build(context, ref, key)
        if check is not None:
            try:
                check()
            except RecipeError:
                run([docker_cli(), "rmi", ref], timeout=120, check=False)
                raise

    build.log.run(f"image {ref}", key, lambda: image_key(ref) == key, replacing(ref, make))


# --- the KFP backend --------------------------------------------------------------------------------

NO_SAMPLES = '{"loadSamplesOnRestart": false, "pipelines": []}\n'


def kfp_apiserver(build: Build, base: tuple[str, str], recipe: Recipe, ref: str) -> None:
    """/bin/apiserver with /config (the tree's files but Go code and test data), run as upstream's image
    runs it."""
    tool = load_toolchain().tool_for_binary("kfp-apiserver")
    try:
        tree = gobuild.source_tree(tool, build.sources) / str(recipe.get("config"))
    except ToolchainError as exc:
        raise RecipeError(str(exc)) from None
    if not (tree / "config.json").is_file():
        raise RecipeError(f"image_recipes.{recipe.name}.config: no config.json in {tree}")
    copies, files = _copy_binaries(recipe)
    kept = [p.relative_to(tree) for p in sorted(tree.rglob("*")) if p.is_file() and p.suffix != ".go"]
    config: dict[str, Path | str] = {f"config/{p}": tree / p for p in kept if "testdata" not in p.parts}
    config["config/sample_config.json"] = NO_SAMPLES
    dockerfile = ("FROM {base}\n" + _apt([str(p) for p in recipe.get("apt")]) + copies +
                  "COPY config/ /config/\nENV LOG_LEVEL=info\nWORKDIR /bin\nEXPOSE 8888 8887\n"
                  'CMD ["/bin/sh", "-c", "/bin/apiserver --config=/config --sampleconfig=/config/sample_config.json '
                  '-logtostderr=true --logLevel=${LOG_LEVEL}"]\n')
    _build_image(build, base, ref, dockerfile, {**files, **config})


def kfp_persistence_agent(build: Build, base: tuple[str, str], recipe: Recipe, ref: str) -> None:
    """/bin/persistence_agent, its flags from the environment the manifests set (upstream's defaults)."""
    copies, files = _copy_binaries(recipe)
    user = str(recipe.get("user"))
    dockerfile = ("FROM {base}\n" + _apt([str(p) for p in recipe.get("apt")]) + copies + _user(user, "appuser") +
                  "ENV NAMESPACE=\"\" TTL_SECONDS_AFTER_WORKFLOW_FINISH=86400 NUM_WORKERS=2 LOG_LEVEL=info "
                  "EXECUTIONTYPE=Workflow\nWORKDIR /bin\n"
                  f"USER {user}\n"
                  'CMD ["/bin/sh", "-c", "persistence_agent --logtostderr=true --namespace=${NAMESPACE} '
                  "--ttlSecondsAfterWorkflowFinish=${TTL_SECONDS_AFTER_WORKFLOW_FINISH} --numWorker ${NUM_WORKERS} "
                  '--executionType ${EXECUTIONTYPE} --logLevel=${LOG_LEVEL}"]\n')
    _build_image(build, base, ref, dockerfile, files)


def seaweedfs(build: Build, base: tuple[str, str], recipe: Recipe, ref: str) -> None:
    """/usr/bin/weed as upstream's user, /data its own, and the tools the manifests' hook runs (busybox's
    wget before Debian's on PATH)."""
    copies, files = _copy_binaries(recipe)
    user = str(recipe.get("user"))
    applets = "".join(f" && ln -s /bin/busybox /usr/local/bin/{a}" for a in recipe.get("busybox"))
    dockerfile = ("FROM {base}\n" + _apt([str(p) for p in recipe.get("apt")]) + copies +
                  _user(user, "seaweed", "/data") + f"RUN mkdir -p /data && chown {user}:{user} /data{applets}\n"
                  f"WORKDIR /data\nUSER {user}\nEXPOSE 8333 8111 9333 8888 8080\n"
                  'ENTRYPOINT ["/usr/bin/weed", "-logtostderr=true"]\n')
    _build_image(build, base, ref, dockerfile, files)


# --- stand-ins and the component runtime ----------------------------------------------------------

MARIADB_CONFIG = """\
# The mysql:8.4 stand-in: listen on every address (a Service in front), utf8mb4 as MySQL 8's default.
[mysqld]
bind-address = 0.0.0.0
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
skip-name-resolve
"""


def mariadb(build: Build, base: tuple[str, str], recipe: Recipe, ref: str) -> None:
    """Debian's MariaDB as uid 999, its data directory made on first start by the entrypoint."""
    user = str(recipe.get("user"))
    dockerfile = ("FROM {base}\n" + _user(user, "mysql") +
                  # no service starts during the build; the package's own data directory is dropped
                  "RUN printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d\n" +
                  _apt([str(p) for p in recipe.get("apt")]) +
                  "RUN rm -f /usr/sbin/policy-rc.d && rm -rf /var/lib/mysql && mkdir -p /var/lib/mysql /run/mysqld "
                  "\\\n"
                  f" && chown {user}:{user} /var/lib/mysql /run/mysqld\n"
                  "COPY kfstack.cnf /etc/mysql/mariadb.conf.d/99-kfstack.cnf\n"
                  "COPY entrypoint.sh /usr/local/bin/docker-entrypoint.sh\n"
                  f"USER {user}\nEXPOSE 3306\n"
                  'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]\nCMD ["mariadbd"]\n')
    files: dict[str, Path | str] = {"kfstack.cnf": MARIADB_CONFIG, "entrypoint.sh": KFP_DIR / "mariadb-entrypoint.sh"}
    wanted = str(recipe.get("mariadb"))

    def same_series() -> None:
        out = run([docker_cli(), "run", "--rm", "--entrypoint", "mariadbd", ref, "--version"], timeout=120).stdout
        found = re.search(r"Ver (\d+\.\d+)\.\d+-MariaDB", out)
        if not found or found.group(1) != wanted:
            raise RecipeError(f"{ref}: Debian's package gave MariaDB {found.group(1) if found else '?'}, "
                              f"image_recipes.{recipe.name}.mariadb says {wanted}: update it (and say so) together")

    _build_image(build, base, ref, dockerfile, files, same_series)


MLMD_WRAPPER = '#!/bin/sh\nexec /opt/mlmd/venv/bin/python /opt/mlmd/mlmd_server.py "$@"\n'


def mlmd_server(build: Build, base: tuple[str, str], recipe: Recipe, ref: str) -> None:
    """infra/kfp/mlmd_server.py in a venv of the pinned wheel, as /bin/metadata_store_server."""
    user = str(recipe.get("user"))
    dockerfile = ("FROM {base}\n" + _apt([str(p) for p in recipe.get("apt")]) +
                  _venv("/opt/mlmd/venv", "{pip} -r /etc/kfstack-build/requirements.txt") +
                  "COPY mlmd_server.py /opt/mlmd/mlmd_server.py\n"
                  "COPY metadata_store_server /bin/metadata_store_server\n"
                  f"USER {user}\nEXPOSE 8080\nENTRYPOINT [\"/bin/metadata_store_server\"]\n")
    files = _with_ca({"build/requirements.txt": KFP_DIR / "mlmd-requirements.txt",
                      "mlmd_server.py": KFP_DIR / "mlmd_server.py", "metadata_store_server": MLMD_WRAPPER})
    _build_image(build, base, ref, dockerfile, files)


def _pins(recipe: Recipe, *, with_release: bool) -> tuple[list[str], str]:
    """The recipe's pip packages (plus the release's sklearn server packages) and its constraints file."""
    packages = [str(p) for p in recipe.get("packages")]
    if with_release:
        versions = load_versions()
        packages += list(versions.release(versions.default_release).sklearn_server_packages)
    source = recipe.table.get("constraints_from")
    table = load_recipes()[str(source)] if source else recipe
    constraints = [str(c) for c in table.table.get("constraints", [])]
    return packages, "".join(f"{c}\n" for c in constraints)


def _quoted(packages: list[str]) -> str:
    return " ".join(f"'{p}'" for p in packages)


def kfp_profile_hook(build: Build, base: tuple[str, str], recipe: Recipe, ref: str) -> None:
    """Python 3 as `python` and `python3`, with botocore: what KFP's hook (`python /hooks/sync.py`) needs."""
    packages, constraints = _pins(recipe, with_release=False)
    user = str(recipe.get("user"))
    dockerfile = ("FROM {base}\n" + _apt([str(p) for p in recipe.get("apt")]) +
                  _venv("/opt/hook/venv", "{pip} -c /etc/kfstack-build/constraints.txt " + _quoted(packages)) +
                  "ENV PATH=/opt/hook/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
                  f"USER {user}\n")
    _build_image(build, base, ref, dockerfile, _with_ca({"build/constraints.txt": constraints}))


def kfp_runtime(build: Build, base: tuple[str, str], recipe: Recipe, ref: str) -> None:
    """python3 with kfp (without its dependencies) and the sample steps' packages on PATH first."""
    packages, constraints = _pins(recipe, with_release=True)
    kfp = [p for p in packages if p.startswith("kfp")]
    rest = [p for p in packages if not p.startswith("kfp")]
    install = (f"{{pip}} --no-deps {_quoted(kfp)}\n"
               f"{{pip}} -c /etc/kfstack-build/constraints.txt {_quoted(rest)}")
    dockerfile = ("FROM {base}\n" + _apt([str(p) for p in recipe.get("apt")]) +
                  _venv("/opt/kfp/venv", install, check=False) +
                  "ENV PATH=/opt/kfp/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\\n"
                  "    PYTHONUNBUFFERED=1\n")
    _build_image(build, base, ref, dockerfile, _with_ca({"build/constraints.txt": constraints}))


BUILDERS: dict[str, Builder] = {
    "kfp-apiserver": kfp_apiserver, "kfp-persistence-agent": kfp_persistence_agent, "seaweedfs": seaweedfs,
    "mariadb": mariadb, "mlmd-server": mlmd_server, "kfp-profile-hook": kfp_profile_hook,
    "kfp-runtime": kfp_runtime,
}
