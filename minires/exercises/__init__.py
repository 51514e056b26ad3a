"""Exercises: write a function of minires yourself, and be told whether it is right.

    python -m minires.exercises list                         # every exercise: name, what to write, chapter
    python -m minires.exercises start ReLU.backward my_copy  # my_copy/minires, with that body gone
    python -m minires.exercises check ReLU.backward my_copy  # one line per check; exit 0 when all pass

``start`` copies the library as it is (its .py files, not this folder) and replaces the body
of the exercise's function by a ``raise NotImplementedError`` that says what to write; the
docstring stays. Edit that function in your copy, then ``check`` runs the exercise's checks
against it in a fresh Python: central differences in float64 with a random upstream gradient,
plain NumPy references, and PyTorch where it is installed. ``list --chapter 4`` gives one
chapter's; in Python, ``minires.exercises.catalog.of_chapter(4)``.

Nothing here is imported by ``import minires``.
"""
