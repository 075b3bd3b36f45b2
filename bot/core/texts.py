"""Everything the bot says, in one place. The bot speaks Russian to its users."""

from __future__ import annotations

from bot.core.model import Status

MENU_NEW = "📝 Новое обращение"
MENU_MY = "📋 Мои обращения"
DONE = "Готово"
SKIP = "Пропустить"
SEND_LOCATION = "📍 Отправить геопозицию"
SEND_CONTACT = "📱 Отправить номер"

MAX_DESCRIPTION = 2000
MIN_DESCRIPTION = 8  # «Нет света», «Нет воды»: short, and all the department needs
MAX_ADDRESS = 300
MIN_ADDRESS = 5
MAX_PHOTOS = 10
MAX_ANSWER = 3000

WELCOME = (
    "Здравствуйте! Это приёмная администрации города.\n"
    "Расскажите о проблеме — яма на дороге, нет горячей воды, не вывезли мусор, "
    "неудобный маршрут автобуса. Мы зарегистрируем обращение, присвоим номер, передадим "
    "в ответственный отдел и сообщим вам о каждом изменении.\n"
    "Если угрожает опасность жизни или здоровью — звоните 112."
)
HELP = (
    "Как это работает:\n"
    f"• «{MENU_NEW}» — подать обращение: категория, описание, адрес или геометка, фото, телефон.\n"
    f"• «{MENU_MY}» или /my — ваши обращения и их статусы.\n"
    "• /cancel, «отмена» или «стоп» — отменить заполнение.\n"
    "Ответ отдела и фото решения придут сюда же, с номером обращения."
)
COORDINATOR_HELP = (
    "Вы координатор. Что можно делать:\n"
    "• добавить бота в группу отдела и отправить там /bind — выбрать отдел; /unbind — отвязать;\n"
    "• /departments — какие отделы к каким группам привязаны;\n"
    "• /appeal 2026-000123 — показать карточку обращения (здесь или в группе отдела);\n"
    "• /overdue — просроченные обращения по всем отделам (в группе отдела — только его);\n"
    "• /stats, /map, /export — статистика с графиком, тепловая карта и выгрузка в Excel;\n"
    "• /ban 2026-000123 причина — заблокировать автора обращения, /unban — снять, "
    "/banned — список;\n"
    "• обращения отделов без группы приходят сюда карточками: на них работают те же кнопки, "
    "ответ (reply) на карточку уходит жителю, «Передать» направляет в нужный отдел;\n"
    "• сюда же приходят сообщения о возобновлённых жителями обращениях и о проблемах доставки.\n"
    "Подать обращение как житель тоже можно — кнопкой ниже."
)
UNKNOWN_COMMAND = "Такой команды нет. Команды: /start, /new, /my, /cancel, /help."
ASK_CATEGORY = "Выберите категорию обращения:"
ASK_CATEGORY_AGAIN = "Пожалуйста, выберите категорию кнопкой под сообщением."
ASK_DESCRIPTION = (
    "Опишите проблему: что случилось и с какого времени. "
    f"Не короче {MIN_DESCRIPTION} и не длиннее {MAX_DESCRIPTION} символов."
)


def ask_description_more(kept: str) -> str:
    return f"Уже записано: «{kept}». Допишите подробности: что именно случилось, с какого времени."


