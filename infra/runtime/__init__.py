"""The container runtime kind needs: found, or installed and started by the project, and made to
work on hosts that cannot give containers every capability.

`host` reads what the machine allows, `docker` starts and stops the daemon the project owns,
`shim` builds the runc shim for hosts without CAP_SYS_RESOURCE, `routes` keeps cluster traffic on
the machine, and `checks` reports all of it in `kfstack doctor`.
"""
