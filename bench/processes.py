"""Bots under measurement as subprocesses (``python -m bot``, ``python -m bench.echo_bot``),
with what the benchmarks read from the kernel about them: resident memory and CPU time."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import IO

from tests.fakes.fake_telegram import FakeTelegram

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "123456:TEST"
COORDINATOR_ID = 900
START_TIMEOUT = 60.0


def bot_env(api_url: str, database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a bot talking to the fake at ``api_url`` (no .env is read: the bot
    runs in an empty directory)."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env.update(
        BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=api_url,
        DATABASE_URL=database_url,
        COORDINATOR_IDS=str(COORDINATOR_ID),
        TIMEZONE="Europe/Moscow",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


class BotSubprocess:
    """``python -m <module>`` with its output in a log file, started when it long-polls."""

    def __init__(self, module: str, env: dict[str, str], workdir: Path, log_path: Path) -> None:
        self.module = module
        self.args: list[str] = []  # after the module, e.g. cProfile's own
        self.env = env
        self.workdir = workdir
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self, fake: FakeTelegram) -> None:
        """Start and wait until the bot's first getUpdates reaches the fake."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        polls = fake.polls_started
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            self.module,
            *self.args,
            cwd=self.workdir,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while fake.polls_started == polls:
            if self.process.returncode is not None:
                raise RuntimeError(
                    f"{self.module} exited with {self.process.returncode}:\n{self.log()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.module} did not start polling:\n{self.log()}")
            await asyncio.sleep(0.05)

    async def kill(self) -> None:
        """SIGKILL: no clean shutdown, as in a power cut."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()
        self._close_log()

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 15)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def rss_mb(self) -> float:
        """Resident set size now (VmRSS), in MB."""
        return _status_kb(self.pid, "VmRSS") / 1024

    def peak_rss_mb(self) -> float:
        """The largest resident set size so far (VmHWM), in MB."""
        return _status_kb(self.pid, "VmHWM") / 1024

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        return ticks / os.sysconf("SC_CLK_TCK")


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/{pid}/status")
