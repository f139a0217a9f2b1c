"""Plain-dict round trip of the frozen configuration dataclasses saved in model files."""

from dataclasses import asdict


class DictConfig:
    """Mixin for frozen dataclasses: ``to_dict`` / ``from_dict`` (lists back to tuples).

    ``from_dict`` refuses unknown keys with an error that lists the valid ones; the class
    attribute ``options_name`` names them in that message.
    """

    options_name = "configuration"

    def to_dict(self):
        """Plain dict (JSON- and ``weights_only``-safe)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values):
        """Inverse of :meth:`to_dict`."""
        known = set(cls.__dataclass_fields__)
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"Unknown {cls.options_name} options {sorted(unknown)}; valid: {sorted(known)}.")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
