"""The amplifier relay: switched on just before a clip plays and off after it.

On a Pi the relay sits on a GPIO pin (gpiozero when installed). Elsewhere, or with no pin
configured, the relay is a no-op that only logs, so the same agent runs on a laptop.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class Amplifier:
    def __init__(self, gpio_pin: int | None, warmup_s: float = 0.5, active_high: bool = True):
        self.warmup_s = warmup_s
        self.is_on = False
        self._relay = None
        if gpio_pin is not None:
            try:
                from gpiozero import OutputDevice  # type: ignore[import-not-found]

                self._relay = OutputDevice(gpio_pin, active_high=active_high)
            except Exception as exc:  # no GPIO here: not a Pi, or no permission
                log.warning("amplifier relay on GPIO %s unavailable (%s): no-op", gpio_pin, exc)
        self.warmup_s = warmup_s if self._relay else 0.0

    def on(self) -> float:
        """Switch on; return how long until the amplifier is ready to be heard (its
        warm-up, when it was off). Never sleeps: the scheduler starts that much later."""
        if self.is_on:
            return 0.0
        if self._relay:
            self._relay.on()
        self.is_on = True
        return self.warmup_s

    def off(self) -> None:
        if self.is_on:
            if self._relay:
                self._relay.off()
            self.is_on = False
