"""Appeals with known times, written straight through the ORM: reports read what is stored."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from storage.models import Appeal, Category, Resident
from storage.uow import Database

_seq = itertools.count(1)
HOUR = timedelta(hours=1)


@dataclass
class Seeder:
    db: Database
    resident_id: int = 0

    async def _resident(self) -> int:
        if not self.resident_id:
            async with self.db.uow() as uow:
                resident = Resident(
                    platform="telegram",
                    external_id="501",
                    chat_id="501",
                    created_at=datetime.fromisoformat("2026-01-01T00:00:00+00:00"),
                )
                uow.session.add(resident)
                await uow.commit()
                self.resident_id = resident.id
        return self.resident_id

    async def add(
        self,
        category: str,
        created: datetime,
        *,
        platform: str = "telegram",
        status: str = "new",
        answer_after: timedelta | None = None,
        solved_after: timedelta | None = None,
        deadline_after: timedelta = 8 * HOUR,
        solution_after: timedelta | None = None,
        taken_by: str | None = None,
        reopened: int = 0,
        address: str | None = None,
        pin: tuple[float, float] | None = None,
    ) -> Appeal:
        resident_id = await self._resident()
        async with self.db.uow() as uow:
            found = await uow.session.scalar(select(Category).where(Category.code == category))
            assert found is not None, category
            seq = next(_seq)
            appeal = Appeal(
                number=f"{created.year}-{seq:06d}",
                year=created.year,
                seq=seq,
                resident_id=resident_id,
                platform=platform,
                category_id=found.id,
                department_id=found.department_id,
                description="Описание проблемы для отчёта",
                address=address,
                latitude=pin[0] if pin else None,
                longitude=pin[1] if pin else None,
                status=status,
                created_at=created,
                deadline_at=created + deadline_after,
                first_answer_at=created + answer_after if answer_after else None,
                resolved_at=created + solved_after if solved_after else None,
                closed_at=created + solved_after + HOUR
                if status == "closed" and solved_after
                else None,
                reopened_count=reopened,
                solution_deadline_at=created + solution_after if solution_after else None,
                taken_by_name=taken_by,
            )
            uow.session.add(appeal)
            await uow.commit()
        return appeal
