"""The ``cnncalc`` command. Each command imports what it needs when it runs: a shape
query never imports torch, numpy or pydantic."""

from . import import_commands, model_commands, spec_commands  # noqa: F401 - they register
from .base import analyse_or_show, load_spec, main, writable, write_file  # noqa: F401
