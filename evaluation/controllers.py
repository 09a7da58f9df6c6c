"""The evaluation package's HTTP routes, one module per stage: the expert pool (`pool_controllers`), the
scheme and the committee draw (`draw_controllers`), the invitations (`invitation_controllers`), the room
(`room_controllers`), the technical evaluation of two envelopes (`technical_controllers`), the review, clarifications and scores (`review_controllers`), the report
(`report_controllers`) and what supervisors watch (`supervision_controllers`)."""

from __future__ import annotations

from evaluation.draw_controllers import DrawController
from evaluation.invitation_controllers import InvitationController
from evaluation.pool_controllers import ExpertPoolController
from evaluation.report_controllers import ReportController
from evaluation.review_controllers import ClarificationController, ReviewController
from evaluation.room_controllers import RoomController
from evaluation.supervision_controllers import AbortStatisticsController, SignalController
from evaluation.technical_controllers import TechnicalController

EVALUATION_CONTROLLERS = [
    ExpertPoolController,
    DrawController,
    InvitationController,
    AbortStatisticsController,
    RoomController,
    TechnicalController,
    ReviewController,
    ReportController,
    ClarificationController,
    SignalController,
]
