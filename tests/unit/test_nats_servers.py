from __future__ import annotations

from router.settings import nats_servers


def test_a_cluster_url_list_is_split_and_a_single_url_kept() -> None:
    assert nats_servers("nats://a:4222, nats://b:4222,,nats://c:4222") == [
        "nats://a:4222",
        "nats://b:4222",
        "nats://c:4222",
    ]
    assert nats_servers("nats://127.0.0.1:4222") == ["nats://127.0.0.1:4222"]
