"""Ablation sweeps: an ablation file expanded into runs, submitted through submitit, and their status."""
from bench.sweep.ablation import Ablation, AblationError, Axis, PlannedRun, SlurmSettings, load_ablation, parse_ablation
from bench.sweep.results import AblationResults, RunDirConflict

__all__ = ["Ablation", "AblationError", "AblationResults", "Axis", "PlannedRun", "RunDirConflict", "SlurmSettings",
           "load_ablation", "parse_ablation"]
