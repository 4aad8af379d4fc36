"""A fake sandbox: `wrapper MARKER argv…` notes the argv it wraps in MARKER, then becomes that command."""

import json
import os
import sys
from pathlib import Path

Path(sys.argv[1]).write_text(json.dumps(sys.argv[2:]))
os.execv(sys.argv[2], sys.argv[2:])  # noqa: S606 - the fake sandbox becomes the command it wraps
