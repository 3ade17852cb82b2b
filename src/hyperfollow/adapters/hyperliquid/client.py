"""The one door to the venue's REST API: signing, nonces, rate budget, retries and error mapping.

Built on the official SDK's transport (``hyperliquid.api.API``) but not its ``Exchange`` class: wires
are built by the gateway from exact strings, never floats. L1 actions are signed with
:func:`hyperfollow.signing.sign_l1_action` (precomputed EIP-712 hashes + libsecp256k1: about 8x faster
than the SDK's ``eth_account`` path and byte-identical to it, ``{"r", "s", "v"}`` as the SDK writes them;
``tests/unit/test_signing.py`` and ``tests/unit/test_fanout_signing.py`` check that against the SDK).
Every blocking call (HTTP, signing) runs on a dedicated executor (threads "hl-sdk-*"), so the
event loop never blocks.

Failure mapping, in ``classify_failure`` (one place):

==============================================  ==================  =====================
what happened                                   /info               /exchange
==============================================  ==================  =====================
HTTP 429 (IP weight spent)                      TransientError      TransientError
could not connect (refused, DNS, connect t/o)   TransientError      TransientError
HTTP 5xx                                        TransientError      OutcomeUnknown
read timeout, connection reset after sending    TransientError      OutcomeUnknown
2xx body that is not JSON                       TransientError      OutcomeUnknown
other 4xx                                       VenueRejected(text) VenueRejected(text)
==============================================  ==================  =====================

``TransientError`` is retried here (``backoff_delay``, up to ``max_retries``): the venue refused
before acting. A retried action is the same signed body with the same nonce, so even if the venue
had applied it, the resend would be refused as a duplicate nonce rather than act twice.
``OutcomeUnknown`` is never retried here: the gateway resolves it by looking the orders up.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import requests
import structlog
import urllib3.exceptions
from hyperliquid.api import API
from hyperliquid.utils.error import ClientError, ServerError

from hyperfollow.adapters.hyperliquid.budget import (
    WeightLimiter,
    backoff_delay,
    info_extra_weight,
    info_weight,
)
from hyperfollow.adapters.hyperliquid.config import EndpointConfig, HyperliquidConfig
from hyperfollow.adapters.hyperliquid.nonce import NonceSource, nonce_source_for
from hyperfollow.domain.errors import OutcomeUnknown, TransientError, VenueError, rejection_for
from hyperfollow.domain.weights import exchange_weight
from hyperfollow.signing import address_of, sign_l1_action

log = structlog.get_logger(__name__)

Transport = Callable[[str, Any], Any]  # blocking (path, payload) -> JSON; raises as hyperliquid.api.API does
_NOT_JSON = "Could not parse JSON: "


class InfoClient(Protocol):
    """What the public readers (market data, leader feeds, listings) need of a client: ``/info`` only."""

    async def info(self, payload: dict[str, Any]) -> Any: ...


class VenueClient(InfoClient, Protocol):
    """What the gateway and the account readers need of a client (a fake implements it in unit tests)."""

    @property
    def config(self) -> HyperliquidConfig: ...

    async def action(
        self, action: dict[str, Any], n_orders: int = 0, *, expires_after: int | None = None
    ) -> Any: ...


class NotJson(Exception):
    """A 2xx answer whose body is not JSON (the SDK returns ``{"error": "Could not parse JSON: ..."}``)."""


class _Api(API):  # type: ignore[misc]
    """``hyperliquid.api.API`` with one fix: the SDK reads ``err["code"]`` of any JSON 4xx body and
    crashes with ``KeyError`` when the venue (or a proxy) answers a JSON object without it. Here every
    4xx becomes ``ClientError`` carrying the raw body text; 5xx and 2xx behave as in the SDK."""

    def _handle_exception(self, response: requests.Response) -> None:
        if 400 <= response.status_code < 500:
            raise ClientError(response.status_code, None, response.text, response.headers, None)
        super()._handle_exception(response)


def _failed_before_send(exc: requests.exceptions.ConnectionError) -> bool:
    """True when no byte of the request reached the venue (refused, unresolvable, connect timeout)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason: Any = exc.args[0] if exc.args else None
    if isinstance(reason, urllib3.exceptions.MaxRetryError):
        reason = reason.reason
    return isinstance(reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError)


