"""Glue between doit and the engine library: expected errors become one-line task failures."""

import functools

from doit.exceptions import TaskFailed

from swiftdeploy.errors import SwiftDeployError


def operator_action(func):
    """Run func; a SwiftDeployError becomes TaskFailed(its message). Bugs keep their traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except SwiftDeployError as err:
            return TaskFailed(str(err))

    return wrapper


def not_implemented(*_args, **_kwargs):
    return TaskFailed("not implemented yet: needs the container engine integration (issue 3)")
