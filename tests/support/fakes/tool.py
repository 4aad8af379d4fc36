"""A fake custom agent: takes the prompt as its last argument, edits app.py, prints a few lines."""

import sys

from common import edit_greeting, hang, record, scenario


def main() -> int:
    record()
    mode = scenario()
    if mode == "hang":
        hang()
    if mode == "exit_nonzero":
        print("working…")
        print("fatal: model quota exhausted", file=sys.stderr)
        return 3
    edit_greeting()
    print(f"prompt received: {len(sys.argv[-1])} characters")
    print()
    print("PLAN:\n1. Edit app.py\n2. Run python app.py")
    print()
    print("Edited app.py.\nThe greeting is now hi.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
