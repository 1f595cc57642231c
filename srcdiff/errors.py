"""User-facing errors: every message names the user's file, line and column."""


class SrcdiffError(Exception):
    """Raised for input srcdiff cannot differentiate, with a pointer into the user's source."""

    def __init__(self, message, where=None, hint=None):
        self.message = message
        self.where = where
        self.hint = hint
        super().__init__(self._format())

    def _format(self):
        parts = []
        if self.where is not None:
            parts.append(f"{self.where.filename}:{self.where.line}:{self.where.col + 1}: {self.message}")
            if self.where.text:
                parts.append("    " + self.where.text)
                parts.append("    " + " " * self.where.col + "^")
        else:
            parts.append(self.message)
        if self.hint:
            parts.append("hint: " + self.hint)
        return "\n".join(parts)


class UndefinedName(SrcdiffError):
    """A name the function reads is not defined (yet: it may be defined further down its module)."""


class Where:
    """A position in the user's source: file, 1-based line, 0-based column, the line's text."""

    __slots__ = ("filename", "line", "col", "text")

    def __init__(self, filename, line, col, text):
        self.filename, self.line, self.col, self.text = filename, line, col, text

    def __repr__(self):
        return f"{self.filename}:{self.line}:{self.col + 1}"