ASK_ADDRESS = (
    "Где это? Напишите адрес (улица, дом, ориентир) "
    f"или нажмите «{SEND_LOCATION}» / прикрепите точку на карте."
)
ASK_PHOTOS = (
    f"Пришлите фото проблемы — одно или несколько, всего до {MAX_PHOTOS}. "
    f"Когда закончите, нажмите «{DONE}». Если фото нет — «{SKIP}»."
)
ASK_PHONE = (
    "Если хотите, чтобы специалист мог уточнить детали, напишите номер телефона для связи. "
    f"Не обязательно — «{SKIP}»."
)
CONFIRM_INTRO = (
    "Проверьте обращение перед отправкой. Отправляя его, вы соглашаетесь, что указанные "
    "данные (имя, телефон, адрес, фото) будут использованы для рассмотрения обращения."
)
ASK_EDIT = "Что изменить?"
RESUME = "У вас есть незаконченное обращение. Продолжим его или начнём заново?"
CANCELLED = "Заполнение отменено, черновик удалён. Чтобы начать снова — «Новое обращение»."
NOTHING_TO_CANCEL = "Сейчас нечего отменять. Чтобы подать обращение — «Новое обращение»."
STALE_BUTTON = "Эта кнопка из старого сообщения. Продолжим с текущего шага:"
BUTTON_USED = "Эта кнопка уже нажата."
NO_DRAFT = "Черновика нет. Чтобы подать обращение — «Новое обращение»."
DRAFT_WAS_CANCELLED = (
    "Это обращение не отправлено: черновик был отменён. Чтобы подать обращение — «Новое обращение»."
)


def already_sent(number: str) -> str:
    return f"Это обращение уже отправлено — № {number} принято, его статус — в «Мои обращения»."


DESCRIPTION_TOO_LONG = (
    "Слишком длинно: {length} символов, а можно до {limit}. "
    "Сократите, пожалуйста, и пришлите ещё раз — подробности можно дополнить фото."
)
DESCRIPTION_TOO_SHORT = (
    "Опишите проблему словами, хотя бы в одном-двух предложениях "
    f"(не меньше {MIN_DESCRIPTION} символов)."
)
ADDRESS_BAD = (
    f"Напишите адрес текстом (от {MIN_ADDRESS} до {MAX_ADDRESS} символов) или отправьте геопозицию."
)
# The description sent again where the address is asked: most likely the resident did not see
# the question (the bot restarted before it was sent) and repeated themselves.
ADDRESS_REPEATS_DESCRIPTION = "Это описание уже сохранено."
PHOTO_ADDED = f"Фото получено. Пришлите ещё или нажмите «{DONE}»."
PHOTO_LIMIT = f"Можно приложить не больше {MAX_PHOTOS} фото — лишние не добавлены."
PHOTOS_EXPECTED = f"Жду фото. Когда закончите — «{DONE}», если фото нет — «{SKIP}»."
PHOTO_AS_FILE = "Пришлите, пожалуйста, как фото (со сжатием), а не как файл."
PHONE_BAD = (
    f"Не похоже на номер телефона. Напишите номер, например +7 900 123-45-67, или нажмите «{SKIP}»."
)
FOREIGN_CONTACT = "Это чужой контакт. Отправьте свой номер кнопкой или напишите его."

UNSUPPORTED = {
    "sticker": "Стикеры я не понимаю.",
    "voice": "Голосовые сообщения я не разбираю — напишите, пожалуйста, текстом.",
    "video_note": "Видеосообщения я не разбираю — напишите, пожалуйста, текстом.",
    "video": "Видео приложить нельзя — пришлите фото.",
    "animation": "GIF приложить нельзя — пришлите фото.",
    "audio": "Аудио приложить нельзя.",
    "document": "Файлы приложить нельзя.",
    "dice": "Это игральная кость 🙂",
    "poll": "Опросы я не понимаю.",
    "forward": "Пересланные сообщения я не разбираю — напишите, пожалуйста, своими словами.",
}
UNSUPPORTED_DEFAULT = "Такое сообщение я не понимаю."

