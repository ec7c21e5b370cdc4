"""SwiftDeploy: deploy a web service safely from one declarative manifest."""

__version__ = "0.1.0"
