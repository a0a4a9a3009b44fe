"""Dex and oauth2-proxy settings, generated once and used by the cluster and the local target."""