EXPECTED_AT_STEP = {
    "category": "Выберите категорию кнопкой под сообщением.",
    "description": "Сейчас нужно описание проблемы текстом.",
    "address": "Сейчас нужен адрес текстом или геопозиция.",
    "photos": f"Сейчас можно прислать фото, нажать «{DONE}» или «{SKIP}».",
    "phone": f"Сейчас можно отправить номер телефона или нажать «{SKIP}».",
    "confirm": "Проверьте обращение и нажмите «Отправить», «Изменить» или «Отмена».",
    "edit": "Выберите, что изменить, кнопкой под сообщением.",
    "resume": "Выберите «Продолжить» или «Начать заново».",
    "followup": "Выберите кнопкой: к какому обращению передать сообщение, или новое обращение.",
}
ADDED_TO_DESCRIPTION = "Добавил это к описанию."
CAPTION_ADDED = "Подпись добавил к описанию."
PHOTO_KEPT = "Фото сохранил — приложу к обращению."
# A message handled just before the bot restarted: its answer may not have reached the resident.
ASKED_AGAIN = "Связь с ботом прерывалась. Ваш ответ сохранён — продолжим с того же места:"
DRAFT_WAITS = "Ваше обращение заполняется — продолжим с того же места:"
NEW_WITH_YOUR_WORDS = "Начнём новое обращение — ваше сообщение сохранено."
LOCATION_KEPT = "Геометку сохранил — это будет адрес."
KEPT_PICK_CATEGORY = "Записал это в описание. Теперь выберите категорию:"
# Typed instead of pressed (VK residents rarely type slash commands): the whole message, any case.
CANCEL_WORDS = frozenset({"отмена", "отменить", "отмени", "стоп", "cancel"})
HELP_WORDS = frozenset({"помощь", "справка", "help"})
NO_PHOTO_WORDS = frozenset(
    {"готово", "пропустить", "нет", "нет фото", "без фото", "дальше", "далее"}
)
PHOTOS_CLEARED = "Фото убраны из обращения."
COMMENT_KINDS = "К обращению можно дописать текст или приложить фото."
IDLE = f"Чтобы подать обращение, нажмите «{MENU_NEW}». Ваши обращения — «{MENU_MY}»."

STATUS_TITLES = {
    Status.NEW: "🆕 Новое",
    Status.IN_WORK: "🛠 В работе",
    Status.RESOLVED: "✅ Решено, ждём подтверждения жителя",
    Status.CLOSED: "☑️ Решено, житель подтвердил",
    Status.REJECTED: "⛔ Отклонено",
    Status.REOPENED: "🔁 Возобновлено: житель сообщил, что не решено",
}
STATUS_FOR_RESIDENT = {
    Status.NEW: "принято, ожидает исполнителя",
    Status.IN_WORK: "в работе",
    Status.RESOLVED: "решено, ждём вашего подтверждения",
    Status.CLOSED: "решено",
    Status.REJECTED: "отклонено",
    Status.REOPENED: "возобновлено",
}

MY_EMPTY = "У вас пока нет обращений."
MY_HEADER = "Ваши обращения:"
MY_MORE = "Показаны последние {count}."
MY_DRAFT = f"📝 Есть незаконченное обращение — чтобы продолжить его, нажмите «{MENU_NEW}»."

REJECT_REASONS = {
    "not_ours": "вопрос не относится к компетенции администрации",
    "spam": "сообщение не содержит обращения",
    "duplicate": "повторяет обращение № {original}",
    "other": "{text}",
}


def accepted(number: str, department: str, deadline: str, regional: bool) -> str:
    text = (
        f"Обращение № {number} принято.\n"
        f"Ответственный: {department}.\n"
        f"Ответ — до {deadline}. О каждом изменении статуса мы напишем сюда, "
        "с номером обращения."
    )
    if regional:
        text += (
            "\nЭтот вопрос относится к региональному уровню: мы передадим обращение туда "
            "и сообщим вам ответ."
        )
    return text


def taken(number: str) -> str:
    return f"Обращение № {number} взято в работу — им занимается специалист."


def forwarded(number: str, department: str, regional: bool) -> str:
    level = " (региональный уровень)" if regional and "регион" not in department else ""
    return f"Обращение № {number} передано по компетенции: {department}{level}."


def answer(number: str, text: str) -> str:
    return f"Ответ по обращению № {number}:\n\n{text}"


def solution_photo(number: str, caption: str) -> str:
    base = f"Фото решения по обращению № {number}"
    return f"{base}:\n{caption}" if caption else base


