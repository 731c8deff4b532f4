"""A loopback HTTP/1.1 upstream for the HTTP toxic tests (h11, keep-alive).

Every request is answered ``200`` with body ``"<METHOD> <target> #<n>"``
(``n`` counts requests over the server's life), chunked when the path starts
with ``/chunked``; requests are counted so a test can tell which reached it.
"""

from __future__ import annotations

import asyncio
import threading

import h11


class HttpUpstream:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.seen: list[str] = []
        self.server = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        self.port = int(self.server.sockets[0].getsockname()[1])

    async def _start(self) -> asyncio.AbstractServer:
        return await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await reader.read(1 << 16)
                    conn.receive_data(data)
                    if not data:
                        return
                    continue
                if isinstance(event, h11.Request):
                    request = event
                elif isinstance(event, h11.EndOfMessage):
                    target = request.target.decode()
                    self.seen.append(f"{request.method.decode()} {target}")
                    body = f"{request.method.decode()} {target} #{len(self.seen)}".encode()
                    chunked = target.startswith("/chunked")
                    headers = (
                        [("Transfer-Encoding", "chunked")]
                        if chunked
                        else [("Content-Length", str(len(body)))]
                    )
                    out = conn.send(h11.Response(status_code=200, headers=headers)) or b""
                    if request.method != b"HEAD":
                        if chunked:
                            for i in range(0, len(body), 3):
                                out += conn.send(h11.Data(data=body[i : i + 3])) or b""
                        else:
                            out += conn.send(h11.Data(data=body)) or b""
                    out += conn.send(h11.EndOfMessage()) or b""
                    writer.write(out)
                    await writer.drain()
                    if conn.our_state is h11.MUST_CLOSE:
                        return
                    conn.start_next_cycle()
                elif isinstance(event, h11.ConnectionClosed):
                    return
        except (h11.ProtocolError, OSError):
            return
        finally:
            writer.close()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
