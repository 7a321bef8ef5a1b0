"""The ``ray`` backend: a real local Ray Serve cluster (see stages.py)."""
