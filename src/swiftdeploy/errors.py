"""The one base class for failures an operator is expected to see.

Anything raised as a SwiftDeployError is printed as its one-line message; anything else is a bug and
keeps its traceback.
"""


class SwiftDeployError(Exception):
    """An expected failure; str() is one line that says what went wrong and where."""
