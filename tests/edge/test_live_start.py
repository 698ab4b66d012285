"""A live session's first sound is heard at the shared time, not when a busy loop got to
it: the samples already due are skipped (edge.live.skip_due)."""

from __future__ import annotations

import numpy as np

from edge.live import skip_due

RATE = 16_000


def test_a_late_first_write_skips_exactly_what_is_already_due() -> None:
    pcm = np.arange(RATE // 2, dtype="<i2").tobytes()  # 0.5 s, sample n holds n
    assert skip_due(pcm, -0.01, RATE) == pcm, "early or on time: all of it"
    late = np.frombuffer(skip_due(pcm, 0.030, RATE), "<i2")
    assert late[0] == 480 and len(late) == RATE // 2 - 480, "30 ms late: from sample 480"
    assert skip_due(pcm, 0.6, RATE) == b"", "later than the frame: nothing of it"
