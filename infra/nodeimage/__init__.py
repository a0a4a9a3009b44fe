"""The kind node image by the toolchain's routes.

`release`: the pinned upstream `kindest/node` tag and digest ([kind] node_image), what users with
network pull. `source`: built on this machine from a Debian rootfs, kind's base files and binaries
built by the toolchain, with every image kubeadm and kind ask for imported under its upstream name,
so no registry is ever reached. Each step is cached by version and inputs (`steps`), so a second
build does nothing and a changed pin rebuilds only what depends on it.
"""
