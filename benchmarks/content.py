"""Content pipeline benchmark: seconds per minute of speech, cold and cached; bytes per minute.

Cold = normalise + TTS (espeak-ng, the offline engine every node has) + assemble + loudness +
encode, with empty caches. Cached = the same announcement again: the render index is hit and
the file returned without synthesis or encoding. The last printed line is JSON.

    .venv/bin/python benchmarks/content.py [--engine espeak-ng] [--codec mp3] [--repeats 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from broadcasts import render_text  # noqa: E402
from broadcasts.tts import EngineHealth, SpeechSynthesizer, TtsCache, default_engines  # noqa: E402

# About a minute of real announcement text (numbers, dates, abbreviations), read at 160 wpm.
BULLETIN = [
    "UBND xã thông báo: Từ 7h30 ngày 15/3/2025, Trạm Y tế xã tổ chức tiêm vắc xin sởi cho trẻ "
    "từ 1-5 tuổi tại hội trường thôn 3.",
    "Đề nghị bà con mang theo CCCD và thẻ BHYT khi đến TYT xã.",
    "Điện lực huyện thông báo tạm ngừng cung cấp điện từ 7h00 đến 17h00 ngày 20/5/2025 để bảo "
    "dưỡng đường dây 35 kV.",
    "Cơn bão số 3 đang di chuyển theo hướng Tây Bắc với tốc độ 15-20 km/h, sức gió mạnh cấp 12, "
    "giật cấp 15. Dự báo lượng mưa phổ biến 200-300mm.",
    "Tính đến ngày 30/6/2025, toàn xã có 12.345 người đã kích hoạt VNeID, đạt 87,5%.",
    "Công an xã hỗ trợ kích hoạt tài khoản định danh điện tử mức độ 2 vào thứ 7 và chủ nhật.",
    "Kỳ họp thứ 8 HĐND xã khóa XX khai mạc lúc 8h00 ngày 10/12/2024 tại hội trường UBND xã.",
    "Mọi thắc mắc xin liên hệ số điện thoại 0987 654 321.",
]


def _per_minute(value: float, duration_s: float) -> float:
    return value / (duration_s / 60.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="espeak-ng")
    parser.add_argument("--codec", default="mp3", choices=["mp3", "opus"])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--cold-runs", type=int, default=3)
    args = parser.parse_args()
    text = " ".join(BULLETIN)

    with tempfile.TemporaryDirectory(prefix="loaxa-bench-") as tmp:
        root = Path(tmp)
        synth = SpeechSynthesizer(default_engines(), TtsCache(root / "cache"), EngineHealth())
        options = dict(
            engine=args.engine, cache_dir=root / "cache", codec=args.codec, synthesizer=synth
        )
        render_text("Khởi động.", root / "warm", cache_dir=root / "warm-cache")  # imports, JIT

        cold_times = []
        for run in range(args.cold_runs):  # each with empty caches; the median is reported
            fresh = SpeechSynthesizer(default_engines(), TtsCache(root / f"c{run}"), EngineHealth())
            start = time.perf_counter()
            render_text(
                text,
                root / f"o{run}",
                **{**options, "synthesizer": fresh, "cache_dir": root / f"c{run}"},
            )
            cold_times.append(time.perf_counter() - start)
        cold = render_text(text, root / "out", **options)
        cold_s = statistics.median(cold_times)

        cached_times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            again = render_text(text, root / "out", **options)
            cached_times.append(time.perf_counter() - start)
        assert again.sha256 == cold.sha256

    cached_s = statistics.median(cached_times)
    print(f"engine: {cold.engine} ({cold.fallback_reason or 'no fallback'})")
    print(f"output: {cold.duration_s:.1f} s of audio, {cold.size} bytes, {cold.codec}")
    print(
        f"cold:   {cold_s:.3f} s (median of {args.cold_runs}) -> "
        f"{_per_minute(cold_s, cold.duration_s):.3f} s per minute"
    )
    print(f"cached: {cached_s * 1000:.2f} ms (median of {args.repeats})")
    result = {
        "cold_s_per_min": round(_per_minute(cold_s, cold.duration_s), 4),
        "cached_s_per_min": round(_per_minute(cached_s, cold.duration_s), 5),
        "bytes_per_min": round(_per_minute(cold.size, cold.duration_s)),
        "engine": cold.engine,
        "codec": cold.codec,
        "audio_s": cold.duration_s,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
