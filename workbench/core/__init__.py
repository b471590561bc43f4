"""The shared core every layer stands on: where things live (:mod:`.paths`), the one atomic
writer (:func:`.paths.atomic_write`, and :func:`.paths.atomic_write_text` for text), the user-facing errors
(:mod:`.errors`), provenance (:mod:`.provenance`) and file locks (:mod:`.locks`)."""
