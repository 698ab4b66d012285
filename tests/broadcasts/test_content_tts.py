"""TTS engines, the fallback chain, failure memory and the speech cache."""

from __future__ import annotations

import base64
import os
import socket
import stat
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from broadcasts.audio import decode_synthesis, parse_wav
from broadcasts.tts import (
    EngineError,
    EngineHealth,
    EngineUnavailable,
    EspeakEngine,
    GttsEngine,
    PiperEngine,
    default_engines,
    engine_chain,
    split_sentences,
)

TEXT = "ủy ban nhân dân xã thông báo lịch tiêm chủng ngày năm tháng ba."


# ---------------------------------------------------------------- espeak-ng


@pytest.mark.parametrize("voice", ["vi", "vi-vn-x-central", "vi-vn-x-south"])
def test_espeak_speaks_each_voice(voice: str) -> None:
    synthesis = EspeakEngine().synthesize(TEXT, voice=voice, rate=None)
    samples, rate = parse_wav(synthesis.data)
    assert synthesis.format == "wav" and rate == 22050
    assert samples.size / rate > 1.5 and float(abs(samples).max()) > 0.05


def test_espeak_rate_changes_duration() -> None:
    engine = EspeakEngine()
    slow = parse_wav(engine.synthesize(TEXT, voice="vi", rate=110).data)[0].size
    fast = parse_wav(engine.synthesize(TEXT, voice="vi", rate=260).data)[0].size
    assert slow > fast * 1.6


def test_espeak_pitch_is_part_of_the_cache_identity() -> None:
    low = EspeakEngine(pitch=30).cache_identity(voice="vi", rate=None)
    high = EspeakEngine(pitch=70).cache_identity(voice="vi", rate=None)
    assert low != high


def test_unknown_voice_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown voice"):
        EspeakEngine().synthesize(TEXT, voice="en", rate=None)


def test_missing_espeak_binary_is_unavailable() -> None:
    with pytest.raises(EngineUnavailable, match="not available"):
        EspeakEngine(executable="espeak-ng-does-not-exist").synthesize("a", voice="vi", rate=None)


# ---------------------------------------------------------------- gTTS at its HTTP boundary


class _FakeGoogle(BaseHTTPRequestHandler):
    """Answers gTTS's batchexecute POST the way translate.google.com does."""

    audio = b""
    requests: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).requests.append(body)
        encoded = base64.b64encode(self.audio).decode()
        payload = (
            f')]}}\'\n\n[["wrb.fr","jQ1olc","[\\"{encoded}\\"]",null,null,null,"generic"]]\n'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def fake_google(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    import gtts.tts

    mp3 = tmp_path / "google.mp3"
    wav = tmp_path / "google.wav"
    subprocess.run(["espeak-ng", "-v", "vi", "-w", str(wav), "xin chào"], check=True)
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-i", str(wav), "-ar", "24000", "-b:a", "32k",
         str(mp3)],
        check=True,
    )  # fmt: skip
    _FakeGoogle.audio = mp3.read_bytes()
    _FakeGoogle.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeGoogle)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    monkeypatch.setattr(
        gtts.tts, "_translate_url", lambda tld="com", path="": f"http://127.0.0.1:{port}/{path}"
    )
    yield _FakeGoogle
    server.shutdown()
    server.server_close()


def test_gtts_parses_google_response(fake_google) -> None:
    synthesis = GttsEngine(timeout=2.0).synthesize(TEXT, voice="vi", rate=None)
    assert synthesis.format == "mp3"
    assert synthesis.data == fake_google.audio
    assert len(fake_google.requests) >= 1
    assert b"jQ1olc" in fake_google.requests[0]
    samples = decode_synthesis(synthesis)
    assert samples.size > 0.3 * 24000


def test_gtts_slow_rate_uses_slow_mode(fake_google) -> None:
    engine = GttsEngine(timeout=2.0)
    assert engine.cache_identity(voice="vi", rate=100)["slow"] is True
    assert engine.cache_identity(voice="vi", rate=None)["slow"] is False
    engine.synthesize("chậm", voice="vi", rate=100)
    # gTTS encodes slow mode as the literal "true" in its RPC payload.
    assert b"true" in fake_google.requests[-1]


