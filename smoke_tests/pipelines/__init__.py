"""Sample kfp v2 pipelines that run unchanged on a cluster and with `kfp.local` (no Docker)."""
