"""The resident's conversation through the core, on a real database."""

from __future__ import annotations

from sqlalchemy import func, select, update

from bot.core import texts
from bot.core.config import CoreConfig
from bot.core.intake import IntakeService, normalize_phone
from bot.core.model import InputKind, IntakeInput, Platform, ResidentRef
from storage.models import Appeal, AppealPhoto, Draft, OutboxMessage, Resident
from storage.uow import Database

ANNA = ResidentRef(Platform.TELEGRAM, user_id="501", chat_id="501", first_name="Анна")
DESCRIPTION = "Огромная яма на проезжей части, машины объезжают по встречке"


def text(value: str) -> IntakeInput:
    return IntakeInput(kind=InputKind.TEXT, text=value)


def press(action: str) -> IntakeInput:
    return IntakeInput(kind=InputKind.ACTION, action=action)


def photo(ref: str, album: str | None = None) -> IntakeInput:
    return IntakeInput(kind=InputKind.PHOTO, photo_refs=(ref,), album_id=album)


async def step_of(db: Database, who: ResidentRef = ANNA) -> str | None:
    async with db.uow() as uow:
        draft = await uow.drafts.get(who.platform.value, who.user_id)
        return draft.step if draft else None


async def fill_until_confirm(intake: IntakeService, who: ResidentRef = ANNA) -> None:
    await intake.start(who)
    await intake.handle(who, press("i:category:roads"))
    await intake.handle(who, text(DESCRIPTION))
    await intake.handle(who, IntakeInput(kind=InputKind.LOCATION, latitude=55.75, longitude=37.61))
    for index in range(3):
        await intake.handle(who, photo(f"ph{index}", album="alb1"))
    await intake.handle(who, text(texts.DONE))
    await intake.handle(who, text(texts.SKIP))


