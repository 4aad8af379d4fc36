"""A CODEX_HOME for the real Codex CLI whose model is a local fake of the Responses API, written from the
config.toml that docs/agents.md section 3 shows (so what people paste is what the tests run), with the fake's URL,
its key variable and the model catalog without which Codex offers no apply_patch tool."""

import json
import re
import tomllib
from pathlib import Path

from tests.support.fakes.responses_api import model_catalog

AGENTS_DOC = Path(__file__).resolve().parents[2] / "docs" / "agents.md"


def documented_config() -> str:
    """The config.toml of docs/agents.md section 3, as written there."""
    section = AGENTS_DOC.read_text().split("## 3. Codex", 1)[1].split("\n## 4.", 1)[0]
    (block,) = re.findall(r"```toml\n(.*?)```", section, flags=re.DOTALL)
    return block


def codex_home(home: Path, base_url: str) -> tuple[Path, str]:
    """Write config.toml (and the catalog) into `home`, the provider pointing at `base_url`; returns the home and
    the name of the environment variable that must hold the key."""
    text = documented_config()
    config = tomllib.loads(text)
    provider = config["model_providers"][config["model_provider"]]
    home.mkdir(parents=True, exist_ok=True)
    catalog = home / "models.json"
    catalog.write_text(json.dumps(model_catalog(config["model"])))
    for key, value in (("base_url", base_url), ("model_catalog_json", str(catalog))):
        text, count = re.subn(rf'(?m)^{key} = ".*"$', f"{key} = {json.dumps(value)}", text)
        assert count == 1, f"docs/agents.md's config.toml has no single {key}"
    (home / "config.toml").write_text(text)
    return home, provider["env_key"]
