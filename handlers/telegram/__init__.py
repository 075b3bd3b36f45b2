"""Telegram front end (aiogram 3): residents in private chats, staff in department groups."""
