"""A CODEX_HOME for the real Codex CLI whose model is a local fake of the Responses API: the config.toml the
docs show (docs/agents.md section 3), and the model catalog without which Codex offers no apply_patch tool."""

import json
from pathlib import Path

from tests.support.fakes.responses_api import model_catalog

CODEX_MODEL = "gpt-5.1-codex"
CODEX_KEY_VARIABLE = "GOALPOST_FAKE_MODEL_KEY"


def codex_home(home: Path, base_url: str) -> Path:
    """Write config.toml (and the catalog) into `home`: the model provider points at `base_url`."""
    home.mkdir(parents=True, exist_ok=True)
    catalog = home / "models.json"
    catalog.write_text(json.dumps(model_catalog(CODEX_MODEL)))
    (home / "config.toml").write_text(
        f'model = "{CODEX_MODEL}"\n'
        'model_provider = "local"\n'
        f'model_catalog_json = "{catalog}"\n'
        "\n"
        "[model_providers.local]\n"
        'name = "Local model server"\n'
        f'base_url = "{base_url}"\n'
        'wire_api = "responses"\n'
        f'env_key = "{CODEX_KEY_VARIABLE}"\n'
    )
    return home
