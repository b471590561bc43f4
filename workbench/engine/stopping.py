"""Early stopping on a validation loss, shared by the IDM and world-model trainers.

Training stops once the validation loss has not improved on its best by more than ``min_delta``
for ``patience`` evaluations in a row; the weights of the best evaluation are kept. The running
record lives in the trainer's checkpointed state (``state["early_stop"]``), so a resumed run
stops where an uninterrupted one would; the card records it (:func:`stopping_card`).
"""

from __future__ import annotations

import math

import torch


def new_record() -> dict:
    """The running record before the first evaluation."""
    return {"best_loss": math.inf, "best_step": 0, "bad_evals": 0, "stopped_step": None, "best_weights": None}


def observe(record: dict, loss: float, step: int, model: torch.nn.Module, patience: int,
            min_delta: float = 0.0) -> bool:
    """Take one evaluation's validation ``loss`` at ``step``; True when training should stop."""
    if loss < record["best_loss"] - min_delta:
        record.update(best_loss=float(loss), best_step=int(step), bad_evals=0,
                      best_weights={k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
    else:
        record["bad_evals"] += 1
    if record["bad_evals"] >= patience:
        record["stopped_step"] = int(step)
    return record["stopped_step"] is not None


def stopped(record: dict | None) -> bool:
    return record is not None and record["stopped_step"] is not None


def restore_best(record: dict | None, model: torch.nn.Module) -> None:
    """Load the best evaluation's weights into ``model`` (nothing without a record)."""
    if record is not None and record["best_weights"] is not None:
        model.load_state_dict(record["best_weights"])


def stopping_card(record: dict | None, patience: int | None) -> dict:
    """What the card says about early stopping: patience, the step it stopped at (None: ran all
    steps), the best validation loss and its step (the weights saved)."""
    if record is None:
        return {"patience": patience}
    return {"patience": patience, "stopped_step": record["stopped_step"], "best_step": record["best_step"],
            "best_val_loss": record["best_loss"]}
