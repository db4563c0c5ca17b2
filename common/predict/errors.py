"""What stops one analysis, and the exit status of ``python -m common.predict`` for it."""
from __future__ import annotations

from common.checkpoints import CheckpointError

EXIT_UNREADABLE, EXIT_NO_FACE, EXIT_NO_CHECKPOINT, EXIT_BAD_CHECKPOINT = 2, 3, 4, 5


class PredictError(RuntimeError):
    """An input or model problem that stops one analysis; ``exit_code`` is the command's status."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        return self.args[0] + (f"\n  hint: {self.hint}" if self.hint else "")


class UnreadableInputError(PredictError):
    exit_code = EXIT_UNREADABLE


class NoFaceError(PredictError):
    exit_code = EXIT_NO_FACE


class NoCheckpointError(PredictError):
    exit_code = EXIT_NO_CHECKPOINT


def exit_code_of(exc: BaseException) -> int:
    if isinstance(exc, PredictError):
        return exc.exit_code
    if isinstance(exc, CheckpointError):
        return EXIT_BAD_CHECKPOINT
    return 1
