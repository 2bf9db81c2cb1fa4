"""Small scripted servers on 127.0.0.1 for hostile and historical behaviour (asyncio in a
thread, so synchronous code under test — the CLI — can talk to them)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.contextmanager
def fake_server(handler: Handler) -> Iterator[int]:
    """Serve ``handler`` on a free loopback port; yields the port; stops on exit."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    servers: list[asyncio.Server] = []  # the one server, once started
    tasks: set[asyncio.Task[None]] = set()

    async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.CancelledError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            tasks.discard(task)

    async def start() -> None:
        server = await asyncio.start_server(guarded, "127.0.0.1", 0)
        servers.append(server)
        ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10), "fake server did not start"
    try:
        yield int(servers[0].sockets[0].getsockname()[1])
    finally:

        async def stop() -> None:
            servers[0].close()
            for task in list(tasks):
                task.cancel()
            await asyncio.sleep(0)

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def send(writer: asyncio.StreamWriter, *out: str) -> None:
    for line in out:
        writer.write(line.encode("latin-1") + b"\r\n")


async def readline(reader: asyncio.StreamReader, timeout: float = 10.0) -> str:
    raw = await asyncio.wait_for(reader.readline(), timeout)
    if not raw:
        raise ConnectionError("client went away")
    return raw.decode("latin-1").rstrip("\r\n")


def smtp_handler(
    rcpt: Callable[[str, str], str],
    *,
    greeting: tuple[str, ...] = ("220 fake.example.net ESMTP fake",),
    ehlo: tuple[str, ...] = ("250-fake.example.net", "250-PIPELINING", "250 8BITMIME"),
    log: list[str] | None = None,
    drop_after: int | None = None,
) -> Handler:
    """A well-behaved SMTP server whose RCPT answer is ``rcpt(mail_from, rcpt_to)``;
    with ``drop_after`` it answers 421 and hangs up at that RCPT of each connection."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        send(writer, *greeting)
        await writer.drain()
        mail_from = ""
        rcpts = 0
        while True:
            line = await readline(reader)
            if log is not None:
                log.append(line)
            verb = line[:4].upper()
            if verb == "EHLO":
                send(writer, *ehlo)
            elif verb == "HELO":
                send(writer, "250 fake.example.net")
            elif verb == "MAIL":
                mail_from = line[10:]
                send(writer, "250 2.1.0 Ok")
            elif verb == "RCPT":
                rcpts += 1
                if rcpts == drop_after:
                    reply = "421 4.7.0 fake.example.net Error: too many errors"
                else:
                    reply = rcpt(mail_from, line[8:])
                send(writer, reply)
                if reply.startswith("421"):
                    await writer.drain()
                    return
            elif verb == "RSET":
                send(writer, "250 2.0.0 Ok")
            elif verb == "QUIT":
                send(writer, "221 2.0.0 Bye")
                await writer.drain()
                return
            else:
                send(writer, "502 5.5.2 Error: command not recognized")
            await writer.drain()

    return handle
