"""CLI fragments mounted by the root ``loaxa`` app: ``loaxa tts`` and ``loaxa text normalize``.

loaxa tts "UBND xã thông báo..." -o thong-bao.mp3
loaxa tts --file bulletins.txt -o out/          # one file per line: out/001.mp3, ...
echo "Ngày 5/3 lúc 7h30" | loaxa text normalize
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from broadcasts.assemble import RenderedAudio, render_text
from broadcasts.normalize import normalize_vi

text_app = typer.Typer(help="Vietnamese text tools for the announcement pipeline.")

Engine = Annotated[str, typer.Option(help="auto (gTTS then espeak-ng), gtts, piper, espeak-ng")]
Voice = Annotated[str, typer.Option(help="vi, vi-vn-x-central or vi-vn-x-south")]
Rate = Annotated[Optional[int], typer.Option(help="speaking rate, words per minute")]  # noqa: UP045


def load_lexicon(path: Path | None) -> dict[str, str]:
    """A commune lexicon: one ``word<TAB>reading`` per line, '#' comments."""
    if path is None:
        return {}
    lexicon = {}
    for line in path.read_text("utf-8").splitlines():
        if line.strip() and not line.startswith("#") and "\t" in line:
            key, value = line.split("\t", 1)
            lexicon[key.strip()] = value.strip()
    return lexicon


def _codec_for(path: Path) -> str:
    return "opus" if path.suffix.lower() in (".opus", ".ogg") else "mp3"


def _report(rendered: RenderedAudio, target: Path) -> None:
    note = f" (fallback: {rendered.fallback_reason})" if rendered.fallback_reason else ""
    typer.echo(
        f"{target}: {rendered.duration_s:.1f} s, {rendered.size} bytes, "
        f"engine {rendered.engine}{note}",
        err=True,
    )


def _render_to(text: str, target: Path, **options) -> RenderedAudio:
    """Render content-addressed in a temp dir beside ``target``, then move it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".tts-") as tmp:
        rendered = render_text(text, Path(tmp), codec=_codec_for(target), **options)
        os.replace(rendered.path, target)
    return rendered


def tts_command(
    text: Annotated[Optional[str], typer.Argument(help="text to speak")] = None,  # noqa: UP045
    output: Annotated[
        Path, typer.Option("-o", "--output", help="output file, or directory with --file")
    ] = Path("announcement.mp3"),
    file: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--file", "-f", help="text file, one announcement per line"),
    ] = None,
    engine: Engine = "auto",
    voice: Voice = "vi",
    rate: Rate = None,
    lexicon: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(help="TSV of commune words: word<TAB>reading"),
    ] = None,
    chime: Annotated[bool, typer.Option(help="intro and outro chime")] = True,
    codec: Annotated[str, typer.Option(help="with --file: mp3 or opus")] = "mp3",
) -> None:
    """Speak Vietnamese text to a loudness-normalised MP3/Opus file."""
    if (text is None) == (file is None):
        raise typer.BadParameter("give either TEXT or --file, not both or neither")
    options = dict(
        engine=engine, voice=voice, rate=rate, lexicon=load_lexicon(lexicon), chime=chime
    )
    try:
        if text is not None:
            _report(_render_to(text, output, **options), output)
            return
        lines = [ln.strip() for ln in file.read_text("utf-8").splitlines() if ln.strip()]
        output.mkdir(parents=True, exist_ok=True)
        ext = "opus" if codec == "opus" else "mp3"
        width = max(3, len(str(len(lines))))
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, transient=True) as progress:
            task = progress.add_task("synthesising", total=len(lines))
            for number, line in enumerate(lines, start=1):
                target = output / f"{number:0{width}d}.{ext}"
                _report(_render_to(line, target, **options), target)
                progress.advance(task)
    except (ValueError, RuntimeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


@text_app.command("normalize")
def normalize_command(
    lexicon: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(help="TSV of commune words: word<TAB>reading"),
    ] = None,
) -> None:
    """Read lines on stdin, print each normalised for speech, in order, one per line."""
    table = load_lexicon(lexicon)
    for line in sys.stdin:
        typer.echo(normalize_vi(line.rstrip("\r\n"), table))


if __name__ == "__main__":
    # ``python -m broadcasts.cli [OPTIONS] TEXT``: the tts command alone, light to start; an
    # edge node renders its reminders this way, in a child process (edge/camera/host.py)
    typer.run(tts_command)
