"""Which adjoints may still be zero where the backward reads them.

An adjoint is set to zero before a branch or loop contributes to it, and reset to
zero when the assignment it belongs to is undone. It stays "maybe zero" until a
contribution computed from an adjoint that is not maybe zero is added to it; a
contribution from a maybe-zero adjoint may be zero too. The two arms of a branch
start from the state before it, and after it a name is maybe zero if it is so at
the end of either arm.

Statements are visited once, in program order, and a loop is taken to run at least
once: a name the end of a loop body leaves maybe zero is not marked so for the reads
at the start of the next iteration. Those reads stay unguarded.
"""


class ZeroAdjoints:
    def __init__(self):
        self.maybe_zero = set()

    def zeroed(self, name):
        self.maybe_zero.add(name)

    def flowed(self, name, source, created):
        """A contribution computed from the adjoint of `source` was added to `name`'s adjoint
        (which it `created`): it may be zero if that adjoint may be."""
        if source not in self.maybe_zero:
            self.maybe_zero.discard(name)
        elif created:
            self.maybe_zero.add(name)

    def may_be_zero(self, name):
        return name in self.maybe_zero

    def branches(self, *arms):
        """The results of the emitters `arms`, each run from the state before the branch."""
        start, end, results = set(self.maybe_zero), set(), []
        for arm in arms:
            self.maybe_zero = set(start)
            results.append(arm())
            end |= self.maybe_zero
        self.maybe_zero = end
        return results