@pytest.fixture
def stalled_server():
    """Accepts TCP connections and never answers: the worst kind of bad link."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    listener.close()


def test_gtts_request_timeout_on_a_stalled_link(monkeypatch, stalled_server) -> None:
    import gtts.tts

    monkeypatch.setattr(
        gtts.tts,
        "_translate_url",
        lambda tld="com", path="": f"http://127.0.0.1:{stalled_server}/x",
    )
    start = time.monotonic()
    with pytest.raises(EngineError, match="gtts: timed out"):
        GttsEngine(timeout=0.5, deadline=10).synthesize(TEXT, voice="vi", rate=None)
    assert time.monotonic() - start < 3.0


def test_gtts_overall_deadline_beats_a_long_request_timeout(monkeypatch, stalled_server) -> None:
    import gtts.tts

    monkeypatch.setattr(
        gtts.tts,
        "_translate_url",
        lambda tld="com", path="": f"http://127.0.0.1:{stalled_server}/x",
    )
    start = time.monotonic()
    with pytest.raises(EngineError, match=r"timed out after 1\.0s"):
        GttsEngine(timeout=60, deadline=1.0).synthesize(TEXT, voice="vi", rate=None)
    assert time.monotonic() - start < 2.5


def test_gtts_without_network_fails_fast() -> None:
    """The real gTTS against the real Google host: here (no internet) it must fail quickly."""
    engine = GttsEngine()
    start = time.monotonic()
    try:
        synthesis = engine.synthesize("xin chào", voice="vi", rate=None)
    except EngineError as exc:
        assert str(exc).startswith("gtts: ")
        assert time.monotonic() - start <= engine.deadline + 1.0
    else:  # a machine with internet: then it must have produced audio
        assert synthesis.data


# ---------------------------------------------------------------- piper


def test_piper_without_model_is_unavailable_with_reason() -> None:
    with pytest.raises(EngineUnavailable, match="no voice model configured"):
        PiperEngine(model=None).synthesize(TEXT, voice="vi", rate=None)


def test_piper_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailable, match="not found"):
        PiperEngine(model=tmp_path / "vi.onnx").synthesize(TEXT, voice="vi", rate=None)


def test_piper_cli_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Drive the piper CLI boundary with a stand-in script (no Vietnamese piper voice here)."""
    model = tmp_path / "vi_VN-test.onnx"
    model.write_bytes(b"model")
    script = tmp_path / "bin" / "piper"
    script.parent.mkdir()
    script.write_text(
        "#!/bin/sh\n"
        'while [ $# -gt 0 ]; do case "$1" in --output_file) out="$2"; shift;; '
        '--model) test -f "$2" || exit 3; shift;; *) ;; esac; shift; done\n'
        'espeak-ng -v vi -w "$out" --stdin\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")
    synthesis = PiperEngine(model=model).synthesize(TEXT, voice="vi", rate=None)
    assert parse_wav(synthesis.data)[0].size > 22050


def test_piper_joins_auto_chain_only_when_configured(tmp_path: Path, monkeypatch) -> None:
    assert engine_chain("auto", default_engines()) == ["gtts", "espeak-ng"]
    monkeypatch.setenv("LOAXA_PIPER_MODEL", str(tmp_path / "vi.onnx"))
    assert engine_chain("auto", default_engines()) == ["gtts", "piper", "espeak-ng"]
    assert engine_chain("espeak", default_engines()) == ["espeak-ng"]
    with pytest.raises(ValueError, match="unknown TTS engine"):
        engine_chain("festival", default_engines())


# ---------------------------------------------------------------- chain, memory, cache


def test_fallback_records_why_gtts_was_not_used(make_synth, offline_gtts) -> None:
    synth, engines = make_synth(offline_gtts)
    result = synth.speak([TEXT], engine="auto")
    assert result.engine == "espeak-ng"
    assert result.fallback_reason.startswith("gtts: connection failed")
    assert result.failed_engines == ("gtts",)
    assert engines["gtts"].calls == 1 and engines["espeak-ng"].calls == 1


def test_failed_online_engine_is_remembered_then_retried(make_synth, offline_gtts) -> None:
    now = [1000.0]
    health = EngineHealth(cooldown_s=300, clock=lambda: now[0])
    synth, engines = make_synth(offline_gtts, health=health)
    synth.speak(["câu thứ nhất."])
    now[0] += 60
    second = synth.speak(["câu thứ hai."])
    assert engines["gtts"].calls == 1, "gTTS retried within the cooldown"
    assert "skipped, failed 60s ago" in second.fallback_reason
    now[0] += 300
    synth.speak(["câu thứ ba."])
    assert engines["gtts"].calls == 2, "gTTS not retried after the cooldown"


def test_cache_hit_avoids_synthesis(make_synth) -> None:
    synth, engines = make_synth()
    first = synth.speak(["một.", "hai."], engine="espeak-ng")
    again = synth.speak(["một.", "hai."], engine="espeak-ng")
    assert engines["espeak-ng"].calls == 2
    assert (first.synthesized, again.synthesized, again.cached) == (2, 0, 2)
    assert [c.data for c in again.chunks] == [c.data for c in first.chunks]
    synth.speak(["một.", "ba."], engine="espeak-ng")  # only the new sentence is synthesised
    assert engines["espeak-ng"].calls == 3


def test_cache_key_covers_voice_and_rate(make_synth) -> None:
    synth, engines = make_synth()
    synth.speak(["một."], engine="espeak-ng", voice="vi")
    synth.speak(["một."], engine="espeak-ng", voice="vi-vn-x-south")
    synth.speak(["một."], engine="espeak-ng", voice="vi", rate=120)
    assert engines["espeak-ng"].calls == 3


def test_cached_gtts_audio_is_used_even_while_gtts_is_down(make_synth, fake_google) -> None:
    health = EngineHealth()
    synth, engines = make_synth(GttsEngine(timeout=2.0), health=health)
    assert synth.speak([TEXT]).engine == "gtts"
    health.mark_failed("gtts", "connection failed: test")
    again = synth.speak([TEXT])
    assert again.engine == "gtts" and again.cached == 1
    assert engines["gtts"].calls == 1 and engines["espeak-ng"].calls == 0


# ---------------------------------------------------------------- splitting


def test_split_sentences_keeps_order_and_limits() -> None:
    text = " ".join(f"Câu số {i} nói về lịch tiêm chủng của thôn." for i in range(30))
    chunks = split_sentences(text, max_chars=120)
    assert " ".join(chunks) == text
    assert all(len(c) <= 120 for c in chunks)
    long_sentence = ", ".join(["một đoạn rất dài không có dấu chấm"] * 20)
    assert all(len(c) <= 100 for c in split_sentences(long_sentence, max_chars=100))
    assert split_sentences("   ") == []