def solved(number: str, with_photo: bool) -> str:
    photo = " Фотоотчёт — выше." if with_photo else ""
    return (
        f"Обращение № {number}: отдел сообщает, что проблема решена.{photo}\n"
        "Это так? Ваше подтверждение важно — если нет, мы вернём обращение в работу."
    )


def rejected(number: str, reason: str) -> str:
    reason = reason.rstrip(". ")
    return (
        f"Обращение № {number} отклонено. Причина: {reason}.\n"
        "Если не согласны — ответьте на это сообщение, мы передадим ваш ответ."
    )


def thanks_confirmed(number: str) -> str:
    return f"Спасибо! Обращение № {number} закрыто как решённое."


def reopened_for_resident(number: str, deadline: str) -> str:
    return (
        f"Обращение № {number} возвращено в работу. Мы сообщили отделу и координатору, "
        f"что проблема не решена. Новый срок ответа — до {deadline}.\n"
        "Ответьте на это сообщение, что осталось не так, — передадим в отдел."
    )


def reopened_for_coordinators(number: str, department: str) -> str:
    return (
        f"🔁 Житель сообщил, что обращение № {number} не решено. Оно снова в работе: {department}."
    )


def comment_sent(number: str) -> str:
    return f"Передали ваше сообщение в отдел, к обращению № {number}."


ADDED_TO_FOLLOWUP = "Добавил к сообщению."
# «Спасибо большое!» after an answer is no message for the department.
THANKS_PREFIXES = ("спасибо", "благодар", "спс", "пасиб")
VERDICT_HINT = (
    "Если проблема не решена, нажмите «👎 Не решена» под вопросом о результате — "
    "обращение вернётся в работу."
)


def followup_question(numbers: list[str]) -> str:
    if len(numbers) == 1:
        return (
            f"Это сообщение — к обращению № {numbers[0]} (передадим в отдел) или новое обращение?"
        )
    listed = ", ".join(f"№ {n}" for n in numbers)
    return (
        f"Это сообщение — к одному из ваших обращений ({listed}; передадим в отдел) "
        "или новое обращение?"
    )


def followup_closed(number: str) -> str:
    return f"Обращение № {number} уже закрыто — начнём с вашим сообщением новое."


FOLLOWUP_DROPPED = "Хорошо, это сообщение никуда не передано."
# Courtesy, not a message for the department or a problem: a message of these words only
# («Добрый день», «Хорошо, понял», «Жду»), or with thanks in it («Большое спасибо!»).
COURTESY_WORDS = frozenset(
    "здравствуйте здравствуй привет добрый доброе доброй день вечер утро ночи всего доброго "
    "до свидания хорошо понял поняла поняли понятно ясно ладно ок окей ok отлично супер жду "
    "ждём ждем буду будем ждать да нет вам вас и тоже уважаемые с уважением большое огромное "
    "очень".split()
)


FOLLOWUP_NEW = "📝 Новое обращение"


def followup_to(number: str) -> str:
    return f"💬 К обращению № {number}"


def photos_gone(missing: int, total: int) -> str:
    return (
        f"⚠️ Получены не все фото жителя ({total - missing} из {total}): платформа жителя "
        "больше не отдаёт остальные. Если они нужны — попросите жителя прислать их снова "
        "(ответом на карточку)."
    )


CLOSED_UNCONFIRMED_TITLE = "☑️ Решено, житель не ответил — закрыто"


def closed_unconfirmed(number: str, waited: str) -> str:
    return (
        f"Обращение № {number} закрыто: отдел сообщил, что проблема решена, а ответа от вас "
        f"не было {waited}. Если проблема осталась — подайте новое обращение: «{MENU_NEW}»."
    )


def closed_already(number: str) -> str:
    return (
        f"Обращение № {number} уже закрыто. Если проблема осталась — подайте новое обращение: "
        f"«{MENU_NEW}»."
    )


