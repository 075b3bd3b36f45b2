"""Приёмная: a front door between residents and their city hall."""
