"""One folder per method, each read top to bottom: model, config, training, evaluation, study.

* :mod:`.idm`         inverse dynamics models across games (seed 000)
* :mod:`.worldmodel`  latent-action world models, controllers and planning (seed 002)
"""