async def test_full_conversation_submits_numbered_appeal(db: Database, config: CoreConfig) -> None:
    intake = IntakeService(db, config)
    started = await intake.start(ANNA)
    assert started.replies[0].text == texts.WELCOME
    assert started.replies[1].keyboard is not None
    assert "i:category:roads" in [b.action for r in started.replies[1].keyboard.rows for b in r]

    await fill_until_confirm(intake)
    assert await step_of(db) == "confirm"

    result = await intake.handle(ANNA, press("i:confirm:submit"))
    assert result.submitted_number is not None and result.submitted_number.endswith("-000001")
    assert await step_of(db) is None
    async with db.uow() as uow:
        appeal = await uow.appeals.by_number(result.submitted_number)
        assert appeal is not None
        assert appeal.description == DESCRIPTION
        assert (appeal.latitude, appeal.longitude) == (55.75, 37.61)
        assert appeal.phone is None and appeal.status == "new"
        photos = await uow.appeals.photos(appeal.id, "resident")
        assert [p.file_ref for p in photos] == ["ph0", "ph1", "ph2"]
        outbox = list(await uow.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
    accepted = [o for o in outbox if o.chat_id == "501"]
    assert (
        len(accepted) == 1 and f"№ {result.submitted_number} принято" in accepted[0].payload["text"]
    )
    # Roads has no group yet, so the card goes to the coordinator, photos and pin first.
    assert [o.kind for o in outbox if o.chat_id == "900"] == [
        "card_media",
        "card_location",
        "card_post",
    ]


async def test_album_is_answered_once(sqlite_db: Database, config: CoreConfig) -> None:
    intake = IntakeService(sqlite_db, config)
    await intake.start(ANNA)
    await intake.handle(ANNA, press("i:category:roads"))
    await intake.handle(ANNA, text(DESCRIPTION))
    await intake.handle(ANNA, text("ул. Ленина, 5"))
    answers = [await intake.handle(ANNA, photo(f"p{i}", album="A")) for i in range(4)]
    assert [len(a.replies) for a in answers] == [1, 0, 0, 0]
    done = await intake.handle(ANNA, text(texts.DONE))
    assert done.replies[0].text == texts.ASK_PHONE


async def test_odd_input_keeps_the_draft(sqlite_db: Database, config: CoreConfig) -> None:
    intake = IntakeService(sqlite_db, config)
    await intake.start(ANNA)
    await intake.handle(ANNA, press("i:category:roads"))
    for kind in ("sticker", "voice", "video", "document", "dice"):
        result = await intake.handle(
            ANNA, IntakeInput(kind=InputKind.UNSUPPORTED, unsupported=kind)
        )
        assert texts.EXPECTED_AT_STEP["description"] in result.replies[0].text
    huge = await intake.handle(ANNA, text("я" * 10_000))
    assert "10000 символов" in huge.replies[0].text
    empty = await intake.handle(ANNA, text("   "))
    assert empty.replies[0].text == texts.DESCRIPTION_TOO_SHORT
    emoji_only = await intake.handle(ANNA, text("😡😡😡😡😡😡😡😡😡😡😡"))
    assert emoji_only.replies[0].text == texts.DESCRIPTION_TOO_SHORT
    stale = await intake.handle(ANNA, press("i:category:housing"))
    assert stale.replies[0].text == texts.STALE_BUTTON
    forged = await intake.handle(ANNA, press("i:description:x' OR 1=1"))
    assert await step_of(sqlite_db) == "description"
    assert forged.replies  # answered, not ignored
    async with sqlite_db.uow() as uow:
        draft = await uow.drafts.get("telegram", "501")
        assert draft is not None and draft.data.get("category") == "roads"
        assert "description" not in draft.data


async def test_photo_where_text_is_asked_is_kept(sqlite_db: Database, config: CoreConfig) -> None:
    intake = IntakeService(sqlite_db, config)
    await intake.start(ANNA)
    await intake.handle(ANNA, press("i:category:roads"))
    result = await intake.handle(ANNA, photo("early"))
    assert "Фото сохранил" in result.replies[0].text
    assert await step_of(sqlite_db) == "description"
    await intake.handle(ANNA, text(DESCRIPTION))
    prompt = await intake.handle(ANNA, text("проспект Мира, 10"))
    assert "Уже приложено: 1" in prompt.replies[-1].text


def signed(ref: str, caption: str) -> IntakeInput:
    return IntakeInput(kind=InputKind.PHOTO, photo_refs=(ref,), text=caption)


async def draft_data(db: Database) -> dict[str, object]:
    async with db.uow() as uow:
        draft = await uow.drafts.get(ANNA.platform.value, ANNA.user_id)
    assert draft is not None
    return draft.data


async def test_captions_and_words_between_photos_are_kept(
    sqlite_db: Database, config: CoreConfig
) -> None:
    intake = IntakeService(sqlite_db, config)
    await intake.start(ANNA)
    await intake.handle(ANNA, press("i:category:roads"))
    await intake.handle(ANNA, text(DESCRIPTION))
    # At the address step, a photo signed with the place: the caption is the address.
    signed_place = await intake.handle(ANNA, signed("place", "ул. Ленина, 5"))
    assert "Фото сохранил" in signed_place.replies[0].text
    assert signed_place.replies[-1].text.startswith(texts.ASK_PHOTOS)
    got = await intake.handle(ANNA, signed("hole", "Глубина сантиметров двадцать, колесо пробил"))
    assert texts.PHOTO_ADDED in got.replies[0].text and texts.CAPTION_ADDED in got.replies[0].text
    typed = await intake.handle(ANNA, text("А ещё там не горит фонарь"))
    assert typed.replies[0].text.startswith(texts.ADDED_TO_DESCRIPTION)
    bare = await intake.handle(ANNA, signed("more", "вот"))  # nothing to add
    assert bare.replies[0].text == texts.PHOTO_ADDED
    huge = await intake.handle(ANNA, text("я" * 10_000))  # told, not dropped silently
    assert "символов" in huge.replies[0].text
    data = await draft_data(sqlite_db)
    assert data["address"] == "ул. Ленина, 5" and data["photos"] == ["place", "hole", "more"]
    assert data["description"] == (
        f"{DESCRIPTION}\nГлубина сантиметров двадцать, колесо пробил\nА ещё там не горит фонарь"
    )
    moved_on = await intake.handle(ANNA, text("Нет"))  # typed instead of «Пропустить»
    assert moved_on.replies[-1].text == texts.ASK_PHONE


async def test_a_caption_of_an_early_photo_becomes_the_description(
    sqlite_db: Database, config: CoreConfig
) -> None:
    intake = IntakeService(sqlite_db, config)
    await intake.start(ANNA)
    result = await intake.handle(ANNA, signed("early", DESCRIPTION))  # at the category step
    assert texts.CAPTION_ADDED in result.replies[0].text
    chosen = await intake.handle(ANNA, press("i:category:roads"))
    assert chosen.replies[-1].text == texts.ASK_ADDRESS  # described already
    assert (await draft_data(sqlite_db))["description"] == DESCRIPTION


async def test_a_map_point_sent_early_is_the_address(
    sqlite_db: Database, config: CoreConfig
) -> None:
    intake = IntakeService(sqlite_db, config)
    await intake.start(ANNA)
    await intake.handle(ANNA, press("i:category:roads"))
    pin = IntakeInput(kind=InputKind.LOCATION, latitude=55.75, longitude=37.61)
    kept = await intake.handle(ANNA, pin)  # at the description step
    assert kept.replies[0].text.startswith(texts.LOCATION_KEPT)
    assert await step_of(sqlite_db) == "description"
    described = await intake.handle(ANNA, text(DESCRIPTION))
    assert described.replies[-1].text.startswith(texts.ASK_PHOTOS)  # no address asked
    data = await draft_data(sqlite_db)
    assert (data["lat"], data["lon"]) == (55.75, 37.61)


async def test_my_appeals_mentions_a_draft_in_progress(
    sqlite_db: Database, config: CoreConfig
) -> None:
    intake = IntakeService(sqlite_db, config)
    await intake.start(ANNA)
    await intake.handle(ANNA, press("i:category:roads"))
    await intake.handle(ANNA, text(DESCRIPTION))
    mine = await intake.my_appeals(ANNA)
    assert mine.replies[0].text == f"{texts.MY_EMPTY}\n{texts.MY_DRAFT}"
    assert await step_of(sqlite_db) == "address"  # untouched


async def test_a_first_photo_keeps_its_caption(sqlite_db: Database, config: CoreConfig) -> None:
    intake = IntakeService(sqlite_db, config)
    first = await intake.handle(ANNA, signed("p1", "Яма у дома 5"))
    assert "ваш текст сохранён" in first.replies[0].text
    assert (await draft_data(sqlite_db))["description"] == "Яма у дома 5"


async def test_a_short_start_is_kept_and_details_are_asked_for(
    sqlite_db: Database, config: CoreConfig
) -> None:
    intake = IntakeService(sqlite_db, config)
    huge = await intake.handle(ANNA, text("Нет света. " * 1000))  # told, not cut or dropped
    assert huge.replies[0].text.startswith("Слишком длинно: 10999 символов")
    assert await step_of(sqlite_db) is None
    first = await intake.handle(ANNA, text("Нет света"))  # a newcomer's first words
    assert first.replies[0].text.startswith("Начнём обращение — ваш текст сохранён")
    chosen = await intake.handle(ANNA, press("i:category:housing"))
    assert chosen.replies[-1].text == texts.ask_description_more("Нет света")
    await intake.handle(ANNA, text("В подъезде дома 5 с утра"))
    assert (await draft_data(sqlite_db))["description"] == "Нет света\nВ подъезде дома 5 с утра"
    assert await step_of(sqlite_db) == "address"
    await intake.cancel(ANNA)
    # Courtesy is not a problem: a newcomer is greeted, nothing is kept.
    for courtesy in ("Добрый день!", "Хорошо, понял", "Здравствуйте"):
        said = await intake.handle(ANNA, text(courtesy))
        assert said.replies[0].text == texts.WELCOME, courtesy
        await intake.cancel(ANNA)
        assert "description" not in (await draft_data_or_empty(sqlite_db))


async def draft_data_or_empty(db: Database) -> dict[str, object]:
    async with db.uow() as uow:
        draft = await uow.drafts.get(ANNA.platform.value, ANNA.user_id)
    return draft.data if draft is not None else {}


async def test_help_mid_draft_shows_where_it_stands(
    sqlite_db: Database, config: CoreConfig
) -> None:
    intake = IntakeService(sqlite_db, config)
    await intake.start(ANNA)
    await intake.handle(ANNA, press("i:category:roads"))
    await intake.handle(ANNA, text(DESCRIPTION))
    await intake.handle(ANNA, text("ул. Ленина, 5"))
    helped = await intake.handle(ANNA, text("помощь"))
    assert [r.text for r in helped.replies[:2]] == [texts.HELP, texts.DRAFT_WAITS]
    assert helped.replies[-1].text.startswith(texts.ASK_PHOTOS)
    assert helped.replies[-1].keyboard is not None  # «Готово / Пропустить» again
    assert await step_of(sqlite_db) == "photos"


async def test_asked_again_says_where_the_draft_stands_and_nothing_else(
    sqlite_db: Database, config: CoreConfig
) -> None:
    intake = IntakeService(sqlite_db, config)
    assert (await intake.ask_again(ANNA)).replies == []  # nobody, no draft: nothing to say
    await fill_until_confirm(intake)
    again = await intake.ask_again(ANNA)
    assert [r.text for r in again.replies[:2]] == [texts.ASKED_AGAIN, texts.CONFIRM_INTRO]
    summary = again.replies[-1]
    assert "Описание: " + DESCRIPTION in summary.text and summary.keyboard is not None
    assert await step_of(sqlite_db) == "confirm"  # read only

    await intake.handle(ANNA, press("i:confirm:submit"))
    assert (await intake.ask_again(ANNA)).replies == []  # filed: its «принято» is queued

    await intake.start(ANNA)
    async with sqlite_db.uow() as uow:
        await uow.session.execute(
            update(Resident).where(Resident.external_id == "501").values(banned_at=func.now())
        )
        await uow.commit()
    assert (await intake.ask_again(ANNA)).replies == []  # banned: silence, as for the rest


async def test_a_short_plain_description_is_enough(sqlite_db: Database, config: CoreConfig) -> None:
    intake = IntakeService(sqlite_db, config)
    await intake.start(ANNA)
    await intake.handle(ANNA, press("i:category:roads"))
    taken = await intake.handle(ANNA, text("Нет света"))
    assert taken.replies[-1].text == texts.ASK_ADDRESS
    assert (await draft_data(sqlite_db))["description"] == "Нет света"


async def test_a_problem_typed_instead_of_a_category_is_kept(
    sqlite_db: Database, config: CoreConfig
) -> None:
    intake = IntakeService(sqlite_db, config)
    await intake.start(ANNA)  # «Расскажите о проблеме…», and the categories
    kept = await intake.handle(ANNA, text(DESCRIPTION))
    assert kept.replies[0].text == texts.KEPT_PICK_CATEGORY
    assert kept.replies[-1].text == texts.ASK_CATEGORY  # the buttons again
    odd = await intake.handle(ANNA, text("ну"))
    assert odd.replies[0].text == texts.ASK_CATEGORY_AGAIN
    chosen = await intake.handle(ANNA, press("i:category:roads"))
    assert chosen.replies[-1].text == texts.ASK_ADDRESS  # described already
    assert (await draft_data(sqlite_db))["description"] == DESCRIPTION


async def test_cancel_and_help_can_be_typed(sqlite_db: Database, config: CoreConfig) -> None:
    intake = IntakeService(sqlite_db, config)
    await intake.start(ANNA)
    await intake.handle(ANNA, press("i:category:roads"))
    helped = await intake.handle(ANNA, text("Помощь"))
    assert helped.replies[0].text == texts.HELP and await step_of(sqlite_db) == "description"
    cancelled = await intake.handle(ANNA, text("Отмена!"))
    assert cancelled.replies[0].text == texts.CANCELLED
    assert await step_of(sqlite_db) is None
    again = await intake.handle(ANNA, text("стоп"))
    assert again.replies[0].text == texts.NOTHING_TO_CANCEL


async def test_edit_goes_back_to_summary(sqlite_db: Database, config: CoreConfig) -> None:
    intake = IntakeService(sqlite_db, config)
    await fill_until_confirm(intake)
    await intake.handle(ANNA, press("i:confirm:edit"))
    await intake.handle(ANNA, press("i:edit:description"))
    assert await step_of(sqlite_db) == "description"
    result = await intake.handle(ANNA, text("Яма стала ещё больше, уже две ямы рядом"))
    assert await step_of(sqlite_db) == "confirm"
    assert "две ямы" in result.replies[-1].text


async def test_cancel_and_resume(sqlite_db: Database, config: CoreConfig) -> None:
    intake = IntakeService(sqlite_db, config)
    await intake.start(ANNA)
    await intake.handle(ANNA, press("i:category:roads"))
    await intake.handle(ANNA, text(DESCRIPTION))
    # A fresh service over the same database stands for a restarted bot.
    restarted = IntakeService(sqlite_db, config)
    again = await restarted.start(ANNA)
    assert again.replies[-1].text == texts.RESUME
    resumed = await restarted.handle(ANNA, press("i:resume:continue"))
    assert resumed.replies[-1].text == texts.ASK_ADDRESS
    cancelled = await restarted.cancel(ANNA)
    assert cancelled.replies[0].text == texts.CANCELLED
    assert await step_of(sqlite_db) is None
    # The old summary's «Отправить» after the cancel: nothing went out, and it says so.
    late = await restarted.handle(ANNA, press("i:confirm:submit"))
    assert late.replies[0].text == texts.DRAFT_WAS_CANCELLED
    await fill_until_confirm(restarted)
    sent = await restarted.handle(ANNA, press("i:confirm:submit"))
    again = await restarted.handle(ANNA, press("i:confirm:submit"))  # the number, again
    assert again.replies[0].text == texts.already_sent(str(sent.submitted_number))


async def test_phone_step(sqlite_db: Database, config: CoreConfig) -> None:
    assert normalize_phone("8 (900) 123-45-67") == "+79001234567"
    assert normalize_phone("+7 900 123 45 67") == "+79001234567"
    assert normalize_phone("позвоните мне") is None
    intake = IntakeService(sqlite_db, config)
    await intake.start(ANNA)
    await intake.handle(ANNA, press("i:category:housing"))
    await intake.handle(ANNA, text("Нет горячей воды третий день во всём подъезде"))
    await intake.handle(ANNA, text("ул. Садовая, 12"))
    await intake.handle(ANNA, text(texts.SKIP))
    foreign = await intake.handle(
        ANNA, IntakeInput(kind=InputKind.CONTACT, phone="+79990000000", own_contact=False)
    )
    assert foreign.replies[0].text == texts.FOREIGN_CONTACT
    await intake.handle(ANNA, IntakeInput(kind=InputKind.CONTACT, phone="79001234567"))
    result = await intake.handle(ANNA, press("i:confirm:submit"))
    async with sqlite_db.uow() as uow:
        appeal = await uow.appeals.by_number(str(result.submitted_number))
        assert appeal is not None and appeal.phone == "+79001234567"
        assert await uow.session.scalar(select(func.count()).select_from(AppealPhoto)) == 0
        assert await uow.session.scalar(select(func.count()).select_from(Draft)) == 0
        assert await uow.session.scalar(select(func.count()).select_from(Appeal)) == 1


async def test_my_appeals_lists_only_own(sqlite_db: Database, config: CoreConfig) -> None:
    intake = IntakeService(sqlite_db, config)
    await fill_until_confirm(intake)
    submitted = await intake.handle(ANNA, press("i:confirm:submit"))
    boris = ResidentRef(Platform.TELEGRAM, user_id="502", chat_id="502", first_name="Борис")
    assert (await intake.my_appeals(boris)).replies[0].text == texts.MY_EMPTY
    mine = (await intake.my_appeals(ANNA)).replies[0].text
    assert f"№ {submitted.submitted_number}" in mine and "ожидает исполнителя" in mine


async def test_first_message_is_not_lost(sqlite_db: Database, config: CoreConfig) -> None:
    intake = IntakeService(sqlite_db, config)
    result = await intake.handle(ANNA, text(DESCRIPTION))
    assert "ваш текст сохранён" in result.replies[0].text
    assert result.replies[-1].text == texts.ASK_CATEGORY
    after = await intake.handle(ANNA, press("i:category:roads"))
    assert after.replies[-1].text == texts.ASK_ADDRESS  # the description is already there
    async with sqlite_db.uow() as uow:
        draft = await uow.drafts.get("telegram", "501")
        assert draft is not None and draft.data["description"] == DESCRIPTION
    stranger = ResidentRef(Platform.TELEGRAM, user_id="777", chat_id="777")
    hello = await intake.handle(stranger, text("Здравствуйте"))
    assert hello.replies[0].text == texts.WELCOME  # a greeting begins the conversation
    assert hello.replies[-1].text == texts.ASK_CATEGORY
    async with sqlite_db.uow() as uow:
        draft = await uow.drafts.get("telegram", "777")
        assert draft is not None and "description" not in draft.data


async def test_new_appeal_button_never_wipes_a_filled_draft(
    sqlite_db: Database, config: CoreConfig
) -> None:
    intake = IntakeService(sqlite_db, config)
    await fill_until_confirm(intake)
    await intake.handle(ANNA, press("i:confirm:edit"))
    await intake.handle(ANNA, press("i:edit:category"))  # back at the category step
    again = await intake.handle(ANNA, text(texts.MENU_NEW))
    assert again.replies[-1].text == texts.RESUME
    async with sqlite_db.uow() as uow:
        draft = await uow.drafts.get("telegram", "501")
        assert draft is not None and draft.data["description"] == DESCRIPTION


async def test_album_at_summary_is_added_quietly(sqlite_db: Database, config: CoreConfig) -> None:
    intake = IntakeService(sqlite_db, config)
    await fill_until_confirm(intake)  # 3 photos so far
    answers = [await intake.handle(ANNA, photo(f"late{i}", album="B")) for i in range(10)]
    assert [len(a.replies) > 0 for a in answers] == [True] + [False] * 9
    async with sqlite_db.uow() as uow:
        draft = await uow.drafts.get("telegram", "501")
        assert draft is not None and len(draft.data["photos"]) == texts.MAX_PHOTOS
        assert draft.step == "confirm"


async def test_hidden_category_cannot_be_submitted(sqlite_db: Database, config: CoreConfig) -> None:
    intake = IntakeService(sqlite_db, config)
    await fill_until_confirm(intake)
    async with sqlite_db.uow() as uow:
        roads = await uow.catalog.category_by_code("roads")
        assert roads is not None
        roads.active = False
        await uow.commit()
    result = await intake.handle(ANNA, press("i:confirm:submit"))
    assert result.submitted_number is None
    assert "больше недоступна" in result.replies[0].text
    assert await step_of(sqlite_db) == "category"


async def test_album_at_phone_step_is_kept_quietly(sqlite_db: Database, config: CoreConfig) -> None:
    intake = IntakeService(sqlite_db, config)
    await intake.start(ANNA)
    await intake.handle(ANNA, press("i:category:roads"))
    await intake.handle(ANNA, text(DESCRIPTION))
    await intake.handle(ANNA, text("ул. Ленина, 5"))
    await intake.handle(ANNA, text(texts.SKIP))
    answers = [await intake.handle(ANNA, photo(f"p{i}", album="Z")) for i in range(4)]
    assert [len(a.replies) for a in answers] == [1, 0, 0, 0]
    async with sqlite_db.uow() as uow:
        draft = await uow.drafts.get("telegram", "501")
        assert draft is not None and draft.step == "phone" and len(draft.data["photos"]) == 4


async def test_summary_edits_keep_what_was_given(sqlite_db: Database, config: CoreConfig) -> None:
    intake = IntakeService(sqlite_db, config)
    await fill_until_confirm(intake)  # three photos
    # Text typed at the summary is added to the description; a stray keyboard tap is not.
    added = await intake.handle(ANNA, text("Ещё и светофор мигает жёлтым"))
    assert added.replies[0].text == texts.ADDED_TO_DESCRIPTION
    await intake.handle(ANNA, text(texts.SKIP))
    # «Добавить фото» keeps the three and adds one; «Пропустить» there keeps them too.
    await intake.handle(ANNA, press("i:confirm:edit"))
    await intake.handle(ANNA, press("i:edit:photos"))
    await intake.handle(ANNA, photo("fourth"))
    await intake.handle(ANNA, text(texts.SKIP))
    async with sqlite_db.uow() as uow:
        draft = await uow.drafts.get("telegram", "501")
        assert draft is not None and draft.step == "confirm"
        assert draft.data["description"] == f"{DESCRIPTION}\nЕщё и светофор мигает жёлтым"
        assert draft.data["photos"] == ["ph0", "ph1", "ph2", "fourth"]
    # «Убрать все фото» empties them.
    await intake.handle(ANNA, press("i:confirm:edit"))
    cleared = await intake.handle(ANNA, press("i:edit:clear_photos"))
    assert cleared.replies[0].text == texts.PHOTOS_CLEARED
    assert "Фото: 0" in cleared.replies[-1].text


async def test_description_sent_again_is_not_taken_for_the_address(
    sqlite_db: Database, config: CoreConfig
) -> None:
    """The bot killed after saving the description but before asking «Где это?»: the resident,
    left without an answer, sends the description again. It must not become the address."""
    intake = IntakeService(sqlite_db, config)
    await intake.start(ANNA)
    await intake.handle(ANNA, press("i:category:roads"))
    await intake.handle(ANNA, text(DESCRIPTION))
    again = await intake.handle(ANNA, text(f"  {DESCRIPTION.upper()} "))
    assert again.replies[0].text == texts.ADDRESS_REPEATS_DESCRIPTION
    assert again.replies[-1].text == texts.ASK_ADDRESS
    assert await step_of(sqlite_db) == "address"
    await intake.handle(ANNA, text("проспект Мира, 10"))
    assert await step_of(sqlite_db) == "photos"
    async with sqlite_db.uow() as uow:
        draft = await uow.drafts.get("telegram", "501")
        assert draft is not None and draft.data["address"] == "проспект Мира, 10"
