"""The asyncio transport under the Weibo client, against small local HTTP servers: answers,
kept-alive and closed connections, large bodies both ways, timeouts, refusals, TLS."""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpcore
import httpx
import pytest

from fengqiao.contracts import ReplyChannel, ReplyTarget
from fengqiao.services.notifier.adapters.platform import RetryableError, WeiboClient
from fengqiao.services.notifier.adapters.transport import (
    ApiClient,
    AsyncioTransport,
    as_httpx_error,
)

TARGET = ReplyTarget(platform="weibo", account="@a", post_id="1")
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    """(head, body) of the next request on the connection, None at its end."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head, await reader.readexactly(length)


def answer(body: bytes, *, close: bool = False) -> bytes:
    connection = b"close" if close else b"keep-alive"
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\nConnection: "
        + connection
        + b"\r\n\r\n"
        + body
    )


@asynccontextmanager
async def server(handler: Handler, ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    connections: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=ssl_context)
    try:
        yield srv.sockets[0].getsockname()[1]
    finally:
        srv.close()
        for writer in connections:
            writer.close()
        await srv.wait_closed()


class Recorder:
    """A Weibo-shaped server: each post gets the next id; counts connections and requests."""

    def __init__(self) -> None:
        self.connections = 0
        self.bodies: list[bytes] = []
        self.close_after: int | None = None  # close each connection after this many answers

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        answered = 0
        while (request := await read_request(reader)) is not None:
            self.bodies.append(request[1])
            answered += 1
            last = self.close_after is not None and answered >= self.close_after
            writer.write(answer(json.dumps({"idstr": str(len(self.bodies))}).encode(), close=last))
            await writer.drain()
            if last:
                return


async def test_posts_go_out_and_connections_are_kept_alive() -> None:
    recorder = Recorder()
    async with server(recorder) as port:
        client = WeiboClient(f"http://127.0.0.1:{port}", lanes=1, connections_per_lane=1)
        try:
            ids = [
                await client.send(ReplyChannel.COMMENT, TARGET, f"第{i}条", token="t")
                for i in range(5)
            ]
        finally:
            await client.aclose()
    assert ids == ["1", "2", "3", "4", "5"]
    assert recorder.connections == 1
    assert b"comment=%E7%AC%AC0%E6%9D%A1" in recorder.bodies[0]


async def test_a_connection_the_server_closed_is_replaced() -> None:
    recorder = Recorder()
    recorder.close_after = 1
    async with server(recorder) as port:
        client = WeiboClient(f"http://127.0.0.1:{port}", lanes=1, connections_per_lane=1)
        try:
            for i in range(3):
                await client.send(ReplyChannel.COMMENT, TARGET, str(i), token="t")
                await asyncio.sleep(0.05)  # the server's close arrives before the next post
        finally:
            await client.aclose()
    assert recorder.connections == 3


async def test_concurrent_posts_all_get_their_own_answer() -> None:
    recorder = Recorder()
    async with server(recorder) as port:
        client = WeiboClient(f"http://127.0.0.1:{port}", lanes=2, connections_per_lane=2)
        try:
            ids = await asyncio.gather(
                *(client.send(ReplyChannel.COMMENT, TARGET, str(i), token="t") for i in range(40))
            )
        finally:
            await client.aclose()
    assert sorted(map(int, ids)) == list(range(1, 41))
    assert recorder.connections <= 4


async def test_large_bodies_pass_both_ways() -> None:
    big = b"x" * 3_000_000  # beyond the read buffer's high-water mark

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (request := await read_request(reader)) is not None:
            writer.write(answer(big + str(len(request[1])).encode()))
            await writer.drain()

    async with server(handler) as port, httpx.AsyncClient(transport=AsyncioTransport()) as client:
        response = await client.post(f"http://127.0.0.1:{port}/", content=b"y" * 1_000_000)
    assert response.content == big + b"1000000"


async def test_no_answer_within_the_timeout_is_a_read_timeout_that_may_have_posted() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async with server(silent) as port:
        client = WeiboClient(f"http://127.0.0.1:{port}", timeout=0.2, lanes=1)
        try:
            with pytest.raises(RetryableError, match="ReadTimeout") as caught:
                await client.send(ReplyChannel.COMMENT, TARGET, "hi", token="t")
        finally:
            await client.aclose()
    assert caught.value.maybe_delivered


async def test_a_connection_closed_without_answer_may_have_posted() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    async with server(hang_up) as port:
        client = WeiboClient(f"http://127.0.0.1:{port}", lanes=1)
        try:
            with pytest.raises(RetryableError, match="RemoteProtocolError") as caught:
                await client.send(ReplyChannel.COMMENT, TARGET, "hi", token="t")
        finally:
            await client.aclose()
    assert caught.value.maybe_delivered


async def test_a_refused_connection_cannot_have_posted() -> None:
    async with server(Recorder()) as port:
        pass  # closed: nothing listens on the port any more
    client = WeiboClient(f"http://127.0.0.1:{port}", lanes=1)
    try:
        with pytest.raises(RetryableError, match="ConnectError") as caught:
            await client.send(ReplyChannel.COMMENT, TARGET, "hi", token="t")
    finally:
        await client.aclose()
    assert not caught.value.maybe_delivered


async def test_a_cancelled_post_is_cancelled_not_timed_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async with server(silent) as port:
        client = WeiboClient(f"http://127.0.0.1:{port}", timeout=5, lanes=1)
        try:
            task = asyncio.create_task(client.send(ReplyChannel.COMMENT, TARGET, "hi", token="t"))
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            await client.aclose()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=DNS:localhost"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_https_is_verified_against_the_trusted_certificate(
    certificate: tuple[Path, Path],
) -> None:
    cert, key = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    recorder = Recorder()
    async with server(recorder, server_context) as port:
        trusted = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(transport=AsyncioTransport(verify=trusted)) as client:
            response = await client.post(f"https://localhost:{port}/", content=b"a=1")
            again = await client.post(f"https://localhost:{port}/", content=b"a=2")
        assert response.json() == {"idstr": "1"} and again.json() == {"idstr": "2"}
        assert recorder.connections == 1
        async with httpx.AsyncClient(transport=AsyncioTransport()) as client:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.post(f"https://localhost:{port}/", content=b"a=3")


async def test_cookies_an_answer_sets_are_sent_back() -> None:
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (request := await read_request(reader)) is not None:
            seen.append(request[0])
            cookie = b"Set-Cookie: session=abc; Path=/\r\n" if len(seen) == 1 else b""
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + cookie + b"\r\n{}")
            await writer.drain()

    async with server(handler) as port, ApiClient(transport=AsyncioTransport()) as client:
        for _ in range(3):
            await client.get(f"http://127.0.0.1:{port}/")
    assert b"cookie: session=abc" not in seen[0].lower()
    assert all(b"cookie: session=abc" in head.lower() for head in seen[1:])
    assert client.cookies["session"] == "abc"


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (httpcore.ConnectTimeout, httpx.ConnectTimeout),
        (httpcore.ReadTimeout, httpx.ReadTimeout),
        (httpcore.PoolTimeout, httpx.PoolTimeout),
        (httpcore.ReadError, httpx.ReadError),
        (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    ],
)
def test_httpcore_errors_become_the_most_specific_httpx_error(
    raised: type[Exception], expected: type[Exception]
) -> None:
    error = as_httpx_error(raised("lost"))
    assert type(error) is expected and str(error) == "lost"
    assert isinstance(error.__cause__, raised)
    other = ValueError("not httpcore's")
    assert as_httpx_error(other) is other
