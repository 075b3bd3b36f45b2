"""Wiring: settings → database (migrated) → catalogue → services → the Telegram and VK fronts
(whichever have tokens) + the outbox."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from datetime import timedelta
from typing import TYPE_CHECKING

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError
from aiogram.fsm.storage.base import BaseEventIsolation
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
)

from bot.core.appeals import StaffService
from bot.core.catalog import load_catalog
from bot.core.config import CoreConfig
from bot.core.delivery import OutboxWorker
from bot.core.intake import IntakeService
from bot.core.model import Platform
from bot.core.ports import Sender
from bot.core.ratelimit import TELEGRAM_LIMITS, VK_LIMITS, RateLimiter
from bot.core.routing import RoutingService
from bot.duties import run_duty
from bot.lazy_models import AIOGRAM, defer_models
from bot.memory import give_back, rss_mb
from bot.scheduler import start_deadline_scan
from bot.settings import Settings
from handlers.telegram.isolation import ChatLocks
from handlers.telegram.late_answers import LateCallbackAnswers
from handlers.telegram.polling import poll
from handlers.telegram.response_types import KeepResponseTypes
from handlers.telegram.sender import TelegramSender, is_group_chat
from handlers.telegram.setup import build_dispatcher
from handlers.telegram.webhook import serve_webhook
from storage.db import create_engine, session_factory
from storage.locks import duty_lock
from storage.uow import Database
from storage.upgrade import upgrade_in_child

if TYPE_CHECKING:
    from handlers.vk.client import VkClient

log = logging.getLogger(__name__)

PRIVATE_COMMANDS = [
    BotCommand(command="start", description="Начало и новое обращение"),
    BotCommand(command="my", description="Мои обращения"),
    BotCommand(command="cancel", description="Отменить заполнение"),
    BotCommand(command="help", description="Как это работает"),
]
GROUP_COMMANDS = [
    BotCommand(command="overdue", description="Просроченные обращения отдела"),
    BotCommand(command="appeal", description="Карточка обращения по номеру"),
    BotCommand(command="bind", description="Привязать группу к отделу (координатор)"),
    BotCommand(command="departments", description="Отделы и их группы"),
]
COORDINATOR_COMMANDS = [
    *PRIVATE_COMMANDS,
    BotCommand(command="overdue", description="Просроченные обращения"),
    BotCommand(command="stats", description="Статистика и график"),
    BotCommand(command="map", description="Тепловая карта обращений"),
    BotCommand(command="export", description="Выгрузка в Excel"),
    BotCommand(command="appeal", description="Карточка обращения по номеру"),
    BotCommand(command="departments", description="Отделы и их группы"),
    BotCommand(command="ban", description="Заблокировать автора обращения"),
    BotCommand(command="unban", description="Снять блокировку"),
    BotCommand(command="banned", description="Заблокированные жители"),
]


def core_config(settings: Settings) -> CoreConfig:
    return CoreConfig(
        tz=settings.tz,
        answer_deadline=settings.answer_deadline,
        coordinator_ids=tuple(settings.coordinator_ids),
        solution_deadline=settings.solution_deadline,
        reminder_share=settings.reminder_at,
        escalation_delays=tuple(settings.escalation_delays),
        deputy_chat_ids=tuple(settings.deputy_chat_ids),
        head_chat_ids=tuple(settings.head_chat_ids),
        schedule=settings.schedule,
        appeals_per_hour=settings.appeals_per_hour,
        verdict_wait=settings.verdict_wait,
    )


def make_bot(settings: Settings) -> Bot:
    assert settings.bot_token is not None
    if settings.telegram_api_url:
        api = TelegramAPIServer.from_base(settings.telegram_api_url)
        bot = Bot(settings.bot_token, session=AiohttpSession(api=api))
    else:
        bot = Bot(settings.bot_token)
    bot.session.middleware(LateCallbackAnswers())
    bot.session.middleware(KeepResponseTypes())
    return bot


async def prepare_database(settings: Settings) -> Database:
    # The schema to head in a child process: alembic never weighs on this one.
    await upgrade_in_child(settings.database_url)
    engine = create_engine(settings.database_url)
    db = Database(session_factory(engine))
    catalog = load_catalog(settings.categories_file)
    async with db.uow() as uow:
        await uow.catalog.sync(catalog)
        await uow.commit()
    log.info(
        "database ready: %d departments, %d categories",
        len(catalog.departments),
        len(catalog.categories),
    )
    return db


async def wait_for_api(bot: Bot) -> None:
    """getMe until the Bot API answers: a rejected token stops here with one clear line,
    while a network that is not up yet (a server booting) is waited for."""
    delay = 1.0
    while True:
        try:
            me = await bot.get_me()
        except TelegramNetworkError as exc:
            log.warning("Bot API unreachable (%s); retrying in %.0fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
        else:
            log.info("running as @%s", me.username)
            return


async def check_coordinators(bot: Bot, coordinator_ids: tuple[int, ...]) -> None:
    """A coordinator who never pressed Start cannot receive anything: say so at start."""
    for user_id in coordinator_ids:
        try:
            await bot.get_chat(user_id)
        except TelegramNetworkError:
            return  # only a courtesy check; polling will wait for the network
        except TelegramAPIError:
            log.warning(
                "coordinator %s has no private chat with the bot yet: ask them to open it and "
                "press Start, or they will miss unrouted appeals",
                user_id,
            )
        except Exception as exc:  # a courtesy check must never keep the bot from starting
            log.warning("could not check coordinator %s: %s", user_id, exc.__class__.__name__)


async def set_command_menus(bot: Bot, coordinator_ids: tuple[int, ...]) -> None:
    """The «/» menu: residents' commands in private chats, the department's in groups, and the
    coordinators' own tools in their private chats."""
    Scope = BotCommandScopeAllPrivateChats | BotCommandScopeAllGroupChats | BotCommandScopeChat
    menus: list[tuple[list[BotCommand], Scope]] = [
        (PRIVATE_COMMANDS, BotCommandScopeAllPrivateChats()),
        (GROUP_COMMANDS, BotCommandScopeAllGroupChats()),
    ]
    menus += [(COORDINATOR_COMMANDS, BotCommandScopeChat(chat_id=uid)) for uid in coordinator_ids]
    for commands, scope in menus:
        try:
            await bot.set_my_commands(commands, scope=scope)
        except Exception as exc:  # cosmetic: never a reason not to start
            log.warning("could not set the command menu (%s): %s", scope.type, exc)


