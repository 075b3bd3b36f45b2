"""Platform-neutral core: the appeal's life from the first message to the resident's verdict.

Nothing in this package imports aiogram or vkbottle.
"""
