"""Simulated residents filing appeals through the fake Bot API, many at once.

Each resident follows the bot's prompts, not a fixed script: after every message it waits for
the bot's next prompt to its chat (the category menu, «Опишите проблему», «Где это?», the photo
and phone questions, the summary with «Отправить», «Обращение № … принято») and answers what
that prompt asks. A step not answered within ``step_timeout`` is sent again, so a bot restarted
mid-run (an update lost with it, or its reply lost) is picked up where it actually stands.

Recorded per resident: the latency of each step (its message → the bot's prompt, by the
fake's clock) and the number it was told.

    python -m bench.residents --residents 50     # a quick run against ``python -m bot``
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import re
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from bench.chat_index import IndexedTelegram
from bot.core import texts
from tests.fakes.fake_telegram import JSON, Request

NUMBER = re.compile(r"№ (\d{4}-\d{6}) принято")
FIRST_RESIDENT_ID = 10_000_000
MAX_ATTEMPTS = 6


class Step(StrEnum):
    """Where the bot says the conversation stands (what its latest prompt asks for)."""

    START = "start"
    CATEGORY = "category"
    DESCRIPTION = "description"
    ADDRESS = "address"
    PHOTOS = "photos"
    PHONE = "phone"
    CONFIRM = "confirm"
    RESUME = "resume"
    DONE = "done"


PROMPTS: dict[Step, tuple[str, ...]] = {
    Step.START: (texts.IDLE, texts.NO_DRAFT, texts.CANCELLED),
    Step.CATEGORY: (texts.ASK_CATEGORY_AGAIN, texts.EXPECTED_AT_STEP["category"]),
    Step.DESCRIPTION: (
        texts.ASK_DESCRIPTION,
        texts.DESCRIPTION_TOO_SHORT,
        texts.EXPECTED_AT_STEP["description"],
    ),
    Step.ADDRESS: (texts.ASK_ADDRESS, texts.ADDRESS_BAD, texts.EXPECTED_AT_STEP["address"]),
    Step.PHOTOS: (
        texts.ASK_PHOTOS,
        texts.PHOTO_ADDED,
        texts.PHOTOS_EXPECTED,
        texts.EXPECTED_AT_STEP["photos"],
    ),
    Step.PHONE: (texts.ASK_PHONE, texts.PHONE_BAD, texts.EXPECTED_AT_STEP["phone"]),
    Step.CONFIRM: (texts.EXPECTED_AT_STEP["confirm"],),
    Step.RESUME: (texts.EXPECTED_AT_STEP["resume"],),
    # «Это обращение уже отправлено…», with the number when the bot knows it.
    Step.DONE: (texts.already_sent("").split(" —")[0],),
}


def recognise(request: Request) -> Step | None:
    """The step a message from the bot asks for; ``None`` for anything else (a greeting, the
    summary's intro, a removed keyboard)."""
    if request.name != "sendmessage":
        return None
    data = request.callback_data
    if any(d.startswith("i:category:") for d in data):
        return Step.CATEGORY
    if "i:confirm:submit" in data:
        return Step.CONFIRM
    if "i:resume:continue" in data:
        return Step.RESUME
    text = request.text
    if NUMBER.search(text):
        return Step.DONE
    for step, prompts in PROMPTS.items():
        if any(text.startswith(prompt) for prompt in prompts):
            return step
    return None


@dataclass
class Resident:
    """One simulated resident and what happened to them."""

    index: int
    user: JSON
    photo: bool
    number: str | None = None
    latencies: list[tuple[Step, float]] = field(default_factory=list)
    resends: int = 0
    reached: Step = Step.START
    failed: str | None = None
    photo_sent: bool = False
    menu: JSON | None = None  # the latest message with the category buttons
    summary: JSON | None = None  # the latest summary with «Отправить»
    resume: JSON | None = None  # the latest «Продолжить / Начать заново» question

    @property
    def chat_id(self) -> int:
        return int(self.user["id"])


@dataclass
class DriveResult:
    residents: list[Resident]
    seconds: float  # from the first message to the last answer

    @property
    def numbers(self) -> dict[int, str]:
        """Resident's user id → the number they were told."""
        return {r.chat_id: r.number for r in self.residents if r.number is not None}

    @property
    def answered(self) -> int:
        """Resident messages the bot answered (with its next prompt)."""
        return sum(len(r.latencies) for r in self.residents)

    @property
    def latencies(self) -> list[float]:
        return [seconds for r in self.residents for _, seconds in r.latencies]

    @property
    def failed(self) -> list[Resident]:
        return [r for r in self.residents if r.failed is not None]


def percentile(values: Sequence[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class Driver:
    """Plays residents against ``fake`` (the bot polls it); see the module's docstring."""

    def __init__(
        self,
        fake: IndexedTelegram,
        step_timeout: float = 60.0,
        stop_at: Step = Step.DONE,
        first_id: int = FIRST_RESIDENT_ID,
    ) -> None:
        self.fake = fake
        self.step_timeout = step_timeout
        self.stop_at = stop_at
        self.first_id = first_id

    def residents(self, count: int, photos: bool = False, offset: int = 0) -> list[Resident]:
        made = []
        for index in range(offset, offset + count):
            user = self.fake.user(self.first_id + index, f"Житель{index}")
            made.append(Resident(index, user, photos))
        return made

    async def drive(self, residents: list[Resident]) -> DriveResult:
        """All of them at once, each to ``stop_at`` (or failure)."""
        began = time.time()
        await asyncio.gather(*(self.play(r) for r in residents))
        ends = [began]
        for resident in residents:
            log = self.fake.by_chat.get(resident.chat_id, [])
            ends.extend(r.at for r in log[-1:])
        return DriveResult(residents, max(ends) - began)

    async def play(self, resident: Resident) -> None:
        step = Step.START
        while step != self.stop_at and step != Step.DONE:
            for attempt in range(MAX_ATTEMPTS):
                if attempt:
                    resident.resends += 1
                since = self.fake.chat_mark(resident.chat_id)
                sent_at = time.time()
                self.act(resident, step)
                found = await self.fake.wait_chat(
                    resident.chat_id, _recognised, since, self.step_timeout
                )
                if found is not None:
                    break
            else:
                resident.failed = f"no answer at {step} after {MAX_ATTEMPTS} attempts"
                return
            answer, _ = found
            resident.latencies.append((step, answer.at - sent_at))
            step = self.note(resident, answer)
            resident.reached = step

    def note(self, resident: Resident, answer: Request) -> Step:
        """Remember what the answer carries (buttons, the number); returns its step."""
        step = recognise(answer)
        assert step is not None
        # The message as sent: the fake's stored one loses its buttons once the bot takes them
        # away after a press, and a re-sent step needs them again.
        sent = _as_sent(answer)
        if step is Step.CATEGORY and answer.callback_data:
            resident.menu = sent
        if step is Step.CONFIRM and answer.callback_data:
            resident.summary = sent
        if step is Step.RESUME:
            resident.resume = sent
        match = NUMBER.search(answer.text)
        if match:
            resident.number = match.group(1)
        return step

    def act(self, resident: Resident, step: Step) -> None:
        """What a resident does at ``step``."""
        fake, user, n = self.fake, resident.user, resident.index
        if step is Step.START:
            fake.send_text(user, "/start")
        elif step is Step.CATEGORY:
            if resident.menu is None:
                fake.send_text(user, "/start")
                return
            codes = [d for d in inline_data(resident.menu) if d.startswith("i:category:")]
            fake.press_forged(user, resident.menu, codes[n % len(codes)])
        elif step is Step.DESCRIPTION:
            fake.send_text(user, f"Яма на дороге у дома {n}, машины объезжают по встречке")
        elif step is Step.ADDRESS:
            fake.send_text(user, f"ул. Ленина, д. {n % 200 + 1}")
        elif step is Step.PHOTOS:
            if resident.photo and not resident.photo_sent:
                resident.photo_sent = True
                fake.send_photo(user)
            else:
                fake.send_text(user, texts.DONE if resident.photo_sent else texts.SKIP)
        elif step is Step.PHONE:
            fake.send_text(user, texts.SKIP)
        elif step is Step.CONFIRM and resident.summary is not None:
            fake.press_forged(user, resident.summary, "i:confirm:submit")
        elif step is Step.RESUME and resident.resume is not None:
            fake.press_forged(user, resident.resume, "i:resume:continue")
        else:
            fake.send_text(user, "/start")


def _recognised(request: Request) -> bool:
    return recognise(request) is not None


def _as_sent(answer: Request) -> JSON | None:
    if answer.message is None:
        return None
    return {**copy.deepcopy(answer.message), "reply_markup": answer.reply_markup}


def inline_data(message: JSON) -> list[str]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
    return [str(b["callback_data"]) for row in rows for b in row if "callback_data" in b]


def step_table(result: DriveResult) -> str:
    """Per-step latency: count, p50, p95, max (seconds)."""
    by_step: dict[Step, list[float]] = {}
    for resident in result.residents:
        for step, seconds in resident.latencies:
            by_step.setdefault(step, []).append(seconds)
    lines = [f"{'step':<12}{'answers':>9}{'p50 s':>9}{'p95 s':>9}{'max s':>9}"]
    for step, values in by_step.items():
        lines.append(
            f"{step.value:<12}{len(values):>9}{percentile(values, 0.5):>9.3f}"
            f"{percentile(values, 0.95):>9.3f}{max(values):>9.3f}"
        )
    return "\n".join(lines)


async def demo(count: int, photos: bool) -> None:
    from bench.processes import BotSubprocess, bot_env

    fake = IndexedTelegram()
    await fake.start()
    with tempfile.TemporaryDirectory(prefix="priemnaya-residents-") as tmp:
        root = Path(tmp)
        env = bot_env(fake.base_url, f"sqlite+aiosqlite:///{root / 'bot.db'}")
        bot = BotSubprocess("bot", env, root / "cwd", root / "bot.log")
        try:
            await bot.start(fake)
            driver = Driver(fake)
            result = await driver.drive(driver.residents(count, photos))
        finally:
            await bot.stop()
            await fake.stop()
    told = result.numbers
    print(
        f"{count} residents, {len(told)} told a number ({len(set(told.values()))} distinct), "
        f"{len(result.failed)} failed, {sum(r.resends for r in result.residents)} resends, "
        f"{result.answered} answers in {result.seconds:.1f}s, "
        f"median {statistics.median(result.latencies):.3f}s"
    )
    print(step_table(result))


def main() -> None:
    parser = argparse.ArgumentParser(description="Drive simulated residents against the bot.")
    parser.add_argument("--residents", type=int, default=50)
    parser.add_argument("--photo", action="store_true", help="each sends one photo")
    args = parser.parse_args()
    asyncio.run(demo(args.residents, args.photo))


if __name__ == "__main__":
    main()
