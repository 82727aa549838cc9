"""HTTP with retries for the collateral services (AMD KDS, Intel PCS/PCCS, NVIDIA RIM service
and OCSP responder).

429 and 5xx are retried, waiting what Retry-After says (capped at MAX_DELAY) or else an
exponential backoff; 404 and other refusals are not, since asking again gets the same answer.
A client made with `retry_unreachable=False` also gives up at once when no connection can be
made (name not resolved, connection refused): on a machine without network, retrying only
delays the same answer. It then raises ServiceUnreachable, a CollateralUnavailable.
Bodies are read in chunks and refused past a size limit, so a hostile server cannot make a
verifier hold an unbounded answer.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..errors import CollateralUnavailable, ConfigError
from ..timeutil import utcnow

if TYPE_CHECKING:
    import httpx

DEFAULT_MAX_BYTES = 1024 * 1024
MAX_DELAY = 60.0  # seconds: the longest wait between two tries, whatever Retry-After says
_RETRYABLE = frozenset({429}) | frozenset(range(500, 600))


class ServiceUnreachable(CollateralUnavailable):
    """No connection could be made to the service (only with retry_unreachable=False)."""


def check_service_url(value: str, what: str, example: str) -> str:
    """An http(s) URL without a trailing slash; ConfigError naming `what` otherwise. Parsed
    with urllib, so that naming a service does not import the HTTP client."""
    try:
        if not isinstance(value, str) or any(ord(c) < 33 or ord(c) == 127 for c in value):
            raise ValueError("control characters or spaces in the URL")
        url = urlsplit(value)
        host = url.hostname
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{what} URL does not parse", found=str(exc)) from None
    if url.scheme not in ("http", "https") or not host:
        raise ConfigError(f"{what} URL must be http(s)", expected=f"e.g. {example}",
                          found=value)
    return value.rstrip("/")


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), at least 0 and
    at most MAX_DELAY; None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return min(float(text), MAX_DELAY)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max((when - now).total_seconds(), 0.0), MAX_DELAY)


@dataclass(frozen=True)
class Answer:
    """A 200 answer: its body and headers."""

    body: bytes
    headers: httpx.Headers


@dataclass(frozen=True)
class _Try:
    """One try's outcome: the answer, or why not and how long to wait before the next try."""

    answer: Answer | None
    failure: str
    delay: float | None = None  # a server-given delay (Retry-After)
    retry: bool = True
    unreachable: bool = False


class ServiceHttp:
    """GET and POST to one service with retries: `retries` tries after the first, the n-th
    waiting backoff * 2**n seconds (at most MAX_DELAY) unless the server says how long.
    Bodies over `max_bytes` are refused. `hint` ends the error when every try failed."""

    def __init__(self, service: str, *, max_bytes: int = DEFAULT_MAX_BYTES,
                 timeout: float = 10.0, retries: int = 4, backoff: float = 0.5,
                 transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 now: Callable[[], datetime] = utcnow,
                 headers: Mapping[str, str] | None = None,
                 hint: str = "retry later, or import a collateral bundle",
                 retry_unreachable: bool = True) -> None:
        if not isinstance(retries, int) or retries < 0 or backoff < 0 or timeout <= 0:
            raise ConfigError(f"bad {service} client settings",
                              expected="retries >= 0, backoff >= 0, timeout > 0",
                              found=f"retries {retries}, backoff {backoff}, timeout {timeout}")
        self.service, self.max_bytes, self.hint = service, max_bytes, hint
        self.retries, self.backoff = retries, backoff
        self.retry_unreachable = retry_unreachable
        self._sleep, self._now = sleep, now
        self._settings: dict[str, Any] = {
            "timeout": timeout, "transport": transport,
            "headers": {"User-Agent": "ccattest", **(headers or {})}}
        self._client: httpx.Client | None = None

    @property
    def _http(self) -> httpx.Client:
        """The HTTP client, made at the first request: a verifier whose collateral is all
        given or cached never creates one (nor imports httpx)."""
        if self._client is None:
            import httpx

            settings = self._settings
            self._client = httpx.Client(timeout=httpx.Timeout(settings["timeout"]),
                                        transport=settings["transport"],
                                        follow_redirects=False, headers=settings["headers"])
        return self._client

    @property
    def connected(self) -> bool:
        return self._client is not None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def get(self, url: str) -> bytes:
        return self.fetch("GET", url).body

    def post(self, url: str, body: bytes, content_type: str) -> bytes:
        return self.fetch("POST", url, body, {"Content-Type": content_type}).body

    def fetch(self, method: str, url: str, body: bytes | None = None,
              headers: Mapping[str, str] | None = None) -> Answer:
        """The 200 answer to `method url`; CollateralUnavailable once the server refuses or
        every try failed."""
        failures: list[str] = []
        for attempt in range(self.retries + 1):
            outcome = self._try(method, url, body, headers or {})
            if outcome.answer is not None:
                return outcome.answer
            failures.append(outcome.failure)
            if outcome.unreachable:
                raise ServiceUnreachable(f"{self.service} cannot be reached at {url}",
                                         expected="a connection", found=outcome.failure,
                                         hint=self.hint)
            if not outcome.retry:
                raise CollateralUnavailable(f"{self.service} refused {url}", expected="HTTP 200",
                                            found=outcome.failure)
            if attempt < self.retries:
                self._sleep(self._delay(attempt, outcome.delay))
        raise CollateralUnavailable(f"{self.service} did not answer {url} after "
                                    f"{self.retries + 1} tries", expected="HTTP 200",
                                    found="; ".join(failures), hint=self.hint)

    def _delay(self, attempt: int, server_delay: float | None) -> float:
        if server_delay is not None:
            return server_delay
        return min(self.backoff * 2 ** attempt, MAX_DELAY)

    def _try(self, method: str, url: str, body: bytes | None,
             headers: Mapping[str, str]) -> _Try:
        import httpx

        try:
            with self._http.stream(method, url, content=body, headers=headers) as response:
                return self._outcome(response)
        except httpx.TimeoutException as exc:
            return _Try(None, f"timeout ({type(exc).__name__})")
        except httpx.ConnectError as exc:  # no connection at all: DNS, refused, no route
            return _Try(None, f"connection error ({type(exc).__name__}: {exc})",
                        unreachable=not self.retry_unreachable)
        except httpx.HTTPError as exc:
            return _Try(None, f"connection error ({type(exc).__name__}: {exc})")

    def _outcome(self, response: httpx.Response) -> _Try:
        status = response.status_code
        if status == 200:
            return self._read_limited(response)
        failure = f"HTTP {status}"
        if status in _RETRYABLE:
            return _Try(None, failure, retry_after(response.headers.get("Retry-After"),
                                                   self._now()))
        return _Try(None, failure, retry=False)

    def _read_limited(self, response: httpx.Response) -> _Try:
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > self.max_bytes:
                return _Try(None, f"response larger than {self.max_bytes} bytes", retry=False)
        return _Try(Answer(bytes(body), response.headers), "")
