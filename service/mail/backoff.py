"""Exponential backoff with jitter for reconnecting to mail servers.

Jitter spreads reconnects out so many clients recovering from the same server
restart do not arrive together; the cap keeps a long outage from turning into
hour-long waits after the server is back.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays base, 2·base, 4·base … up to cap, each scaled by a random 50–100 %."""

    base: float = 1.0
    cap: float = 300.0
    factor: float = 2.0
    rng: random.Random = field(default_factory=random.Random, repr=False)
    attempt: int = 0

    def next_delay(self) -> float:
        """The wait before the next attempt; each call counts one more failure."""
        ceiling = min(self.cap, self.base * self.factor**self.attempt)
        self.attempt += 1
        return ceiling * self.rng.uniform(0.5, 1.0)

    def reset(self) -> None:
        """After a success: the next failure waits `base` again."""
        self.attempt = 0
