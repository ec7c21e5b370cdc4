"""What the stack's containers print, read through the engine's API (compose containers or Swarm services)."""

from collections.abc import Iterator

from .. import api as engine


class EngineOutput:
    LOGS_OF_SERVICES = False  # a Swarm runtime's containers are services: their tasks' output, from the manager

    def log_lines(self, container, *, since: float | None = None, tail: int | None = None) -> list[str]:
        """The container's output lines so far, each behind the engine's timestamp."""
        return list(lines_of(engine.log_chunks(container.id, follow=False, since=since, tail=tail,
                                               service=self.LOGS_OF_SERVICES)))

    def follow_lines(self, container, *, since: float | None = None, tail: int | None = None, stop=None):
        """The container's lines as it prints them (after those since/tail choose), until stop is set."""
        for line in lines_of(engine.log_chunks(container.id, follow=True, since=since, tail=tail,
                                               service=self.LOGS_OF_SERVICES)):
            if stop is not None and stop.is_set():
                return
            yield line


def lines_of(chunks: Iterator[bytes]) -> Iterator[str]:
    """Whole lines from a stream of output chunks (a chunk may end mid-line)."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *whole, pending = pending.split(b"\n")
        for line in whole:
            yield line.decode("utf-8", "replace").rstrip("\r")
    if pending:
        yield pending.decode("utf-8", "replace")
