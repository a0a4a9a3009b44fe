"""Patches that turn upstream's rendered example into the stack's configuration.

Each module holds one concern and one `apply(rendered, cfg)` that edits `rendered.objects` in
place and records a short name in `rendered.adjustments` when it changes anything.
"""

from __future__ import annotations

from infra.config import StackConfig
from infra.manifests.objects import Rendered
from infra.patches import (
    auth,
    gateway,
    images,
    kserve,
    netpolicy,
    normalize,
    parts,
    pipelines,
    profiles,
    sim,
    storage,
)


def apply_patches(rendered: Rendered, cfg: StackConfig) -> None:
    # images last: it maps every image, the storage provisioners' and the stand-in gateway's included.
    # parts first: what the stack leaves out is not patched.
    for patch in (parts.apply, normalize.apply, storage.apply, pipelines.apply, auth.apply, profiles.apply,
                  kserve.apply, gateway.apply, netpolicy.apply,
                  sim.apply, images.apply):
        patch(rendered, cfg)
