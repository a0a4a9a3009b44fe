"""kubeflow-stacks: Pulumi programs that bring up a pinned Kubeflow, and the tools around them."""
