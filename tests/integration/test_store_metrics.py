"""A service's /metrics counts what it asked of the real store: the client every service gets
from `Runtime.create` carries the store listener."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from fengqiao.runtime.service import Runtime, http_app
from fengqiao.runtime.settings import StackSettings


def scraped(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_count_the_store_commands_and_documents(
    stack: StackSettings, run_id: str
) -> None:
    runtime = Runtime.create("svc", stack, with_mongo=True)
    assert runtime.mongo is not None
    database = f"itest_store_metrics_{run_id}"
    shard = runtime.mongo[database]["things_3f"]
    try:
        await shard.insert_many([{"_id": i} for i in range(5)])
        await runtime.mongo[database]["things_0a"].insert_one({"_id": "x"})
        assert len(await shard.find({"_id": {"$in": [1, 2, 3]}}).to_list()) == 3
        await shard.delete_one({"_id": 4})
        app = http_app(runtime, description="t")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            answer = await client.get("/metrics")
        assert answer.status_code == 200
        samples = scraped(answer.text)

        def sample(name: str, **labels: str) -> float | None:
            key = frozenset({"service": "svc", "collection": "things_*", **labels}.items())
            return samples.get((name, key))

        assert sample("fengqiao_store_commands_total", command="insert") == 2
        written = {"direction": "written"}
        assert sample("fengqiao_store_documents_total", command="insert", **written) == 6
        assert sample("fengqiao_store_documents_total", command="delete", **written) == 1
        read = {"direction": "read"}
        assert sample("fengqiao_store_documents_total", command="find", **read) == 3
        seconds = sample("fengqiao_store_command_seconds_total", command="find")
        assert seconds is not None and seconds > 0
    finally:
        await runtime.mongo.drop_database(database)
        await runtime.mongo.close()