def days(count: int) -> str:
    """«1 день», «3 дня», «15 дней», «21 день»."""
    if count % 10 == 1 and count % 100 != 11:
        return f"{count} день"
    if count % 10 in (2, 3, 4) and count % 100 not in (12, 13, 14):
        return f"{count} дня"
    return f"{count} дней"


def missed_while_closed(count: int) -> str:
    return (
        f"Пока бот не мог вам писать, не дошли сообщения ({count}): сейчас они придут — "
        "карточки обращений и уведомления."
    )


def comment_too_long(length: int) -> str:
    return (
        f"Слишком длинно: {length} символов, а можно до {MAX_DESCRIPTION}. Сократите, пожалуйста, "
        "или разделите на несколько сообщений — и пришлите снова."
    )


def comment_on_closed(number: str) -> str:
    return (
        f"Обращение № {number} уже закрыто. Если проблема осталась или появилась новая — "
        f"подайте новое обращение: «{MENU_NEW}»."
    )


def comment_expected(number: str) -> str:
    return f"К обращению № {number} можно дописать текст или приложить фото."


def unresolved(number: str) -> str:
    return (
        f"Обращение № {number}: отдел продолжает работу — отметка «решено» снята. "
        "Подтверждать пока ничего не нужно, мы сообщим о результате."
    )


def _executor(taken_by: str | None) -> str:
    return f"исполнитель: {taken_by}" if taken_by else "исполнитель не назначен"


def deadline_reminder(
    number: str, what: str, deadline: str, department: str, taken_by: str | None
) -> str:
    return (
        f"⏰ Напоминание: срок {what} по обращению № {number} истекает {deadline}.\n"
        f"{department}, {_executor(taken_by)}.\n"
        f"Карточка: /appeal {number}"
    )


LESS_THAN_A_MINUTE = "меньше минуты"
EXTENSION_PROMPT_USED = (
    "По этому запросу срок уже продлён. Чтобы продлить ещё, нажмите «⏳ Продлить срок» на карточке."
)


def overdue_by(late: str) -> str:
    if late == LESS_THAN_A_MINUTE:
        return "просрочено меньше чем на минуту"
    return f"просрочено на {late}"


def escalation(
    number: str,
    what: str,
    level: int,
    deadline: str,
    late: str,
    department: str,
    taken_by: str | None,
    card_hint: bool,
) -> str:
    text = (
        f"🔴 Просрочен срок {what} по обращению № {number} — эскалация, уровень {level}.\n"
        f"Срок был до {deadline}, {overdue_by(late)}.\n"
        f"{department}, {_executor(taken_by)}."
    )
    # /appeal works in the department's group and for coordinators, not in a deputy's chat.
    return text + f"\nКарточка: /appeal {number}" if card_hint else text


def deadline_extended(number: str, what: str, deadline: str, reason: str) -> str:
    reason = reason.rstrip(". ")
    return f"Срок {what} по обращению № {number} продлён до {deadline}.\nПричина: {reason}."


def days_label(days: int) -> str:
    """«+1 день», «+3 дня», «+7 дней»: a button of «Продлить срок»."""
    if days % 10 == 1 and days % 100 != 11:
        word = "день"
    elif days % 10 in (2, 3, 4) and days % 100 not in (12, 13, 14):
        word = "дня"
    else:
        word = "дней"
    return f"+{days} {word}"


# Reports for coordinators: /stats, /map, /export ---------------------------------------------

