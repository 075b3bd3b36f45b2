"""End-to-end: the bot as a subprocess against a fake Bot API server over real HTTP."""
