"""Rendering announcements end to end with real espeak-ng and ffmpeg."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from content_helpers import ebur128_lufs, ffprobe_json

from broadcasts import (
    RenderedAudio,
    decode_to_wav,
    measure_lufs,
    parse_items,
    render_announcement,
    render_text,
)
from broadcasts.audio import SAMPLE_RATE
from broadcasts.chime import chime
from broadcasts.loudness import limit, loudness, normalize_loudness
from broadcasts.tts import EngineHealth

MIXED_TEXT = (
    "UBND xã thông báo: Từ 7h30 ngày 15/3/2025, TYT xã tiêm vắc xin cho 1.250 trẻ từ 1-5 tuổi. "
    "Đề nghị bà con mang theo CCCD và thẻ BHYT. Liên hệ 0912 345 678."
)


def _assert_small_mono_file(rendered: RenderedAudio, codec: str) -> dict:
    info = ffprobe_json(rendered.path)
    audio = [s for s in info["streams"] if s["codec_type"] == "audio"]
    assert len(audio) == 1
    stream = audio[0]
    assert stream["codec_name"] == codec
    assert stream["channels"] == 1
    if codec == "opus":  # Opus decodes at 48 kHz by design; the header keeps the input rate
        head = rendered.path.read_bytes()
        at = head.index(b"OpusHead")
        assert head[at + 9] == 1  # channels
        assert int.from_bytes(head[at + 12 : at + 16], "little") <= 24000
    else:
        assert int(stream["sample_rate"]) <= 24000
    bitrate = int(info["format"]["bit_rate"])
    assert 16_000 <= bitrate <= 36_000, bitrate
    return info


@pytest.fixture
def mixed(tmp_path: Path, spoken_mp3: Path, make_synth):
    synth, engines = make_synth()
    items = [
        {"kind": "chime"},
        {"kind": "speech", "text": MIXED_TEXT},
        {"kind": "silence", "seconds": 0.5},
        {"kind": "recording", "path": str(spoken_mp3)},
        {"kind": "outro"},
    ]
    options = dict(engine="espeak-ng", cache_dir=tmp_path / "cache", synthesizer=synth)
    rendered = render_announcement(items, tmp_path / "out", **options)
    return rendered, items, options, engines


def test_mixed_announcement_is_one_loudness_normalised_small_file(mixed, tmp_path) -> None:
    rendered, *_ = mixed
    assert rendered.path == tmp_path / "out" / f"{rendered.sha256}.mp3"
    assert rendered.size == rendered.path.stat().st_size
    assert rendered.engine == "espeak-ng" and rendered.fallback_reason is None
    info = _assert_small_mono_file(rendered, "mp3")
    assert abs(float(info["format"]["duration"]) - rendered.duration_s) < 0.3
    assert abs(ebur128_lufs(rendered.path) - (-16.0)) <= 1.0
    assert abs(measure_lufs(rendered.path) - (-16.0)) <= 1.0
    assert list((tmp_path / "out").iterdir()) == [rendered.path], "temp files left behind"


def test_recording_is_in_the_output(tmp_path: Path, spoken_mp3: Path) -> None:
    alone = render_announcement([{"kind": "recording", "path": spoken_mp3}], tmp_path / "a")
    with_chime = render_announcement(
        [{"kind": "chime"}, {"kind": "recording", "path": spoken_mp3}], tmp_path / "b"
    )
    assert alone.engine == "none"
    assert with_chime.duration_s - alone.duration_s == pytest.approx(
        chime().size / SAMPLE_RATE, abs=0.05
    )


def test_identical_render_is_served_from_cache_without_synthesis(mixed, tmp_path) -> None:
    rendered, items, options, engines = mixed
    calls = engines["espeak-ng"].calls
    assert calls >= 1
    again = render_announcement(items, tmp_path / "out", **options)
    assert again == rendered
    assert engines["espeak-ng"].calls == calls
    elsewhere = render_announcement(items, tmp_path / "other", **options)
    assert elsewhere.sha256 == rendered.sha256 and elsewhere.path.parent == tmp_path / "other"
    assert elsewhere.path.read_bytes() == rendered.path.read_bytes()
    assert engines["espeak-ng"].calls == calls


def test_changed_recording_content_changes_the_render(tmp_path, spoken_mp3, make_synth) -> None:
    synth, _ = make_synth()
    items = [{"kind": "recording", "path": spoken_mp3}]
    first = render_announcement(items, tmp_path / "o", cache_dir=tmp_path / "c", synthesizer=synth)
    data = spoken_mp3.read_bytes()
    spoken_mp3.write_bytes(data[: len(data) // 2])
    second = render_announcement(items, tmp_path / "o", cache_dir=tmp_path / "c", synthesizer=synth)
    assert second.sha256 != first.sha256


def test_speech_cache_shared_between_renders(tmp_path, make_synth) -> None:
    synth, engines = make_synth()
    options = dict(engine="espeak-ng", cache_dir=tmp_path / "c", synthesizer=synth)
    render_text("Ngày 5/3 họp thôn.", tmp_path / "o", **options)
    calls = engines["espeak-ng"].calls
    render_text("Ngày 5/3 họp thôn.", tmp_path / "o", repeat=2, **options)  # new render key
    assert engines["espeak-ng"].calls == calls


def test_repeat_and_opus(tmp_path, make_synth) -> None:
    synth, _ = make_synth()
    options = dict(engine="espeak-ng", cache_dir=tmp_path / "c", synthesizer=synth, codec="opus")
    once = render_text("Thông báo khẩn.", tmp_path / "o", **options)
    thrice = render_text("Thông báo khẩn.", tmp_path / "o", repeat=3, **options)
    assert once.path.suffix == ".opus" and once.codec == "opus"
    assert thrice.duration_s == pytest.approx(3 * once.duration_s + 2 * 1.5, abs=0.01)
    _assert_small_mono_file(thrice, "opus")
    assert abs(ebur128_lufs(thrice.path) + 16.0) <= 1.0


def test_fallback_reason_recorded_when_offline(tmp_path, make_synth, offline_gtts) -> None:
    synth, engines = make_synth(offline_gtts)
    rendered = render_text(
        "Ngày 5/3 họp thôn.", tmp_path / "o", cache_dir=tmp_path / "c", synthesizer=synth
    )
    assert rendered.engine == "espeak-ng"
    assert rendered.fallback_reason.startswith("gtts: connection failed")


def test_degraded_render_reused_only_while_gtts_is_remembered_down(
    tmp_path, make_synth, offline_gtts
) -> None:
    now = [0.0]
    synth, engines = make_synth(offline_gtts, health=EngineHealth(300, clock=lambda: now[0]))
    options = dict(cache_dir=tmp_path / "c", synthesizer=synth)
    first = render_text("Họp thôn lúc 19h30.", tmp_path / "o", **options)
    again = render_text("Họp thôn lúc 19h30.", tmp_path / "o", **options)
    assert again == first and engines["gtts"].calls == 1
    now[0] += 301  # the memory expired: try the better voice again
    render_text("Họp thôn lúc 19h30.", tmp_path / "o", **options)
    assert engines["gtts"].calls == 2


def test_invalid_items_are_rejected_with_clear_errors(tmp_path) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="kind"):
        parse_items([{"kind": "video"}])
    with pytest.raises(ValidationError, match="seconds"):
        parse_items([{"kind": "silence", "seconds": -1}])
    with pytest.raises(ValueError, match="at least one item"):
        render_announcement([], tmp_path)
    with pytest.raises(ValueError, match="repeat"):
        render_text("a", tmp_path, repeat=0)
    with pytest.raises(ValueError, match="unknown voice"):
        render_text("a", tmp_path, voice="en")


def test_text_with_nothing_to_say_and_no_other_items_is_an_error(tmp_path) -> None:
    with pytest.raises(ValueError, match="no audio"):
        render_text("🙂🙂", tmp_path, chime=False, engine="espeak-ng")


def test_decode_to_wav_is_atomic_and_reports_duration(mixed, tmp_path) -> None:
    rendered, *_ = mixed
    dst = tmp_path / "sink" / "play.wav"
    duration = decode_to_wav(rendered.path, dst, sample_rate=16000)
    with wave.open(str(dst)) as handle:
        assert handle.getframerate() == 16000 and handle.getnchannels() == 1
        assert duration == pytest.approx(handle.getnframes() / 16000)
    assert duration == pytest.approx(rendered.duration_s, abs=0.2)
    assert [p.name for p in dst.parent.iterdir()] == ["play.wav"]


# ---------------------------------------------------------------- loudness unit checks


def test_meter_agrees_with_pyloudnorm() -> None:
    pyloudnorm = pytest.importorskip("pyloudnorm")
    rng = np.random.default_rng(7)
    signal = rng.normal(0, 0.05, SAMPLE_RATE * 6) * np.repeat(rng.uniform(0.1, 1, 60), 2400)
    reference = pyloudnorm.Meter(SAMPLE_RATE).integrated_loudness(signal)
    assert loudness(signal.astype(np.float32)) == pytest.approx(reference, abs=0.05)


def test_normalize_hits_target_and_never_clips() -> None:
    rng = np.random.default_rng(3)
    quiet = (rng.normal(0, 0.01, SAMPLE_RATE * 5)).astype(np.float32)
    quiet[::997] = 0.3  # spikes that would clip after a big gain
    out = normalize_loudness(quiet)
    assert loudness(out) == pytest.approx(-16.0, abs=0.15)
    assert float(np.abs(out).max()) <= 10 ** (-1 / 20) + 1e-6


def test_limiter_leaves_quiet_audio_untouched() -> None:
    audio = np.full(1000, 0.2, dtype=np.float32)
    assert limit(audio) is audio
