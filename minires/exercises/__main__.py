"""The command line: ``python -m minires.exercises list | start NAME DIR | check NAME DIR``."""
import argparse
import pathlib
import sys
import time

from minires.exercises import catalog, runner, tree


def list_exercises(chapter=None):
    exercises = catalog.EXERCISES if chapter is None else catalog.of_chapter(chapter)
    for exercise in exercises:
        print(catalog.line(exercise))
    return 0


def start(name, directory):
    exercise = catalog.find(name)
    directory = pathlib.Path(directory)
    if directory.exists():
        raise SystemExit(f"start: {directory} exists already; give a folder that does not exist yet.")
    began = time.perf_counter()
    path = tree.write_tree(exercise, directory)
    first, _, _ = tree.body_lines(path.read_text(), exercise.name)
    print(f"{directory}/minires: a copy of minires without the body of {exercise.name} "
          f"({time.perf_counter() - began:.2f} s).")
    print(f"Write it: {path}, line {first} ({exercise.task}).")
    print(f"Read about it in the book: {exercise.chapter_title}.")
    print(f"Then check it: python -m minires.exercises check {exercise.name} {directory}")
    return 0


def check(name, directory):
    exercise = catalog.find(name)
    if not (pathlib.Path(directory) / "minires" / "__init__.py").is_file():
        raise SystemExit(f"check: {directory} holds no minires copy; make one with "
                         f"`python -m minires.exercises start {exercise.name} {directory}`.")
    status, printed = runner.run_checks(exercise.name, directory)
    print(printed)
    return status


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minires.exercises", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="one line per exercise: name, what to write, chapter")
    listing.add_argument("--chapter", type=int, choices=sorted(catalog.CHAPTERS))
    for command, text in (("start", "copy minires into DIR/minires with NAME's body removed"),
                          ("check", "run NAME's checks against the copy in DIR")):
        sub = commands.add_parser(command, help=text)
        sub.add_argument("name", metavar="NAME")
        sub.add_argument("directory", metavar="DIR")
    arguments = parser.parse_args(argv)
    try:
        if arguments.command == "list":
            return list_exercises(arguments.chapter)
        return {"start": start, "check": check}[arguments.command](arguments.name, arguments.directory)
    except ValueError as error:         # an unknown exercise
        raise SystemExit(f"{arguments.command}: {error}") from None


if __name__ == "__main__":
    sys.exit(main())
