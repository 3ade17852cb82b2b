"""The client's failure mapping and retry policy, with an injected transport (no network)."""

from __future__ import annotations

import random
from typing import Any

import eth_account
import pytest
import requests
import urllib3.exceptions
from hyperliquid.utils.error import ClientError, ServerError
from hyperliquid.utils.signing import recover_agent_or_user_from_l1_action
from structlog.testing import capture_logs

from hyperfollow.adapters.hyperliquid.client import HyperliquidClient, NotJson, classify_failure
from hyperfollow.adapters.hyperliquid.config import MAINNET_API_URL, HyperliquidConfig
from hyperfollow.adapters.hyperliquid.nonce import NonceSource
from hyperfollow.domain.errors import (
    AuthRejected,
    OutcomeUnknown,
    TransientError,
    VenueError,
    VenueRejected,
)

KEY = "0x" + "12" * 32
ACCOUNT = "0x" + "ab" * 20


def _config(**kw: Any) -> HyperliquidConfig:
    base: dict[str, Any] = {"base_url": "http://127.0.0.1:9", "account_address": ACCOUNT, "secret_key": KEY}
    base.update(kw)
    return HyperliquidConfig(**base)


def _refused() -> requests.exceptions.ConnectionError:
    reason = urllib3.exceptions.NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
    return requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/info", reason))  # type: ignore[arg-type]


def _reset() -> requests.exceptions.ConnectionError:
    reason = urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104, "reset"))
    return requests.exceptions.ConnectionError(reason)


CASES: list[tuple[str, BaseException, type[VenueError], type[VenueError]]] = [
    ("429", ClientError(429, None, "null", None, None), TransientError, TransientError),
    ("500", ServerError(500, "Internal Server Error"), TransientError, OutcomeUnknown),
    ("502", ServerError(502, "Bad Gateway"), TransientError, OutcomeUnknown),
    ("refused", _refused(), TransientError, TransientError),
    ("connect timeout", requests.exceptions.ConnectTimeout("connect"), TransientError, TransientError),
    ("reset after send", _reset(), TransientError, OutcomeUnknown),
    ("read timeout", requests.exceptions.ReadTimeout("read"), TransientError, OutcomeUnknown),
    ("not json", NotJson("Could not parse JSON: <html>"), TransientError, OutcomeUnknown),
    ("422", ClientError(422, None, "Failed to deserialize", None, None), VenueRejected, VenueRejected),
]


@pytest.mark.parametrize(("name", "exc", "on_info", "on_exchange"), CASES, ids=[c[0] for c in CASES])
def test_failure_mapping(
    name: str, exc: BaseException, on_info: type[VenueError], on_exchange: type[VenueError]
) -> None:
    info_error = classify_failure("/info", exc)
    exchange_error = classify_failure("/exchange", exc)
    assert type(info_error) is on_info
    assert type(exchange_error) is on_exchange


def test_a_4xx_text_goes_through_the_rejection_table() -> None:
    error = classify_failure(
        "/exchange", ClientError(403, None, "User or API Wallet 0x1 does not exist.", None)
    )
    assert isinstance(error, AuthRejected)
    assert classify_failure("/info", KeyError("bug")) is None  # not a transport failure: re-raised


