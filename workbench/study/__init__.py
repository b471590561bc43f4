"""The seed 000 study: run it (:mod:`.runner`) and render its report (:mod:`.report`)."""

from .runner import StudyConfig, run_study, studies_dir

__all__ = ["StudyConfig", "run_study", "studies_dir"]
