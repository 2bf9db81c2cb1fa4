"""The reporting center: the report model, taxonomy, store, novelty, statistics,
the monthly publication and the exchange formats. ``center.web`` is the HTTP shell."""
