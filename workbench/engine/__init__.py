"""What every method's models share: the model library (:mod:`.library`), the device rule
(:mod:`.device`), one writer per model id and resumable checkpoints (:mod:`.session`), and early
stopping (:mod:`.stopping`)."""
