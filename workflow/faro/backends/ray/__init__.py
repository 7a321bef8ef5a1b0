"""The ``ray`` backend: a real local Ray Serve cluster per run.

- :mod:`.cluster` starts and stops a local Ray head (its processes, by pid)
- :mod:`.session` the stages of one run against it (deploy, replay, fetch, teardown)
- :mod:`.backend` the adapter behind the workflow's stage rules (``get_backend("ray")``)

The live components it runs (autoscaler, replayer, Serve app) are in :mod:`faro.serving`,
shared with the ``k8s`` backend.
"""
