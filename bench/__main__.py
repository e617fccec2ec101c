"""``python -m bench`` and the ``colorbench`` command: :func:`bench.cli.main`, with Ctrl-C during start-up too.

Importing the command line takes a moment (YAML, the config); a Ctrl-C in it would otherwise
end in a KeyboardInterrupt traceback before ``main`` can catch anything.
"""
import sys


def run() -> None:
    """Import and run the command line; exit 130 without a traceback when interrupted before ``main`` handles it."""
    try:
        from bench.cli import main
        code = main()
    except KeyboardInterrupt:  # while importing, or parsing the arguments; main handles it from then on
        print("colorbench: interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    run()
