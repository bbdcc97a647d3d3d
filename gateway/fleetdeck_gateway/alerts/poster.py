"""POSTing JSON to a webhook or an Alertmanager: the HTTP edge of alert delivery, each failure
turned into a sentence and a verdict on whether trying again can help."""

from __future__ import annotations

import httpx

from fleetdeck_common import __version__

# A 4xx says the request itself is wrong, so sending it again cannot help; these two are the
# exceptions (the receiver was slow, or asks us to slow down), as Alertmanager treats them.
_RETRYABLE_4XX = frozenset({408, 429})


def shown(url: str) -> str:
    """`url` as errors and logs may show it: scheme, host and port only, since a chat webhook's
    path or query is often its secret."""
    parsed = httpx.URL(url)
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{host}{port}"


class SendFailed(Exception):
    """A POST that did not succeed: `str(self)` says why; `retry`, whether trying again may help."""

    def __init__(self, message: str, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


class Poster:
    """POSTs JSON bodies, each attempt bounded by `timeout` seconds (connecting, waiting for the
    answer and reading it); redirects are not followed."""

    def __init__(self, timeout: float) -> None:
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": f"fleetdeck/{__version__}", "Content-Type": "application/json"},
            follow_redirects=False,
            trust_env=False,  # a proxy from the environment would be a surprise destination
        )
        self._timeout = timeout

    async def post(self, url: str, body: str) -> None:
        """Send `body`; returns on a 2xx answer, raises `SendFailed` otherwise."""
        where = shown(url)
        try:
            answer = await self._client.post(url, content=body.encode())
        except httpx.TimeoutException:
            raise SendFailed(f"{where} did not answer within {self._timeout:g} s", retry=True) from None
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            raise SendFailed(f"{where} could not be reached ({reason})", retry=True) from None
        except (httpx.InvalidURL, ValueError) as exc:
            raise SendFailed(f"{where} cannot be sent to ({exc})", retry=False) from None
        if answer.is_success:
            return
        status = f"{answer.status_code} {answer.reason_phrase}".strip()
        retry = answer.status_code >= 500 or answer.status_code in _RETRYABLE_4XX
        raise SendFailed(f"{where} answered {status}", retry=retry)

    async def close(self) -> None:
        await self._client.aclose()
