"""The one error type for a bad analysis option, and the sentence it carries.

``analyze``, ``channel_map`` and a model's ``cam_layer`` raise :class:`OptionError` for an unknown CAM method,
target class, CAM layer, SE block or channel. Front ends show its message as is: it is one sentence a person
understands, naming what was asked for and what can be chosen.
"""

from __future__ import annotations

from collections.abc import Iterable

_SHOWN = 40  # characters of a client's value repeated in a message; longer values are cut


class OptionError(ValueError):
    """An analysis option the model does not offer; the message says what to choose instead."""


def unknown(what: str, value: object, choices: Iterable[object], *, of_model: bool = True) -> OptionError:
    """``OptionError("This model has no CAM layer 'x'; choose one of: layer4, layer3.")``.

    Args:
        what: the kind of option, as people call it ("CAM layer", "class", "SE block").
        value: what the caller asked for (cut to a few dozen characters: it may come from a client).
        choices: what can be chosen instead.
        of_model: the choices belong to the model ("This model has no ..."), else to the library
            ("There is no CAM method ...").
    """
    shown = str(value)[:_SHOWN]
    listed = ", ".join(str(choice) for choice in choices) or "none"
    subject = "This model has no" if of_model else "There is no"
    return OptionError(f"{subject} {what} {shown!r}; choose one of: {listed}.")
