"""The configuration reference is generated from the settings models and kept current."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pydantic import Field, SecretStr

from uzo_api import config_docs
from uzo_connectors.settings import UzoSettings

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("uzo_api", "uzo_engine", "uzo_connectors")
REGENERATE = "run `python -m uzo_api.config_docs` from the repository root"


def test_configuration_md_is_what_the_generator_writes() -> None:
    current = (ROOT / config_docs.DOC_PATH).read_text(encoding="utf-8")
    assert current == config_docs.render_configuration(), f"docs/configuration.md: {REGENERATE}"


def test_readme_common_table_is_generated() -> None:
    readme = (ROOT / config_docs.README_PATH).read_text(encoding="utf-8")
    assert config_docs.with_common_table(readme) == readme, f"README.md: {REGENERATE}"


def test_check_mode_is_clean_on_the_repository() -> None:
    assert config_docs.main(["--check", "--root", str(ROOT)]) == 0


def test_main_writes_what_is_stale_and_check_reports_it(tmp_path: Path) -> None:
    readme = (ROOT / config_docs.README_PATH).read_text(encoding="utf-8")
    (tmp_path / "README.md").write_text(readme, encoding="utf-8")
    assert config_docs.main(["--check", "--root", str(tmp_path)]) == 1  # no docs/ yet
    assert not (tmp_path / config_docs.DOC_PATH).exists()
    assert config_docs.main(["--root", str(tmp_path)]) == 0
    written = (tmp_path / config_docs.DOC_PATH).read_text(encoding="utf-8")
    assert written == config_docs.render_configuration()
    assert config_docs.main(["--check", "--root", str(tmp_path)]) == 0


def _settings_classes_in_source() -> set[tuple[str, str]]:
    """(module, class) of every class in the packages whose base is a settings model."""
    bases = {"BaseSettings", "UzoSettings"}
    found = set()
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.ClassDef) or node.name == "UzoSettings":
                    continue
                names = {getattr(b, "id", None) or getattr(b, "attr", "") for b in node.bases}
                if names & bases:
                    found.add((module, node.name))
    return found


def test_every_settings_model_is_documented() -> None:
    documented = {(m.__module__, m.__qualname__) for m in config_docs.settings_models()}
    in_source = _settings_classes_in_source()
    assert in_source, "the source scan found no settings model"
    assert in_source == documented, "add the new settings model to config_docs.sections()"


def test_every_settings_model_reads_the_env_file() -> None:
    for model in config_docs.settings_models():
        assert issubclass(model, UzoSettings), f"{model.__name__} should subclass UzoSettings"


@pytest.mark.parametrize("model", config_docs.settings_models(), ids=lambda m: m.__name__)
def test_every_field_has_a_description(model: type[BaseSettings]) -> None:
    missing = [name for name, info in model.model_fields.items() if not (info.description or "")]
    assert not missing, f"{model.__name__}: fields without a description: {missing}"


def test_a_variable_read_by_several_models_has_one_type() -> None:
    seen: dict[str, tuple[str, object]] = {}
    for model in config_docs.settings_models():
        for field, info in model.model_fields.items():
            if config_docs.is_group(info):
                continue
            name = config_docs.variable_name(model, field, info)
            where = f"{model.__name__}.{field}"
            if name in seen:
                other, annotation = seen[name]
                assert annotation == info.annotation, f"{name}: {where} and {other} differ"
            else:
                seen[name] = (where, info.annotation)


def test_names_and_rendering() -> None:
    by_name = {v.name: v for v in config_docs.documented_variables()}
    for name in ("UZO_LOG_LEVEL", "UZO_LOG_JSON", "UZO_ENV", "UZO_SERVER_CORS_ORIGINS"):
        assert name in by_name
    for name in ("UZO_ACTOR_POOL_SIZE", "UZO_SECRET_KEYS", "UZO_CONNECTORS_DATABASE_ROOT"):
        assert name in by_name
    assert by_name["UZO_SERVER_PORT"].default == "`8000`"
    assert by_name["UZO_SERVER_PORT"].kind == "integer (≥ 1, ≤ 65,535)"
    assert by_name["UZO_AUTH_REGISTRATION"].kind == "one of `open`, `invite`, `closed`"
    assert by_name["UZO_LOG_LEVEL"].kind == "one of `DEBUG`, `INFO`, `WARNING`, `ERROR`"
    assert by_name["UZO_SERVER_TRUSTED_PROXIES"].kind == "comma-separated list"
    assert by_name["UZO_HOME"].default == "`~/.uzo`"  # not this machine's home directory
    # each variable appears in one table row of the reference
    doc = config_docs.render_configuration()
    for name in by_name:
        assert doc.count(f"| `{name}` |") == 1, name


def test_secrets_show_generated_or_unset_never_a_value(monkeypatch: pytest.MonkeyPatch) -> None:
    before = config_docs.render_configuration()
    planted = "planted-secret-" + "x" * 32
    for name in ("UZO_AUTH_JWT_SECRET", "UZO_SECRET_KEYS", "UZO_DATABASE_URL", "UZO_REDIS_URL"):
        monkeypatch.setenv(name, planted)
    after = config_docs.render_configuration()
    assert after == before, "the reference must not depend on this process's environment"
    assert planted not in after
    secrets = [v for v in config_docs.documented_variables() if v.kind.endswith("secret")]
    secrets += [v for v in config_docs.documented_variables() if v.kind.endswith("secrets")]
    assert {v.name for v in secrets} >= {"UZO_AUTH_JWT_SECRET", "UZO_DATABASE_URL"}
    assert {v.default for v in secrets} <= {"generated", "unset"}
    assert {v.name for v in secrets if v.default == "generated"} == {
        "UZO_AUTH_JWT_SECRET",
        "UZO_SECRET_KEYS",
        "UZO_RAY_AUTH_TOKEN",
    }


def test_a_secret_with_a_default_value_is_refused() -> None:
    class Leaky(UzoSettings):
        token: SecretStr = Field(default=SecretStr("do-not-publish"), description="a token")

    with pytest.raises(ValueError, match="would be published"):
        config_docs.variables(Leaky)


def test_a_machine_dependent_default_must_be_declared() -> None:
    class Computed(UzoSettings):
        where: Path = Field(default_factory=Path.cwd, description="somewhere")

    with pytest.raises(ValueError, match="doc_default"):
        config_docs.variables(Computed)
