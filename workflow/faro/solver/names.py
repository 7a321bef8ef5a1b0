"""The solver's method names (no imports: the policies declare them as parameter choices)."""

METHODS: tuple[str, ...] = ("cobyla", "slsqp", "de")
