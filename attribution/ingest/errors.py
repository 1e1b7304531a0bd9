"""Errors a user can cause with a bad file. Each says where (FILE:LINE) and what was wrong."""

from __future__ import annotations


class IngestError(Exception):
    """A problem with the input that stops a run; the previous version of the period stays."""

    def __init__(self, problem: str, *, path: str = "", line: int | None = None) -> None:
        self.problem = problem
        self.path = path
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.path and self.line is not None:
            return f"{self.path}:{self.line}: {self.problem}"
        if self.path:
            return f"{self.path}: {self.problem}"
        return self.problem


class MissingColumnError(IngestError):
    def __init__(self, column: str, *, path: str, expected_format: str) -> None:
        super().__init__(
            f"required column {column!r} is missing from the header of this {expected_format} file",
            path=path,
            line=1,
        )
        self.column = column


class UnknownFormatError(IngestError):
    pass


class PeriodBusyError(Exception):
    """Another run of the same (account, billing period) is running; try again later."""


class RowError(ValueError):
    """One row cannot be parsed; it becomes a RejectedRow, the run goes on."""
