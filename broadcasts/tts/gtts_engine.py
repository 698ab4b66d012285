"""gTTS: Google Translate's voice, the best Vietnamese quality, but only with internet.

Offline nodes are the normal case in mountain communes, so this engine must fail fast: every
HTTP request has a short timeout, and the whole call has a hard deadline on top, so a link
that accepts the connection and then stalls cannot hold a render hostage.
"""

from __future__ import annotations

import concurrent.futures
import io
from collections.abc import Mapping

import requests
from gtts import gTTS

from broadcasts.tts.base import EngineError, Synthesis, check_voice

#: Below this many words per minute gTTS's "slow" mode is used; it has no finer control.
SLOW_BELOW_WPM = 130


def _describe(exc: BaseException) -> str:
    """Find the requests error gTTS wrapped, for a reason staff can act on."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, requests.exceptions.Timeout):
            return "timed out"
        if isinstance(seen, requests.exceptions.ConnectionError):
            return f"connection failed: {str(seen)[:160]}"
        if isinstance(seen, requests.exceptions.HTTPError):
            return f"HTTP error: {str(seen)[:160]}"
        seen = seen.__cause__ or seen.__context__
    return f"{type(exc).__name__}: {str(exc)[:160]}"


class GttsEngine:
    """gTTS with a per-request timeout and an overall deadline."""

    name = "gtts"
    online = True

    def __init__(self, *, timeout: float = 3.0, deadline: float | None = None, tld: str = "com"):
        self.timeout = timeout
        self.deadline = deadline if deadline is not None else max(10.0, 4 * timeout)
        self.tld = tld

    def cache_identity(self, *, voice: str, rate: int | None) -> Mapping[str, object]:
        # One Vietnamese voice: the dialect choice does not change gTTS audio.
        return {"lang": "vi", "tld": self.tld, "slow": self._slow(rate)}

    @staticmethod
    def _slow(rate: int | None) -> bool:
        return rate is not None and rate < SLOW_BELOW_WPM

    def _fetch(self, text: str, slow: bool) -> bytes:
        buffer = io.BytesIO()
        tts = gTTS(text, lang="vi", tld=self.tld, slow=slow, lang_check=False, timeout=self.timeout)
        tts.write_to_fp(buffer)
        return buffer.getvalue()

    def synthesize(self, text: str, *, voice: str, rate: int | None) -> Synthesis:
        check_voice(voice)
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="gtts")
        future = pool.submit(self._fetch, text, self._slow(rate))
        try:
            data = future.result(timeout=self.deadline)
        except concurrent.futures.TimeoutError as exc:
            raise EngineError(f"{self.name}: timed out after {self.deadline:.1f}s") from exc
        except Exception as exc:  # noqa: BLE001 - any failure here means "use the next engine"
            raise EngineError(f"{self.name}: {_describe(exc)}") from exc
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        if not data:
            raise EngineError(f"{self.name}: empty audio")
        return Synthesis(data, "mp3")
