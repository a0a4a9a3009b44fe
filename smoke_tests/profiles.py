"""Kubeflow's naming of a user's profile namespace, which the suite needs where a target names
users without their profiles (and the Pulumi program uses for the profiles it creates)."""

from __future__ import annotations

import re


def profile_name_for(email: str) -> str:
    """Upstream's naming: user@example.com owns the namespace kubeflow-user-example-com."""
    local = re.sub(r"[^a-z0-9]+", "-", email.lower()).strip("-")
    return f"kubeflow-{local}"[:63].rstrip("-")
