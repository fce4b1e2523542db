"""Versioned prompt templates (`<name>.v<N>.md`, `$variable` placeholders); a missing variable is an error."""

from pathlib import Path
from string import Template

PROMPTS_DIR = Path(__file__).parent


class PromptError(KeyError):
    """A template is unknown or a variable it uses was not given."""


def render(name: str, **variables: str) -> str:
    path = PROMPTS_DIR / f"{name}.md"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PROMPTS_DIR.glob("*.md")))
        raise PromptError(f"unknown prompt {name!r}; known: {known}")
    try:
        return Template(path.read_text(encoding="utf-8")).substitute(variables)
    except KeyError as exc:
        raise PromptError(f"prompt {name!r} needs variable {exc.args[0]!r}") from None
