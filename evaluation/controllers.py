"""HTTP routes of the evaluation package."""

from __future__ import annotations

from evaluation.pool_controllers import ExpertPoolController

EVALUATION_CONTROLLERS = [ExpertPoolController]
