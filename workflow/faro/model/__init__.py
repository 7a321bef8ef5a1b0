"""The experiment model shared by every backend and stage: what an experiment is
(:mod:`.experiment`), its trace (:mod:`.trace`), the data sets it comes from (:mod:`.data`),
the Parquet schema of a run's results (:mod:`.schema`) and the stats of a run (:mod:`.stats`).
"""
