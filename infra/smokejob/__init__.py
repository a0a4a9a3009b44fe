"""The smoke suite as an in-cluster Job: its image (built here), its objects, and the harness that
runs it to completion and collects its JUnit, for clusters where port-forward is not possible."""