def classify_failure(path: str, exc: BaseException) -> VenueError | None:
    """The error family of a failed request (None: not a transport failure, a bug to re-raise)."""
    is_action = path == "/exchange"
    after_send: type[VenueError] = OutcomeUnknown if is_action else TransientError
    if isinstance(exc, ClientError):
        text = str(exc.error_message if exc.error_message is not None else "")
        if exc.status_code == 429:
            return TransientError(f"HTTP 429: {text[:200]}", status=429)
        return rejection_for(text or f"HTTP {exc.status_code}")
    if isinstance(exc, ServerError):
        return after_send(f"HTTP {exc.status_code}: {str(exc.message)[:200]}")
    if isinstance(exc, requests.exceptions.ConnectionError) and _failed_before_send(exc):
        return TransientError(f"could not connect: {exc}")
    if isinstance(exc, requests.exceptions.Timeout):
        return after_send(f"no answer within the timeout: {exc}")
    if isinstance(exc, NotJson | requests.exceptions.RequestException):
        return after_send(f"{type(exc).__name__}: {exc}")
    return None


class HyperliquidInfoClient:
    """REST client for public ``/info`` reads: no key, no account, and no way to post to ``/exchange``
    (paper trading and downloads hold only this one, so nothing they run can send an order)."""

    def __init__(
        self,
        endpoint: EndpointConfig,
        *,
        limiter: WeightLimiter | None = None,
        transport: Transport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        max_workers: int = 4,
    ) -> None:
        self._endpoint = endpoint
        self.limiter = limiter or WeightLimiter(endpoint.ip_weight_per_min)
        self._transport = transport or self._sdk_post
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="hl-sdk")
        self._local = threading.local()
        self._apis: list[_Api] = []
        self._apis_lock = threading.Lock()
        self._closed = False

    @property
    def endpoint(self) -> EndpointConfig:
        return self._endpoint

    # ------------------------------------------------------------------ blocking side (executor)

    def _sdk_post(self, path: str, payload: Any) -> Any:
        api: _Api | None = getattr(self._local, "api", None)
        if api is None:  # one requests.Session per executor thread
            api = _Api(self._endpoint.base_url, timeout=self._endpoint.request_timeout_secs)
            self._local.api = api
            with self._apis_lock:
                self._apis.append(api)
        result = api.post(path, payload)
        if (
            isinstance(result, dict)
            and len(result) == 1
            and str(result.get("error", "")).startswith(_NOT_JSON)
        ):
            raise NotJson(str(result["error"])[:300])
        return result

    # ------------------------------------------------------------------ async side

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._closed:
            raise TransientError("the venue client is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _send(
        self,
        path: str,
        call: Callable[[], Any],
        weight: int,
        what: str,
        nonce: Callable[[], Any] = lambda: None,
    ) -> Any:
        """Post with the weight budget and the retry policy of the table above."""
        attempt = 0
        endpoint = self._endpoint
        while True:
            await self.limiter.acquire(weight, what=what)
            try:
                return await self._run(call)
            except Exception as exc:
                error = classify_failure(path, exc)
                if error is None:
                    raise
            rate_limited = isinstance(error, TransientError) and error.status == 429
            if isinstance(error, TransientError) and attempt < endpoint.max_retries:
                self.limiter.note_retry(rate_limited=rate_limited)
                delay = backoff_delay(
                    attempt, endpoint.backoff_base_secs, endpoint.backoff_cap_secs, self._rng
                )
                log.warning(
                    "venue.retry", path=path, request=what, attempt=attempt + 1, delay_secs=round(delay, 3),
                    error=error.text,
                )  # fmt: skip
                await self._sleep(delay)
                attempt += 1
                continue
            if isinstance(error, OutcomeUnknown):
                log.warning("venue.outcome_unknown", path=path, request=what, nonce=nonce(), error=error.text)
            elif isinstance(error, TransientError):
                self.limiter.note_give_up(rate_limited=rate_limited)
                log.warning("venue.gave_up", path=path, request=what, attempts=attempt + 1, error=error.text)
            else:
                log.warning("venue.http_rejected", path=path, request=what, error=str(error))
            raise error

    async def info(self, payload: dict[str, Any]) -> Any:
        """POST /info (retried on transient failures); the parsed JSON answer."""
        what = str(payload.get("type"))
        result = await self._send(
            "/info", lambda: self._transport("/info", payload), info_weight(payload), what
        )
        self.limiter.charge(info_extra_weight(payload, result))
        return result

    async def close(self) -> None:
        """Stop the executor and close the HTTP sessions."""
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
        with self._apis_lock:
            for api in self._apis:
                api.session.close()
            self._apis.clear()

    def __repr__(self) -> str:
        return f"HyperliquidInfoClient({self._endpoint.base_url!r})"


