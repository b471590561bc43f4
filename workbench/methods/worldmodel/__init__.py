"""Latent action world models (seed 002), scaled to the catalog's games and a CPU.

* :mod:`.regularizers` sparse (VCM + L1 energy), noisy (β-KL), discrete (VQ + code reset), free
* :mod:`.autoencoder`  ``FrameAutoencoder``: the frozen frame encoder (8×8×C representations) + decoder
* :mod:`.model`        ``LatentActionWorldModel``: IDM, regulariser, frame-causal AdaLN forward model;
                       deterministic (``zero``) and action-conditioned (``action``) variants
* :mod:`.controller`   real actions (+ current representation) -> latent actions: MLP, cross-attention
* :mod:`.config`       ``AutoencoderConfig``, ``WorldModelConfig``, ``ControllerConfig``, ``sweep_configs``
* :mod:`.training`     ``train_autoencoder``, ``train_world_model``, ``train_controller`` (resumable)
* :mod:`.evaluate`     capacity, future leakage (Table 1), cycle consistency (Table 2)
* :mod:`.transfer`     transfer filmstrips, PNG/GIF writers
* :mod:`.probes`       latent actions of a dataset (embedding layout) and linear/KNN probes
* :mod:`.health`       the one-row-per-model health table
* :mod:`.sampling`     prior / codebook / SGLD latent sampling and its 2-D projection
* :mod:`.planning`     controller rollouts, CEM, goal-reaching and navigation planning (appendix A)
* :mod:`.trajectory`   player poses from motion actions; ATE and RPE of planned trajectories
* :mod:`.study`        the seed 002 batch run's stages (``run_worldmodel_study``); :mod:`.report` renders it

Clips and action spaces come from :mod:`workbench.frames.clips` and :mod:`workbench.frames.actions`.

::

    from workbench.methods.worldmodel import WorldModelConfig, train_world_model, future_leakage
    wm = train_world_model(WorldModelConfig(datasets=["first_person"], size="demo", family="noisy"))
    future_leakage([wm])
"""

from .autoencoder import FrameAutoencoder
from .config import (AutoencoderConfig, ControllerConfig, WorldModelConfig, by_capacity, capacity_levels,
                     sweep_configs)
from .controller import CrossAttentionController, MLPController
from .evaluate import capacity, cycle_consistency, future_leakage, one_step_errors
from .health import health_summary
from .model import LatentActionWorldModel
from .planning import cem, controller_rollouts, navigation_eval, plan, planning_eval, planning_filmstrip
from .probes import latent_actions, latent_probes
from .regularizers import (DiscreteLatent, FreeLatent, NoisyLatent, SparseLatent, gaussian_kl, sparse_energy,
                           vcm_loss, vector_quantize)
from .sampling import sample_latents, sample_projection
from .training import train_autoencoder, train_controller, train_world_model
from .trajectory import ate, integrate_motion, rpe
from .transfer import filmstrip_image, save_filmstrip, save_gif, transfer_filmstrip

__all__ = [
    "FrameAutoencoder",
    "AutoencoderConfig", "ControllerConfig", "WorldModelConfig", "by_capacity", "capacity_levels", "sweep_configs",
    "CrossAttentionController", "MLPController", "capacity", "cycle_consistency", "future_leakage", "one_step_errors",
    "health_summary", "LatentActionWorldModel", "cem", "controller_rollouts", "navigation_eval", "plan",
    "planning_eval", "planning_filmstrip", "latent_actions", "latent_probes", "DiscreteLatent", "FreeLatent",
    "NoisyLatent", "SparseLatent", "gaussian_kl", "sparse_energy", "vcm_loss", "vector_quantize", "sample_latents",
    "sample_projection", "train_autoencoder", "train_controller", "train_world_model", "ate", "integrate_motion",
    "rpe", "filmstrip_image", "save_filmstrip", "save_gif", "transfer_filmstrip",
]
