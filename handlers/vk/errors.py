"""VK's errors the rest of the bot needs to name, without loading vkbottle (a Telegram-only
install never imports it)."""

from __future__ import annotations


class VkTokenRejected(Exception):
    """VK refused the community token: the operator has to fix VK_TOKEN."""