async def run_telegram_front(
    bot: Bot, dispatcher: Dispatcher, config: CoreConfig, settings: Settings, db: Database
) -> None:
    await wait_for_api(bot)
    await check_coordinators(bot, config.coordinator_ids)
    await set_command_menus(bot, config.coordinator_ids)
    allowed = dispatcher.resolve_used_update_types()
    if settings.webhook_url is not None:
        assert settings.webhook_secret is not None
        await serve_webhook(
            bot, dispatcher, settings.webhook_url, settings.webhook_secret, settings.listen, allowed
        )
        return
    # getUpdates allows one poller per bot: with several processes, one polls at a time.
    lock = duty_lock(db.engine, "telegram-poll")
    await run_duty(lock, lambda: poll(bot, dispatcher, allowed))


REDIS_ANSWER_WITHIN = 10.0  # seconds


class RedisUnavailable(Exception):
    """REDIS_URL is set but Redis does not answer: every update would fail, so do not start."""


async def event_isolation(settings: Settings) -> BaseEventIsolation:
    """Per-chat locks: in this process, or in Redis when processes share the work."""
    if settings.redis_url is None:
        return ChatLocks()
    from aiogram.fsm.storage.redis import RedisEventIsolation  # redis-py only when used

    # A Redis that stops answering fails the update within seconds (it comes again later)
    # instead of holding its chat's lock and the update for ever.
    isolation = RedisEventIsolation.from_url(
        settings.redis_url,
        connection_kwargs={
            "socket_timeout": REDIS_ANSWER_WITHIN,
            "socket_connect_timeout": REDIS_ANSWER_WITHIN,
        },
    )
    try:
        # A host that drops packets would leave the start hanging for the OS's TCP timeout.
        await asyncio.wait_for(isolation.redis.ping(), REDIS_ANSWER_WITHIN)
    except Exception as exc:
        await isolation.redis.aclose()
        if isinstance(exc, TimeoutError):
            raise RedisUnavailable(f"no answer within {REDIS_ANSWER_WITHIN:g} s") from exc
        raise RedisUnavailable(exc.__class__.__name__) from exc
    return isolation