REPORTS_ONLY_COORDINATORS = (
    "Отчёты (/stats, /map, /export) доступны только координаторам приёмной. "
    "Если вам нужна статистика, обратитесь, пожалуйста, к координатору."
)
REPORTS_PRIVATE_ONLY = "Отчёты присылаю только в личном чате с ботом: напишите мне туда."
PERIOD_HINT = (
    "Период: сегодня (today), число дней (7, 30), дата (01.11.2026) "
    "или две даты (01.11.2026 15.11.2026)."
)
STATS_TODAY = "Сегодня"
STATS_WEEK = "7 дней"
STATS_MONTH = "30 дней"
CHART_CAPTION = "Поток обращений по дням и категориям: {period}"
MAP_TITLE = "Обращения с геометкой: {period}{category}"
MAP_CAPTION = "Тепловая карта обращений с геометкой: {period}{category}. Геометок: {pins}."
MAP_OUTSIDE = "Далеко от остальных и не вошли в карту: {count}."
MAP_NO_PINS = "За {period}{category} нет обращений с геометкой."
MAP_UNPINNED = "Без геометки, только с адресом: {count}."
MAP_UNKNOWN_CATEGORY = "Категории «{word}» нет. Есть: {codes}."
EXPORT_CAPTION = "Обращения за {period}: {count}."
EXPORT_TOO_BIG = (
    "Файл за {period} вышел слишком большим для Telegram ({size} МБ при пределе 50 МБ): "
    "выберите период покороче."
)
EXPORT_EMPTY = "За {period} обращений нет — выгружать нечего."
REPORT_STATUS = {
    Status.NEW: "новое",
    Status.IN_WORK: "в работе",
    Status.RESOLVED: "решено, ждёт подтверждения",
    Status.CLOSED: "закрыто",
    Status.REJECTED: "отклонено",
    Status.REOPENED: "возобновлено",
}
REPORT_PLATFORM = {"telegram": "Telegram", "vk": "ВКонтакте"}


# Security: the hourly limit on new appeals, and bans -------------------------------------------


def appeals_word(count: int) -> str:
    """«1 обращение», «3 обращения», «5 обращений»."""
    if count % 10 == 1 and count % 100 != 11:
        return f"{count} обращение"
    if count % 10 in (2, 3, 4) and count % 100 not in (12, 13, 14):
        return f"{count} обращения"
    return f"{count} обращений"


def appeal_limit(limit: int, sent: int, next_at: str, kept: str = "") -> str:
    """The hourly limit is reached; ``kept`` says what of the resident's input is saved."""
    said = (
        f"За последний час вы уже отправили {appeals_word(sent)}, а принимаем не больше "
        f"{limit} в час от одного человека. Следующее обращение можно будет отправить "
        f"после {next_at}."
    )
    if kept:
        said += f" {kept}"
    return said + " Если угрожает опасность жизни или здоровью — звоните 112."


LIMIT_DRAFT_KEPT = "Черновик сохранён — ничего не потеряется."
LIMIT_TEXT_KEPT = (
    f"Ваше сообщение сохранено в черновике: в это время нажмите «{MENU_NEW}» и продолжите."
)
LIMIT_SUMMARY_KEPT = "Черновик сохранён: в это время нажмите «Отправить» под ним."


def banned(reason: str | None) -> str:
    said = "Вы заблокированы в приёмной: новые сообщения здесь больше не принимаются."
    if reason:
        said += f"\nПричина: {reason}"
    return (
        said + "\nЕсли вы считаете это ошибкой или у вас срочный вопрос, обратитесь в центр "
        "управления другим способом — по телефону или лично. При опасности — звоните 112."
    )


BAN_USAGE = (
    "Как заблокировать автора обращения: /ban 2026-000123 причина (или /ban 123 для обращения "
    "этого года; причину увидит житель, её можно не писать).\n"
    "Снять блокировку: /unban 2026-000123. Список заблокированных: /banned.\n"
    "Заблокированный житель один раз получит сообщение о блокировке, дальше его сообщения и "
    "нажатия кнопок не принимаются. Его открытые обращения остаются в работе."
)
UNBAN_USAGE = "Укажите номер обращения: /unban 2026-000123 (или /unban 123)."
BAN_PRIVATE_ONLY = "Блокировки — только в личном чате с ботом: напишите мне туда."
BAN_COORDINATOR = "Автор этого обращения — координатор: его заблокировать нельзя."
BANNED_NONE = "Заблокированных жителей нет."
