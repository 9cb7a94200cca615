"""The error of a first deployment: a resource the pipeline expects and `make provision` creates is not there."""

from __future__ import annotations


class MissingAwsResource(RuntimeError):
    """Names the missing resource, the setting that names it, and how to create it."""

    def __init__(self, kind: str, name: str, variable: str):
        super().__init__(
            f"{kind} {name} does not exist ({variable}={name}): create it with `make provision` "
            f"(same settings), or set {variable} to the one you use"
        )
        self.kind, self.name, self.variable = kind, name, variable
