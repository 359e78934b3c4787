"""The function families of UZO's expressions; importing this registers them all."""

from uzo_engine.expressions.functions import lists, numbers, text, times

__all__ = ["lists", "numbers", "text", "times"]
