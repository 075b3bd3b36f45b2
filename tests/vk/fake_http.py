"""An HTTP client for vkbottle's API that hands each request to a :class:`FakeVK` in-process."""

from __future__ import annotations

import json
from typing import Any

from vkbottle.http import ABCHTTPClient

from tests.fakes.fake_vk import FakeVK


class FakeHttpClient(ABCHTTPClient):
    def __init__(self, fake: FakeVK) -> None:
        self.fake = fake

    async def request_json(
        self, url: str, method: str = "GET", data: dict[str, Any] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        name = url.rsplit("/", 1)[-1]
        params = {**(kwargs.get("params") or {}), **(data or {})}
        return await self.fake.dispatch(name, params)

    async def request_text(
        self, url: str, method: str = "GET", data: dict[str, Any] | None = None, **kwargs: Any
    ) -> str:
        return json.dumps(await self.request_json(url, method, data, **kwargs))

    async def request_raw(
        self, url: str, method: str = "GET", data: dict[str, Any] | None = None, **kwargs: Any
    ) -> Any:
        return await self.request_text(url, method, data, **kwargs)

    async def request_content(
        self, url: str, method: str = "GET", data: dict[str, Any] | None = None, **kwargs: Any
    ) -> bytes:
        return (await self.request_text(url, method, data, **kwargs)).encode()

    async def close(self) -> None:
        return None
