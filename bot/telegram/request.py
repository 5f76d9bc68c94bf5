"""HTTP to the Bot API: at most a fixed number of requests on the wire, the rest waiting their
turn in line before the connection pool.

Updates of many chats are handled at once and give up their slot while their requests travel
(bot/telegram/updates.py), so hundreds of requests can be on their way together. httpcore's
pool scans every connection and every queued request each time one is assigned, which made
sending the larger part of a reply's CPU; a semaphore in front keeps that scan short and costs
nothing while the line is empty. Telegram's own limits (about 30 messages a second) need far
fewer connections than this.
"""

from __future__ import annotations

import asyncio

from telegram._utils.types import ODVInput
from telegram.request import BaseRequest, HTTPXRequest, RequestData

IN_FLIGHT = 16


class BoundedRequest(HTTPXRequest):
    def __init__(self, in_flight: int = IN_FLIGHT, **kwargs: object) -> None:
        super().__init__(connection_pool_size=in_flight, **kwargs)  # type: ignore[arg-type]
        self._in_flight = asyncio.Semaphore(in_flight)
        self.waiting = 0  # requests in line for a turn

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        self.waiting += 1
        try:
            await self._in_flight.acquire()
        finally:
            self.waiting -= 1
        try:
            return await super().do_request(
                url,
                method,
                request_data,
                read_timeout,
                write_timeout,
                connect_timeout,
                pool_timeout,
            )
        finally:
            self._in_flight.release()