async def run_scan_duty(
    db: Database, config: CoreConfig, worker: OutboxWorker, every: timedelta
) -> None:
    scheduler = start_deadline_scan(db, config, worker, every)
    try:
        await asyncio.Event().wait()
    finally:
        scheduler.shutdown(wait=False)


def vk_client(settings: Settings) -> VkClient | None:
    """The VK client when VK_TOKEN is set. vkbottle (some 70 MB of models) is imported only
    then: a Telegram-only install never loads it."""
    if settings.vk_token is None:
        return None
    from handlers.vk.client import VkClient as Client

    return Client(settings.vk_token, settings.vk_api_url)


async def run(settings: Settings) -> None:
    db = await prepare_database(settings)
    config = core_config(settings)
    bot = make_bot(settings) if settings.bot_token else None
    vk = vk_client(settings)
    senders: dict[str, Sender] = {}
    limiters: dict[str, RateLimiter] = {}
    if bot is not None:
        senders["telegram"] = TelegramSender(bot)
        limiters["telegram"] = RateLimiter(TELEGRAM_LIMITS, is_group=is_group_chat)
    if vk is not None:
        from handlers.vk.sender import VkSender

        senders["vk"] = VkSender(vk)
        limiters["vk"] = RateLimiter(VK_LIMITS, is_group=lambda _chat: False)
    worker = OutboxWorker(db, config, senders, limiters)
    # Telegram's front answers residents directly, the «принято» included; VK's answers all
    # leave through the queue, paced to VK's limit.
    intake = IntakeService(db, config, confirms_directly=(Platform.TELEGRAM.value,))
    staff = StaffService(db, config)
    if not config.coordinator_ids:
        log.warning("COORDINATOR_IDS is empty: nobody can /bind groups or see unrouted appeals")
    if bot is None:
        log.warning(
            "BOT_TOKEN is not set: VK appeals are registered, but their cards wait for a "
            "Telegram bot to reach the department groups"
        )
    isolation = await event_isolation(settings)
    deferred = defer_models(*AIOGRAM)
    give_back()
    log.info("memory: %d models validate once used; %.0f MB", deferred, rss_mb())
    # What start-up made (aiogram's hundreds of thousands of model objects above all) lives as
    # long as the process: out of the collector's sight, a full collection no longer walks it
    # (each took some 130 ms, several a minute under load).
    gc.freeze()
    stop = asyncio.Event()
    shutdown = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, shutdown.set)
    # Sending within the platforms' limits and the deadline scan: one process at a time.
    outbox = duty_lock(db.engine, "outbox")
    worker_task = asyncio.create_task(
        run_duty(outbox, lambda: worker.run(stop, holding=outbox.still_held), stop)
    )
    scan = lambda: run_scan_duty(db, config, worker, settings.scan_interval)  # noqa: E731
    tasks = [asyncio.create_task(run_duty(duty_lock(db.engine, "deadline-scan"), scan))]
    try:
        if vk is not None:
            from handlers.vk.setup import build_vk_front, run_vk_front

            front = build_vk_front(vk, intake, staff, worker, db)
            vk_front = lambda: run_vk_front(front, db, settings.vk_group_id)  # noqa: E731
            tasks.append(asyncio.create_task(run_duty(duty_lock(db.engine, "vk-poll"), vk_front)))
        if bot is not None:
            routing = RoutingService(db, config)
            dispatcher = build_dispatcher(
                intake, staff, routing, worker, config.coordinator_ids, isolation=isolation
            )
            tasks.append(
                asyncio.create_task(run_telegram_front(bot, dispatcher, config, settings, db))
            )
        # SIGINT/SIGTERM end the bot; so does a front that fails (its error is raised here).
        waiter = asyncio.create_task(shutdown.wait())
        done, _ = await asyncio.wait([*tasks, waiter], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        for task in done:
            if task is not waiter:
                task.result()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        log.info("stopping: fronts closed, finishing the message in flight")
        stop.set()
        worker.wake()
        await worker_task
        if bot is not None:
            await bot.session.close()
        if vk is not None:
            await vk.close()
        redis = getattr(isolation, "redis", None)
        if redis is not None:
            await redis.aclose()
        await db.engine.dispose()
        log.info("stopped")
