# Sourced by ./scripts/setup and ./scripts/test: on machines whose checkout sits beside a `shared/`
# folder (these build machines and their CI), take the upstream manifests trees and the toolchain's
# source trees from it, unless the caller already set the variables.
if [ -z "${KFSTACK_MANIFESTS:-}" ] && [ -d ../shared/kubeflow-manifests/v1.11.0 ]; then
  export KFSTACK_MANIFESTS=$(cd ../shared/kubeflow-manifests/v1.11.0 && pwd)
fi
if [ -z "${KFSTACK_MANIFESTS_PREVIOUS:-}" ] && [ -d ../shared/kubeflow-manifests/v1.10.2 ]; then
  export KFSTACK_MANIFESTS_PREVIOUS=$(cd ../shared/kubeflow-manifests/v1.10.2 && pwd)  # the upgrade tests
fi
# Sources of the tools and images the Go module proxy refuses: setup builds from them, and the live
# tier checks its cached component images against them (a changed source rebuilds).
if [ -z "${KFSTACK_TOOLCHAIN_SOURCES:-}" ] && [ -d ../shared/toolchain/sources ]; then
  export KFSTACK_TOOLCHAIN_SOURCES=$(cd ../shared/toolchain/sources && pwd)
fi
