"""What the stack must know of each server it runs: the common shape of Kafka and FerretDB."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fengqiao.stack.addresses import HostPort

Progress = Callable[[str], None]

# deploy/ sits next to the fengqiao package in the source tree: the pom, the FerretDB main
# package and the config templates are read from there.
DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy"


@dataclass(frozen=True)
class Launched:
    """A server process we just started: where to look when it does not come up."""

    pid: int
    started: float
    log_offsets: dict[Path, int] = field(default_factory=dict)


class Component(ABC):
    """One server of the local stack, with its files under `<cache>/<name>/`."""

    name: str
    env_var: str
    ready_timeout: float

    def __init__(self, cache_dir: Path, address: HostPort) -> None:
        self.cache_dir = cache_dir
        self.address = address
        self.home = cache_dir / self.name
        self.logs = self.home / "logs"

    @property
    def pid_file(self) -> Path:
        """Where the pid of the running server is kept."""
        return self.cache_dir / "run" / f"{self.name}.pid"

    @property
    @abstractmethod
    def log_path(self) -> Path:
        """The server's main log."""

    @property
    @abstractmethod
    def markers(self) -> tuple[str, ...]:
        """Arguments that only this stack's server has: how we recognise our process."""

    def ports(self) -> Sequence[tuple[int, str]]:
        """(port, what it is for) of every port the server listens on."""
        return [(self.address.port, self.name)]

    @abstractmethod
    def port_hint(self) -> str:
        """How to move the server to other ports."""

    @abstractmethod
    def check_tools(self) -> None:
        """Raise StackError naming what to install if a tool needed from here on is missing."""

    @abstractmethod
    def prepare(self, progress: Progress) -> None:
        """Fetch or build whatever is not cached yet (the slow, first-time-only part)."""

    @abstractmethod
    def launch(self, progress: Progress) -> Launched:
        """Start the server detached; returns at once, before it answers."""

    @abstractmethod
    async def probe(self, limit: float) -> str | None:
        """None when the server answers within `limit` seconds, else why not."""

    def failure_logs(self) -> Sequence[Path]:
        """Logs to show when the server does not come up, most telling first."""
        return [self.log_path]
