"""kfstack sub-commands that belong to no larger package."""