class HyperliquidClient(HyperliquidInfoClient):
    """REST client of one (signer, account, vault): ``info`` queries and signed ``action`` posts."""

    def __init__(
        self,
        config: HyperliquidConfig,
        *,
        nonces: NonceSource | None = None,
        limiter: WeightLimiter | None = None,
        transport: Transport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        max_workers: int = 4,
    ) -> None:
        super().__init__(
            config, limiter=limiter, transport=transport, sleep=sleep, rng=rng, max_workers=max_workers
        )
        self._config = config
        # the raw key lives only here and in the signer's key cache; never logged, never in repr
        self._key = bytes.fromhex(config.secret_key.get_secret_value().removeprefix("0x"))
        self._address = address_of(self._key)
        self.nonces = nonces or nonce_source_for(self._address)

    @property
    def config(self) -> HyperliquidConfig:
        return self._config

    @property
    def signer_address(self) -> str:
        """Lower-case address of the signing key (an agent's, or the master's own)."""
        return self._address

    def _sign(self, action: dict[str, Any], expires_after: int | None) -> dict[str, Any]:
        nonce = self.nonces.next()
        vault = self._config.vault_address
        signature = sign_l1_action(self._key, action, vault, nonce, expires_after, self._config.is_mainnet)
        return {
            "action": action,
            "nonce": nonce,
            "signature": signature,
            "vaultAddress": vault,
            "expiresAfter": expires_after,
        }

    def _post_signed(self, signed: dict[str, Any], action: dict[str, Any], expires_after: int | None) -> Any:
        """Sign (first attempt only: a retry resends the same body and nonce) and post, in one executor
        call, so an order costs one hop off the event loop, not two."""
        if "body" not in signed:
            signed["body"] = self._sign(action, expires_after)
        return self._transport("/exchange", signed["body"])

    async def action(
        self, action: dict[str, Any], n_orders: int = 0, *, expires_after: int | None = None
    ) -> Any:
        """Sign ``action`` with a fresh nonce and POST /exchange; the venue's JSON envelope.

        ``n_orders`` is the batch length (orders, cancels or modifies), which sets the IP weight.
        """
        signed: dict[str, Any] = {}

        def call() -> Any:
            return self._post_signed(signed, action, expires_after)

        def nonce() -> Any:
            return signed.get("body", {}).get("nonce")

        return await self._send("/exchange", call, exchange_weight(n_orders), str(action.get("type")), nonce)

    def __repr__(self) -> str:
        return f"HyperliquidClient({self._config!r}, signer={self.signer_address})"
