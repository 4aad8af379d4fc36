"""A fake `aider --message …`: prints aider's plain-text session, and edits app.py."""

import sys

from common import edit_greeting, hang, record, scenario

HEADER = """\
Aider v0.86.1
Main model: gpt-4o with diff edit format
Weak model: gpt-4o-mini
Git repo: none
Repo-map: disabled
Added app.py to the chat.
"""

REPLY = """\
I'll change the greeting.

app.py
```python
<<<<<<< SEARCH
print('hello')
=======
print('hi')
>>>>>>> REPLACE
```

FOLLOW-UP: the test for the CLI is skipped on Windows

The greeting in app.py now says hi.
"""


def main() -> int:
    record()
    mode = scenario()
    if mode == "hang":
        hang()
    print(HEADER)
    if mode == "exit_nonzero":
        print("Error: Read-only file system: app.py", file=sys.stderr)
        return 2
    if mode == "no_reply":
        print("litellm.AuthenticationError: OpenAIException - Incorrect API key provided")
        return 0
    print(REPLY)
    if mode == "two_replies":
        print("Tokens: 2.4k sent, 1.1k cache write, 140 received. Cost: $0.0053 message, $0.0053 session.")
        print("The LLM did not conform to the edit format.\n\nRetrying with the right format.\n")
        print("Tokens: 1.2M sent, 345 received. Cost: $0.01 message, $0.0153 session.")
    else:
        print("Tokens: 1.2k sent, 345 received. Cost: $0.01 message, $0.02 session.")
    edit_greeting()
    print("Applied edit to app.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
