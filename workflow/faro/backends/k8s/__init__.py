"""The ``k8s`` backend: the live stage chain on a Kubernetes cluster with KubeRay.

- :mod:`.config` settings (``k8s:`` config section), naming rules, quota arithmetic
- :mod:`.manifests` every object as a dict (pure functions) + a YAML-rendering CLI
- :mod:`.validate` offline schema validation (Kubernetes OpenAPI, KubeRay CRDs)
- :mod:`.client` plain-dict REST layer over the official ``kubernetes`` client
- :mod:`.lease` the Lease lock that serialises sessions on one cluster
- :mod:`.session` setup_quota .. teardown, each returning a JSON-able record
- :mod:`.podrun` entry point of faro's pods (runs a command, serves its records)
- :mod:`.backend` the adapter behind the workflow's stage rules (``get_backend("k8s")``)

Not yet run against a live cluster: see ``docs/k8s-runbook.md``.
"""
