"""The shared core every layer stands on: where things live (:mod:`.paths`), the one atomic
writer (:func:`.paths.atomic_write`), provenance (:mod:`.provenance`) and file locks (:mod:`.locks`)."""
