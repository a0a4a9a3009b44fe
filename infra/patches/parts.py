"""Leave out the parts of a component that the stack excludes (`kubeflow.exclude: [pipelines/ui]`).

Some components are many programs, and a stack may run only those its purpose needs: where only
part of Kubeflow Pipelines' images can be built, its kind-local stack runs what a v2 pipeline run
uses and leaves out the UI, the metadata envoy and writer, the viewer and visualization servers,
the cache server and the scheduled-workflow controller. The release's component map names each
part's objects; a listed object the render does not have means the map and the tree disagree, and
is refused rather than silently kept.
"""

from __future__ import annotations

from infra.config import StackConfig
from infra.errors import UserError
from infra.manifests.objects import Rendered


def apply(rendered: Rendered, cfg: StackConfig) -> None:
    if not rendered.left_out:
        return
    for part, names in sorted(rendered.left_out.items()):
        wanted = set(names)
        found = {f"{o['kind']}/{o['metadata']['name']}" for o in rendered.objects} & wanted
        if missing := sorted(wanted - found):
            raise UserError(f"kubeflow.exclude: {rendered.release}'s {part} should have {', '.join(missing)}, "
                            f"which the manifests tree at {rendered.tree} does not render; the release's "
                            f"component map (infra/manifests/releases) and the tree disagree")
        rendered.objects[:] = [o for o in rendered.objects if f"{o['kind']}/{o['metadata']['name']}" not in wanted]
        rendered.adjustments.append(f"left-out:{part}({len(wanted)})")
