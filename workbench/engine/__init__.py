"""What every method's models share: the model library (:mod:`.library`) and its typed cards
(:mod:`.card`), one id rule (:mod:`.ids`), the training engine every method plugs into with a step
function (:mod:`.fit`), its TensorBoard curves (:mod:`.curves`), the device rule (:mod:`.device`),
one writer per model id and resumable checkpoints (:mod:`.session`), and early stopping
(:mod:`.stopping`)."""
