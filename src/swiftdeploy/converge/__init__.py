"""Convergence: the Stack handle, the pure planner (desired vs observed -> ordered steps), the executor that
runs and confirms each step, the intent journal and the stack lock, releases, nginx switching, and the
operations and rollout built on them. May import every package above it in swiftdeploy/__init__.py's list."""
