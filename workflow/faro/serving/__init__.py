"""The live serving components that the ``ray`` and ``k8s`` backends both run: the Serve app
(:mod:`.serve_app`) and its deployment API (:mod:`.serve_api`), the autoscaler process
(:mod:`.autoscaler`, the shared control loop against live metrics from :mod:`.metrics`), the
trace replayer (:mod:`.replayer`), and the parsing of their logs (:mod:`.logs`, :mod:`.parse`,
:mod:`.attempts`).
"""
