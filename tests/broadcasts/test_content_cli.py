"""The CLI fragments, mounted in a tiny Typer app the way loaxa_cli mounts them."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from content_helpers import ffprobe_json
from typer.testing import CliRunner

from broadcasts import normalize_vi
from broadcasts.cli import text_app, tts_command


@pytest.fixture
def app() -> typer.Typer:
    root = typer.Typer()
    root.command("tts")(tts_command)
    root.add_typer(text_app, name="text")
    return root


def test_normalize_reads_stdin_lines_in_order(app) -> None:
    lines = ["Ngày 5/3 lúc 7h30", "", "UBND xã: 67.120 người", "quý II/2025 🙂"]
    result = CliRunner().invoke(app, ["text", "normalize"], input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [normalize_vi(line) for line in lines]
    assert result.output.splitlines()[0] == "Ngày năm tháng ba lúc bảy giờ ba mươi phút"


def test_normalize_with_commune_lexicon(app, tmp_path: Path) -> None:
    lexicon = tmp_path / "lexicon.tsv"
    lexicon.write_text("# commune words\nMX\tMường Xén\n", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["text", "normalize", "--lexicon", str(lexicon)], input="Xã MX\n"
    )
    assert result.output == "Xã Mường Xén\n"


def test_tts_single_text_to_file(app, tmp_path: Path) -> None:
    out = tmp_path / "thong-bao.mp3"
    result = CliRunner().invoke(
        app, ["tts", "Họp thôn lúc 19h30.", "-o", str(out), "--engine", "espeak-ng",
              "--voice", "vi-vn-x-south", "--rate", "150"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert ffprobe_json(out)["streams"][0]["codec_name"] == "mp3"
    assert "engine espeak-ng" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["thong-bao.mp3"]


def test_tts_file_of_texts_writes_numbered_files(app, tmp_path: Path) -> None:
    texts = tmp_path / "bulletins.txt"
    texts.write_text("Thông báo một.\n\nThông báo hai.\nThông báo ba.\n", encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["tts", "--file", str(texts), "-o", str(out), "--engine", "espeak", "--no-chime"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["001.mp3", "002.mp3", "003.mp3"]
    sizes = {p.stat().st_size for p in out.iterdir()}
    assert len(sizes) > 1  # three different texts, three different files


def test_tts_needs_exactly_one_source(app, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["tts", "-o", str(tmp_path / "x.mp3")])
    assert result.exit_code != 0
    assert "either TEXT or --file" in result.output


def test_tts_bad_voice_is_a_clean_error(app, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["tts", "a", "-o", str(tmp_path / "x.mp3"), "--voice", "en"])
    assert result.exit_code == 1
    assert "unknown voice" in result.output