class Script:
    """A transport answering from a script: exceptions are raised, anything else returned."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, Any]] = []

    def __call__(self, path: str, payload: Any) -> Any:
        self.calls.append((path, payload))
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def _client(script: Script, sleeps: list[float], **kw: Any) -> HyperliquidClient:
    async def sleep(secs: float) -> None:
        sleeps.append(secs)

    return HyperliquidClient(
        _config(**kw), transport=script, sleep=sleep, rng=random.Random(3), nonces=NonceSource(lambda: 1000)
    )


async def test_info_is_retried_on_transient_failures() -> None:
    script = Script(ServerError(502, "Bad Gateway"), ClientError(429, None, "null", None), {"BTC": "1.0"})
    sleeps: list[float] = []
    client = _client(script, sleeps)
    with capture_logs() as logs:
        assert await client.info({"type": "allMids"}) == {"BTC": "1.0"}
    await client.close()
    assert len(script.calls) == 3
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.2 and 0 <= sleeps[1] <= 0.4  # noqa: PT018
    assert [e["event"] for e in logs] == ["venue.retry", "venue.retry"]
    stats = client.limiter.stats
    assert (stats.retries, stats.rate_limited, stats.give_ups, stats.requests) == (2, 1, 0, 3)
    assert stats.weight_last_minute == stats.weight_total == 3 * 2  # allMids weighs 2, each attempt spends


async def test_give_ups_and_429s_are_counted() -> None:
    script = Script(*[ClientError(429, None, "null", None)] * 3)
    client = _client(script, [], max_retries=2)
    with pytest.raises(TransientError, match="429"):
        await client.info({"type": "meta"})
    await client.close()
    stats = client.limiter.stats
    assert (stats.retries, stats.give_ups, stats.rate_limited) == (2, 1, 3)
    assert "429s 3" in stats.text()


async def test_info_gives_up_after_max_retries() -> None:
    script = Script(*[ServerError(503, "Service Unavailable")] * 3)
    sleeps: list[float] = []
    client = _client(script, sleeps, max_retries=2)
    with capture_logs() as logs, pytest.raises(TransientError, match="503"):
        await client.info({"type": "meta"})
    await client.close()
    assert len(script.calls) == 3
    assert [e["event"] for e in logs][-1] == "venue.gave_up"


async def test_action_after_send_failure_is_outcome_unknown_and_never_retried() -> None:
    script = Script(requests.exceptions.ReadTimeout("read timed out"))
    sleeps: list[float] = []
    client = _client(script, sleeps)
    with capture_logs() as logs, pytest.raises(OutcomeUnknown):
        await client.action({"type": "scheduleCancel"}, 1)
    await client.close()
    assert len(script.calls) == 1
    assert sleeps == []
    (event,) = [e for e in logs if e["event"] == "venue.outcome_unknown"]
    assert event["nonce"] == 1000


async def test_action_refused_before_acting_is_resent_with_the_same_nonce() -> None:
    ok = {"status": "ok", "response": {"type": "default"}}
    script = Script(_refused(), ClientError(429, None, "null", None), ok)
    sleeps: list[float] = []
    client = _client(script, sleeps, vault_address="0x" + "cd" * 20)
    assert await client.action({"type": "scheduleCancel"}, 1) == ok
    await client.close()
    bodies = [payload for _, payload in script.calls]
    assert [path for path, _ in script.calls] == ["/exchange"] * 3
    assert bodies[0] == bodies[1] == bodies[2]  # the same signed body: a duplicate could never act twice
    body = bodies[0]
    assert list(body) == ["action", "nonce", "signature", "vaultAddress", "expiresAfter"]
    assert body["vaultAddress"] == "0x" + "cd" * 20
    signer = recover_agent_or_user_from_l1_action(
        body["action"], body["signature"], body["vaultAddress"], body["nonce"], None, False
    )
    assert signer.lower() == eth_account.Account.from_key(KEY).address.lower() == client.signer_address


async def test_action_signs_for_mainnet_only_on_the_mainnet_url() -> None:
    ok = {"status": "ok", "response": {"type": "default"}}
    script = Script(ok)
    client = _client(script, [], base_url=MAINNET_API_URL)
    await client.action({"type": "scheduleCancel"}, 1, expires_after=5000)
    await client.close()
    body = script.calls[0][1]
    assert body["expiresAfter"] == 5000
    signer = recover_agent_or_user_from_l1_action(
        body["action"], body["signature"], None, body["nonce"], 5000, True
    )
    assert signer.lower() == client.signer_address


def test_config_never_shows_the_key_and_derives_urls() -> None:
    config = _config(base_url="http://127.0.0.1:8931/")
    assert KEY[2:] not in repr(config) and KEY[2:] not in str(config)  # noqa: PT018
    assert config.base_url == "http://127.0.0.1:8931"
    assert config.ws_url == "ws://127.0.0.1:8931/ws"
    assert not config.is_mainnet
    assert _config(base_url=MAINNET_API_URL).ws_url == "wss://api.hyperliquid.xyz/ws"
    assert _config(base_url=MAINNET_API_URL).is_mainnet
    vault = _config(vault_address="0x" + "CD" * 20)
    assert vault.query_address == "0x" + "cd" * 20
    assert config.query_address == ACCOUNT
    with pytest.raises(ValueError, match="64 hex digits") as info:
        _config(secret_key="0x" + "zz" * 32)
    assert "zz" not in str(info.value)
    with pytest.raises(ValueError, match="http"):
        _config(base_url="ws://x")
